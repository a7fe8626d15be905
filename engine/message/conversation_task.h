// The Task that stands for a conversation in courier's FHIR store, so that
// "what is the status of this order" is a FHIR search:
// GET [base]/Task?focus=ServiceRequest/123, ?based-on=…, ?identifier=…
// (the order's own identifier, or the conversation number).
//
// It is not stored as a resource: what it says of the request is fixed when
// the message arrives (the outline, kept with the conversation), and each
// step of the conversation that changes its state or brings a report makes
// a new version of it (see store::Event), read back from those rows.
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

// What never changes: identifiers, focus and basedOn (the requests among
// the message's focus resources), intent, code (the event), authoredOn,
// requester, input (the message). What it is searched by comes from this,
// and from task_number_index.
fhir::Element task_outline(const MessageInfo& request, store::Millis received_at);
// The index row of the conversation number, which the outline lacks: it is
// made before the conversation has one.
store::IndexEntry task_number_index(store::Id conversation);

// One version of the Task: the outline with the state it had then.
struct TaskState {
  std::int64_t version = 1;
  store::Millis at = 0;              // lastModified and meta.lastUpdated
  std::string status;                // the conversation's state, which is a Task.status
  std::string business_status;       // the step that led there, for people
  std::vector<std::string> outputs;  // what fillers reported so far ("DiagnosticReport/7")
};
// The first version, as the conversation was received.
TaskState task_received(store::Millis at, std::string_view listener, std::string_view route);
// The outline with the conversation's id and number, and the state it had.
fhir::Element task_version(fhir::Element outline, store::Id conversation, const TaskState& state);

}  // namespace courier::message
