// FHIR → HL7 v2 for legacy receivers: a FHIR message whose focus is a
// DiagnosticReport with its Observations becomes an ORU^R01 (PID, OBR, one
// OBX per result), and a FHIR response message becomes the acknowledgment
// of the v2 message it answers. Written in code rather than maps: the IG's
// tables only go the other way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "engine/hl7v2/ack.h"
#include "engine/hl7v2/maps.h"

namespace courier::hl7v2 {

struct Outgoing {
  std::string text;        // segments ended with CR
  std::string control_id;  // its MSH-10, which the receiver's ACK echoes
};

// The v2 message, or why the message has no v2 form. `maps` gives the
// coding system names (table 0396) back from URIs.
std::optional<Outgoing> oru_from_fhir(const std::string& bundle_json, const MapSet* maps, std::string& error);

// What a FHIR response message says, as an acknowledgment code: its
// response.code ok → accept (AA), transient-error → error (AE),
// fatal-error → reject (AR), with a text that quotes no content. nullopt
// when the text is no response message. `decided_at` gets its timestamp.
std::optional<Ack> ack_of_response(std::string_view response_json, std::string& decided_at);

// Enhanced mode's application acknowledgment, a message of its own: the
// answer `response_json` gives to the v2 message whose MSH segment is
// `msh` (MSA-2 its MSH-10, addressed back to its sender), asking for a
// commit ACK. The same answer always gets the same MSH-10, so a receiver
// recognises a resend.
std::optional<Outgoing> application_ack(std::string_view msh, std::string_view response_json,
                                        std::string& error);

// "2024-01-31T14:00:00+01:00" → "20240131140000+0100"; "1961-06-15" → "19610615".
std::string v2_time(std::string_view fhir);

}  // namespace courier::hl7v2
