// Checks a v2 message's segments against its structure's grammar
// (schemas/hl7v2/maps/structures): every required segment and group is
// there, in order. Lenient where real feeds are untidy: Z-segments and
// segments out of their place are stepped over, not refused.
#pragma once

#include <optional>

#include "engine/hl7v2/maps.h"
#include "engine/hl7v2/message.h"

namespace courier::hl7v2 {

// Why the message does not fit the structure (code 100, with the segment
// expected and where), or nothing when it fits.
std::optional<ParseError> check_structure(const Message& message, const Structure& structure);

}  // namespace courier::hl7v2
