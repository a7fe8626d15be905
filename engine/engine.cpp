#include "engine/engine.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <deque>
#include <future>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "engine/admin.h"
#include "engine/fhir/bundle_index.h"
#include "engine/fhir/operation_outcome.h"
#include "engine/fhir/validator.h"
#include "engine/message/conversation_task.h"
#include "engine/message/message_info.h"
#include "engine/message/response_builder.h"
#include "engine/rest/embedded_sender.h"
#include "engine/rest/merging_sender.h"
#include "engine/rest/observed_store.h"
#include "engine/rest/rest_api.h"
#include "engine/rest/rest_call.h"
#include "engine/rest/search.h"
#include "engine/rest/subscriptions.h"
#include "engine/security/audit.h"

namespace courier {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using store::DeliveryKind;
using store::DeliveryState;
using store::Millis;

namespace {

Reply outcome_reply(int status, const std::string& code, const std::string& diagnostics, fhir::Format format,
                    const std::string& expression = {}) {
  return Reply{status, fhir::outcome_text(code, diagnostics, format, expression), format};
}

// "840 ms", "12 s", "5 min": for the timeline, read by people.
std::string duration_text(milliseconds ms) {
  if (ms.count() < 10'000) return std::to_string(ms.count()) + " ms";
  if (ms.count() < 600'000) return std::to_string(ms.count() / 1000) + " s";
  return std::to_string(ms.count() / 60'000) + " min";
}

// A response the placer asked to get, by the messageheader-response-request extension.
bool wanted(message::ResponseRequest request, const std::string& code) {
  switch (request) {
    case message::ResponseRequest::always: return true;
    case message::ResponseRequest::never: return false;
    case message::ResponseRequest::on_error: return code != "ok";
    case message::ResponseRequest::on_success: return code == "ok";
  }
  return true;
}

// The conversation's state once a filler's report has this status: the
// report's own status values (DiagnosticReport final, MedicationDispense
// completed, Encounter finished, …) read as Task's states.
std::string conversation_state_for_report(std::string_view status) {
  for (std::string_view done :
       {"final", "amended", "corrected", "appended", "completed", "finished", "available"})
    if (status == done) return "completed";
  for (std::string_view stopped : {"cancelled", "stopped", "not-done", "revoked"})
    if (status == stopped) return "cancelled";
  if (status == "rejected" || status == "declined") return "rejected";
  if (status == "failed") return "failed";
  if (status == "on-hold" || status == "suspended") return "on-hold";
  return "in-progress";
}

// A conversation in one of these states is over: later reports are kept
// and relayed, but do not change it, and its placer cannot cancel it.
bool is_final_state(std::string_view state) {
  return state == "completed" || state == "cancelled" || state == "rejected" || state == "failed";
}

bool same_element(const fhir::Element& a, const fhir::Element& b) {
  return a.name() == b.name() && a.has_value() == b.has_value() && a.value() == b.value() &&
         std::equal(a.children().begin(), a.children().end(), b.children().begin(), b.children().end(),
                    same_element);
}

// The first element a client's version of a conversation's Task sets
// otherwise than `current`, beside its status (and meta and narrative,
// which are the server's); "" when none. Elements it leaves out are no
// change: a client may send just the status.
std::string changed_element(const fhir::Element& current, const fhir::Element& written) {
  for (const fhir::Element& e : written.children()) {
    const std::string_view name = e.name();
    if (name == "status" || name == "meta" || name == "text" || name == "id") continue;
    const std::vector<const fhir::Element*> mine = written.children_named(name);
    const std::vector<const fhir::Element*> theirs = current.children_named(name);
    const bool same =
        std::equal(mine.begin(), mine.end(), theirs.begin(), theirs.end(),
                   [](const fhir::Element* x, const fhir::Element* y) { return same_element(*x, *y); });
    if (!same) return std::string(name);
  }
  return {};
}

// The FHIR store as REST clients reach it: a write of a conversation's Task
// goes to `task_write` (the placer cancelling its request), since that Task
// is made up from the conversation and is no stored resource.
class ClientResources final : public rest::ResourceStore {
 public:
  using TaskWrite = std::function<void(rest::Write, std::function<void(rest::WriteResult)>)>;
  ClientResources(rest::ResourceStore& inner, TaskWrite task_write)
      : inner_(inner), task_write_(std::move(task_write)) {}

  void write(rest::Write write, std::function<void(rest::WriteResult)> done) override {
    if (write.type == "Task" && message::conversation_of_task(write.id) != 0)
      return task_write_(std::move(write), std::move(done));
    inner_.write(std::move(write), std::move(done));
  }
  // In a transaction, the store refuses a conversation's Task.
  void write_all(std::vector<rest::Write> writes,
                 std::function<void(std::vector<rest::WriteResult>)> done) override {
    inner_.write_all(std::move(writes), std::move(done));
  }
  std::optional<rest::ResourceVersion> read(const std::string& type, const std::string& id,
                                            std::optional<std::int64_t> version) override {
    return inner_.read(type, id, version);
  }
  std::vector<rest::ResourceVersion> history(const std::string& type, const std::string& id) override {
    return inner_.history(type, id);
  }
  rest::SearchResult search(const rest::SearchQuery& query) override { return inner_.search(query); }
  void append_audit(std::vector<rest::AuditEntry> entries, std::function<void()> done) override {
    inner_.append_audit(std::move(entries), std::move(done));
  }

 private:
  rest::ResourceStore& inner_;
  TaskWrite task_write_;
};

}  // namespace

class Engine::Impl : public std::enable_shared_from_this<Engine::Impl> {
 public:
  Impl(asio::any_io_executor executor, EngineOptions options, route::RouteSet routes,
       std::unique_ptr<store::Store> store, Senders senders)
      : strand_(asio::make_strand(executor)),
        options_(std::move(options)),
        routes_(std::move(routes)),
        store_(std::move(store)),
        senders_(std::move(senders)),
        resources_(store_->resources(),
                   [this](const rest::ResourceVersion& v) {
                     asio::post(strand_, [self = weak_from_this(), v] {
                       if (auto impl = self.lock(); impl && !impl->stopped_) impl->on_resource_written(v);
                     });
                   }),
        client_resources_(resources_,
                          [this](rest::Write write, std::function<void(rest::WriteResult)> done) {
                            asio::post(strand_, [self = shared_from_this(), write = std::move(write),
                                                 done = std::move(done)]() mutable {
                              self->placer_writes_task(std::move(write), std::move(done));
                            });
                          }),
        rest_api_(client_resources_, options_.limits),
        embedded_sender_(rest::make_embedded_sender(rest_api_, options_.public_url)),
        subscriptions_(strand_, resources_, sender_for(route::Pattern::messaging),
                       options_.notification_retry),
        audit_(executor, store_->resources()) {}

  // What the engine keeps in memory about a conversation while anything
  // about it is still to happen.
  struct Conversation {
    store::Id id = 0;
    std::shared_ptr<const std::string> body;  // null once no delivery needs it: see message_body
    fhir::Format format = fhir::Format::json;
    message::MessageInfo info;
    const route::Route* route = nullptr;
    std::string reply_to;
    Millis received_at = 0;
    std::vector<std::function<void(Reply)>> waiters;  // synchronous placers
    std::unique_ptr<asio::steady_timer> wait_timer;
    bool replied = false;
    int open_deliveries = 0;     // in queues_
    int spilled_deliveries = 0;  // forwards still in their destination's backlog in the store only
    int responses = 0;
    std::set<std::string> response_ids;  // of the responses recorded, to recognise resends
    std::string state = "received";
    // A cancellation under way: its deliveries still open, and why any
    // destination did not honour it.
    int open_cancellations = 0;
    std::vector<std::string> cancel_refusals;
    // Filler-owned cancellation: the Task asking to cancel, and whether some
    // filler answers it only by updating that Task.
    std::string abort_task;
    bool awaiting_filler = false;
  };
  using ConversationPtr = std::shared_ptr<Conversation>;

  struct Queued {
    store::Delivery record;
    ConversationPtr conversation;
  };
  struct Queue {
    std::deque<Queued> items;
    bool busy = false;       // the head is being tried, or waits for its retry or response
    bool in_flight = false;  // the head's attempt is out: only its outcome may finish it
    std::unique_ptr<asio::steady_timer> timer;
  };

  // ---- accepting ---------------------------------------------------------

  void accept(Inbound in, std::function<void(Reply)> done) {
    Admission a = admit(in, routes_, options_.limits);
    if (a.may_be_progress || (a.info.response && !a.rejection)) {
      // A filler's report: the engine's timeline records what it meant.
      audit_message(in, a.info.bundle_id, 0, "received", 0, "");
    }
    if (a.may_be_progress) return accept_progress(std::move(in), std::move(a), std::move(done));
    if (a.rejection) {
      count_received(in.listener, "", a.outcome.c_str());
      audit_message(in, a.info.bundle_id, {}, a.outcome == "forbidden" ? "forbidden" : "refused", 4,
                    a.outcome);
      return done(std::move(*a.rejection));
    }
    const fhir::Format format = a.format;
    auto body = std::make_shared<const std::string>(std::move(in.body));
    if (a.info.response) {
      asio::post(strand_, [self = shared_from_this(), in = std::move(in), body, format,
                           info = std::move(a.info), done = std::move(done)]() mutable {
        self->accept_response(std::move(in), body, format, std::move(info), std::move(done));
      });
      return;
    }
    const route::Route* route = a.route;
    const message::MessageInfo& info = a.info;
    store::NewConversation nc;
    nc.listener = in.listener;
    nc.route = route->name;
    nc.event = info.event();
    nc.bundle_id = info.bundle_id.empty() ? info.bundle_identifier : info.bundle_id;
    nc.header_id = info.header_id.empty() ? info.bundle_identifier : info.header_id;
    nc.reply_to = !in.response_url.empty() ? in.response_url
                  : info.source_endpoint.starts_with("http")
                      ? strip_slash(info.source_endpoint) + "/$process-message?async=true"
                      : std::string();
    nc.format = static_cast<int>(format);
    nc.body = *body;
    nc.peer = in.peer                         ? in.peer->name
              : !in.claimed_v2_sender.empty() ? in.claimed_v2_sender
                                              : info.source_endpoint;
    nc.search_keys = business_identifiers(*a.bundle, in.search_keys);
    // A status query names a request; it is not one that reports can name.
    const bool query = std::any_of(route->to.begin(), route->to.end(), [](const route::Destination& d) {
      return d.pattern == route::Pattern::status;
    });
    if (!query) nc.correlation_keys = info.request_keys;
    const fhir::Element outline = message::task_outline(info, store::now_millis());
    nc.task_outline = fhir::write_json(outline);
    nc.task_index = rest::index_entries(outline);
    for (std::size_t i = 0; i < route->to.size(); ++i) {
      const route::Destination& d = route->to[i];
      store::NewDelivery nd;
      nd.destination = d.name;
      nd.order_key = a.order_keys[i];
      if (d.pattern == route::Pattern::messaging && d.async) {
        // The filler answers to courier, not to the placer.
        nd.body = with_source_endpoint(*a.bundle, format);
        nd.format = nc.format;
      }
      nc.deliveries.push_back(std::move(nd));
    }
    const bool async = in.async;
    const std::string reply_to = nc.reply_to;
    in.body.clear();  // kept in `body`; `in` now only says who sent it
    store_->accept(std::move(nc), options_.reprocess_reused_header, options_.reliable_cache.count(),
                   [self = shared_from_this(), in = std::move(in), body, format, info = std::move(a.info),
                    route, async, reply_to, done = std::move(done)](store::AcceptResult result) mutable {
                     asio::post(self->strand_,
                                [self, in = std::move(in), body, format, info = std::move(info), route, async,
                                 reply_to = std::move(reply_to), done = std::move(done),
                                 result = std::move(result)]() mutable {
                                  self->on_stored(in, body, format, std::move(info), route, async, reply_to,
                                                  std::move(result), std::move(done));
                                });
                   });
  }

  // What an operator may search a message by besides its ids: the
  // identifier values of the resources it is about (a patient's MRN, an
  // order's placer number) and what the listener adds. Not those of the
  // places, people and organisations it names (a bed, a doctor's licence, a
  // facility): thousands of messages share each, so they find nothing in
  // particular, and each costs the store a page write per commit. Bounded:
  // a Bundle of many Observations is not a search index.
  static std::vector<std::string> business_identifiers(const fhir::Element& bundle,
                                                       const std::vector<std::string>& from_listener) {
    constexpr std::size_t most = 24;
    static const std::set<std::string_view> shared = {
        "MessageHeader",    "Location",          "Organization", "Practitioner",
        "PractitionerRole", "HealthcareService", "Device",       "Endpoint"};
    std::vector<std::string> keys = from_listener;
    for (const fhir::Element* entry : bundle.children_named("entry")) {
      const fhir::Element* resource = entry->child("resource");
      if (resource == nullptr || shared.contains(resource->type().name)) continue;
      for (const fhir::Element* identifier : resource->children_named("identifier")) {
        const std::string_view value = identifier->child_value("value");
        if (value.empty() || keys.size() >= most) continue;
        if (std::find(keys.begin(), keys.end(), value) == keys.end()) keys.emplace_back(value);
      }
    }
    return keys;
  }

  // A message's arrival, or its refusal, in the audit trail.
  void audit_message(const Inbound& in, const std::string& bundle_id, store::Id conversation,
                     const std::string& subtype, int outcome, const std::string& why) {
    security::AuditRecord r;
    r.kind = security::AuditRecord::Kind::message;
    r.subtype = subtype;
    r.action = 'C';
    r.outcome = outcome;
    r.outcome_text = why;
    r.peer = in.peer;
    r.address = in.peer_address;
    r.listener = in.listener;
    r.message_id = bundle_id;
    if (conversation != 0) r.entities.push_back("Task/" + message::task_id(conversation));
    audit_.record(std::move(r));
  }

  void on_stored(const Inbound& in, std::shared_ptr<const std::string> body, fhir::Format format,
                 message::MessageInfo info, const route::Route* route, bool async,
                 const std::string& reply_to, store::AcceptResult result, std::function<void(Reply)> done) {
    using Outcome = store::AcceptResult::Outcome;
    const std::string& listener = in.listener;
    switch (result.outcome) {
      case Outcome::header_reused:
      case Outcome::bundle_id_reused:
        audit_message(in, info.bundle_id, 0, "refused", 4, "duplicate identity");
        break;
      case Outcome::duplicate:
        audit_message(in, info.bundle_id, result.conversation, "duplicate", 0, "");
        break;
      case Outcome::stored:
        audit_message(in, info.bundle_id, result.conversation, "received", 0, "route " + route->name);
        break;
    }
    switch (result.outcome) {
      case Outcome::header_reused:
        count_received(listener, route->name, "rejected");
        return done(outcome_reply(422, "duplicate",
                                  "MessageHeader.id '" + info.header_id +
                                      "' was already received in another Bundle; resend the original Bundle "
                                      "unchanged, or send a new message with a new MessageHeader.id",
                                  format, "Bundle.entry[0].resource.id"));
      case Outcome::bundle_id_reused:
        count_received(listener, route->name, "rejected");
        return done(outcome_reply(422, "duplicate",
                                  "Bundle.id '" + info.bundle_id +
                                      "' was already used by a message with another MessageHeader.id; a new "
                                      "message needs a new Bundle.id",
                                  format, "Bundle.id"));
      case Outcome::duplicate:
        count_received(listener, route->name, "duplicate");
        return answer_duplicate(result, format, info, async, reply_to, std::move(done));
      case Outcome::stored: break;
    }
    count_received(listener, route->name, "accepted");
    // The start-up resume may have loaded it from the store already (it was
    // committed while resume read the unfinished deliveries): one object.
    ConversationPtr& slot = conversations_[result.conversation];
    if (slot == nullptr) {
      slot = std::make_shared<Conversation>();
      count_in_memory();
    }
    const ConversationPtr conversation = slot;
    conversation->id = result.conversation;
    conversation->body = std::move(body);
    conversation->format = format;
    conversation->info = std::move(info);
    conversation->route = route;
    conversation->reply_to = reply_to;
    conversation->received_at = store::now_millis();
    changes_.publish({conversation->id, conversation->received_at, route->name, "received", "received"});
    task_changed(conversation->id);
    if (!in.original.empty())
      store_->add_event(
          conversation->id,
          store::Event{0, "original", "the message as received, before conversion", in.original, 0}, {},
          [] {});
    for (store::Delivery& d : result.deliveries) take(std::move(d), conversation);

    // Answered now: unless its deliveries are in memory, the conversation
    // need not be (one whose delivery waits in the store is read back with it).
    switch (first_answer(*route, conversation->info, async)) {
      case FirstAnswer::accepted: done(Reply{202, {}, format}); return forget_if_idle(conversation);
      case FirstAnswer::no_content: done(Reply{204, {}, format}); return forget_if_idle(conversation);
      case FirstAnswer::courier_response:
        // Courier answers for destinations that cannot: the message is in its custody.
        reply_to_placer(conversation, own_response(*conversation, "ok", {}), "ok", std::move(done));
        return forget_if_idle(conversation);
      case FirstAnswer::filler_response: break;
    }
    wait_for_response(conversation, std::move(done));
  }

  // The placer waits for the response, for at most sync_wait.
  void wait_for_response(const ConversationPtr& conversation, std::function<void(Reply)> done) {
    conversation->waiters.push_back(std::move(done));
    conversation->wait_timer = std::make_unique<asio::steady_timer>(strand_, options_.sync_wait);
    conversation->wait_timer->async_wait(
        [self = shared_from_this(), conversation](boost::system::error_code ec) {
          if (ec) return;
          // No response in time: the placer has courier's custody (202); the
          // response follows to its source.endpoint.
          for (auto& waiter : conversation->waiters) waiter(Reply{202, {}, conversation->format});
          conversation->waiters.clear();
          self->forget_if_idle(conversation);
        });
  }

  // A resend of a message that was answered transient-error (AE for HL7
  // v2) and whose delivery is parked: the sender is doing what that answer
  // asked of it, so its parked deliveries go again, as if an operator
  // replayed them, and the next outcome replaces the cached answer. Nothing
  // was delivered, so nothing is delivered twice. The conversation, when
  // it does so.
  ConversationPtr try_again(store::Id id, const store::StoredReply& reply) {
    const std::optional<message::MessageInfo> answer =
        response_message(reply.body, static_cast<fhir::Format>(reply.format));
    if (!answer || answer->response->code != "transient-error") return nullptr;
    std::vector<store::Delivery> parked;
    for (store::Delivery& d : store_->deliveries(id)) {
      if (d.kind == DeliveryKind::forward && d.state == DeliveryState::parked && !queued_.contains(d.id))
        parked.push_back(std::move(d));
    }
    const ConversationPtr conversation = parked.empty() ? nullptr : find_or_load(id);
    if (conversation == nullptr) return nullptr;
    conversation->replied = false;
    conversation->responses = 0;  // the transient errors answered nothing
    store_->forget_reply(id, [] {});
    for (const store::Delivery& d : parked) {
      std::string error;
      if (std::optional<store::Delivery> reopened =
              admin::reopen_parked(*store_, d.id, error, "the placer, which sent the message again"))
        enqueue(std::move(*reopened), conversation);
    }
    return conversation;
  }

  void answer_duplicate(const store::AcceptResult& result, fhir::Format format,
                        const message::MessageInfo& info, bool async, const std::string& reply_to,
                        std::function<void(Reply)> done) {
    if (info.response_request == message::ResponseRequest::never)
      return done(Reply{async ? 202 : 204, {}, format});
    if (const ConversationPtr again =
            result.reply ? try_again(result.conversation, *result.reply) : nullptr) {
      if (async) return done(Reply{202, {}, format});  // the new outcome goes to reply_to
      return wait_for_response(again, std::move(done));
    }
    if (result.reply) {
      const Reply original{result.reply->status, result.reply->body,
                           static_cast<fhir::Format>(result.reply->format)};
      if (!async) return done(original);
      done(Reply{202, {}, format});
      if (reply_to.empty() || original.body.empty()) return;
      // Relayed again only if it was wanted the first time (MSH-16 ER and a
      // success: still no application ACK).
      const std::optional<message::MessageInfo> response = response_message(original.body, original.format);
      if (response && !wanted(info.response_request, response->response->code)) return;
      add_relay(result.conversation, reply_to, original);
      return;
    }
    // The original is still in progress: wait with it for its response.
    auto it = conversations_.find(result.conversation);
    if (!async && it != conversations_.end() && !it->second->replied) {
      it->second->waiters.push_back(std::move(done));
      return;
    }
    done(Reply{202, {}, format});
  }

  // A message that answers another: the filler's acknowledgment or a
  // progress message, relayed to the placer of the request it names.
  void accept_response(Inbound in, std::shared_ptr<const std::string> body, fhir::Format format,
                       message::MessageInfo info, std::function<void(Reply)> done) {
    const std::string identifier = info.response->identifier;
    store_->find_by_header_id(
        identifier, [self = shared_from_this(), in = std::move(in), body, format, info = std::move(info),
                     done = std::move(done)](std::optional<store::Conversation> row) mutable {
          asio::post(self->strand_, [self, in = std::move(in), body, format, info = std::move(info),
                                     done = std::move(done), row = std::move(row)]() mutable {
            if (!row) {
              self->count_received(in.listener, "", "rejected");
              return done(outcome_reply(422, "not-found",
                                        "this response names message '" + info.response->identifier +
                                            "', which courier did not carry (or no longer remembers)",
                                        format, "Bundle.entry[0].resource.response.identifier"));
            }
            ConversationPtr conversation = self->conversation_from(*row);
            if (conversation == nullptr) {
              return done(outcome_reply(500, "exception", "the stored request could not be read", format));
            }
            const bool fresh =
                self->on_response(conversation, *body, format, info, "from listener " + in.listener);
            self->count_received(in.listener, conversation->route->name, fresh ? "response" : "duplicate");
            // The filler hears nothing until the response and its relay are durable.
            self->store_->flush([done = std::move(done), status = in.async ? 202 : 204, format] {
              done(Reply{status, {}, format});
            });
          });
        });
  }

  // A message no route takes whose focus resources point with basedOn at a
  // request: when courier carried that request and the message comes from
  // someone else than its placer (the filler reporting on it), it is a
  // progress message of that conversation: recorded and relayed to the
  // placer, and its sender gets courier's own "ok". Otherwise it gets the
  // no-route answer it would have had.
  void accept_progress(Inbound in, Admission a, std::function<void(Reply)> done) {
    auto body = std::make_shared<const std::string>(std::move(in.body));
    std::vector<std::string> keys = a.info.based_on;
    store_->find_by_correlation(std::move(keys), [self = shared_from_this(), in = std::move(in),
                                                  a = std::move(a), body, done = std::move(done)](
                                                     std::optional<store::Conversation> row) mutable {
      asio::post(self->strand_, [self, in = std::move(in), a = std::move(a), body, done = std::move(done),
                                 row = std::move(row)]() mutable {
        ConversationPtr conversation = row ? self->conversation_from(*row) : nullptr;
        if (conversation == nullptr || conversation->route == nullptr ||
            conversation->info.source_endpoint == a.info.source_endpoint) {
          self->count_received(in.listener, "", a.outcome.c_str());
          return done(std::move(*a.rejection));
        }
        const std::string message_id = a.info.bundle_id + " " + a.info.header_id;
        const bool fresh = self->record_response(conversation, *body, a.format, message_id, "ok",
                                                 "by basedOn from listener " + in.listener);
        self->count_received(in.listener, conversation->route->name, fresh ? "progress" : "duplicate");
        if (fresh) self->reply_to_placer(conversation, Reply{200, *body, a.format}, "ok", nullptr);
        Reply answer =
            in.async ? Reply{202, {}, a.format}
            : a.info.response_request == message::ResponseRequest::never
                ? Reply{204, {}, a.format}
                : Reply{200,
                        fhir::write(message::build_response(
                                        a.info, message::ResponseSpec{"ok", {}, self->options_.public_url}),
                                    a.format),
                        a.format};
        self->store_->flush(
            [done = std::move(done), answer = std::move(answer)]() mutable { done(std::move(answer)); });
      });
    });
  }

  // ---- correlation -------------------------------------------------------

  // A resource created or updated on courier's FHIR base. When its basedOn
  // points at a request courier carried (a filler reporting on it: a
  // DiagnosticReport, a MedicationDispense, …), the placer gets it as a
  // progress message, and a report in a final state completes the
  // conversation.
  void on_resource_written(const rest::ResourceVersion& written) {
    fhir::ParseResult parsed = written.deleted ? fhir::ParseResult{} : fhir::parse_json(written.json);
    subscriptions_.on_written(written, parsed.resource ? &*parsed.resource : nullptr);
    if (!parsed.resource) return;
    auto resource = std::make_shared<const fhir::Element>(std::move(*parsed.resource));
    fire_triggers(written, *resource);
    if (written.type == "Task" && asks_to_cancel(*resource)) return on_abort_task(written, resource);
    std::vector<std::string> keys = message::based_on_keys(*resource);
    // Requests courier queued itself (tagged actionable) are work, not reports.
    if (keys.empty() || rest::is_actionable(*resource)) return;
    store_->find_by_correlation(std::move(keys), [self = shared_from_this(), written,
                                                  resource](std::optional<store::Conversation> row) {
      if (!row) return;
      asio::post(self->strand_, [self, written, resource, row = std::move(*row)] {
        ConversationPtr conversation = self->conversation_from(row);
        if (conversation == nullptr || conversation->route == nullptr) return;
        self->relay_report(conversation, written, *resource);
      });
    });
  }

  void relay_report(const ConversationPtr& conversation, const rest::ResourceVersion& written,
                    const fhir::Element& resource) {
    const std::string reference = written.type + "/" + written.id;
    const std::string status(resource.child_value("status"));
    message::ResponseSpec spec{"ok", {}, options_.public_url};
    spec.focus.emplace_back(options_.public_url + "/" + reference, resource);
    const std::string text =
        fhir::write(message::build_response(conversation->info, spec), conversation->format);
    const std::string message_id = "rest " + reference + "/_history/" + std::to_string(written.version);
    const std::string state = is_final_state(conversation->state)
                                  ? conversation->state  // an amended report, a late observation
                                  : conversation_state_for_report(status);
    const bool fresh =
        record_response(conversation, text, conversation->format, message_id, "ok",
                        "report " + reference + (status.empty() ? std::string() : " (" + status + ")") +
                            " on courier's FHIR base",
                        state, reference);
    if (fresh) reply_to_placer(conversation, Reply{200, text, conversation->format}, "ok", nullptr);
  }

  // A response or progress message for `conversation` (whichever way it
  // came): recorded, matched to the delivery waiting for it, relayed.
  // `key`: the queue whose head got this response in its HTTP answer; for a
  // response that arrived on its own, the delivery waiting for it is found.
  // A resend of a response already recorded (same Bundle.id and
  // MessageHeader.id) settles a delivery waiting for it but is not recorded
  // or relayed again; returns false for such a resend.
  bool on_response(const ConversationPtr& conversation, const std::string& body, fhir::Format format,
                   const message::MessageInfo& info, const std::string& how, std::string key = {}) {
    const std::string& code = info.response->code;
    const bool fresh =
        record_response(conversation, body, format, info.bundle_id + " " + info.header_id, code, how);
    if (key.empty()) {
      if (auto it = waiting_.find(conversation->id); it != waiting_.end()) key = it->second;
    }
    if (!key.empty()) {
      if (code == "transient-error") {
        retry_or_give_up(key, "the receiver answered transient-error", "transient-error");
      } else {
        finish(key, code == "ok" ? DeliveryState::delivered : DeliveryState::failed, code);
      }
    }
    if (!fresh) return false;
    const bool first = conversation->responses == 1;
    if (code == "transient-error" && first) {
      conversation->responses = 0;  // retried: not yet an answer for the placer
      return true;
    }
    reply_to_placer(conversation, Reply{200, body, format}, code, nullptr);
    return true;
  }

  // Records a response or progress message in the conversation's timeline,
  // once: a resend (the same `message_id`, Bundle.id and MessageHeader.id)
  // is noted as a duplicate, and false comes back.
  // `state`: the conversation's new state; by default accepted (the first
  // ok), in-progress (a later one) or rejected (fatal-error). `output`: the
  // report it carries, an output of the Task.
  bool record_response(const ConversationPtr& conversation, const std::string& body, fhir::Format format,
                       const std::string& message_id, const std::string& code, const std::string& how,
                       std::string state = {}, std::string output = {}) {
    if (!conversation->response_ids.insert(message_id).second) {
      note(conversation,
           store::Event{0, "duplicate", code + " " + how + ": a resend, already relayed", {}, 0});
      return false;
    }
    const bool first = conversation->responses++ == 0;
    if (state.empty()) {
      state = code == "fatal-error" ? "rejected" : code == "ok" ? (first ? "accepted" : "in-progress") : "";
    }
    note(conversation,
         store::Event{0, first ? "response" : "progress", code + " " + how, body, static_cast<int>(format),
                      message_id, std::move(output)},
         state);
    return true;
  }

  // Adds `event` to the conversation's timeline; a non-empty `state` is the
  // conversation's new state. Either, or an output in the event, makes a
  // new version of the conversation's Task.
  void note(const ConversationPtr& conversation, store::Event event, const std::string& state = {}) {
    if (!state.empty()) conversation->state = state;
    const bool new_task_version = !state.empty() || !event.output.empty();
    security::AuditRecord r;
    r.kind = security::AuditRecord::Kind::message;
    r.subtype = event.kind;
    r.by_courier = true;
    r.outcome = event.kind == "parked" || event.kind == "failed" ? 8 : 0;
    // Not the detail: it may quote a partner's answer, and with it patient data.
    r.outcome_text = r.outcome != 0 ? "delivery " + event.kind : "";
    r.entities.push_back("Task/" + message::task_id(conversation->id));
    r.message_id = conversation->info.bundle_id;
    audit_.record(std::move(r));
    // Published once committed, so that whoever hears of it reads it back.
    ConversationChange change{conversation->id, store::now_millis(),
                              conversation->route != nullptr ? conversation->route->name : std::string(),
                              event.kind, state};
    // Once committed, the conversation may leave memory if nothing keeps it
    // there (loaded to note a report or a cancellation, say).
    store_->add_event(conversation->id, std::move(event), state,
                      [self = weak_from_this(), change = std::move(change), new_task_version, conversation] {
                        auto impl = self.lock();
                        if (impl == nullptr) return;
                        impl->changes_.publish(change);
                        asio::post(impl->strand_, [impl, conversation, new_task_version] {
                          if (impl->stopped_) return;
                          if (new_task_version) impl->task_changed(conversation->id);
                          impl->forget_if_idle(conversation);
                        });
                      });
  }

  // A new version of a conversation's Task: subscribers to Tasks hear of it.
  // Built only for them: Tasks are read from the conversation's rows.
  void task_changed(store::Id conversation) {
    if (stopped_ || !subscriptions_.watches("Task")) return;
    const std::optional<rest::ResourceVersion> task =
        resources_.read("Task", message::task_id(conversation), std::nullopt);
    if (!task) return;
    const fhir::ParseResult parsed = fhir::parse_json(task->json);
    if (parsed.resource) subscriptions_.on_written(*task, &*parsed.resource);
  }

  // Gives the placer a response: in the HTTP answer it is waiting on, or
  // asynchronously to its address. The first one is kept for resends.
  void reply_to_placer(const ConversationPtr& conversation, Reply reply, const std::string& code,
                       std::function<void(Reply)> done) {
    const bool first = !conversation->replied;
    if (!conversation->replied) {
      conversation->replied = true;
      store_->set_reply(conversation->id,
                        store::StoredReply{reply.status, reply.body, static_cast<int>(reply.format)}, [] {});
    }
    if (done) return done(std::move(reply));
    if (!conversation->waiters.empty()) {
      if (conversation->wait_timer) conversation->wait_timer->cancel();
      for (auto& waiter : conversation->waiters) waiter(reply);
      conversation->waiters.clear();
      forget_if_idle(conversation);
      return;
    }
    if (!wanted(conversation->info.response_request, code) || conversation->reply_to.empty()) return;
    // A v2 sender hears one outcome, its application ACK: not every later
    // response or progress report.
    if (!first && is_v2_address(conversation->reply_to)) return;
    add_relay(conversation->id, conversation->reply_to, reply);
  }

  // A reply address that a v2 listener set: the answer goes back as an
  // application ACK over MLLP.
  static bool is_v2_address(const std::string& address) {
    return address.starts_with("mllp://") || address.starts_with("mllps://");
  }

  void add_relay(store::Id conversation_id, const std::string& reply_to, const Reply& reply) {
    store::NewDelivery nd;
    nd.kind = DeliveryKind::relay;
    nd.destination = reply_to;
    nd.order_key = std::to_string(conversation_id);
    nd.body = reply.body;
    nd.format = static_cast<int>(reply.format);
    store_->add_delivery(conversation_id, std::move(nd),
                         [self = shared_from_this(), conversation_id](store::Delivery d) {
                           asio::post(self->strand_, [self, d = std::move(d), conversation_id]() mutable {
                             ConversationPtr conversation = self->find_or_load(conversation_id);
                             if (conversation != nullptr) self->enqueue(std::move(d), conversation);
                           });
                         });
  }

  Reply own_response(const Conversation& conversation, const std::string& code, fhir::Issues issues) const {
    const fhir::Element response = message::build_response(
        conversation.info, message::ResponseSpec{code, std::move(issues), options_.public_url});
    return Reply{200, fhir::write(response, conversation.format), conversation.format};
  }

  // ---- delivery ----------------------------------------------------------

  // Deliveries with the same key go one at a time, in order. Messages
  // without an ordering key share one queue, or are spread over the
  // destination's `parallel` lanes when it allows more than one.
  std::string queue_key(const store::Delivery& d) const {
    if (d.kind == DeliveryKind::relay) return "relay\n" + d.destination + "\n" + d.order_key;
    std::string key = d.route + "\n" + d.destination + "\n" + d.order_key;
    if (d.order_key.empty()) {
      const route::Route* route = routes_.find(d.route);
      for (const route::Destination& destination :
           route != nullptr ? route->to : std::vector<route::Destination>{}) {
        if (destination.name == d.destination && destination.parallel > 1) {
          key += "\nlane " + std::to_string(d.conversation % destination.parallel);
        }
      }
    }
    return key;
  }

  const route::Destination* destination_of(const Queued& item) const {
    if (item.record.kind == DeliveryKind::relay || item.conversation->route == nullptr) return nullptr;
    for (const route::Destination& d : item.conversation->route->to) {
      if (d.name == item.record.destination) return &d;
    }
    return nullptr;
  }

  // `counted`: read back from its destination's backlog, where the queue
  // depth already counted it.
  void enqueue(store::Delivery d, const ConversationPtr& conversation, bool counted = false) {
    // Once only: a message accepted while the start-up resume reads the
    // unfinished deliveries can reach both.
    if (!queued_.insert(d.id).second) return;
    const std::string key = queue_key(d);
    Queue& queue = queues_[key];
    ++conversation->open_deliveries;
    if (d.kind == DeliveryKind::cancel) ++conversation->open_cancellations;
    if (d.kind == DeliveryKind::forward) ++backlog_of(d).in_memory;
    queue.items.push_back(Queued{std::move(d), conversation});
    if (!counted) update_depth(queue.items.back());
    if (!queue.busy) start_head(key);
  }

  // ---- backlogs beyond memory ---------------------------------------------
  //
  // A destination that is down, or slower than its senders, must not make
  // courier hold everything sent to it: past options_.deliveries_in_memory
  // forward deliveries of one route's destination, new ones stay in the
  // store only (the destination's backlog "spills") and are read back in
  // the order they were accepted once its queues are down to half.
  // Relays and cancellations are few and always held.

  struct Backlog {
    std::string route, destination;
    std::size_t in_memory = 0;     // its forward deliveries in queues_
    bool spilling = false;         // some are in the store only...
    store::Id loaded_through = 0;  // ...those past this id (the ones up to it were read)
    bool reading = false;          // a read-back is under way
    std::int64_t in_store_only = 0;
    // Withdrawn while in the store only: their new state may not be
    // committed when a read-back runs.
    std::unordered_set<store::Id> withdrawn;
  };

  void count_in_store_only(Backlog& b, std::int64_t delta) {
    b.in_store_only += delta;
    metrics_.set("courier_deliveries_in_store_only", {{"route", b.route}, {"destination", b.destination}},
                 static_cast<double>(b.in_store_only));
  }

  static std::string backlog_key(const std::string& route, const std::string& destination) {
    return route + "\n" + destination;
  }
  static std::string backlog_key(const store::Delivery& d) { return backlog_key(d.route, d.destination); }

  Backlog& backlog_of(const std::string& route, const std::string& destination) {
    Backlog& b = backlogs_[backlog_key(route, destination)];
    if (b.destination.empty()) b.route = route, b.destination = destination;
    return b;
  }
  Backlog& backlog_of(const store::Delivery& d) { return backlog_of(d.route, d.destination); }

  // A delivery of a conversation just accepted: into its queue, or left in
  // the store while its destination's backlog spills.
  void take(store::Delivery d, const ConversationPtr& conversation) {
    if (d.kind != DeliveryKind::forward) return enqueue(std::move(d), conversation);
    Backlog& b = backlog_of(d);
    if (d.id <= b.loaded_through) return;  // a read-back has it already
    if (!b.spilling && b.in_memory < options_.deliveries_in_memory)
      return enqueue(std::move(d), conversation);
    if (!b.spilling) {
      b.spilling = true;
      b.loaded_through = d.id - 1;
      ++spilling_backlogs_;
    }
    ++conversation->spilled_deliveries;
    count_in_store_only(b, 1);
    update_depth(b.route, b.destination, 1);
  }

  // A forward delivery left its queue: read more back when half are gone.
  void left_memory(const store::Delivery& d) {
    Backlog& b = backlog_of(d);
    --b.in_memory;
    if (b.spilling && !b.reading && b.in_memory <= options_.deliveries_in_memory / 2)
      read_back(backlog_key(d));
  }

  void read_back(const std::string& key) {
    backlogs_[key].reading = true;
    // What was queued before (the end of a delivery, a withdrawal) is
    // committed first, so that the read sees it.
    store_->flush([self = shared_from_this(), key] {
      asio::post(self->strand_, [self, key] {
        if (!self->stopped_) self->read_back_now(key);
      });
    });
  }

  void read_back_now(const std::string& key) {
    Backlog& b = backlogs_[key];
    b.reading = false;
    const std::size_t room =
        options_.deliveries_in_memory - std::min(options_.deliveries_in_memory, b.in_memory);
    if (!b.spilling || room == 0) return;
    std::vector<store::Delivery> rows =
        store_->unfinished_forwards(b.route, b.destination, b.loaded_through, static_cast<int>(room));
    // Fewer than asked: the rest are not committed yet, and their
    // acceptance will queue them (after this read, on this strand).
    if (rows.size() < room) {
      b.spilling = false;
      --spilling_backlogs_;
    }
    for (store::Delivery& d : rows) {
      b.loaded_through = d.id;
      if (b.withdrawn.count(d.id) != 0 || queued_.count(d.id) != 0) continue;
      count_in_store_only(b, -1);
      const bool held = conversations_.count(d.conversation) != 0;
      // A conversation read now counts its spilled deliveries past this one.
      ConversationPtr conversation = find_or_load(d.conversation);
      if (conversation == nullptr) continue;
      if (held) --conversation->spilled_deliveries;
      enqueue(std::move(d), conversation, true);
    }
    if (!b.spilling) b.withdrawn.clear();
  }

  // Whether a delivery, as the store has it, waits in its destination's
  // backlog in the store only.
  bool in_store_only(const store::Delivery& d) {
    if (d.kind != DeliveryKind::forward || queued_.count(d.id) != 0 ||
        (d.state != DeliveryState::pending && d.state != DeliveryState::waiting))
      return false;
    auto b = backlogs_.find(backlog_key(d));
    return b != backlogs_.end() && b->second.spilling && d.id > b->second.loaded_through &&
           b->second.withdrawn.count(d.id) == 0;
  }

  // How many of a conversation's forward deliveries are in the store only.
  int count_spilled(store::Id conversation) {
    if (spilling_backlogs_ == 0) return 0;
    const std::vector<store::Delivery> deliveries = store_->deliveries(conversation);
    return static_cast<int>(std::count_if(deliveries.begin(), deliveries.end(),
                                          [this](const store::Delivery& d) { return in_store_only(d); }));
  }

  void start_head(const std::string& key) {
    Queue& queue = queues_[key];
    if (queue.items.empty()) {
      queues_.erase(key);
      return;
    }
    queue.busy = true;
    Queued& head = queue.items.front();
    const Millis wait = head.record.next_at - store::now_millis();
    if (head.record.state == DeliveryState::waiting) {
      // Resumed after a restart while waiting for an asynchronous response.
      waiting_.emplace(head.conversation->id, key);
      arm_ack_timer(key, milliseconds(std::max<Millis>(wait, 0)));
      return;
    }
    if (wait <= 0) return attempt(key);
    if (!queue.timer) queue.timer = std::make_unique<asio::steady_timer>(strand_);
    queue.timer->expires_after(milliseconds(wait));
    queue.timer->async_wait([self = shared_from_this(), key,
                             id = head.record.id](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      // The head it was set for may have been withdrawn meanwhile.
      auto it = self->queues_.find(key);
      if (it != self->queues_.end() && !it->second.items.empty() && it->second.items.front().record.id == id)
        self->attempt(key);
    });
  }

  void attempt(const std::string& key) {
    Queue& queue = queues_[key];
    Queued& head = queue.items.front();
    delivery::Outbound out;
    std::shared_ptr<delivery::Sender> sender;
    const route::Destination* destination = destination_of(head);
    if (head.record.kind == DeliveryKind::relay) {
      out.target = head.record.destination;
      out.body = head.record.body;
      out.format = static_cast<fhir::Format>(head.record.format);
      // A v2 placer hears the answer as enhanced mode's application ACK.
      sender = sender_for(is_v2_address(out.target) ? route::Pattern::mllp : route::Pattern::messaging);
    } else if (destination == nullptr) {
      // The route or destination was removed from the route files since.
      return finish(key, DeliveryState::parked, "its destination is no longer in the routes");
    } else if (destination->pattern == route::Pattern::status) {
      return answer_status_query(key);
    } else if (route::is_rest(destination->pattern)) {
      const bool cancel = head.record.kind == DeliveryKind::cancel;
      std::string why;
      if (!rest_call(cancel ? head.record.body : message_body(*head.conversation), head.conversation->format,
                     *destination, cancel, out, why)) {
        if (cancel) return finish(key, DeliveryState::failed, "the cancellation cannot be sent: " + why);
        return fail_for_good(key, "cannot be reached by a REST call: " + why, {}, "failed");
      }
      sender = destination->endpoint.empty() ? embedded_sender_ : sender_for(destination->pattern);
      if (sender != nullptr && destination->interaction == route::Interaction::merge)
        sender = rest::make_merging_sender(std::move(sender));
    } else {
      out.body = head.record.body.empty() ? message_body(*head.conversation) : head.record.body;
      out.format = head.conversation->format;
      out.timeout = destination->ack_timeout;
      if (destination->pattern == route::Pattern::file) {
        out.target = destination->endpoint;
        out.file_name = std::to_string(head.conversation->id) + "-" + destination->name +
                        (out.format == fhir::Format::xml ? ".xml" : ".json");
      } else if (destination->pattern == route::Pattern::mllp) {
        out.target = destination->endpoint;  // the sender writes the message as HL7 v2
      } else {
        // A cancellation is always synchronous: its answer says whether it was honoured.
        const bool async = destination->async && head.record.kind != DeliveryKind::cancel;
        out.target = destination->endpoint + "/$process-message" + (async ? "?async=true" : "");
      }
      sender = sender_for(destination->pattern);
    }
    if (sender == nullptr)
      return finish(key, DeliveryState::parked, "no sender for this destination's pattern");
    ++head.record.attempts;
    queue.in_flight = true;
    sender->send(std::move(out), [self = shared_from_this(), key](delivery::SendOutcome outcome) {
      asio::post(self->strand_, [self, key, outcome = std::move(outcome)]() mutable {
        if (!self->stopped_) self->on_sent(key, std::move(outcome));
      });
    });
  }

  void on_sent(const std::string& key, delivery::SendOutcome outcome) {
    Queue& queue = queues_[key];
    queue.in_flight = false;
    Queued& head = queue.items.front();
    const ConversationPtr conversation = head.conversation;
    using Kind = delivery::SendOutcome::Kind;
    if (head.record.kind == DeliveryKind::relay) {
      if (outcome.kind == Kind::transient) return retry_or_give_up(key, outcome.error, "");
      if (outcome.kind == Kind::fatal)
        return finish(key, DeliveryState::failed, "the placer refused it: " + outcome.error);
      metrics_.add("courier_responses_relayed_total", {});
      return finish(key, DeliveryState::delivered, "relayed to the placer");
    }
    if (head.record.kind == DeliveryKind::cancel) return on_cancel_sent(key, outcome);
    switch (outcome.kind) {
      case Kind::done:
        if (const route::Destination* destination = destination_of(head);
            destination != nullptr && route::is_rest(destination->pattern)) {
          return on_rest_done(key, outcome, *destination);
        }
        finish(key, DeliveryState::delivered,
               outcome.status != 0 ? "HTTP " + std::to_string(outcome.status) : "written");
        // A destination that answers nothing (a file, a v2 receiver's AA):
        // courier's own ok, for a placer waiting on it and for a v2 sender's
        // application ACK.
        if (!conversation->waiters.empty() || is_v2_address(conversation->reply_to))
          reply_to_placer(conversation, own_response(*conversation, "ok", {}), "ok", nullptr);
        return;
      case Kind::accepted: {
        head.record.state = DeliveryState::waiting;
        waiting_.emplace(conversation->id, key);
        const route::Destination* destination = destination_of(head);
        const milliseconds timeout = destination != nullptr ? destination->ack_timeout : milliseconds(30'000);
        head.record.next_at = store::now_millis() + timeout.count();
        store_->update_delivery(head.record, [] {});
        note(
            conversation,
            store::Event{
                0, "attempt", head.record.destination + ": accepted (202), waiting for the response", {}, 0});
        return arm_ack_timer(key, timeout);
      }
      case Kind::response: {
        const std::optional<message::MessageInfo> info = response_message(outcome.body, outcome.format);
        if (!info) {
          return retry_or_give_up(key, "the receiver answered with something that is not a response message",
                                  "transient-error");
        }
        note(conversation,
             store::Event{
                 0, "attempt", head.record.destination + ": HTTP 200 with a response message", {}, 0});
        on_response(conversation, outcome.body, outcome.format, *info, "from " + head.record.destination,
                    key);
        return;
      }
      case Kind::transient: return retry_or_give_up(key, outcome.error, "transient-error");
      case Kind::fatal:
        return fail_for_good(key, "refused the message: " + outcome.error,
                             fhir::read_outcome_issues(outcome.body, outcome.format), "rejected");
    }
  }

  // The facts of the response message a receiver answered with; none when
  // its answer is not one.
  std::optional<message::MessageInfo> response_message(const std::string& body, fhir::Format format) const {
    const fhir::ParseResult parsed = fhir::parse_as(body, format, options_.limits);
    fhir::Issues issues;
    std::optional<message::MessageInfo> info;
    if (parsed.ok()) info = message::read_message_info(*parsed.resource, issues);
    if (info && !info->response) info.reset();
    return info;
  }

  // The head of `key` can never be delivered (the receiver refused it, or
  // it cannot be sent at all): it fails without retries and the placer
  // gets a fatal-error with the reason, and the receiver's own issues.
  void fail_for_good(const std::string& key, const std::string& reason, fhir::Issues receiver_issues,
                     const std::string& state) {
    Queued& head = queues_[key].items.front();
    const ConversationPtr conversation = head.conversation;
    fhir::Issues issues{fhir::Issue{fhir::Severity::error,
                                    "processing",
                                    "destination '" + head.record.destination + "' " + reason,
                                    {},
                                    std::nullopt}};
    for (fhir::Issue& issue : receiver_issues) issues.push_back(std::move(issue));
    finish(key, DeliveryState::failed, reason);
    note(conversation, store::Event{0, "outcome", "fatal-error: " + reason, {}, 0}, state);
    reply_to_placer(conversation, own_response(*conversation, "fatal-error", std::move(issues)),
                    "fatal-error", nullptr);
  }

  // Fills `out` with the REST call a rest, request or queue destination
  // makes for the conversation's message.
  bool rest_call(const std::string& message, fhir::Format format, const route::Destination& destination,
                 bool cancelling, delivery::Outbound& out, std::string& why) const {
    const fhir::ParseResult parsed = fhir::parse_as(message, format, options_.limits);
    if (!parsed.resource) {
      why = "the stored message cannot be read";
      return false;
    }
    auto call = rest::rest_call_for(*parsed.resource, destination, format, options_.public_url, cancelling);
    if (auto* error = std::get_if<std::string>(&call)) {
      why = *error;
      return false;
    }
    rest::RestCall& c = std::get<rest::RestCall>(call);
    out.method = std::move(c.method);
    out.target = destination.endpoint.empty() ? std::move(c.path)
                 : c.path.empty()             ? destination.endpoint
                                              : destination.endpoint + "/" + c.path;
    out.headers = std::move(c.headers);
    out.body = std::move(c.body);
    out.format = format;
    out.timeout = destination.ack_timeout;
    out.message_exchange = false;
    return true;
  }

  // A REST call succeeded. For `rest`, that is the delivery's end and the
  // placer hears "ok". For `request` and `queue`, the filler has the
  // request: the placer hears "ok" as its acknowledgment, and the
  // conversation waits for the filler's reports, which name the request as
  // the filler stored it (its Location).
  void on_rest_done(const std::string& key, const delivery::SendOutcome& outcome,
                    const route::Destination& destination) {
    Queued& head = queues_[key].items.front();
    const ConversationPtr conversation = head.conversation;
    const std::string location_written =
        rest::written_location(outcome.location, outcome.body, outcome.format);
    const std::string written = rest::resource_of_location(location_written);
    const std::string detail =
        "HTTP " + std::to_string(outcome.status) + (written.empty() ? std::string() : ", " + written);
    if (destination.pattern == route::Pattern::operation) {
      // The operation's answer is the response: the focus of courier's "ok".
      message::ResponseSpec spec{"ok", {}, options_.public_url};
      fhir::ParseResult answer = fhir::parse_as(outcome.body, outcome.format, options_.limits);
      if (answer.resource) spec.focus.emplace_back(std::string(), std::move(*answer.resource));
      finish(key, DeliveryState::delivered, detail);
      const Reply reply{200,
                        fhir::write(message::build_response(conversation->info, spec), conversation->format),
                        conversation->format};
      return reply_to_placer(conversation, reply, "ok", nullptr);
    }
    if (!route::awaits_events(destination.pattern)) {
      finish(key, DeliveryState::delivered, detail);
      return reply_to_placer(conversation, own_response(*conversation, "ok", {}), "ok", nullptr);
    }
    std::string location = location_written;
    if (const std::size_t history = location.find("/_history/"); history != std::string::npos)
      location.resize(history);
    std::vector<std::string> keys;
    if (!written.empty()) {
      if (destination.endpoint.empty()) {
        keys.push_back("ref " + written);
        keys.push_back("ref " + options_.public_url + "/" + written);
      } else {
        keys.push_back("ref " +
                       (location.starts_with("http") ? location : destination.endpoint + "/" + written));
      }
    }
    store_->add_correlation(conversation->id, std::move(keys), [] {});
    fhir::Issues note{fhir::Issue{fhir::Severity::information,
                                  "informational",
                                  "destination '" + destination.name + "' took the request" +
                                      (written.empty() ? std::string() : " as " + written),
                                  {},
                                  std::nullopt}};
    Reply ack = own_response(*conversation, "ok", std::move(note));
    record_response(conversation, ack.body, ack.format, "ack " + destination.name, "ok",
                    "from " + destination.name + ": " + detail);
    finish(key, DeliveryState::delivered, detail);
    reply_to_placer(conversation, std::move(ack), "ok", nullptr);
  }

  void arm_ack_timer(const std::string& key, milliseconds timeout) {
    Queue& queue = queues_[key];
    if (!queue.timer) queue.timer = std::make_unique<asio::steady_timer>(strand_);
    queue.timer->expires_after(timeout);
    const store::Id id = queue.items.front().record.id;
    queue.timer->async_wait([self = shared_from_this(), key, id](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      auto it = self->queues_.find(key);
      if (it == self->queues_.end() || it->second.items.empty()) return;
      Queued& head = it->second.items.front();
      if (head.record.id != id || head.record.state != DeliveryState::waiting) return;
      const route::Destination* destination = self->destination_of(head);
      self->retry_or_give_up(key, "no response within the ack timeout",
                             destination != nullptr ? destination->timeout_code : "transient-error");
    });
  }

  // After a transient failure: try again later, or park/fail the delivery
  // and tell the placer `code` (when non-empty).
  void retry_or_give_up(const std::string& key, const std::string& reason, const std::string& code) {
    Queue& queue = queues_[key];
    Queued& head = queue.items.front();
    const route::Destination* destination = destination_of(head);
    const route::RetryPolicy& retry = destination != nullptr ? destination->retry : options_.relay_retry;
    stop_waiting(key, head);
    const Labels labels{{"route", route_name(head)}, {"destination", destination_label(head)}};
    if (head.record.attempts < retry.attempts) {
      const milliseconds delay = retry.delay_after(head.record.attempts, jitter_(random_));
      head.record.state = DeliveryState::pending;
      head.record.next_at = store::now_millis() + delay.count();
      store_->update_delivery(head.record, [] {});
      note(head.conversation,
           store::Event{0,
                        "attempt",
                        destination_label(head) + ": attempt " + std::to_string(head.record.attempts) +
                            " failed (" + reason + "); next in " + duration_text(delay),
                        {},
                        0});
      metrics_.add(
          "courier_deliveries_total",
          {{"route", route_name(head)}, {"destination", destination_label(head)}, {"outcome", "retry"}});
      metrics_.add("courier_delivery_retries_total", labels);
      return start_head(key);
    }
    const bool park = destination == nullptr || destination->on_exhausted == route::OnExhausted::park;
    const ConversationPtr conversation = head.conversation;
    const std::string detail =
        "gave up after " + std::to_string(head.record.attempts) + " attempts: " + reason;
    const bool relay = head.record.kind == DeliveryKind::relay;
    finish(key, park ? DeliveryState::parked : DeliveryState::failed, detail);
    if (!relay && !code.empty()) {
      fhir::Issues issues{fhir::Issue{
          fhir::Severity::error,
          code == "fatal-error" ? "processing" : "timeout",
          "destination '" + (destination != nullptr ? destination->name : std::string()) + "': " + detail,
          {},
          std::nullopt}};
      // Parked, it waits for an operator's replay; otherwise it is over.
      note(conversation, store::Event{0, "outcome", code + ": " + detail, {}, 0},
           park ? "on-hold" : "failed");
      reply_to_placer(conversation, own_response(*conversation, code, std::move(issues)), code, nullptr);
    }
  }

  void stop_waiting(const std::string& key, const Queued& head) {
    if (head.record.state != DeliveryState::waiting) return;
    auto [first, last] = waiting_.equal_range(head.conversation->id);
    for (auto it = first; it != last; ++it) {
      if (it->second == key) {
        waiting_.erase(it);
        return;
      }
    }
  }

  // The head of `key` is done: record it and start the next one.
  void finish(const std::string& key, DeliveryState state, const std::string& detail) {
    Queue& queue = queues_[key];
    stop_waiting(key, queue.items.front());
    Queued head = std::move(queue.items.front());
    queue.items.pop_front();
    queue.busy = false;
    queued_.erase(head.record.id);
    if (head.record.kind == DeliveryKind::forward) left_memory(head.record);
    head.record.state = state;
    store_->update_delivery(head.record, [] {});
    const std::string kind =
        head.record.kind == DeliveryKind::relay ? "relayed" : std::string(store::to_string(state));
    const bool all_done =
        --head.conversation->open_deliveries == 0 && head.conversation->spilled_deliveries == 0;
    const bool completed = all_done && state == DeliveryState::delivered &&
                           head.conversation->responses == 0 && head.record.kind == DeliveryKind::forward;
    note(head.conversation, store::Event{0, kind, destination_label(head) + ": " + detail, {}, 0},
         completed                        ? "completed"
         : state == DeliveryState::parked ? "on-hold"
                                          : "");
    const Labels labels{{"route", route_name(head)}, {"destination", destination_label(head)}};
    metrics_.add("courier_deliveries_total", {{"route", route_name(head)},
                                              {"destination", destination_label(head)},
                                              {"outcome", std::string(store::to_string(state))}});
    if (state == DeliveryState::parked) metrics_.add("courier_dead_letters_total", labels);
    if (state == DeliveryState::delivered && head.record.kind == DeliveryKind::forward) {
      const Millis now = store::now_millis();
      const auto latency_ms = static_cast<double>(now - head.conversation->received_at);
      metrics_.observe("courier_delivery_latency_seconds", labels, latency_ms / 1000.0);
      latency_.record(route_name(head), latency_ms, now);
    }
    update_depth(head, -1);
    if (head.record.kind == DeliveryKind::cancel) cancellation_settled(head.conversation, state, detail);
    forget_if_idle(head.conversation);
    start_head(key);
  }

  // Nothing more can happen to the conversation without a message from
  // outside, or a delivery read back from its destination's backlog in the
  // store, either of which reloads it: it need not stay in memory.
  void forget_if_idle(const ConversationPtr& conversation) {
    // Only deliveries send the message: while a conversation waits for
    // anything else (a response) its 4 KB need not wait too.
    if (conversation->open_deliveries == 0 && conversation->open_cancellations == 0)
      conversation->body.reset();
    if (conversation->open_deliveries == 0 && conversation->waiters.empty() &&
        conversation->open_cancellations == 0) {
      // Not a newer copy loaded since this one was let go.
      if (auto it = conversations_.find(conversation->id);
          it != conversations_.end() && it->second == conversation) {
        conversations_.erase(it);
        count_in_memory();
      }
    }
  }

  void count_in_memory() {
    metrics_.set("courier_conversations_in_memory", {}, static_cast<double>(conversations_.size()));
  }

  // The message itself, read back from the store when forget_if_idle let it go.
  const std::string& message_body(Conversation& conversation) {
    if (!conversation.body) {
      std::optional<store::Conversation> row = store_->conversation(conversation.id);
      conversation.body = std::make_shared<const std::string>(row ? std::move(row->body) : std::string());
    }
    return *conversation.body;
  }

  // ---- status queries ----------------------------------------------------

  // A status query by message: its focus names a request courier carried
  // (by id, absolute fullUrl or identifier); the answer is that conversation's Task,
  // as it stands, as the focus of an "ok" response.
  void answer_status_query(const std::string& key) {
    const ConversationPtr query = queues_[key].items.front().conversation;
    ++queues_[key].items.front().record.attempts;
    queues_[key].in_flight = true;
    store_->find_by_correlation(query->info.focus_keys, [self = shared_from_this(), key,
                                                         query](std::optional<store::Conversation> row) {
      asio::post(self->strand_, [self, key, query, row = std::move(row)] {
        if (self->stopped_) return;
        self->queues_[key].in_flight = false;
        if (!row) {
          return self->fail_for_good(
              key, "found no request courier carried that the message's focus names",
              {fhir::Issue{fhir::Severity::error,
                           "not-found",
                           "no request courier carried matches the focus (by id, fullUrl or identifier)",
                           {},
                           std::nullopt}},
              "rejected");
        }
        // The Task as it stands: with the steps noted so far committed.
        self->queues_[key].in_flight = true;
        self->store_->flush([self, key, query, id = message::task_id(row->id)] {
          asio::post(self->strand_, [self, key, query, id] {
            if (self->stopped_) return;
            self->queues_[key].in_flight = false;
            const std::optional<rest::ResourceVersion> task = self->store_->resources().read("Task", id);
            fhir::ParseResult parsed = task ? fhir::parse_json(task->json) : fhir::ParseResult{};
            if (!parsed.resource)
              return self->retry_or_give_up(key, "the Task could not be read", "transient-error");
            message::ResponseSpec spec{"ok", {}, self->options_.public_url};
            spec.focus.emplace_back(self->options_.public_url + "/Task/" + id, std::move(*parsed.resource));
            self->finish(key, DeliveryState::delivered, "answered with Task/" + id);
            const Reply reply{200, fhir::write(message::build_response(query->info, spec), query->format),
                              query->format};
            self->reply_to_placer(query, reply, "ok", nullptr);
          });
        });
      });
    });
  }

  // ---- REST triggers -----------------------------------------------------

  // A resource written to the store that a route's trigger matches becomes
  // a message for that route (not when courier wrote it itself).
  void fire_triggers(const rest::ResourceVersion& written, const fhir::Element& resource) {
    if (rest::written_by(resource, options_.public_url)) return;
    for (const route::Route& route : routes_.routes) {
      if (!route.trigger || route.trigger->query.type != written.type) continue;
      if (!rest::current_matches(store_->resources(), route.trigger->query, written.id)) continue;
      trigger(route, resource, written.version);
    }
  }

  void trigger(const route::Route& route, const fhir::Element& resource, std::int64_t version) {
    const route::RestTrigger& t = *route.trigger;
    const message::TriggerSpec spec{route.name, t.event_system, t.event_code, options_.public_url,
                                    std::to_string(version)};
    Inbound in;
    in.listener = "rest-trigger";
    in.body = fhir::write_json(message::build_trigger_message(resource, spec));
    in.format = fhir::Format::json;
    in.async = true;  // nobody waits: the conversation's Task tells how it goes
    in.trigger_route = route.name;
    accept(std::move(in), [](Reply) {});
  }

  // After a restart: what the triggers may have missed while courier was
  // down (written within the reliable-messaging window; a message already
  // made is recognised by its ids and not made again).
  void catch_up_triggers() {
    const Millis since = store::now_millis() - options_.reliable_cache.count();
    for (const route::Route& route : routes_.routes) {
      if (!route.trigger) continue;
      rest::SearchQuery query = route.trigger->query;
      query.criteria.push_back(
          rest::Criterion{rest::Criterion::Kind::last_updated, "_lastUpdated", {}, "ge", since});
      query.count = 500;
      query.total = rest::SearchQuery::Total::none;
      for (bool more = true; more; query.offset += query.count) {
        const rest::SearchResult found = store_->resources().search(query);
        for (const rest::ResourceVersion& v : found.page) {
          fhir::ParseResult parsed = fhir::parse_json(v.json);
          if (parsed.resource && !rest::written_by(*parsed.resource, options_.public_url))
            trigger(route, *parsed.resource, v.version);
        }
        more = found.more;
      }
    }
  }

  // ---- cancellation ------------------------------------------------------

  // The placer cancels its request by setting the conversation's Task to
  // cancelled. Deliveries not yet made are withdrawn; each destination
  // that has the request is told, in its own terms (a message with the
  // request revoked; the request updated to revoked at a REST filler). When
  // every one honoured it, the conversation is cancelled; otherwise its
  // Task says who did not, and why.
  // Filler-owned cancellation: a Task (code abort) asking the filler to
  // cancel the request it focuses on.
  struct AbortTask {
    std::string id;
    std::shared_ptr<const fhir::Element> task;
  };

  void request_cancellation(store::Id id, std::optional<AbortTask> abort = std::nullopt) {
    ConversationPtr conversation = find_or_load(id);
    if (conversation == nullptr || conversation->route == nullptr) return;
    const std::string& state = conversation->state;
    if (conversation->open_cancellations > 0) return;  // already under way
    if (is_final_state(state)) {
      note(conversation,
           store::Event{0, "cancel", "cancellation refused: the request is already " + state, {}, 0}, state);
      if (abort) set_task_status(abort->id, "rejected", "the request is already " + state);
      return;
    }
    conversation->cancel_refusals.clear();
    conversation->abort_task = abort ? abort->id : std::string();
    conversation->awaiting_filler = false;
    note(conversation,
         store::Event{
             0,
             "cancel",
             abort ? "cancellation asked by Task/" + abort->id : "cancellation requested through its Task",
             {},
             0},
         state);
    const std::set<std::string> withdrawn = withdraw_undelivered(conversation);
    const fhir::ParseResult parsed = fhir::parse_as(message_body(*conversation), conversation->format);
    const std::string cancellation =
        parsed.resource
            ? fhir::write(message::build_cancellation(
                              *parsed.resource, options_.public_url, abort ? abort->task.get() : nullptr,
                              abort ? options_.public_url + "/Task/" + abort->id : ""),
                          conversation->format)
            : std::string();
    int told = 0;
    for (const store::Delivery& forward : store_->deliveries(id)) {
      if (forward.kind != DeliveryKind::forward || withdrawn.count(forward.destination) != 0 ||
          forward.state == DeliveryState::failed)
        continue;  // never had it
      const route::Destination* destination = nullptr;
      for (const route::Destination& d : conversation->route->to)
        if (d.name == forward.destination) destination = &d;
      if (destination == nullptr || destination->pattern == route::Pattern::file ||
          destination->pattern == route::Pattern::operation || destination->pattern == route::Pattern::mllp) {
        conversation->cancel_refusals.push_back(forward.destination + " cannot take back what it was sent");
        continue;
      }
      if (abort && route::awaits_events(destination->pattern)) {
        // A REST filler answers by updating the Task: in courier's store,
        // where a queue's filler finds it already; a request's filler gets it.
        conversation->awaiting_filler = true;
        if (destination->pattern == route::Pattern::queue) continue;
      }
      store::NewDelivery nd;
      nd.kind = DeliveryKind::cancel;
      nd.destination = forward.destination;
      nd.order_key = forward.order_key;  // behind the request, in the same queue
      nd.body = cancellation;
      nd.format = static_cast<int>(conversation->format);
      ++told;
      ++conversation->open_cancellations;  // counted now, so that the first to settle does not conclude
      store_->add_delivery(id, std::move(nd), [self = shared_from_this(), conversation](store::Delivery d) {
        asio::post(self->strand_, [self, conversation, d = std::move(d)]() mutable {
          --conversation->open_cancellations;  // enqueue counts it again
          self->enqueue(std::move(d), conversation);
        });
      });
    }
    if (told == 0) conclude_cancellation(conversation);
  }

  static bool asks_to_cancel(const fhir::Element& task) {
    const fhir::Element* code = task.child("code");
    for (const fhir::Element* coding :
         code != nullptr ? code->children_named("coding") : std::vector<const fhir::Element*>{}) {
      if (coding->child_value("system") == "http://hl7.org/fhir/CodeSystem/task-code" &&
          coding->child_value("code") == "abort")
        return true;
    }
    return false;
  }

  // A Task asking to cancel a request courier carried (its focus: the
  // request, or the conversation's own Task): new, it is forwarded to the
  // fillers; completed, the conversation is cancelled; rejected or failed,
  // the conversation goes on and its Task says so.
  void on_abort_task(const rest::ResourceVersion& written, std::shared_ptr<const fhir::Element> task) {
    const fhir::Element* focus = task->child("focus");
    const std::string reference(focus != nullptr ? focus->child_value("reference") : "");
    if (reference.empty()) return;
    auto act = [self = shared_from_this(), written, task](std::optional<store::Id> id) {
      if (!id || self->stopped_) return;
      const std::string status(task->child_value("status"));
      if (status == "requested" || status == "ready" || status == "received") {
        if (written.version == 1) self->request_cancellation(*id, AbortTask{written.id, task});
        return;
      }
      ConversationPtr conversation = self->find_or_load(*id);
      if (conversation == nullptr || conversation->route == nullptr) return;
      const bool settled =
          status == "completed" || status == "rejected" || status == "failed" || status == "cancelled";
      if (!settled) return;  // the filler is still at it
      conversation->abort_task.clear();
      if (status == "completed") {
        self->note(conversation,
                   store::Event{
                       0, "outcome", "cancelled: Task/" + written.id + " asking for it is completed", {}, 0},
                   "cancelled");
      } else {
        const fhir::Element* reason = task->child("statusReason");
        const std::string why(reason != nullptr ? reason->child_value("text") : "");
        self->note(conversation,
                   store::Event{0,
                                "outcome",
                                "cancellation not honoured: Task/" + written.id + " is " + status +
                                    (why.empty() ? std::string() : " (" + why + ")"),
                                {},
                                0},
                   conversation->state);
      }
    };
    if (const store::Id own = message::conversation_of_task(fhir::reference_type_and_id(reference).second);
        reference.find("Task/") != std::string::npos && own != 0)
      return act(own);
    store_->find_by_correlation(
        {"ref " + reference}, [self = shared_from_this(), act](std::optional<store::Conversation> row) {
          asio::post(self->strand_,
                     [act, id = row ? std::optional<store::Id>(row->id) : std::nullopt] { act(id); });
        });
  }

  // A client's write of a conversation's Task: its placer may set the
  // status to cancelled, which asks courier to cancel the request; the rest
  // of the Task is courier's. The answer is the Task once the request for
  // cancellation is noted (its status changes when the fillers answer).
  void placer_writes_task(rest::Write write, std::function<void(rest::WriteResult)> done) {
    using Outcome = rest::WriteResult::Outcome;
    const std::optional<rest::ResourceVersion> current = resources_.read("Task", write.id, std::nullopt);
    if (!current)
      return done(
          {Outcome::refused,
           {},
           "Task/" + write.id + " is no conversation's; Tasks named conversation-N are courier's own"});
    if (write.kind != rest::Write::Kind::update)
      return done({Outcome::refused, *current,
                   "a conversation's Task follows the conversation and cannot be deleted; set its status to "
                   "cancelled to cancel the request"});
    if (write.expected_version && *write.expected_version != current->version)
      return done({Outcome::conflict, *current, {}});
    const fhir::ParseResult parsed = fhir::parse_json(current->json);
    const std::string_view status = write.resource ? write.resource->child_value("status") : "";
    if (parsed.resource && status == parsed.resource->child_value("status"))
      return done({Outcome::unchanged, *current, {}});
    const std::string changed = parsed.resource && write.resource
                                    ? changed_element(*parsed.resource, *write.resource)
                                    : std::string();
    if (status != "cancelled" || !changed.empty())
      return done({Outcome::refused, *current,
                   "courier keeps a conversation's Task itself: its placer may only set its status to "
                   "cancelled, to cancel the request" +
                       (changed.empty() ? std::string() : " (this version changes " + changed + " too)")});
    if (const std::string_view now = parsed.resource ? parsed.resource->child_value("status") : "";
        is_final_state(now))
      return done({Outcome::refused, *current,
                   "the request is " + std::string(now) + " already: there is nothing left to cancel"});
    request_cancellation(message::conversation_of_task(write.id));
    store_->flush([self = shared_from_this(), id = write.id, done = std::move(done)]() mutable {
      asio::post(self->strand_, [self, id, done = std::move(done)] {
        std::optional<rest::ResourceVersion> task = self->resources_.read("Task", id, std::nullopt);
        if (!task) return done({Outcome::failed, {}, "the Task could not be read back"});
        done({Outcome::updated, std::move(*task), {}});
      });
    });
  }

  // Sets a Task's status (and statusReason), as a new version through the
  // observed store, unless it changed meanwhile.
  void set_task_status(const std::string& id, const std::string& status, const std::string& reason) {
    const std::optional<rest::ResourceVersion> current = resources_.read("Task", id, std::nullopt);
    fhir::ParseResult parsed =
        current && !current->deleted ? fhir::parse_json(current->json) : fhir::ParseResult{};
    if (!parsed.resource) return;
    fhir::Element& task = *parsed.resource;
    if (fhir::Element* s = task.child("status")) s->set_value(status);
    if (!reason.empty() && task.child("statusReason") == nullptr)
      task.child_or_add("statusReason").add_value("text", reason);
    rest::mark_written_by(task, options_.public_url);
    rest::Write write;
    write.kind = rest::Write::Kind::update;
    write.type = "Task";
    write.id = id;
    write.expected_version = current->version;
    write.index = rest::index_entries(task);
    write.resource = std::move(task);
    resources_.write(std::move(write), [](const rest::WriteResult&) {});
  }

  // Takes the conversation's forward deliveries that no destination has
  // yet out of their queues (those waiting to be tried or retried, and
  // parked ones); returns their destinations.
  std::set<std::string> withdraw_undelivered(const ConversationPtr& conversation) {
    std::set<std::string> withdrawn;
    std::vector<std::string> heads;
    for (auto& [key, queue] : queues_) {
      for (auto it = queue.items.begin(); it != queue.items.end();) {
        const store::Delivery& d = it->record;
        const bool head = it == queue.items.begin() && queue.busy;
        if (d.conversation != conversation->id || d.kind != DeliveryKind::forward) {
          ++it;
        } else if (head) {
          // Only a head waiting for its retry can be stopped; one in flight,
          // or waiting for its asynchronous response, is the filler's now.
          if (!queue.in_flight && d.state == DeliveryState::pending) heads.push_back(key);
          ++it;
        } else {
          store::Delivery record = it->record;
          record.state = DeliveryState::failed;
          store_->update_delivery(record, [] {});
          note(conversation,
               store::Event{0, "failed", record.destination + ": withdrawn before delivery", {}, 0});
          withdrawn.insert(record.destination);
          update_depth(*it, -1);
          --conversation->open_deliveries;
          queued_.erase(record.id);
          left_memory(record);
          it = queue.items.erase(it);
        }
      }
    }
    // Those still in their destination's backlog in the store.
    if (conversation->spilled_deliveries > 0) {
      for (store::Delivery record : store_->deliveries(conversation->id)) {
        // One waiting for its asynchronous response is the filler's now.
        if (!in_store_only(record) || record.state != DeliveryState::pending) continue;
        Backlog& b = backlog_of(record);
        count_in_store_only(b, -1);
        b.withdrawn.insert(record.id);
        record.state = DeliveryState::failed;
        store_->update_delivery(record, [] {});
        note(conversation,
             store::Event{0, "failed", record.destination + ": withdrawn before delivery", {}, 0});
        withdrawn.insert(record.destination);
        --conversation->spilled_deliveries;
        update_depth(b.route, b.destination, -1);
      }
    }
    for (const std::string& key : heads) {
      withdrawn.insert(queues_[key].items.front().record.destination);
      if (queues_[key].timer) queues_[key].timer->cancel();
      finish(key, DeliveryState::failed, "withdrawn before delivery");
    }
    for (const store::Delivery& d : store_->deliveries(conversation->id)) {
      if (d.kind != DeliveryKind::forward || d.state != DeliveryState::parked) continue;
      store::Delivery record = d;
      record.state = DeliveryState::failed;
      store_->update_delivery(record, [] {});
      note(conversation, store::Event{0, "failed", d.destination + ": parked delivery withdrawn", {}, 0});
      withdrawn.insert(d.destination);
    }
    return withdrawn;
  }

  void on_cancel_sent(const std::string& key, const delivery::SendOutcome& outcome) {
    using Kind = delivery::SendOutcome::Kind;
    switch (outcome.kind) {
      case Kind::done:
      case Kind::accepted:
        return finish(key, DeliveryState::delivered,
                      "cancellation taken (HTTP " + std::to_string(outcome.status) + ")");
      case Kind::response: {
        const std::optional<message::MessageInfo> info = response_message(outcome.body, outcome.format);
        const std::string code = info ? info->response->code : "";
        if (code == "ok") return finish(key, DeliveryState::delivered, "cancellation honoured (ok)");
        if (code == "transient-error")
          return retry_or_give_up(key, "the receiver answered transient-error", "");
        return finish(key, DeliveryState::failed,
                      "cancellation refused (" + (code.empty() ? "no response message" : code) + ")" +
                          fhir::outcome_summary(outcome.body, outcome.format));
      }
      case Kind::transient: return retry_or_give_up(key, outcome.error, "");
      case Kind::fatal: return finish(key, DeliveryState::failed, "cancellation refused: " + outcome.error);
    }
  }

  void cancellation_settled(const ConversationPtr& conversation, DeliveryState state,
                            const std::string& detail) {
    if (state != DeliveryState::delivered) conversation->cancel_refusals.push_back(detail);
    if (--conversation->open_cancellations == 0) conclude_cancellation(conversation);
  }

  void conclude_cancellation(const ConversationPtr& conversation) {
    if (!conversation->abort_task.empty()) {
      // Filler-owned: the Task asking to cancel carries the answer; its
      // update (observed) moves the conversation on.
      if (!conversation->cancel_refusals.empty()) {
        std::string why;
        for (const std::string& refusal : conversation->cancel_refusals)
          why += (why.empty() ? "" : "; ") + refusal;
        return set_task_status(conversation->abort_task, "rejected", why);
      }
      if (!conversation->awaiting_filler)
        return set_task_status(conversation->abort_task, "completed", "every destination honoured it");
      note(conversation,
           store::Event{0,
                        "cancel",
                        "waiting for the filler to complete or reject Task/" + conversation->abort_task,
                        {},
                        0},
           conversation->state);
      return;
    }
    if (conversation->cancel_refusals.empty()) {
      note(conversation, store::Event{0, "outcome", "cancelled: every destination honoured it", {}, 0},
           "cancelled");
      return;
    }
    std::string why;
    for (const std::string& refusal : conversation->cancel_refusals)
      why += (why.empty() ? "" : "; ") + refusal;
    note(conversation, store::Event{0, "outcome", "cancellation not honoured: " + why, {}, 0},
         conversation->state);
  }

  // ---- restart, replay ---------------------------------------------------

  ConversationPtr conversation_from(const store::Conversation& row) {
    if (auto it = conversations_.find(row.id); it != conversations_.end()) return it->second;
    auto conversation = std::make_shared<Conversation>();
    conversation->id = row.id;
    conversation->format = static_cast<fhir::Format>(row.format);
    fhir::ParseResult parsed = fhir::parse_as(row.body, conversation->format);
    fhir::Issues issues;
    std::optional<message::MessageInfo> info;
    if (parsed.resource) info = message::read_message_info(*parsed.resource, issues);
    if (!info) return nullptr;
    conversation->body = std::make_shared<const std::string>(row.body);
    conversation->info = std::move(*info);
    conversation->route = routes_.find(row.route);
    conversation->reply_to = row.reply_to;
    conversation->received_at = row.received_at;
    conversation->replied = row.reply.has_value();
    // Responses from receivers; courier's own reply (an ok for a file
    // destination, a transient-error after the retries) is none.
    conversation->responses = static_cast<int>(row.response_ids.size());
    conversation->response_ids.insert(row.response_ids.begin(), row.response_ids.end());
    conversation->state = row.state;
    conversation->spilled_deliveries = count_spilled(row.id);
    conversations_[row.id] = conversation;
    count_in_memory();
    return conversation;
  }

  ConversationPtr find_or_load(store::Id id) {
    if (auto it = conversations_.find(id); it != conversations_.end()) return it->second;
    const std::optional<store::Conversation> row = store_->conversation(id);
    return row ? conversation_from(*row) : nullptr;
  }

  void resume() {
    subscriptions_.start();
    catch_up_triggers();
    // Forwards are read back destination by destination, as much as
    // memory holds; relays and cancellations all at once.
    std::vector<std::string> spilled;
    for (const store::Backlog& found : store_->unfinished_forward_backlogs()) {
      Backlog& b = backlog_of(found.route, found.destination);
      b.spilling = true;
      ++spilling_backlogs_;
      count_in_store_only(b, found.count);
      spilled.push_back(backlog_key(found.route, found.destination));
      update_depth(found.route, found.destination, found.count);  // read back as counted
    }
    for (store::Delivery& d : store_->unfinished_deliveries(false)) {
      if (ConversationPtr conversation = find_or_load(d.conversation)) {
        enqueue(std::move(d), conversation);
      }
    }
    for (const std::string& key : spilled) read_back_now(key);
  }

  // A pending delivery waiting for its retry is tried at once. Its
  // attempts so far still count.
  void retry_now(store::Id id) {
    for (auto& [key, queue] : queues_) {
      if (queue.items.empty() || queue.items.front().record.id != id) continue;
      Queued& head = queue.items.front();
      if (queue.in_flight || head.record.state != DeliveryState::pending) return;
      if (queue.timer) queue.timer->cancel();
      note(head.conversation,
           store::Event{0, "retry", destination_label(head) + ": retried now by an operator", {}, 0});
      head.record.next_at = store::now_millis();
      return attempt(std::string(key));
    }
  }

  bool replay(store::Id id, std::string& error) {
    std::optional<store::Delivery> d = admin::reopen_parked(*store_, id, error);
    if (!d) return false;
    asio::post(strand_, [self = shared_from_this(), d = std::move(*d)]() mutable {
      if (ConversationPtr conversation = self->find_or_load(d.conversation))
        self->enqueue(std::move(d), conversation);
    });
    return true;
  }

  // ---- helpers -----------------------------------------------------------

  std::shared_ptr<delivery::Sender> sender_for(route::Pattern pattern) const {
    auto it = senders_.find(pattern);
    return it == senders_.end() ? nullptr : it->second;
  }

  static std::string route_name(const Queued& item) {
    return item.conversation->route != nullptr ? item.conversation->route->name : item.record.route;
  }
  static std::string destination_label(const Queued& item) {
    return item.record.kind == DeliveryKind::relay ? "placer" : item.record.destination;
  }

  void update_depth(const Queued& item, int delta = 1) {
    update_depth(route_name(item), destination_label(item), delta);
  }
  void update_depth(const std::string& route, const std::string& destination, std::int64_t delta) {
    const std::int64_t depth = depth_[backlog_key(route, destination)] += delta;
    metrics_.set("courier_delivery_queue_depth", {{"route", route}, {"destination", destination}},
                 static_cast<double>(depth));
  }

  void count_received(const std::string& listener, const std::string& route, const char* outcome) {
    metrics_.add("courier_messages_received_total",
                 {{"listener", listener}, {"route", route}, {"outcome", outcome}});
  }

  static std::string strip_slash(std::string url) {
    while (url.ends_with('/')) url.pop_back();
    return url;
  }

  // The message with MessageHeader.source.endpoint set to courier, so that
  // an asynchronous filler sends its responses here.
  std::string with_source_endpoint(const fhir::Element& bundle, fhir::Format format) const {
    fhir::Element copy = bundle;
    fhir::Element* header = copy.child("entry")->child("resource");
    header->child_or_add("source").child_or_add("endpoint").set_value(options_.public_url);
    return fhir::write(copy, format);
  }

  asio::strand<asio::any_io_executor> strand_;
  EngineOptions options_;
  route::RouteSet routes_;
  std::unique_ptr<store::Store> store_;
  Senders senders_;
  // The FHIR REST store as peers and rest/queue destinations reach it.
  rest::ObservedResourceStore resources_;
  ClientResources client_resources_;  // what rest_api_ serves
  rest::RestApi rest_api_;
  std::shared_ptr<delivery::Sender> embedded_sender_;
  rest::SubscriptionHub subscriptions_;
  Metrics metrics_;
  std::unordered_map<store::Id, ConversationPtr> conversations_;
  std::map<std::string, Queue> queues_;
  std::unordered_set<store::Id> queued_;               // the deliveries in queues_, by id
  std::unordered_map<std::string, Backlog> backlogs_;  // by backlog_key
  int spilling_backlogs_ = 0;

  // Conversation → queue whose head waits for that conversation's response.
  std::unordered_multimap<store::Id, std::string> waiting_;
  std::map<std::string, std::int64_t> depth_;  // by backlog_key
  std::mt19937_64 random_{std::random_device{}()};
  std::uniform_real_distribution<double> jitter_{0.0, 1.0};
  std::atomic<bool> stopped_ = false;
  security::AuditTrail audit_;
  ChangeFeed changes_;
  LatencyHistory latency_;
  OperatorInfo operator_info_;

  friend class Engine;
};

Engine::Engine(asio::any_io_executor executor, EngineOptions options, route::RouteSet routes,
               std::unique_ptr<store::Store> store, Senders senders)
    : impl_(std::make_shared<Impl>(executor, std::move(options), std::move(routes), std::move(store),
                                   std::move(senders))) {}

Engine::~Engine() {
  stop();
}

void Engine::set_public_url(std::string url) {
  if (!url.empty()) impl_->options_.public_url = std::move(url);
}

void Engine::start() {
  asio::post(impl_->strand_, [impl = impl_] { impl->resume(); });
}

void Engine::stop() {
  if (impl_->stopped_) return;
  // Timers and callbacks check the flag on the strand; the store finishes
  // what is queued (its callbacks are then dropped with the executor).
  auto stopped = std::make_shared<std::promise<void>>();
  asio::post(impl_->strand_, [impl = impl_, stopped] {
    impl->audit_.stop();
    impl->stopped_ = true;
    impl->subscriptions_.stop();
    for (auto& [key, queue] : impl->queues_) {
      if (queue.timer) queue.timer->cancel();
    }
    for (auto& [id, conversation] : impl->conversations_) {
      if (conversation->wait_timer) conversation->wait_timer->cancel();
    }
    stopped->set_value();
  });
  if (stopped->get_future().wait_for(std::chrono::seconds(5)) != std::future_status::ready)
    impl_->stopped_ = true;
  impl_->store_->close();
  for (const auto& [pattern, sender] : impl_->senders_) sender->stop();
}

void Engine::accept(Inbound message, std::function<void(Reply)> done) {
  impl_->accept(std::move(message), std::move(done));
}

void Engine::audit(security::AuditRecord record) {
  impl_->audit_.record(std::move(record));
}

void Engine::rest(rest::RestRequest request, std::function<void(rest::RestResponse)> done) {
  if (request.segments.empty() || request.segments.front() != "Task")
    return impl_->rest_api_.handle(std::move(request), std::move(done));
  // About Tasks: the conversations' steps noted so far are committed
  // first, so that their Tasks show them.
  impl_->store_->flush([impl = impl_, request = std::move(request), done = std::move(done)]() mutable {
    asio::post(impl->strand_, [impl, request = std::move(request), done = std::move(done)]() mutable {
      impl->rest_api_.handle(std::move(request), std::move(done));
    });
  });
}

bool Engine::replay(store::Id delivery, std::string& error) {
  return impl_->replay(delivery, error);
}

bool Engine::retry_now(store::Id delivery, std::string& error) {
  const std::optional<store::Delivery> d = impl_->store_->delivery(delivery);
  if (!d) {
    error = "there is no delivery " + std::to_string(delivery);
    return false;
  }
  if (d->state != store::DeliveryState::pending) {
    error = "delivery " + std::to_string(delivery) + " is " + std::string(store::to_string(d->state)) +
            ", not waiting for a retry";
    return false;
  }
  asio::post(impl_->strand_, [impl = impl_, delivery] { impl->retry_now(delivery); });
  return true;
}

bool Engine::cancel(store::Id conversation, std::string& error) {
  const std::optional<store::Conversation> c = impl_->store_->conversation(conversation);
  if (!c) {
    error = "there is no conversation " + std::to_string(conversation);
    return false;
  }
  asio::post(impl_->strand_, [impl = impl_, conversation] { impl->request_cancellation(conversation); });
  return true;
}

ChangeFeed& Engine::changes() {
  return impl_->changes_;
}
const LatencyHistory& Engine::latency() const {
  return impl_->latency_;
}
void Engine::set_operator_info(OperatorInfo info) {
  impl_->operator_info_ = std::move(info);
}
const OperatorInfo& Engine::operator_info() const {
  return impl_->operator_info_;
}

Metrics& Engine::metrics() {
  return impl_->metrics_;
}
store::Store& Engine::store() {
  return *impl_->store_;
}
const route::RouteSet& Engine::routes() const {
  return impl_->routes_;
}
const EngineOptions& Engine::options() const {
  return impl_->options_;
}

fhir::Element Engine::capability_statement() const {
  fhir::Element cs = fhir::Element::resource("CapabilityStatement");
  cs.add_value("status", "active");
  cs.add_value("date", message::instant_now().substr(0, 10));
  cs.add_value("kind", "instance");
  fhir::Element& software = cs.add("software");
  software.add_value("name", "courier");
  software.add_value("version", "0.1.0");
  fhir::Element& implementation = cs.add("implementation");
  implementation.add_value("description", "courier integration engine");
  implementation.add_value("url", impl_->options_.public_url);
  cs.add_value("fhirVersion", "4.0.1");
  cs.add_value("format", "json");
  cs.add_value("format", "xml");
  rest::add_rest_capabilities(cs);
  fhir::Element& messaging = cs.add("messaging");
  fhir::Element& endpoint = messaging.add("endpoint");
  fhir::Element& protocol = endpoint.add("protocol");
  protocol.add_value("system", "http://terminology.hl7.org/CodeSystem/message-transport");
  protocol.add_value("code", "http");
  endpoint.add_value("address", impl_->options_.public_url);
  const auto minutes =
      std::chrono::duration_cast<std::chrono::minutes>(impl_->options_.reliable_cache).count();
  messaging.add_value("reliableCache", std::to_string(minutes));
  std::string events = "Events courier routes:";
  for (const route::Route& route : impl_->routes_.routes) {
    if (route.trigger) continue;  // it makes its messages; it receives none
    events += "\n- " + (route.when.event.empty() ? std::string("(any event)") : route.when.event) +
              " (route " + route.name + ")";
  }
  messaging.add_value("documentation", events);
  for (const route::Route& route : impl_->routes_.routes) {
    if (route.when.event.empty()) continue;  // a MessageDefinition needs an event
    fhir::Element& supported = messaging.add("supportedMessage");
    supported.add_value("mode", "receiver");
    supported.add_value("definition", impl_->options_.public_url + "/MessageDefinition/" + route.name);
  }
  return cs;
}

std::optional<fhir::Element> Engine::message_definition(std::string_view route_name) const {
  const route::Route* route = impl_->routes_.find(route_name);
  if (route == nullptr || route->when.event.empty()) return std::nullopt;
  fhir::Element definition = fhir::Element::resource("MessageDefinition");
  definition.add_value("id", route->name);
  definition.add_value("url", impl_->options_.public_url + "/MessageDefinition/" + route->name);
  definition.add_value("name", route->name);
  definition.add_value("status", "active");
  definition.add_value("date", message::instant_now().substr(0, 10));
  definition.add_value("description", "The messages courier's route '" + route->name + "' takes.");
  const std::string& event = route->when.event;
  const std::size_t bar = event.find('|');
  fhir::Element& coding = definition.add("event", "Coding");
  if (bar != std::string::npos) coding.add_value("system", event.substr(0, bar));
  coding.add_value("code", bar == std::string::npos ? event : event.substr(bar + 1));
  if (!route->when.focus.empty()) {
    fhir::Element& focus = definition.add("focus");
    focus.add_value("code", route->when.focus);
    focus.add_value("min", "1");
    focus.add_value("max", "*");
  }
  return definition;
}

}  // namespace courier
