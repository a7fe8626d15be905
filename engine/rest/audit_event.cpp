#include "engine/rest/audit_event.h"

#include <string>

namespace courier::rest {

namespace {

constexpr const char* kPeerSystem = "http://courier.example/fhir/peers";

void add_coding(fhir::Element& coding, const char* system, std::string code, const char* display = nullptr) {
  coding.add_value("system", system);
  coding.add_value("code", std::move(code));
  if (display != nullptr) coding.add_value("display", display);
}

void add_event_type(fhir::Element& event, AuditEntry::Kind kind, std::string_view subtype) {
  fhir::Element& type = event.add("type");
  if (kind == AuditEntry::Kind::rest)
    return add_coding(type, "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest",
                      "RESTful Operation");
  if (kind == AuditEntry::Kind::operator_)
    return add_coding(type, "http://dicom.nema.org/resources/ontology/DCM", "110100", "Application Activity");
  // A message coming in is an import; one going out, an export.
  const bool outgoing = subtype == "delivered" || subtype == "parked" || subtype == "retry" ||
                        subtype == "relayed" || subtype == "failed";
  add_coding(type, "http://dicom.nema.org/resources/ontology/DCM", outgoing ? "110106" : "110107",
             outgoing ? "Export" : "Import");
}

void add_agent(fhir::Element& event, const AuditEntry& e) {
  fhir::Element& agent = event.add("agent");
  fhir::Element& who = agent.add("who");
  fhir::Element& identifier = who.add("identifier");
  identifier.add_value("system", kPeerSystem);
  identifier.add_value("value", e.agent);
  who.add_value("display", e.agent);
  agent.add_value("altId", e.agent);
  agent.add_value("name", e.agent);
  agent.add_value("requestor", e.by_courier ? "false" : "true");
  if (!e.authenticated_by.empty())
    agent.add_value("policy", "urn:courier:authenticated-by:" + e.authenticated_by);
  if (!e.address.empty()) {
    fhir::Element& network = agent.add("network");
    network.add_value("address", e.address);
    network.add_value("type", "2");  // 2: IP address
  }
}

}  // namespace

fhir::Element audit_event(const AuditEntry& e) {
  fhir::Element event = fhir::Element::resource("AuditEvent");
  event.add_value("id", std::to_string(e.id));
  add_event_type(event, e.kind, e.subtype);
  add_coding(event.add("subtype"), kAuditSubtypeSystem, e.subtype);
  event.add_value("action", std::string(1, e.action));
  event.add_value("recorded", store::iso_time(e.at));
  event.add_value("outcome", std::to_string(e.outcome));
  if (!e.outcome_text.empty()) event.add_value("outcomeDesc", e.outcome_text);
  add_agent(event, e);
  fhir::Element& source = event.add("source");
  source.add_value("site", e.listener.empty() ? "courier" : "courier listener " + e.listener);
  source.add("observer").add_value("display", "courier");
  add_coding(source.add("type"), "http://terminology.hl7.org/CodeSystem/security-source-type", "4",
             "Application Server");
  for (const std::string& reference : e.entities)
    event.add("entity").add("what").add_value("reference", reference);
  if (!e.message_id.empty()) {
    fhir::Element& entity = event.add("entity");
    fhir::Element& identifier = entity.add("what").add("identifier");
    identifier.add_value("system", "urn:ietf:rfc:3986");
    identifier.add_value("value", e.message_id);
    add_coding(entity.add("type"), "http://hl7.org/fhir/resource-types", "Bundle");
  }
  return event;
}

}  // namespace courier::rest
