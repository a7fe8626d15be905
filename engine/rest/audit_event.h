// The AuditEvent an audit trail entry is read as. Events carry identifiers
// and outcomes, never message content.
#pragma once

#include "engine/fhir/element.h"
#include "engine/rest/resource_store.h"

namespace courier::rest {

// The system of AuditEvent.subtype's codes (received, delivered, read, ...).
inline constexpr const char* kAuditSubtypeSystem = "http://courier.example/fhir/CodeSystem/audit-subtype";

// The AuditEvent resource for an entry, with its id (the entry's number);
// the store adds meta.
fhir::Element audit_event(const AuditEntry& entry);

}  // namespace courier::rest
