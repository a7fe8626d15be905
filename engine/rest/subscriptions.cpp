#include "engine/rest/subscriptions.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <variant>

#include "engine/fhir/codec.h"
#include "engine/rest/search.h"
#include "engine/util/text.h"

namespace courier::rest {

namespace asio = boost::asio;

namespace {

// What a Subscription asks for, read and checked.
struct Channel {
  std::string type;  // the criteria's resource type
  SearchQuery query;
  std::string endpoint;
  std::optional<fhir::Format> payload;  // none: empty notifications
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<Millis> end;  // Subscription.end: when it is to be turned off
};

// A header name is an HTTP token; a value holds no line break or other
// control character, which would let a Subscription write headers of its
// own choosing (or a request of its own) into courier's notifications.
bool is_header_name(std::string_view name) {
  static constexpr std::string_view separators = "()<>@,;:\\\"/[]?={} \t";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && separators.find(c) == std::string_view::npos;
  });
}

bool is_header_value(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u != 0x7f) || c == '\t';
  });
}

// Headers courier writes itself for each notification.
bool is_reserved_header(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  for (std::string_view reserved :
       {"host", "content-type", "content-length", "transfer-encoding", "connection"})
    if (lower == reserved) return true;
  return false;
}

std::string trimmed(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return std::string(text);
}

std::variant<Channel, std::string> read_channel(const fhir::Element& subscription) {
  Channel c;
  const std::string_view criteria = subscription.child_value("criteria");
  if (criteria.empty())
    return std::string("a Subscription needs criteria, such as ServiceRequest?status=active");
  auto query = parse_criteria(criteria);
  if (auto* problem = std::get_if<std::string>(&query)) return "criteria: " + *problem;
  c.query = std::get<SearchQuery>(std::move(query));
  c.type = c.query.type;
  const fhir::Element* channel = subscription.child("channel");
  const std::string_view type = channel != nullptr ? channel->child_value("type") : "";
  if (type != "rest-hook")
    return "channel.type '" + std::string(type) + "' is not served; courier offers rest-hook";
  c.endpoint = channel->child_value("endpoint");
  if (!c.endpoint.starts_with("http://") && !c.endpoint.starts_with("https://"))
    return "channel.endpoint must be an http:// or https:// URL";
  while (c.endpoint.ends_with('/')) c.endpoint.pop_back();
  const std::string_view payload = channel->child_value("payload");
  if (payload.find("json") != std::string_view::npos) {
    c.payload = fhir::Format::json;
  } else if (payload.find("xml") != std::string_view::npos) {
    c.payload = fhir::Format::xml;
  } else if (!payload.empty()) {
    return "channel.payload must be application/fhir+json, application/fhir+xml, or left out";
  }
  for (const fhir::Element* header : channel->children_named("header")) {
    const std::string& text = header->value();
    const std::size_t colon = text.find(':');
    if (colon == std::string::npos) return "channel.header '" + text.substr(0, 40) + "' is not 'Name: value'";
    std::string name = trimmed(std::string_view(text).substr(0, colon));
    std::string value = trimmed(std::string_view(text).substr(colon + 1));
    if (!is_header_name(name) || !is_header_value(value))
      return "channel.header '" + name.substr(0, 40) +
             "' must be one HTTP header: a name without spaces or separators, a value without line breaks";
    if (is_reserved_header(name)) return "channel.header may not set " + name + ": courier writes it";
    c.headers.emplace_back(std::move(name), std::move(value));
  }
  if (const std::string_view end = subscription.child_value("end"); !end.empty()) {
    c.end = instant_millis(end, false);
    if (!c.end) return "end '" + std::string(end) + "' is not an instant";
  }
  return c;
}

}  // namespace

std::optional<std::string> subscription_problem(const fhir::Element& subscription) {
  auto channel = read_channel(subscription);
  if (auto* problem = std::get_if<std::string>(&channel)) return *problem;
  return std::nullopt;
}

class SubscriptionHub::Impl : public std::enable_shared_from_this<SubscriptionHub::Impl> {
 public:
  Impl(asio::any_io_executor executor, ResourceStore& store, std::shared_ptr<delivery::Sender> http,
       route::RetryPolicy retry)
      : executor_(std::move(executor)), store_(store), http_(std::move(http)), retry_(retry) {}

  struct Subscription {
    std::string id;
    Channel channel;
    std::deque<delivery::Outbound> pending;  // the head is in flight or waiting to retry
    bool busy = false;
    int failures = 0;
    std::unique_ptr<asio::steady_timer> timer;
  };

  void start() {
    SearchQuery active;
    active.type = "Subscription";
    active.criteria.push_back(
        Criterion{Criterion::Kind::index, "status", {TokenValue{false, {}, "active"}}, {}, 0});
    active.count = 1000;
    for (;; active.offset += active.count) {
      const SearchResult page = store_.search(active);
      for (const ResourceVersion& v : page.page) {
        if (fhir::ParseResult parsed = fhir::parse_json(v.json); parsed.resource)
          on_subscription(v, &*parsed.resource);
      }
      if (!page.more) break;
    }
  }

  void stop() {
    stopped_ = true;
    for (auto& [id, s] : subscriptions_)
      if (s->timer) s->timer->cancel();
  }

  void on_written(const ResourceVersion& written, const fhir::Element* resource) {
    if (http_ == nullptr) return;  // an engine without transports (unit tests)
    if (written.type == "Subscription") return on_subscription(written, resource);
    if (resource == nullptr) return;  // R4 rest-hooks tell of creates and updates
    // Those whose end has come are turned off first.
    for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
      if (!expired(it->second->channel)) {
        ++it;
        continue;
      }
      const std::string id = it->first;
      it = subscriptions_.erase(it);
      set_status(id, "off", {});
    }
    for (auto& [id, s] : subscriptions_) {
      if (s->channel.type != written.type || !current_matches(store_, s->channel.query, written.id)) continue;
      delivery::Outbound out;
      out.message_exchange = false;
      out.headers = s->channel.headers;
      out.timeout = std::chrono::seconds(30);
      if (s->channel.payload) {
        out.method = "PUT";
        out.target = s->channel.endpoint + "/" + written.type + "/" + written.id;
        out.format = *s->channel.payload;
        out.body = out.format == fhir::Format::json ? written.json : fhir::write(*resource, out.format);
      } else {
        out.method = "POST";
        out.target = s->channel.endpoint;
      }
      s->pending.push_back(std::move(out));
      if (!s->busy) send_head(s);
    }
  }

  bool watches(std::string_view type) const {
    return std::any_of(subscriptions_.begin(), subscriptions_.end(),
                       [type](const auto& s) { return s.second->channel.type == type; });
  }

 private:
  using SubscriptionPtr = std::shared_ptr<Subscription>;

  void on_subscription(const ResourceVersion& written, const fhir::Element* resource) {
    const std::string status(resource != nullptr ? resource->child_value("status") : "");
    if (status != "requested" && status != "active") {
      subscriptions_.erase(written.id);  // off, error, deleted
      return;
    }
    auto channel = read_channel(*resource);
    if (auto* problem = std::get_if<std::string>(&channel)) {
      subscriptions_.erase(written.id);
      return set_status(written.id, "error", *problem);
    }
    if (expired(std::get<Channel>(channel))) {
      subscriptions_.erase(written.id);
      return set_status(written.id, "off", {});
    }
    SubscriptionPtr& s = subscriptions_[written.id];
    if (s == nullptr) {
      s = std::make_shared<Subscription>();
      s->id = written.id;
    }
    s->channel = std::get<Channel>(std::move(channel));  // notifications already queued still go
    if (status == "requested") set_status(written.id, "active", {});
  }

  static bool expired(const Channel& channel) { return channel.end && *channel.end <= store::now_millis(); }

  void send_head(const SubscriptionPtr& s) {
    if (s->pending.empty() || stopped_) {
      s->busy = false;
      return;
    }
    s->busy = true;
    http_->send(s->pending.front(), [self = shared_from_this(), s](delivery::SendOutcome outcome) {
      asio::post(self->executor_, [self, s, outcome = std::move(outcome)] {
        if (!self->stopped_) self->on_sent(s, outcome);
      });
    });
  }

  void on_sent(const SubscriptionPtr& s, const delivery::SendOutcome& outcome) {
    if (outcome.kind == delivery::SendOutcome::Kind::done) {
      s->failures = 0;
      s->pending.pop_front();
      return send_head(s);
    }
    // Switched off meanwhile (or replaced: a new object under the same id).
    if (auto it = subscriptions_.find(s->id); it == subscriptions_.end() || it->second != s) return;
    if (++s->failures >= retry_.attempts) {
      const std::string why = "notifications to " + s->channel.endpoint + " failed " +
                              std::to_string(s->failures) + " times in a row; the last: " + outcome.error;
      subscriptions_.erase(s->id);
      return set_status(s->id, "error", why);
    }
    if (!s->timer) s->timer = std::make_unique<asio::steady_timer>(executor_);
    s->timer->expires_after(retry_.delay_after(s->failures, jitter_(random_)));
    s->timer->async_wait([self = shared_from_this(), s](boost::system::error_code ec) {
      if (!ec && !self->stopped_) self->send_head(s);
    });
  }

  // Writes the Subscription's new status (and error) as a new version,
  // unless someone changed it meanwhile (their change then counts).
  void set_status(const std::string& id, const std::string& status, const std::string& error) {
    const std::optional<ResourceVersion> current = store_.read("Subscription", id);
    if (!current || current->deleted) return;
    fhir::ParseResult parsed = fhir::parse_json(current->json);
    if (!parsed.resource) return;
    fhir::Element& resource = *parsed.resource;
    if (fhir::Element* s = resource.child("status")) s->set_value(status);
    if (!error.empty()) resource.child_or_add("error").set_value(error);
    Write w;
    w.kind = Write::Kind::update;
    w.type = "Subscription";
    w.id = id;
    w.expected_version = current->version;
    w.index = index_entries(resource);
    w.resource = std::move(resource);
    store_.write(std::move(w), [](const WriteResult&) {});
  }

  asio::any_io_executor executor_;
  ResourceStore& store_;
  std::shared_ptr<delivery::Sender> http_;
  route::RetryPolicy retry_;
  std::map<std::string, SubscriptionPtr> subscriptions_;
  std::mt19937_64 random_{std::random_device{}()};
  std::uniform_real_distribution<double> jitter_{0.0, 1.0};
  bool stopped_ = false;
};

SubscriptionHub::SubscriptionHub(asio::any_io_executor executor, ResourceStore& store,
                                 std::shared_ptr<delivery::Sender> http, route::RetryPolicy retry)
    : impl_(std::make_shared<Impl>(std::move(executor), store, std::move(http), retry)) {}

SubscriptionHub::~SubscriptionHub() = default;

void SubscriptionHub::start() {
  impl_->start();
}
void SubscriptionHub::stop() {
  impl_->stop();
}
void SubscriptionHub::on_written(const ResourceVersion& written, const fhir::Element* resource) {
  impl_->on_written(written, resource);
}
bool SubscriptionHub::watches(std::string_view type) const {
  return impl_->watches(type);
}

}  // namespace courier::rest
