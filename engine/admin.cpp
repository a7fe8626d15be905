#include "engine/admin.h"

#include <ctime>

#include "engine/engine.h"
#include "engine/message/conversation_task.h"
#include "engine/rest/search.h"
#include "engine/util/text.h"

namespace courier::admin {

std::optional<store::Delivery> reopen_parked(store::Store& store, store::Id id, std::string& error,
                                             const std::string& by) {
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
  store.add_event(d->conversation, store::Event{0, "replayed", d->destination + ": replayed by " + by, {}, 0},
                  "in-progress", [] {});
  return d;
}

namespace {

nlohmann::json summary(const store::Conversation& c) {
  return {{"id", c.id},
          {"received", store::iso_time(c.received_at)},
          {"updated", store::iso_time(c.updated_at)},
          {"listener", c.listener},
          {"route", c.route},
          {"event", c.event},
          {"bundleId", c.bundle_id},
          {"messageHeaderId", c.header_id},
          {"peer", c.peer},
          {"task", "Task/" + message::task_id(c.id)},
          {"state", c.state}};
}

// The parties of a timeline step, for the sequence diagram: the engine's
// events name the destination they concern before a colon, responses
// name who they came from.
std::pair<std::string, std::string> lanes(const store::Event& e,
                                          const std::vector<std::string>& destinations) {
  const std::string& kind = e.kind;
  if (kind == "original" || kind == "duplicate") return {"placer", "courier"};
  const std::string prefix = e.detail.substr(0, e.detail.find(": "));
  const bool names_party =
      prefix == "placer" || std::find(destinations.begin(), destinations.end(), prefix) != destinations.end();
  if (kind == "relayed") return {"courier", "placer"};
  if (kind == "response" || kind == "progress") {
    for (const std::string& d : destinations)
      if (e.detail.find("from " + d) != std::string::npos) return {d, "courier"};
    return {destinations.size() == 1 ? destinations.front() : std::string("filler"), "courier"};
  }
  if (names_party && kind != "cancel" && kind != "outcome") return {"courier", prefix};
  return {"courier", "courier"};
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
  const std::vector<store::Delivery> rows = store.deliveries(id);
  std::vector<std::string> destinations;
  for (const store::Delivery& d : rows) {
    if (d.kind != store::DeliveryKind::relay &&
        std::find(destinations.begin(), destinations.end(), d.destination) == destinations.end())
      destinations.push_back(d.destination);
  }
  out["parties"] = nlohmann::json::array({"placer", "courier"});
  for (const std::string& d : destinations) out["parties"].push_back(d);
  for (const store::Delivery& d : rows) {
    deliveries.push_back({{"id", d.id},
                          {"kind", d.kind == store::DeliveryKind::relay    ? "relay"
                                   : d.kind == store::DeliveryKind::cancel ? "cancel"
                                                                           : "forward"},
                          {"destination", d.destination},
                          {"orderKey", d.order_key},
                          {"state", store::to_string(d.state)},
                          {"attempts", d.attempts},
                          {"nextAt", store::iso_time(d.next_at)}});
  }
  out["deliveries"] = std::move(deliveries);
  // Receipt is the conversation row itself; the store keeps no event for it.
  nlohmann::json timeline =
      nlohmann::json::array({{{"at", store::iso_time(c->received_at)},
                              {"kind", "received"},
                              {"detail", "from listener " + c->listener + ", route " + c->route},
                              {"from", "placer"},
                              {"to", "courier"},
                              {"hasMessage", true}}});
  if (with_bodies) timeline[0]["message"] = c->body;
  for (const store::Event& e : store.events(id)) {
    const auto [from, to] = lanes(e, destinations);
    nlohmann::json event{
        {"at", store::iso_time(e.at)},  {"kind", e.kind}, {"detail", e.detail}, {"from", from}, {"to", to},
        {"hasMessage", !e.body.empty()}};
    if (from == "filler" || to == "filler") {
      if (out["parties"].size() == 2 || out["parties"].back() != "filler") out["parties"].push_back("filler");
    }
    if (with_bodies && !e.body.empty()) event["message"] = e.body;
    timeline.push_back(std::move(event));
  }
  out["timeline"] = std::move(timeline);
  return out;
}

store::ConversationFilter conversation_filter(const std::map<std::string, std::string>& query,
                                              std::string& error) {
  store::ConversationFilter filter;
  auto get = [&](const char* key) {
    auto it = query.find(key);
    return it == query.end() ? std::string() : it->second;
  };
  filter.route = get("route");
  filter.state = get("state");
  filter.event = get("event");
  filter.peer = get("peer");
  filter.key = get("q");
  if (const std::string delivery = get("delivery"); !delivery.empty()) {
    if (delivery == "parked") filter.delivery = store::DeliveryState::parked;
    if (delivery == "pending") filter.delivery = store::DeliveryState::pending;
    if (!filter.delivery) error = "delivery must be parked or pending, not '" + delivery + "'";
  }
  auto time = [&](const char* key, bool upper) -> store::Millis {
    const std::string text = get(key);
    if (text.empty()) return 0;
    if (auto millis = util::parse_integer(text)) return *millis;
    if (auto millis = rest::instant_millis(text, upper)) return *millis;
    error = std::string(key) + " must be a FHIR instant or Unix milliseconds, not '" + text + "'";
    return 0;
  };
  filter.since = time("since", false);
  filter.until = time("until", true);
  if (const std::string before = get("before"); !before.empty()) {
    filter.before = util::parse_integer(before).value_or(0);
    if (filter.before <= 0) error = "before must be a conversation id";
  }
  if (const std::string limit = get("limit"); !limit.empty()) {
    const auto n = util::parse_integer(limit);
    if (!n || *n < 1 || *n > 1000) error = "limit must be a number from 1 to 1000";
    filter.limit = static_cast<int>(n.value_or(50));
  }
  return filter;
}

nlohmann::json dashboard(Engine& engine) {
  const OperatorInfo& info = engine.operator_info();
  const store::Millis now = store::now_millis();
  const store::StoreSummary stored = engine.store().summary();
  nlohmann::json out{{"version", info.version},
                     {"started", store::iso_time(info.started_at)},
                     {"uptimeSeconds", info.started_at == 0 ? 0 : (now - info.started_at) / 1000},
                     {"storeBytes", stored.size_bytes},
                     {"now", store::iso_time(now)}};
  nlohmann::json listeners = nlohmann::json::array();
  for (const auto& [name, description] : info.listeners) {
    const double received = engine.metrics().total("courier_messages_received_total", {{"listener", name}});
    listeners.push_back(
        {{"name", name}, {"description", description}, {"health", "listening"}, {"received", received}});
  }
  out["listeners"] = std::move(listeners);
  const auto latency = engine.latency().last_hour(now);
  nlohmann::json routes = nlohmann::json::array();
  const Metrics& metrics = engine.metrics();
  for (const route::Route& r : engine.routes().routes) {
    auto delivered = [&](const char* outcome) {
      return metrics.total("courier_deliveries_total", {{"route", r.name}, {"outcome", outcome}});
    };
    std::int64_t parked = 0;
    for (const auto& [route, count] : stored.parked_by_route)
      if (route == r.name) parked = count;
    nlohmann::json minutes = nlohmann::json::array();
    if (auto it = latency.find(r.name); it != latency.end()) {
      for (const LatencyHistory::Minute& m : it->second)
        minutes.push_back({{"minute", store::iso_time(m.start)},
                           {"count", m.count},
                           {"averageMs", m.total_ms / static_cast<double>(m.count)},
                           {"maxMs", m.max_ms}});
    }
    routes.push_back({{"name", r.name},
                      {"received", metrics.total("courier_messages_received_total",
                                                 {{"route", r.name}, {"outcome", "accepted"}})},
                      {"delivered", delivered("delivered")},
                      {"failed", delivered("failed")},
                      {"parked", parked},
                      {"queueDepth", metrics.total("courier_delivery_queue_depth", {{"route", r.name}})},
                      {"latency", std::move(minutes)}});
  }
  out["routes"] = std::move(routes);
  return out;
}

nlohmann::json routes(Engine& engine) {
  nlohmann::json list = nlohmann::json::array();
  for (const route::Route& r : engine.routes().routes) {
    nlohmann::json when = nlohmann::json::object();
    const route::Match& m = r.when;
    for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"event", &m.event},
                                     {"source", &m.source},
                                     {"destination", &m.destination},
                                     {"sender", &m.sender},
                                     {"focus", &m.focus}}) {
      if (!value->empty()) when[key] = *value;
    }
    if (m.expression) when["condition"] = m.expression->text();
    if (r.trigger) when["trigger"] = r.trigger->criteria;
    nlohmann::json to = nlohmann::json::array();
    for (const route::Destination& d : r.to) {
      nlohmann::json destination{{"name", d.name}, {"pattern", std::string(route::to_string(d.pattern))}};
      if (!d.endpoint.empty()) destination["endpoint"] = d.endpoint;
      if (d.order_by) destination["orderBy"] = d.order_by->text();
      destination["retry"] = {{"attempts", d.retry.attempts},
                              {"initialDelayMs", d.retry.initial_delay.count()},
                              {"maxDelayMs", d.retry.max_delay.count()}};
      destination["onExhausted"] = d.on_exhausted == route::OnExhausted::park ? "park" : "fail";
      to.push_back(std::move(destination));
    }
    list.push_back({{"name", r.name},
                    {"file", r.file},
                    {"line", r.line},
                    {"from", r.from},
                    {"when", std::move(when)},
                    {"to", std::move(to)},
                    {"allow", r.allow}});
  }
  nlohmann::json out{{"routes", std::move(list)}};
  const OperatorInfo& info = engine.operator_info();
  if (info.route_report) {
    const nlohmann::json report = info.route_report();
    for (const auto& [key, value] : report.items()) out[key] = value;
  }
  return out;
}

}  // namespace courier::admin
