#include "engine/message/conversation_task.h"

#include <algorithm>
#include <charconv>

namespace courier::message {

std::string task_id(store::Id conversation) {
  return "conversation-" + std::to_string(conversation);
}

store::Id conversation_of_task(std::string_view id) {
  constexpr std::string_view prefix = "conversation-";
  if (!id.starts_with(prefix)) return 0;
  id.remove_prefix(prefix.size());
  store::Id number = 0;
  const auto [end, error] = std::from_chars(id.data(), id.data() + id.size(), number);
  return error == std::errc() && end == id.data() + id.size() ? number : 0;
}

namespace {

// What correlation keys name: references ("ref Type/id" or an absolute
// URL) and identifiers ("identifier system|value").
void named_by(const std::vector<std::string>& keys, std::vector<std::string>& references,
              std::vector<std::pair<std::string, std::string>>& identifiers) {
  for (const std::string& key : keys) {
    if (key.starts_with("ref ")) {
      references.push_back(key.substr(4));
    } else if (key.starts_with("identifier ")) {
      const std::string text = key.substr(11);
      const std::size_t bar = text.find('|');
      identifiers.emplace_back(text.substr(0, bar), bar == std::string::npos ? "" : text.substr(bar + 1));
    }
  }
}

}  // namespace

fhir::Element task_outline(const MessageInfo& request, store::Millis received_at) {
  // Based on and identified by the requests among the focus resources (an
  // order's ServiceRequest), not by everything an event message carries (a
  // Patient, their Observations): FHIR's Task.basedOn names requests.
  std::vector<std::string> references;
  std::vector<std::pair<std::string, std::string>> identifiers;
  named_by(request.request_keys, references, identifiers);

  fhir::Element task = fhir::Element::resource("Task");
  for (const auto& [system, value] : identifiers) {
    fhir::Element& identifier = task.add("identifier");
    if (!system.empty()) identifier.add_value("system", system);
    identifier.add_value("value", value);
  }
  for (const std::string& reference : references) task.add("basedOn").add_value("reference", reference);
  task.add_value("intent", "order");
  fhir::Element& code = task.add("code");
  if (!request.event_system.empty()) {
    fhir::Element& coding = code.add("coding");
    coding.add_value("system", request.event_system);
    coding.add_value("code", request.event_code);
  }
  code.add_value("text", "message event " + request.event());
  // What the Task is about: the request, else the message's first focus resource.
  const auto first_focus = std::find_if(request.focus_keys.begin(), request.focus_keys.end(),
                                        [](const std::string& key) { return key.starts_with("ref "); });
  if (!references.empty())
    task.add("focus").add_value("reference", references.front());
  else if (first_focus != request.focus_keys.end())
    task.add("focus").add_value("reference", first_focus->substr(4));
  task.add_value("authoredOn", store::iso_time(received_at));
  if (!request.source_endpoint.empty()) {
    fhir::Element& requester = task.add("requester");
    fhir::Element& identifier = requester.add("identifier");
    identifier.add_value("system", "urn:ietf:rfc:3986");
    identifier.add_value("value", request.source_endpoint);
  }
  fhir::Element& input = task.add("input");
  input.add("type").add_value("text", "request message (Bundle.id)");
  input.add_value("value", request.bundle_id.empty() ? request.bundle_identifier : request.bundle_id,
                  "string");
  task.sort_children();
  return task;
}

store::IndexEntry task_number_index(store::Id conversation) {
  return store::IndexEntry{"identifier", std::string(conversation_system), std::to_string(conversation)};
}

TaskState task_received(store::Millis at, std::string_view listener, std::string_view route) {
  TaskState state;
  state.at = at;
  state.status = "received";
  state.business_status = "received from listener " + std::string(listener) + ", route " + std::string(route);
  return state;
}

fhir::Element task_version(fhir::Element task, store::Id conversation, const TaskState& state) {
  // An outline kept from a stored Task (an older courier's) has them already.
  std::erase_if(task.children(), [](const fhir::Element& e) {
    return e.name() == "id" || (e.name() == "identifier" && e.child_value("system") == conversation_system);
  });
  task.add_value("id", task_id(conversation));
  fhir::Element& number = task.add("identifier");
  number.add_value("system", std::string(conversation_system));
  number.add_value("value", std::to_string(conversation));
  // The conversation number first, before the request's identifiers.
  std::vector<fhir::Element>& children = task.children();
  std::rotate(std::find_if(children.begin(), children.end(),
                           [](const fhir::Element& e) { return e.name() == "identifier"; }),
              children.end() - 1, children.end());
  task.add_value("status", state.status);
  if (!state.business_status.empty()) task.add("businessStatus").add_value("text", state.business_status);
  task.add_value("lastModified", store::iso_time(state.at));
  for (const std::string& reference : state.outputs) {
    fhir::Element& output = task.add("output");
    output.add("type").add_value("text", "report");
    output.add("value", "Reference").add_value("reference", reference);
  }
  task.sort_children();
  return task;
}

}  // namespace courier::message
