// The operator's view of conversations, as JSON: served under /admin/ and
// printed by `courier messages`, so both show the same thing.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/store/store.h"

namespace courier::admin {

// One line per conversation: ids, route, event, state, times.
nlohmann::json conversation_list(store::Store& store, const store::ConversationFilter& filter);

// One conversation with its deliveries and its timeline of events; null
// when there is no such conversation. Message bodies are included only
// when `with_bodies` (they hold patient data).
nlohmann::json conversation_detail(store::Store& store, store::Id id, bool with_bodies);

// Puts a parked delivery back to pending with a fresh set of attempts, and
// records who did it; the engine then sends it (at once when running, else
// at its next start). Nothing, with `error` set, when it is not parked.
std::optional<store::Delivery> reopen_parked(store::Store& store, store::Id delivery, std::string& error);


}  // namespace courier::admin
