// Routes: which messages go where. Analysts write them in YAML route files
// (docs/routes.md); the engine matches each accepted message against them in
// file order, and the first route that matches takes it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "engine/config/yaml_reader.h"
#include "engine/fhir/element.h"
#include "engine/fhirpath/fhirpath.h"
#include "engine/fhirpath/terminology.h"
#include "engine/message/message_info.h"
#include "engine/rest/resource_store.h"

namespace courier::route {

using Milliseconds = std::chrono::milliseconds;

struct RetryPolicy {
  int attempts = 5;  // deliveries tried in all, the first included
  Milliseconds initial_delay{1000};
  Milliseconds max_delay{300'000};

  // The wait before attempt `attempt` + 1 (attempt counts from 1): doubling
  // from the initial delay up to the maximum, with "full jitter" between
  // half and all of it so that many waiting deliveries do not retry at once.
  Milliseconds delay_after(int attempt, double jitter01) const;
};

// How a destination is reached:
// - messaging: FHIR messaging, POST [endpoint]/$process-message (Option D);
// - file: one file per message in a folder;
// - rest: the focus resources written to a FHIR REST base (Option A);
// - request: the focus request POSTed, tagged actionable, to the filler's
//   FHIR base; the filler reports back with event resources (Option B);
// - queue: the same, written to courier's embedded store for fillers to
//   poll or subscribe to (Option C);
// - operation: a FHIR operation invoked with the focus as its Parameters;
//   its answer is the response (Option E);
// - status: courier answers itself, with the Task of the request the
//   message's focus names (a status query by message).
enum class Pattern { messaging, file, rest, request, queue, operation, status, mllp };
std::string_view to_string(Pattern pattern);
// rest, request, queue and operation: the message becomes a FHIR REST call.
bool is_rest(Pattern pattern);
// request and queue: the conversation goes on after the REST call, until
// the filler's event resources report the request done.
bool awaits_events(Pattern pattern);

// rest: what each focus resource becomes on the FHIR base.
enum class Interaction {
  create,      // POST [base]/Type (If-None-Exist by identifier, when it has one)
  update,      // PUT [base]/Type/id
  upsert,      // PUT [base]/Type?identifier=system|value: conditional update
  merge,       // as upsert, merged into the server's copy (rest/merging_sender.h)
  transaction  // every resource of the message in one transaction Bundle
};

// What a delivery becomes when its retries run out.
enum class OnExhausted { park, fail };

struct Destination {
  std::string name;
  Pattern pattern = Pattern::messaging;
  // messaging, rest, request: the receiver's FHIR base; file: a folder;
  // rest may leave it empty for courier's embedded store.
  std::string endpoint;
  Interaction interaction = Interaction::upsert;  // rest
  std::string operation;                          // operation: its name, "$validate-code"
  std::string target;  // operation: what it is invoked on ("ValueSet", "Patient/1"); "" the base
  bool async = false;  // messaging: ask the filler for an async response
  Milliseconds ack_timeout{30'000};
  RetryPolicy retry;
  std::optional<fhirpath::Expression> order_by;  // FIFO per key value
  // Messages without an ordering key: how many may be in flight at once
  // (1: one at a time, in arrival order).
  int parallel = 1;
  OnExhausted on_exhausted = OnExhausted::park;
  // The response code the placer is told when no response came in time.
  std::string timeout_code = "transient-error";
};

struct Match {
  std::string event;  // "system|code", or "code" (any system); "" matches all
  std::string source;
  std::string destination;
  std::string sender;
  std::string focus;  // a resource type
  std::optional<fhirpath::Expression> expression;
};

// A route that starts from courier's FHIR store instead of a listener:
// every create or update of a resource that matches `criteria` becomes a
// message (event `event`, the resource its focus), routed to `to:`. This is
// how a system that can only POST a ServiceRequest reaches a filler that
// speaks messaging (or any other pattern).
struct RestTrigger {
  std::string criteria;     // a search: "ServiceRequest?_tag=…|actionable&performer=Organization/lab"
  rest::SearchQuery query;  // the criteria, read
  std::string event_system, event_code;
};

struct Route {
  std::string name;
  std::string file;
  int line = 0;
  std::string from;  // a listener name; "" takes messages from every listener
  Match when;
  std::optional<RestTrigger> trigger;  // set: the route takes only the messages its trigger makes
  std::vector<Destination> to;
  // Who may send to this route: peer names and "group:NAME"; empty allows
  // every peer its listener let in.
  std::vector<std::string> allow;
  // The sender must be the authenticated peer: MessageHeader.source.endpoint
  // (or, for HL7 v2, MSH-3^MSH-4) must be one the peer may claim.
  bool require_source_match = false;

  // True when the message satisfies every condition of `when`. The
  // expression runs on the Bundle; FHIRPath execution errors count as no match.
  bool matches(const message::MessageInfo& info, const fhir::Element& bundle, std::string_view listener,
               const fhirpath::Environment& environment = {}) const;
};

struct RouteSet {
  std::vector<Route> routes;
  // The value sets route expressions may use with memberOf(), when loaded.
  std::shared_ptr<const fhirpath::Terminology> terminology;
  fhirpath::Environment environment() const {
    fhirpath::Environment env;
    env.terminology = terminology.get();
    return env;
  }

  const Route* match(const message::MessageInfo& info, const fhir::Element& bundle,
                     std::string_view listener) const;
  const Route* find(std::string_view name) const;
};

// Reads `{attempts, backoff: INITIAL..MAX}` into `retry`; problems go to `yaml`.
void read_retry_policy(config::YamlReader& yaml, const YAML::Node& node, const std::string& where,
                       RetryPolicy& retry);

// Reads a route file: a single route (a mapping with `route:`) or a list of
// them. Every problem is added to `errors` as "file:line:col: message".
// With a terminology, a memberOf() naming a value set it lacks is a problem.
std::vector<Route> load_route_file(const std::string& path, std::vector<std::string>& errors,
                                   const fhirpath::Terminology* terminology = nullptr);

// Loads every file, then checks what spans files: duplicate route names,
// and listener names not in `listeners` (when given). The routes keep
// `terminology` for memberOf().
RouteSet load_routes(const std::vector<std::string>& paths, const std::vector<std::string>& listeners,
                     std::shared_ptr<const fhirpath::Terminology> terminology,
                     std::vector<std::string>& errors);

}  // namespace courier::route
