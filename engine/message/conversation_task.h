// The Task that mirrors a conversation in courier's FHIR store, so that
// "what is the status of this order" is a FHIR search:
// GET [base]/Task?focus=ServiceRequest/123, ?based-on=…, ?identifier=…
// (the order's own identifier, or the conversation number).
#pragma once

#include <string>
#include <vector>

#include "engine/fhir/element.h"
#include "engine/message/message_info.h"
#include "engine/store/store.h"

namespace courier::message {

// The identifier system of the conversation number on courier's Tasks.
inline constexpr std::string_view conversation_system = "urn:courier:conversation";

// "conversation-42": the id of conversation 42's Task.
std::string task_id(store::Id conversation);
// The conversation a Task id names, or 0 when it names none.
store::Id conversation_of_task(std::string_view task_id);

struct TaskFacts {
  store::Id conversation = 0;
  const MessageInfo* request = nullptr;  // the placer's message
  store::Millis received_at = 0;
  std::string state;                 // the conversation's state, which is a Task.status
  std::string business_status;       // the latest step, for people
  std::vector<std::string> outputs;  // references to what fillers reported ("DiagnosticReport/7")
};

// The Task as it stands: status, businessStatus, focus and basedOn (the
// message's focus resources), identifiers, code (the event), authoredOn,
// lastModified (now), input (the message) and output (the reports).
fhir::Element conversation_task(const TaskFacts& facts);

}  // namespace courier::message
