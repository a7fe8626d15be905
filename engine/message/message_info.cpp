#include "engine/message/message_info.h"

#include <algorithm>

#include "engine/fhir/bundle_index.h"

namespace courier::message {

namespace {

constexpr std::string_view response_request_url =
    "http://hl7.org/fhir/StructureDefinition/messageheader-response-request";

void add_error(fhir::Issues& issues, std::string code, std::string diagnostics, std::string expression) {
  issues.push_back(fhir::Issue{fhir::Severity::error, std::move(code), std::move(diagnostics),
                               std::move(expression), std::nullopt});
}

ResponseRequest read_response_request(const fhir::Element& header) {
  for (const fhir::Element* extension : header.children_named("extension")) {
    if (extension->child_value("url") != response_request_url) continue;
    const std::string_view code = extension->child_value("value");
    if (code == "never") return ResponseRequest::never;
    if (code == "on-error") return ResponseRequest::on_error;
    if (code == "on-success") return ResponseRequest::on_success;
  }
  return ResponseRequest::always;
}

std::string identifier_key(const fhir::Element& identifier) {
  const std::string_view value = identifier.child_value("value");
  return value.empty()
             ? std::string()
             : "identifier " + std::string(identifier.child_value("system")) + "|" + std::string(value);
}

void add_unique(std::vector<std::string>& keys, std::string key) {
  if (!key.empty() && std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
}

// The R4 resources that follow FHIR's Request pattern: asking for something
// to be done, which a Task can be based on.
bool is_request(std::string_view type) {
  static constexpr std::string_view requests[] = {
      "Appointment",          "CarePlan",          "Claim",
      "CommunicationRequest", "Contract",          "CoverageEligibilityRequest",
      "DeviceRequest",        "EnrollmentRequest", "ImmunizationRecommendation",
      "MedicationRequest",    "NutritionOrder",    "RequestGroup",
      "ServiceRequest",       "SupplyRequest",     "Task",
      "VisionPrescription"};
  return std::find(std::begin(requests), std::end(requests), type) != std::end(requests);
}

// What names a focus resource (an absolute fullUrl, Type/id, identifiers),
// and what its basedOn points at (the reference as written, or the
// identifier).
void add_correlation_keys(const fhir::BundleIndex& index, const fhir::Element& resource, MessageInfo& info) {
  std::vector<std::string> keys;
  // A urn:uuid fullUrl names the resource only inside this Bundle: nothing
  // outside it can refer to it, so it is no key (and each key is a row
  // written for every message).
  for (const auto& entry : index.entries())
    if (entry.resource == &resource && !entry.full_url.empty() && !entry.full_url.starts_with("urn:"))
      add_unique(keys, "ref " + std::string(entry.full_url));
  if (const std::string_view id = resource.child_value("id"); !id.empty())
    add_unique(keys, "ref " + resource.type().name + "/" + std::string(id));
  for (const fhir::Element* identifier : resource.children_named("identifier"))
    add_unique(keys, identifier_key(*identifier));
  const bool request = is_request(resource.type().name);
  for (std::string& key : keys) {
    if (request) add_unique(info.request_keys, key);
    add_unique(info.focus_keys, std::move(key));
  }
  for (std::string& key : based_on_keys(resource)) add_unique(info.based_on, std::move(key));
}

}  // namespace

std::vector<std::string> based_on_keys(const fhir::Element& resource) {
  std::vector<std::string> keys;
  for (const fhir::Element* based_on : resource.children_named("basedOn")) {
    if (const std::string_view reference = based_on->child_value("reference"); !reference.empty())
      add_unique(keys, "ref " + std::string(reference));
    if (const fhir::Element* identifier = based_on->child("identifier"))
      add_unique(keys, identifier_key(*identifier));
  }
  return keys;
}

std::optional<MessageInfo> read_message_info(const fhir::Element& bundle, fhir::Issues& issues) {
  if (bundle.type().name != "Bundle") {
    add_error(issues, "structure", "a message must be a Bundle of type message, not a " + bundle.type().name,
              bundle.type().name);
    return std::nullopt;
  }
  if (bundle.child_value("type") != "message") {
    add_error(issues, "structure",
              "a message must be a Bundle of type message, not of type '" +
                  std::string(bundle.child_value("type")) + "'",
              "Bundle.type");
    return std::nullopt;
  }
  const fhir::Element* first = bundle.child("entry");
  const fhir::Element* header = first != nullptr ? first->child("resource") : nullptr;
  if (header == nullptr || header->type().name != "MessageHeader") {
    add_error(issues, "structure", "the first entry of a message must be its MessageHeader (bdl-12)",
              "Bundle.entry[0].resource");
    return std::nullopt;
  }
  MessageInfo info;
  info.bundle_id = bundle.child_value("id");
  info.header_id = header->child_value("id");
  if (const fhir::Element* identifier = bundle.child("identifier")) {
    const std::string_view system = identifier->child_value("system");
    const std::string_view value = identifier->child_value("value");
    if (!value.empty())
      info.bundle_identifier = system.empty() ? std::string(value) : std::string(system) + "|" += value;
  }
  if (info.header_id.empty() && info.bundle_identifier.empty()) {
    add_error(issues, "required", "the MessageHeader needs an id: it is the message's identity",
              "Bundle.entry[0].resource.id");
  }
  if (info.bundle_id.empty() && info.bundle_identifier.empty()) {
    add_error(issues, "required",
              "a message Bundle needs an id (or an identifier): it is the message's identity", "Bundle.id");
  }
  if (const fhir::Element* event = header->child("event")) {
    if (event->type().name == "Coding") {
      info.event_system = event->child_value("system");
      info.event_code = event->child_value("code");
    } else {
      info.event_code = event->value();
    }
  }
  if (info.event_code.empty()) {
    add_error(issues, "required", "the MessageHeader names no event (eventCoding.code or eventUri)",
              "Bundle.entry[0].resource.event");
  }
  if (fhir::has_errors(issues)) return std::nullopt;

  if (const fhir::Element* source = header->child("source"))
    info.source_endpoint = source->child_value("endpoint");
  if (const fhir::Element* sender = header->child("sender")) info.sender = sender->child_value("reference");
  for (const fhir::Element* destination : header->children_named("destination")) {
    info.destinations.emplace_back(destination->child_value("endpoint"));
  }
  const std::vector<const fhir::Element*> focus = header->children_named("focus");
  if (!focus.empty()) {
    const fhir::BundleIndex index(bundle);
    const std::string_view from = first->child_value("fullUrl");
    for (const fhir::Element* reference : focus) {
      const std::string_view target = reference->child_value("reference");
      if (const fhir::Element* resource = index.resolve(target, from)) {
        info.focus_types.push_back(resource->type().name);
        add_correlation_keys(index, *resource, info);
      } else if (const std::string_view type = fhir::reference_type_and_id(target).first; !type.empty()) {
        info.focus_types.emplace_back(type);
      } else if (const std::string_view type = reference->child_value("type"); !type.empty()) {
        info.focus_types.emplace_back(type);
      }
    }
  }
  if (const fhir::Element* response = header->child("response")) {
    info.response = ResponseInfo{std::string(response->child_value("identifier")),
                                 std::string(response->child_value("code"))};
  }
  info.response_request = read_response_request(*header);
  return info;
}

}  // namespace courier::message
