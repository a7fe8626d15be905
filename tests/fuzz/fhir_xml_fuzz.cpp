// libFuzzer target: the FHIR XML reader, and the writers and validator on
// whatever it accepts.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "engine/fhir/codec.h"
#include "engine/fhir/validator.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace courier::fhir;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ParseResult parsed = parse_xml(text);
  if (!parsed.ok()) return 0;
  validate(*parsed.resource);
  const std::string json = write_json(*parsed.resource);
  const ParseResult again = parse_json(json);
  if (!again.ok() || write_json(*again.resource) != json)
    throw std::logic_error("XML -> JSON -> JSON changed");
  return 0;
}
