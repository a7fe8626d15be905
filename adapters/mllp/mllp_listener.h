// The MLLP listener: HL7 v2 messages framed by MLLP, converted to FHIR
// messages by the v2 maps and handed to the engine; each is answered with
// an ACK that says what became of it (AA/AE/AR, or CA in enhanced mode
// once it is durable).
#pragma once

#include "adapters/listener.h"

namespace courier::adapters {

std::unique_ptr<Listener> parse_mllp_listener(std::string name, const YAML::Node& node,
                                              config::YamlReader& reader);

}  // namespace courier::adapters
