#include "engine/message/response_builder.h"

#include <algorithm>
#include <cstdio>

#include "engine/fhir/bundle_index.h"
#include "engine/fhir/operation_outcome.h"
#include "engine/store/store.h"
#include "engine/util/uuid.h"

namespace courier::message {

std::string instant_now() {
  return store::iso_time(store::now_millis());
}

fhir::Element build_response(const MessageInfo& request, const ResponseSpec& spec) {
  fhir::Element bundle = fhir::Element::resource("Bundle");
  bundle.add_value("id", util::random_uuid());
  bundle.add_value("type", "message");
  bundle.add_value("timestamp", instant_now());

  const std::string header_url = "urn:uuid:" + util::random_uuid();
  const std::string outcome_url = "urn:uuid:" + util::random_uuid();
  fhir::Element& header_entry = bundle.add("entry");
  header_entry.add_value("fullUrl", header_url);
  fhir::Element& header = header_entry.add("resource", "MessageHeader");
  header.add_value("id", header_url.substr(9));
  if (request.event_system.empty() && request.event_code.find(':') != std::string::npos) {
    header.add_value("event", request.event_code, "uri");
  } else {
    fhir::Element& event = header.add("event", "Coding");
    if (!request.event_system.empty()) event.add_value("system", request.event_system);
    event.add_value("code", request.event_code);
  }
  if (!request.source_endpoint.empty())
    header.add("destination").add_value("endpoint", request.source_endpoint);
  fhir::Element& source = header.add("source");
  source.add_value("name", "courier");
  source.add_value("software", "courier");
  source.add_value("endpoint", spec.source_endpoint.empty() ? "urn:courier" : spec.source_endpoint);
  std::vector<std::string> focus_urls;
  for (const auto& [full_url, resource] : spec.focus) {
    focus_urls.push_back(full_url.empty() ? "urn:uuid:" + util::random_uuid() : full_url);
    header.add("focus").add_value("reference", focus_urls.back());
  }
  fhir::Element& response = header.add("response");
  response.add_value("identifier", request.header_id);
  response.add_value("code", spec.code);
  if (!spec.issues.empty()) response.add("details").add_value("reference", outcome_url);
  header.sort_children();  // focus belongs after response
  // Entries last: adding one moves the header's entry.
  if (!spec.issues.empty()) {
    fhir::Element& outcome_entry = bundle.add("entry");
    outcome_entry.add_value("fullUrl", outcome_url);
    fhir::Element outcome = fhir::to_operation_outcome(spec.issues);
    fhir::Element& slot = outcome_entry.add("resource", "OperationOutcome");
    slot.add_value("id", outcome_url.substr(9));
    for (fhir::Element& child : outcome.children()) {
      if (child.name() != "id") slot.children().push_back(std::move(child));
    }
  }
  for (std::size_t i = 0; i < spec.focus.size(); ++i) {
    fhir::Element& entry = bundle.add("entry");
    entry.add_value("fullUrl", focus_urls[i]);
    const fhir::Element& resource = spec.focus[i].second;
    entry.add("resource", resource.type().name).children() = resource.children();
  }
  return bundle;
}

fhir::Element build_cancellation(const fhir::Element& request, const std::string& source_endpoint,
                                 const fhir::Element* task, const std::string& task_url) {
  fhir::Element bundle = request;
  const std::string header_id = util::random_uuid();
  // A message of its own: new identity, whichever kind the request had.
  bundle.child_or_add("id").set_value(util::random_uuid());
  if (fhir::Element* identifier = bundle.child("identifier"))
    if (fhir::Element* value = identifier->child("value")) value->set_value(util::random_uuid());
  if (fhir::Element* timestamp = bundle.child("timestamp")) timestamp->set_value(instant_now());
  fhir::Element* first = bundle.child("entry");
  fhir::Element* header = first != nullptr ? first->child("resource") : nullptr;
  if (header == nullptr) return bundle;
  std::vector<std::string> focus;
  for (const fhir::Element* reference : header->children_named("focus"))
    focus.emplace_back(reference->child_value("reference"));
  if (fhir::Element* id = header->child("id")) id->set_value(header_id);
  if (fhir::Element* url = first->child("fullUrl"); url != nullptr && url->value().starts_with("urn:uuid:"))
    url->set_value("urn:uuid:" + header_id);
  header->child_or_add("source").child_or_add("endpoint").set_value(source_endpoint);
  // Requests (ServiceRequest, MedicationRequest, …) say "withdrawn" with status revoked.
  const fhir::BundleIndex index(bundle);
  const std::string from(first->child_value("fullUrl"));
  std::vector<const fhir::Element*> targets;
  for (const std::string& reference : focus) targets.push_back(index.resolve(reference, from));
  for (fhir::Element& entry : bundle.children()) {
    fhir::Element* resource = entry.name() == "entry" ? entry.child("resource") : nullptr;
    if (resource == nullptr || std::find(targets.begin(), targets.end(), resource) == targets.end()) continue;
    fhir::Element* status = resource->child("status");
    if (status != nullptr &&
        (status->value() == "active" || status->value() == "draft" || status->value() == "on-hold"))
      status->set_value("revoked");
  }
  if (task != nullptr) {
    header = bundle.child("entry")->child("resource");
    header->add("focus").add_value("reference", task_url);
    header->sort_children();
    fhir::Element& entry = bundle.add("entry");  // moves the header: not used after this
    entry.add_value("fullUrl", task_url);
    entry.add("resource", "Task").children() = task->children();
  }
  return bundle;
}

fhir::Element build_trigger_message(const fhir::Element& resource, const TriggerSpec& spec) {
  const std::string& type = resource.type().name;
  const std::string id(resource.child_value("id"));
  const std::string written = spec.route + "|" + type + "/" + id + "/_history/" + spec.version;
  fhir::Element bundle = fhir::Element::resource("Bundle");
  bundle.add_value("id", "trigger-" + util::stable_hash_hex("bundle " + written));
  bundle.add_value("type", "message");
  bundle.add_value("timestamp", instant_now());
  const std::string header_id = "trigger-" + util::stable_hash_hex("header " + written);
  const std::string focus_url = spec.base_url + "/" + type + "/" + id;
  fhir::Element& header_entry = bundle.add("entry");
  header_entry.add_value("fullUrl", spec.base_url + "/MessageHeader/" + header_id);
  fhir::Element& header = header_entry.add("resource", "MessageHeader");
  header.add_value("id", header_id);
  fhir::Element& event = header.add("event", "Coding");
  event.add_value("system", spec.event_system);
  event.add_value("code", spec.event_code);
  fhir::Element& source = header.add("source");
  source.add_value("name", "courier REST trigger " + spec.route);
  source.add_value("software", "courier");
  source.add_value("endpoint", "urn:courier:trigger:" + spec.route);
  header.add("focus").add_value("reference", focus_url);
  header.sort_children();
  fhir::Element& entry = bundle.add("entry");
  entry.add_value("fullUrl", focus_url);
  entry.add("resource", type).children() = resource.children();
  return bundle;
}

}  // namespace courier::message
