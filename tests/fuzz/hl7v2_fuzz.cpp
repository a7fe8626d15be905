// libFuzzer target: an HL7 v2 message or batch as a peer sends it. It must
// parse or give a reason; what parses must write back and convert to FHIR
// by the shipped maps (or say why not); its ACK, and the ACK of what does
// not parse, must be readable v2 again. Never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/hl7v2/ack.h"
#include "engine/hl7v2/maps.h"
#include "engine/hl7v2/message.h"
#include "engine/hl7v2/to_fhir.h"

namespace {

const courier::hl7v2::MapSet& maps() {
  static const courier::hl7v2::MapSet set =
      courier::hl7v2::MapSet::load(std::string(COURIER_SOURCE_DIR) + "/schemas/hl7v2/maps");
  return set;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace courier::hl7v2;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseError error;
  std::size_t total = 0;
  if (is_batch(text)) {
    if (const auto batch = parse_batch(text, error)) total += write_batch(*batch).size();
    return total == static_cast<std::size_t>(-1) ? 1 : 0;
  }
  const std::optional<Message> message = Message::parse(text, error);
  const Ack nak{AckCode::reject, false, error.reason, &error};
  if (!message) {
    const std::string ack = write_ack(ack_facts_of_unreadable(text), nak, "ACK", "20240101");
    ParseError ack_error;
    if (!Message::parse(ack, ack_error)) __builtin_trap();  // courier's own ACK must read back
    return 0;
  }
  total += message->write().size();
  for (const Segment& segment : message->segments()) {
    for (std::size_t field = 1; field <= segment.field_count(); ++field) {
      total += message->value(segment, field, 1, 0, 0).size() + message->repetitions(segment, field);
    }
  }
  ConvertError convert_error;
  if (const auto bundle = to_fhir(*message, maps(), ConvertOptions{"Z"}, convert_error))
    total += bundle->size();
  const std::string ack = write_ack(ack_facts(*message), Ack{}, "ACK", "20240101");
  ParseError ack_error;
  if (!Message::parse(ack, ack_error)) __builtin_trap();
  return total == static_cast<std::size_t>(-1) ? 1 : 0;
}
