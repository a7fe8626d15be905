// The operator's view of conversations, as JSON: served under /admin/ and
// printed by `courier messages`, so both show the same thing.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/store/store.h"

namespace courier {
class Engine;
}

namespace courier::admin {

// One line per conversation: ids, route, event, state, times.
nlohmann::json conversation_list(store::Store& store, const store::ConversationFilter& filter);

// One conversation with its deliveries and its timeline of events; null
// when there is no such conversation. Each step of the timeline names the
// parties of a sequence diagram: `from` and `to` are "placer", "courier",
// or a destination's name. Message bodies are included only when
// `with_bodies` (they hold patient data).
nlohmann::json conversation_detail(store::Store& store, store::Id id, bool with_bodies);

// Puts a parked delivery back to pending with a fresh set of attempts, and
// records who did it (`by`); the engine then sends it (at once when
// running, else at its next start). Nothing, with `error` set, when it is
// not parked.
std::optional<store::Delivery> reopen_parked(store::Store& store, store::Id delivery, std::string& error,
                                             const std::string& by = "an operator");

// The filter of GET /admin/conversations from its query parameters
// (route, state, event, peer, q, delivery, since, until, before, limit; times as
// FHIR instants or Unix milliseconds). Problems go to `error`.
store::ConversationFilter conversation_filter(const std::map<std::string, std::string>& query,
                                              std::string& error);

// The dashboard: the process, its listeners, and per route the counts since
// start, what is parked and queued now, and the last hour's latency.
nlohmann::json dashboard(Engine& engine);

// The loaded routes as an analyst wrote them, with the route report of
// OperatorInfo (files checked again, test cases run).
nlohmann::json routes(Engine& engine);

}  // namespace courier::admin
