// FHIR → HL7 v2 for legacy receivers: a FHIR message whose focus is a
// DiagnosticReport with its Observations becomes an ORU^R01 (PID, OBR, one
// OBX per result). Written in code rather than maps: the IG's tables only
// go the other way.
#pragma once

#include <optional>
#include <string>

#include "engine/hl7v2/maps.h"

namespace courier::hl7v2 {

struct Oru {
  std::string text;        // segments ended with CR
  std::string control_id;  // its MSH-10, which the receiver's ACK echoes
};

// The v2 message, or why the message has no v2 form. `maps` gives the
// coding system names (table 0396) back from URIs.
std::optional<Oru> oru_from_fhir(const std::string& bundle_json, const MapSet* maps, std::string& error);

// "2024-01-31T14:00:00+01:00" → "20240131140000+0100"; "1961-06-15" → "19610615".
std::string v2_time(std::string_view fhir);

}  // namespace courier::hl7v2
