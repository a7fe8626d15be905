// The response messages courier writes itself: when it answers for a
// destination that gives no response of its own (a file), when a delivery
// fails for good, and when a filler never answered.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/fhir/element.h"
#include "engine/fhir/issue.h"
#include "engine/message/message_info.h"

namespace courier::message {

struct ResponseSpec {
  std::string code;             // ok | transient-error | fatal-error
  fhir::Issues issues;          // become an OperationOutcome in response.details
  std::string source_endpoint;  // courier's own endpoint
  // Resources the response carries as its focus (a filler's report), each
  // with the URL it has on courier's FHIR base as fullUrl when known.
  std::vector<std::pair<std::string, fhir::Element>> focus = {};
};

// A message Bundle answering `request`: same event, response.identifier =
// the request's MessageHeader.id, addressed back to the request's source.
fhir::Element build_response(const MessageInfo& request, const ResponseSpec& spec);

// The placer's request withdrawn, for a filler that has it: a copy of the
// message with new ids, its focus requests' status `revoked`, and courier as
// its source (so that the filler's answer comes to courier).
fhir::Element build_cancellation(const fhir::Element& request, const std::string& source_endpoint);

// The current time as a FHIR instant in UTC, with milliseconds.
std::string instant_now();

}  // namespace courier::message
