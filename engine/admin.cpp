#include "engine/admin.h"

#include <ctime>

namespace courier::admin {

std::optional<store::Delivery> reopen_parked(store::Store& store, store::Id id, std::string& error) {
  std::optional<store::Delivery> d = store.delivery(id);
  if (!d) {
    error = "there is no delivery " + std::to_string(id);
    return std::nullopt;
  }
  if (d->state != store::DeliveryState::parked) {
    error =
        "delivery " + std::to_string(id) + " is " + std::string(store::to_string(d->state)) + ", not parked";
    return std::nullopt;
  }
  d->state = store::DeliveryState::pending;
  d->attempts = 0;
  d->next_at = store::now_millis();
  store.update_delivery(*d, [] {});
  store.add_event(d->conversation,
                  store::Event{0, "replayed", d->destination + ": replayed by an operator", {}, 0},
                  "in-progress", [] {});
  return d;
}

namespace {

nlohmann::json summary(const store::Conversation& c) {
  return {{"id", c.id},
          {"received", store::iso_time(c.received_at)},
          {"listener", c.listener},
          {"route", c.route},
          {"event", c.event},
          {"bundleId", c.bundle_id},
          {"messageHeaderId", c.header_id},
          {"state", c.state}};
}

}  // namespace

nlohmann::json conversation_list(store::Store& store, const store::ConversationFilter& filter) {
  nlohmann::json list = nlohmann::json::array();
  for (const store::Conversation& c : store.conversations(filter)) list.push_back(summary(c));
  return list;
}

nlohmann::json conversation_detail(store::Store& store, store::Id id, bool with_bodies) {
  const std::optional<store::Conversation> c = store.conversation(id);
  if (!c) return nullptr;
  nlohmann::json out = summary(*c);
  out["replyTo"] = c->reply_to;
  if (with_bodies) out["message"] = c->body;
  nlohmann::json deliveries = nlohmann::json::array();
  for (const store::Delivery& d : store.deliveries(id)) {
    deliveries.push_back({{"id", d.id},
                          {"kind", d.kind == store::DeliveryKind::relay    ? "relay"
                                   : d.kind == store::DeliveryKind::cancel ? "cancel"
                                                                           : "forward"},
                          {"destination", d.destination},
                          {"orderKey", d.order_key},
                          {"state", store::to_string(d.state)},
                          {"attempts", d.attempts}});
  }
  out["deliveries"] = std::move(deliveries);
  // Receipt is the conversation row itself; the store keeps no event for it.
  nlohmann::json timeline =
      nlohmann::json::array({{{"at", store::iso_time(c->received_at)},
                              {"kind", "received"},
                              {"detail", "from listener " + c->listener + ", route " + c->route}}});
  for (const store::Event& e : store.events(id)) {
    nlohmann::json event{{"at", store::iso_time(e.at)}, {"kind", e.kind}, {"detail", e.detail}};
    if (with_bodies && !e.body.empty()) event["message"] = e.body;
    timeline.push_back(std::move(event));
  }
  out["timeline"] = std::move(timeline);
  return out;
}

}  // namespace courier::admin
