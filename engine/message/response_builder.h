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
// its source (so that the filler's answer comes to courier). With `task`
// (a Task asking to cancel, at `task_url`), that Task is a focus too.
fhir::Element build_cancellation(const fhir::Element& request, const std::string& source_endpoint,
                                 const fhir::Element* task = nullptr, const std::string& task_url = {});

// The message a route's REST trigger makes of a resource written to
// courier's FHIR store: the resource as its focus (fullUrl its URL there),
// `source.endpoint` naming the trigger (no placer awaits responses; the
// conversation's Task tells its state). Its ids follow from the route and
// the resource's version, so the same write never makes two messages.
struct TriggerSpec {
  std::string route;
  std::string event_system, event_code;
  std::string base_url;  // courier's FHIR base
  std::string version;   // the resource's versionId
};
fhir::Element build_trigger_message(const fhir::Element& resource, const TriggerSpec& spec);

// The current time as a FHIR instant in UTC, with milliseconds.
std::string instant_now();

}  // namespace courier::message
