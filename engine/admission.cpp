#include "engine/admission.h"

#include <algorithm>

#include "engine/fhir/operation_outcome.h"
#include "engine/fhir/validator.h"

namespace courier {

namespace {

Reply issues_reply(int status, fhir::Issues issues, fhir::Format format) {
  return Reply{status, fhir::error_outcome_text(std::move(issues), format), format};
}

std::string order_key(const route::Destination& d, const fhir::Element& bundle,
                      const fhirpath::Environment& environment) {
  if (!d.order_by) return {};
  try {
    const fhirpath::Collection result = d.order_by->evaluate(bundle, environment);
    if (result.empty()) return {};
    const fhirpath::Item& first = result.front();
    if (const auto* element = std::get_if<const fhir::Element*>(&first.value);
        element != nullptr && (*element)->has_value()) {
      return (*element)->value();
    }
    return fhirpath::output_text(first);
  } catch (const fhirpath::Error&) {
    return {};  // no key: the destination's shared queue
  }
}

// Why `peer` may not send as the source this message claims, if it may
// not: MessageHeader.source.endpoint (or, from HL7 v2, MSH-3^MSH-4) must be
// one its configuration lists.
std::optional<std::string> claim_refusal(const security::Peer& peer, const Inbound& in,
                                         const message::MessageInfo& info) {
  auto claims = [](const std::vector<std::string>& allowed, const std::string& claimed) {
    return std::find(allowed.begin(), allowed.end(), claimed) != allowed.end();
  };
  if (!in.claimed_v2_sender.empty()) {
    if (claims(peer.v2_senders, in.claimed_v2_sender)) return std::nullopt;
    // Said without the caret, which an ACK would have to escape.
    const std::size_t caret = in.claimed_v2_sender.find('^');
    return "peer '" + peer.name + "' may not send as application '" + in.claimed_v2_sender.substr(0, caret) +
           "' of facility '" + in.claimed_v2_sender.substr(caret + 1) + "' (MSH-3, MSH-4)";
  }
  if (claims(peer.endpoints, info.source_endpoint)) return std::nullopt;
  return "peer '" + peer.name + "' may not speak for source endpoint '" + info.source_endpoint + "'";
}

// Why the route refuses this sender, if it does: the peer is not on its
// allow list, or claims to be a source it may not speak for.
std::optional<std::string> refusal_of_sender(const Inbound& in, const route::Route& route,
                                             const message::MessageInfo& info) {
  if (!in.trigger_route.empty()) return std::nullopt;  // courier's own message
  const bool checks = !route.allow.empty() || route.require_source_match;
  if (!checks) return std::nullopt;
  if (!in.peer) return "route '" + route.name + "' takes messages only from authenticated peers";
  const security::Peer& peer = *in.peer;
  if (!route.allow.empty() && std::none_of(route.allow.begin(), route.allow.end(),
                                           [&](const std::string& who) { return peer.matches(who); }))
    return "peer '" + peer.name + "' may not send to route '" + route.name + "'";
  if (route.require_source_match) return claim_refusal(peer, in, info);
  return std::nullopt;
}

Reply forbidden_reply(const std::string& why, fhir::Format format) {
  return Reply{403, fhir::outcome_text("forbidden", why + "; the message was not processed", format), format};
}

}  // namespace

Admission admit(const Inbound& in, const route::RouteSet& routes, const fhir::ParseLimits& limits) {
  Admission a;
  a.format = in.format.value_or(fhir::detect_format(in.body).value_or(fhir::Format::json));
  fhir::ParseResult parsed = fhir::parse_valid(in.body, a.format, limits);
  fhir::Issues issues = std::move(parsed.issues);
  if (!parsed.resource || fhir::has_errors(issues)) {
    // Unreadable, or against FHIR's own rules: 400, as FHIR's REST API answers.
    a.rejection = issues_reply(400, std::move(issues), a.format);
    a.outcome = "rejected";
    return a;
  }
  std::optional<message::MessageInfo> info = message::read_message_info(*parsed.resource, issues);
  if (!info) {
    a.rejection = issues_reply(422, std::move(issues), a.format);
    a.outcome = "rejected";
    return a;
  }
  a.info = std::move(*info);
  a.bundle = std::move(parsed.resource);
  // A response or progress message speaks for the filler of someone else's
  // request: an authenticated peer may send one only as itself.
  const bool report = a.info.response || !a.info.based_on.empty();
  std::optional<std::string> false_reporter;
  if (report && in.peer) false_reporter = claim_refusal(*in.peer, in, a.info);
  if (a.info.response) {
    if (false_reporter) {
      a.rejection = forbidden_reply(*false_reporter, a.format);
      a.outcome = "forbidden";
    }
    return a;
  }
  a.route =
      in.trigger_route.empty() ? routes.match(a.info, *a.bundle, in.listener) : routes.find(in.trigger_route);
  if (a.route == nullptr) {
    a.rejection = Reply{422,
                        fhir::outcome_text("not-supported",
                                           "no route takes event '" + a.info.event() + "' from listener '" +
                                               in.listener + "'; the message was not processed",
                                           a.format, "Bundle.entry[0].resource.event"),
                        a.format};
    a.outcome = "no-route";
    a.may_be_progress = !a.info.based_on.empty() && !false_reporter;
    if (false_reporter) {
      a.rejection = forbidden_reply(*false_reporter, a.format);
      a.outcome = "forbidden";
    }
    return a;
  }
  if (std::optional<std::string> why = refusal_of_sender(in, *a.route, a.info)) {
    a.rejection = forbidden_reply(*why, a.format);
    a.outcome = "forbidden";
    return a;
  }
  const fhirpath::Environment environment = routes.environment();
  for (const route::Destination& d : a.route->to)
    a.order_keys.push_back(order_key(d, *a.bundle, environment));
  return a;
}

FirstAnswer first_answer(const route::Route& route, const message::MessageInfo& info, bool async) {
  if (async) return FirstAnswer::accepted;
  if (info.response_request == message::ResponseRequest::never) return FirstAnswer::no_content;
  // Every pattern but file has a receiver whose answer the placer waits for.
  const bool filler_answers = std::any_of(route.to.begin(), route.to.end(), [](const route::Destination& d) {
    return d.pattern != route::Pattern::file;
  });
  return filler_answers ? FirstAnswer::filler_response : FirstAnswer::courier_response;
}

}  // namespace courier
