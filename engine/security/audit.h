// The audit trail: every access and every step of a message's life,
// kept by the store and read as FHIR AuditEvents (rest/audit_event.h),
// searchable by date, agent, entity, subtype and outcome. Records carry
// identifiers and outcomes, never message content.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "engine/rest/resource_store.h"
#include "engine/security/peer.h"

namespace courier::security {

// What a caller records; kept as a rest::AuditEntry (audit_entry below).
struct AuditRecord {
  using Kind = rest::AuditEntry::Kind;
  Kind kind = Kind::message;
  std::string subtype;  // received, delivered, parked, refused, read, search, create, unauthenticated, ...
  char action = 'E';    // C R U D E, as AuditEvent.action
  int outcome = 0;      // 0 success, 4 minor failure (refused), 8 serious failure
  std::string outcome_text;          // why, for failures: no patient data
  std::shared_ptr<const Peer> peer;  // null: an unauthenticated peer, or courier itself
  bool by_courier = false;           // courier acting on its own (a delivery, a relay)
  std::string address;               // the peer's IP address, when known
  std::string listener;
  std::vector<std::string> entities;  // references: "Task/conversation-7", "Patient/123"
  std::string message_id;             // the message's Bundle.id, when there is one
  store::Millis at = 0;               // 0: now
};

// The entry the store keeps for a record: the agent named ("courier" for
// courier's own steps, "anonymous" for an unauthenticated peer).
rest::AuditEntry audit_entry(const AuditRecord& record);

// Gathers records from any thread and writes them a moment later as the
// store's background writes, many per commit, behind the acknowledgments.
class AuditTrail {
 public:
  AuditTrail(boost::asio::any_io_executor executor, rest::ResourceStore& store);
  ~AuditTrail();
  void record(AuditRecord record);
  // Writes what is pending now (before the store closes); later records
  // are dropped.
  void stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace courier::security
