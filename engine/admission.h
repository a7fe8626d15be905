// The first part of taking a message, with no side effects: parse, validate,
// read the message facts, choose the route and compute the ordering keys.
// The engine runs it for every message; `courier test` runs it for route
// test cases, so both decide the same way.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/fhir/codec.h"
#include "engine/message/message_info.h"
#include "engine/route/route.h"
#include "engine/security/peer.h"

namespace courier {

// A message as a listener received it.
struct Inbound {
  std::string listener;
  std::string body;
  std::optional<fhir::Format> format;  // from the content type; detected when absent
  bool async = false;                  // the sender asked for an asynchronous response
  std::string response_url;            // where that response goes, when not source.endpoint
  // A message courier made itself for a route's REST trigger: it takes
  // that route, by name, rather than the first that matches.
  std::string trigger_route;
  // Who sent it, when the listener authenticates its peers; null for
  // courier's own messages and listeners that do not.
  std::shared_ptr<const security::Peer> peer;
  std::string peer_address;  // the sender's IP address, for the audit trail
  // For a message converted from HL7 v2: the sender it claims, MSH-3^MSH-4.
  std::string claimed_v2_sender;
  // Business identifiers the listener knows beyond the FHIR message's (an
  // HL7 v2 message's MSH-10), for operators to search by.
  std::vector<std::string> search_keys = {};
  // The message as it arrived when the listener converted it (HL7 v2),
  // kept in the conversation's timeline for operators.
  std::string original = {};
};

// The engine's answer, in HTTP's terms (other listeners map it to theirs).
struct Reply {
  int status = 200;
  std::string body;  // a FHIR resource (a message or an OperationOutcome), or empty
  fhir::Format format = fhir::Format::json;
};

struct Admission {
  fhir::Format format = fhir::Format::json;
  // Set when the message goes no further: the answer, and the outcome
  // label for metrics ("rejected", "no-route").
  std::optional<Reply> rejection;
  std::string outcome;
  std::optional<fhir::Element> bundle;
  message::MessageInfo info;
  const route::Route* route = nullptr;  // null for a response message (info.response)
  // No route takes it, but its focus resources point with basedOn at other
  // requests: it is a progress message when courier carried one of them.
  bool may_be_progress = false;
  std::vector<std::string> order_keys;  // one per destination of the route
};

Admission admit(const Inbound& message, const route::RouteSet& routes, const fhir::ParseLimits& limits);

// What the placer is told first about a message that was stored.
enum class FirstAnswer {
  accepted,          // 202 now: it asked for an asynchronous response
  no_content,        // 204 now: it asked for no response
  courier_response,  // 200 now, with courier's own "ok": no destination answers for itself
  filler_response    // 200 with the filler's response when it comes (202 if not in time)
};
FirstAnswer first_answer(const route::Route& route, const message::MessageInfo& info, bool async);

}  // namespace courier
