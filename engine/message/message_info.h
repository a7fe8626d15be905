// The facts of a FHIR message Bundle that routing, deduplication and
// correlation need, read once from the parsed Bundle.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/fhir/element.h"
#include "engine/fhir/issue.h"

namespace courier::message {

// MessageHeader.response: this message answers another.
struct ResponseInfo {
  std::string identifier;  // the MessageHeader.id (R4) or Bundle.identifier value (R5) answered
  std::string code;        // ok | transient-error | fatal-error
};

// The extension messageheader-response-request: when a response is wanted.
enum class ResponseRequest { always, on_error, never, on_success };

struct MessageInfo {
  std::string bundle_id;
  std::string header_id;
  std::string bundle_identifier;  // R5 identity: Bundle.identifier.system|value, "" when absent
  std::string event_system;       // eventCoding.system; "" for eventUri
  std::string event_code;         // eventCoding.code or eventUri
  std::string source_endpoint;
  std::string sender;                     // sender.reference
  std::vector<std::string> destinations;  // destination.endpoint, in order
  std::vector<std::string> focus_types;   // resource types of the focus, resolved in the Bundle
  // Correlation keys ("ref Type/id", "ref FULLURL", "identifier SYSTEM|VALUE"):
  // what names the focus resources of this message (what a status query
  // asks about), and what their basedOn points at.
  std::vector<std::string> focus_keys;
  // The focus_keys of the focus resources that are requests (FHIR's Request
  // pattern: ServiceRequest, MedicationRequest, …): what the conversation's
  // Task is based on and identified by, and what is kept so that a later
  // message whose based_on meets them reports progress on this request.
  std::vector<std::string> request_keys;
  std::vector<std::string> based_on;
  std::optional<ResponseInfo> response;
  ResponseRequest response_request = ResponseRequest::always;

  // "system|code", or the code alone when there is no system.
  std::string event() const { return event_system.empty() ? event_code : event_system + "|" + event_code; }
};

// Reads the facts from a message Bundle. Problems that make it unusable as
// a message (not a Bundle of type message, no MessageHeader first, no id,
// no event) come back as error issues and no value.
std::optional<MessageInfo> read_message_info(const fhir::Element& bundle, fhir::Issues& issues);

// The correlation keys of what a resource's basedOn points at.
std::vector<std::string> based_on_keys(const fhir::Element& resource);

}  // namespace courier::message
