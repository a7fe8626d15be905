// libFuzzer target: the FHIR JSON reader, and the writers and validator on
// whatever it accepts. Any input must give issues or a resource, never a
// crash, a hang or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "engine/fhir/codec.h"
#include "engine/fhir/validator.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace courier::fhir;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ParseResult parsed = parse_json(text);
  if (!parsed.ok()) return 0;
  validate(*parsed.resource);
  // What was read must be writable as XML and read back; after one pass
  // (which may respell the narrative's XHTML) the round trip is exact.
  auto through_xml = [](const Element& e) {
    const ParseResult r = parse_xml(write_xml(e));
    if (!r.ok()) throw std::logic_error("our XML did not read back");
    return write_json(*r.resource);
  };
  const std::string once = through_xml(*parsed.resource);
  if (through_xml(*parse_json(once).resource) != once) throw std::logic_error("JSON -> XML -> JSON changed");
  return 0;
}
