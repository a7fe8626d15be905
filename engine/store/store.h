// The durable store: conversations (one per request courier carries), their
// deliveries and everything that happened to them. An interface, so that a
// shared backend can replace the embedded SQLite store; nothing outside the
// implementation knows SQL or file paths.
//
// Callbacks run on the store's own thread, after the commit that covers the
// write. accept, add_delivery and flush are durable when their callbacks
// run (the commit was synced); the other writes are committed unsynced and
// become durable with the next synced commit, so a crash may undo the last
// of them: a delivery's progress, never an acknowledged message.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace courier::rest {
class ResourceStore;
}

namespace courier::store {

using Id = std::int64_t;
using Millis = std::int64_t;  // Unix time in milliseconds

Millis now_millis();
// "2026-11-26T14:35:32.123Z": a FHIR instant in UTC.
std::string iso_time(Millis millis);

// A delivery's life: pending (waiting for its turn or a retry), waiting
// (sent, the response is still to come), delivered, parked (retries ran
// out; can be replayed), failed (fatal error, or retries ran out with
// on-exhausted: fail).
enum class DeliveryState { pending, waiting, delivered, parked, failed };
std::string_view to_string(DeliveryState state);
std::optional<DeliveryState> delivery_state_from(std::string_view text);

// What a delivery carries: the conversation's message to a destination of
// its route ("forward"), a response or progress message back to the
// placer ("relay"), or the placer's cancellation of the request to a
// destination that has it ("cancel").
enum class DeliveryKind { forward, relay, cancel };

struct NewDelivery {
  DeliveryKind kind = DeliveryKind::forward;
  std::string destination;  // the route's destination name; the placer's address for relays
  std::string order_key;
  std::string body;  // relays and cancels: the message to send (forwards send the conversation's)
  int format = 0;    // of body
};

struct Delivery {
  Id id = 0;
  Id conversation = 0;
  DeliveryKind kind = DeliveryKind::forward;
  std::string route;
  std::string destination;
  std::string order_key;
  DeliveryState state = DeliveryState::pending;
  int attempts = 0;
  Millis next_at = 0;  // pending: when to try; waiting: when the ack times out
  std::string body;
  int format = 0;
};

// A search index row of the embedded REST store (rest::IndexEntry): a token
// (system and code), a reference ("Type/id" in value), or a string (lower
// case in value).
struct IndexEntry {
  std::string param;
  std::string system;
  std::string value;
};

struct NewConversation {
  std::string listener;
  std::string route;
  std::string event;
  std::string bundle_id;
  std::string header_id;
  std::string reply_to;  // where responses go asynchronously: response-url, else source.endpoint
  std::string body;
  int format = 0;
  std::vector<NewDelivery> deliveries;
  // Who sent it: the authenticated peer, else the sender it claims.
  std::string peer = {};
  // Business identifiers an operator searches by (patient MRN, order id,
  // MSH-10); the Bundle and MessageHeader ids are searchable anyway.
  std::vector<std::string> search_keys = {};
  // What names the requests among the message's focus resources
  // (MessageInfo::request_keys), so that later messages pointing at them
  // with basedOn, and status queries naming them, find the conversation.
  std::vector<std::string> correlation_keys = {};
  // The conversation's Task (message/conversation_task.h): its outline as
  // JSON, and the index rows it is searched by (its status and time come
  // from the conversation).
  std::string task_outline = {};
  std::vector<IndexEntry> task_index = {};
};

// A stored reply to the placer: the bytes it got, for byte-for-byte resends.
struct StoredReply {
  int status = 0;
  std::string body;
  int format = 0;
};

struct AcceptResult {
  enum class Outcome {
    stored,           // new: conversation and deliveries stored
    duplicate,        // both ids seen: `conversation` and its reply (if any yet)
    header_reused,    // MessageHeader.id seen with a new Bundle.id, and reprocessing is off
    bundle_id_reused  // Bundle.id seen with a new MessageHeader.id: an error
  };
  Outcome outcome = Outcome::stored;
  Id conversation = 0;
  std::vector<Delivery> deliveries;  // stored
  std::optional<StoredReply> reply;  // duplicate
};

struct Conversation {
  Id id = 0;
  Millis received_at = 0;
  std::string listener, route, event, bundle_id, header_id, reply_to, state, peer;
  Millis updated_at = 0;
  std::string body;
  int format = 0;
  std::optional<StoredReply> reply;
  std::vector<std::string> response_ids;  // Event::message_id of the responses recorded
};

struct Event {
  Millis at = 0;
  std::string kind;  // received, attempt, response, progress, relayed, parked, replayed, ...
  std::string detail;
  std::string body;
  int format = 0;
  // A response or progress message's identity: remembered with the
  // conversation so that a resend of it is recognised and not relayed twice.
  std::string message_id = {};
  // A report a filler made ("DiagnosticReport/7"): an output of the Task.
  // An event with an output or a new state is a new version of the Task.
  std::string output = {};
};

// Newest first; every field set narrows the list.
struct ConversationFilter {
  std::string route = {}, state = {}, event = {}, peer = {};
  // A business identifier: a search key, the Bundle.id or MessageHeader.id.
  std::string key = {};
  // Only conversations with a delivery in this state: parked, or pending
  // (waiting for its turn, a retry or a response).
  std::optional<DeliveryState> delivery = {};
  Millis since = 0;  // received at or after
  Millis until = 0;  // received before; 0: no bound
  Id before = 0;     // paging: only conversations older than this one; 0: from the newest
  int limit = 50;
};

// A route's destination with unfinished forward deliveries, and how many.
struct Backlog {
  std::string route, destination;
  std::int64_t count = 0;
};

// What the operator's dashboard shows of the store.
struct StoreSummary {
  std::int64_t size_bytes = 0;  // the database and its write-ahead log
  std::vector<std::pair<std::string, std::int64_t>> parked_by_route;
};

class Store {
 public:
  virtual ~Store() = default;

  // Deduplicates by identity (within `reliable_cache_ms`) and stores the new
  // conversation with its deliveries, atomically.
  virtual void accept(NewConversation conversation, bool reprocess_reused_header, Millis reliable_cache_ms,
                      std::function<void(AcceptResult)> done) = 0;
  // Records the first reply given to the placer (for resends to duplicates).
  virtual void set_reply(Id conversation, StoredReply reply, std::function<void()> done) = 0;
  // Forgets it: the message is being tried again, and the next reply is
  // the one a resend gets.
  virtual void forget_reply(Id conversation, std::function<void()> done) = 0;
  virtual void update_delivery(const Delivery& delivery, std::function<void()> done) = 0;
  // `state`, when not empty, is the conversation's new state (and its
  // Task's status).
  virtual void add_event(Id conversation, Event event, std::string state, std::function<void()> done) = 0;
  virtual void add_delivery(Id conversation, NewDelivery delivery, std::function<void(Delivery)> done) = 0;
  // Runs `done` once everything written before it is durable, except
  // the audit trail (rest::ResourceStore::append_audit), which may wait.
  virtual void flush(std::function<void()> done) = 0;
  // The conversation whose MessageHeader.id is `header_id` (responses name it).
  virtual void find_by_header_id(std::string header_id,
                                 std::function<void(std::optional<Conversation>)> done) = 0;

  // More keys that name the conversation's request (where a filler created
  // it: "ref URL" of its Location), so that the filler's reports find it.
  virtual void add_correlation(Id conversation, std::vector<std::string> keys,
                               std::function<void()> done) = 0;
  // The latest conversation one of whose correlation keys is in `keys`.
  virtual void find_by_correlation(std::vector<std::string> keys,
                                   std::function<void(std::optional<Conversation>)> done) = 0;
  // Synchronous reads for start-up and the operator's tools.
  // Unfinished (pending or waiting) deliveries, oldest first: all of them,
  // or all but the forwards, which start-up reads destination by
  // destination (below) so that a long backlog need not fit in memory.
  virtual std::vector<Delivery> unfinished_deliveries(bool forwards = true) = 0;
  // A route's destination's unfinished forward deliveries past `after`,
  // oldest first, at most `limit`.
  virtual std::vector<Delivery> unfinished_forwards(const std::string& route, const std::string& destination,
                                                    Id after, int limit) = 0;
  // Each route's destination that has unfinished forward deliveries, with
  // how many.
  virtual std::vector<Backlog> unfinished_forward_backlogs() = 0;
  virtual std::optional<Delivery> delivery(Id id) = 0;
  virtual std::vector<Conversation> conversations(const ConversationFilter& filter) = 0;
  virtual std::optional<Conversation> conversation(Id id) = 0;
  virtual std::vector<Event> events(Id conversation) = 0;
  virtual std::vector<Delivery> deliveries(Id conversation) = 0;
  virtual StoreSummary summary() = 0;
  // Deletes finished conversations received before `before`, and audit
  // events recorded before then; returns how many conversations.
  virtual std::int64_t prune(Millis before) = 0;

  // Waits for queued writes, then closes.
  virtual void close() = 0;
  // The FHIR resources of the embedded REST store, in the same database.
  virtual rest::ResourceStore& resources() = 0;
};

}  // namespace courier::store
