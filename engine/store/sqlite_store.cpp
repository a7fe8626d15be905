#include "engine/store/sqlite_store.h"

#include <pthread.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "engine/fhir/codec.h"
#include "engine/message/conversation_task.h"
#include "engine/rest/audit_event.h"
#include "engine/rest/resource_store.h"
#include "engine/rest/search.h"
#include "engine/store/checkpointer.h"
#include "engine/store/wal_write_vfs.h"
#include "engine/util/text.h"

namespace courier::store {

Millis now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string iso_time(Millis millis) {
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  char fraction[8];
  std::snprintf(fraction, sizeof fraction, ".%03dZ", static_cast<int>(millis % 1000));
  return std::string(text) + fraction;
}

namespace {

constexpr std::string_view state_names[] = {"pending", "waiting", "delivered", "parked", "failed"};

}  // namespace

std::string_view to_string(DeliveryState state) {
  return state_names[static_cast<int>(state)];
}

std::optional<DeliveryState> delivery_state_from(std::string_view text) {
  for (int i = 0; i < 5; ++i) {
    if (state_names[i] == text) return static_cast<DeliveryState>(i);
  }
  return std::nullopt;
}

namespace {

// The current layout. A conversation's row holds only what it is found
// and listed by, so that a search of a million rows reads few pages; the
// message and the reply to it, which can be large, are in
// conversation_content.
constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS conversation(
  id INTEGER PRIMARY KEY,
  received_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  listener TEXT NOT NULL, route TEXT NOT NULL, event TEXT NOT NULL,
  bundle_id TEXT NOT NULL, header_id TEXT NOT NULL,
  reply_to TEXT NOT NULL,
  state TEXT NOT NULL,
  peer TEXT NOT NULL);
-- The message and the reply apart: a 4 KB message fits one page, which
-- the reply would push into a second, and the reply, written later, would
-- rewrite both.
CREATE TABLE IF NOT EXISTS conversation_content(
  conversation INTEGER PRIMARY KEY REFERENCES conversation(id) ON DELETE CASCADE,
  format INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS conversation_reply(
  conversation INTEGER PRIMARY KEY REFERENCES conversation(id) ON DELETE CASCADE,
  status INTEGER NOT NULL, format INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS conversation_header ON conversation(header_id, received_at);
CREATE INDEX IF NOT EXISTS conversation_bundle ON conversation(bundle_id, received_at);
CREATE INDEX IF NOT EXISTS conversation_received ON conversation(received_at);
-- The operator's searches: each filter in the time order it lists in,
-- carrying the other filters so that a combination is checked in the index
-- alone. Only the state index holds the state, which changes: the others
-- are written once.
CREATE INDEX IF NOT EXISTS conversation_state ON conversation(state, received_at, route, event, peer);
CREATE INDEX IF NOT EXISTS conversation_route ON conversation(route, received_at, event, peer);
CREATE INDEX IF NOT EXISTS conversation_event ON conversation(event, received_at, route, peer);
CREATE INDEX IF NOT EXISTS conversation_peer ON conversation(peer, received_at, route, event);
-- Business identifiers (MRN, order id, MSH-10) an operator searches by.
CREATE TABLE IF NOT EXISTS conversation_key(
  key TEXT NOT NULL,
  conversation INTEGER NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
  PRIMARY KEY(key, conversation)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversation_key_conversation ON conversation_key(conversation);
CREATE TABLE IF NOT EXISTS delivery(
  id INTEGER PRIMARY KEY,
  conversation INTEGER NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
  kind INTEGER NOT NULL, destination TEXT NOT NULL, order_key TEXT NOT NULL,
  state TEXT NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL,
  format INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS delivery_conversation ON delivery(conversation);
-- A destination's backlog in the order it was accepted (the rowid ends the key).
CREATE INDEX IF NOT EXISTS delivery_unfinished_by_destination ON delivery(destination)
  WHERE state IN ('pending', 'waiting');
CREATE INDEX IF NOT EXISTS delivery_parked ON delivery(conversation) WHERE state = 'parked';
-- An event's state is the conversation's new state, and its output a
-- report's reference: either makes a new version of the conversation's Task.
CREATE TABLE IF NOT EXISTS event(
  id INTEGER PRIMARY KEY,
  conversation INTEGER NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
  at INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
  format INTEGER NOT NULL, body BLOB NOT NULL,
  state TEXT NOT NULL DEFAULT '', output TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS event_conversation ON event(conversation);
-- Conversations in the order their Tasks changed (updated_at is the
-- Task's lastUpdated), for Task searches, which list in change order.
CREATE INDEX IF NOT EXISTS conversation_updated ON conversation(updated_at);
CREATE TABLE IF NOT EXISTS response(
  conversation INTEGER NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
  message_id TEXT NOT NULL,
  PRIMARY KEY(conversation, message_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS correlation(
  key TEXT NOT NULL,
  conversation INTEGER NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
  PRIMARY KEY(key, conversation)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS correlation_conversation ON correlation(conversation);
-- Every version of every resource. A rowid table: its bodies (about 1 KB)
-- sit in the leaves only, so a lookup descends a few small pages of the
-- version index and of integer keys.
CREATE TABLE IF NOT EXISTS resource(
  row INTEGER PRIMARY KEY,
  type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL, body BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS resource_version ON resource(type, id, version);
-- seq orders the changes: each new version of a resource takes a new one.
-- `indexed` lists the resource's search_index rows (see encode_index), so
-- that they can be removed when it changes without a second index on them.
CREATE TABLE IF NOT EXISTS resource_current(
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL,
  indexed BLOB NOT NULL DEFAULT '',
  UNIQUE(type, id));
CREATE INDEX IF NOT EXISTS resource_current_updated ON resource_current(type, last_updated);
-- Rows name the resource by its seq: a value's matches come in change
-- order, so a search reads them in the order it pages in and stops when its
-- page is full, and each check of another criterion is one probe on an
-- integer-ended key. system follows seq so that a search for a code in any
-- system still probes by seq.
CREATE TABLE IF NOT EXISTS search_index(
  type TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL, system TEXT NOT NULL,
  PRIMARY KEY(type, param, value, seq, system)) WITHOUT ROWID;
)sql";

// Records courier keeps for itself, served by the REST store as resources.
// Made before the migrations run, since they fill them.
//
// The audit trail: one compact row per entry, read and searched as
// AuditEvents. Rows are only appended, so each index grows at its end.
//
// Each conversation's Task: its outline (message/conversation_task.h) and
// the index rows it is searched by, written once with the conversation; its
// versions are the conversation's events that change its state or bring a
// report, so that a step costs no resource write.
constexpr const char* records_schema = R"sql(
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY,
  recorded INTEGER NOT NULL, kind INTEGER NOT NULL, subtype TEXT NOT NULL, action TEXT NOT NULL,
  outcome INTEGER NOT NULL, outcome_text TEXT NOT NULL,
  agent TEXT NOT NULL, by_courier INTEGER NOT NULL, authenticated_by TEXT NOT NULL,
  address TEXT NOT NULL, listener TEXT NOT NULL,
  entities TEXT NOT NULL,  -- the references, one per line
  message_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_recorded ON audit(recorded);
CREATE INDEX IF NOT EXISTS audit_subtype ON audit(subtype);
CREATE INDEX IF NOT EXISTS audit_agent ON audit(agent);
-- An entry's references as search_index keeps them: the id as value, the
-- type as system.
CREATE TABLE IF NOT EXISTS audit_entity(
  value TEXT NOT NULL, audit INTEGER NOT NULL REFERENCES audit(id) ON DELETE CASCADE, system TEXT NOT NULL,
  PRIMARY KEY(value, audit, system)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_entity_audit ON audit_entity(audit);
CREATE TABLE IF NOT EXISTS conversation_task(
  conversation INTEGER PRIMARY KEY REFERENCES conversation(id) ON DELETE CASCADE,
  outline BLOB NOT NULL);
-- As search_index keeps rows, keyed by the conversation number.
CREATE TABLE IF NOT EXISTS task_index(
  param TEXT NOT NULL, value TEXT NOT NULL,
  conversation INTEGER NOT NULL REFERENCES conversation(id) ON DELETE CASCADE, system TEXT NOT NULL,
  PRIMARY KEY(param, value, conversation, system)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_index_conversation ON task_index(conversation);
)sql";

// What turns a store made by an earlier version into the current layout,
// in order; PRAGMA user_version counts those applied. A new store is made
// in the current layout and counts them all. Each runs in one transaction
// with foreign keys off (a table is rebuilt), before `schema` adds what is
// new.
constexpr const char* migrations[] = {
    // 1: the message and its reply leave the conversation row, which gains
    // the peer; the operator's indexes come with `schema`.
    R"sql(
CREATE TABLE conversation_narrow(
  id INTEGER PRIMARY KEY,
  received_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  listener TEXT NOT NULL, route TEXT NOT NULL, event TEXT NOT NULL,
  bundle_id TEXT NOT NULL, header_id TEXT NOT NULL,
  reply_to TEXT NOT NULL,
  state TEXT NOT NULL,
  peer TEXT NOT NULL);
INSERT INTO conversation_narrow
  SELECT id, received_at, updated_at, listener, route, event, bundle_id, header_id, reply_to, state, ''
  FROM conversation;
CREATE TABLE conversation_content(
  conversation INTEGER PRIMARY KEY REFERENCES conversation(id) ON DELETE CASCADE,
  format INTEGER NOT NULL, body BLOB NOT NULL,
  reply_status INTEGER, reply_format INTEGER, reply BLOB);
INSERT INTO conversation_content SELECT id, format, body, reply_status, reply_format, reply FROM conversation;
DROP TABLE conversation;
ALTER TABLE conversation_narrow RENAME TO conversation;
)sql",
    // 2: search_index rows name the resource by its seq instead of its
    // type and id, resource_current lists each resource's rows, and the
    // versions move to a rowid table (a WITHOUT ROWID table keeps whole
    // rows in its interior pages: with 1 KB bodies, a deep and slow tree).
    // A store from before the REST store gets its tables in the old layout
    // first.
    R"sql(
CREATE TABLE IF NOT EXISTS resource(
  type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY(type, id, version)) WITHOUT ROWID;
CREATE TABLE resource_rows(
  row INTEGER PRIMARY KEY,
  type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL, body BLOB NOT NULL);
INSERT INTO resource_rows(type, id, version, last_updated, deleted, body)
  SELECT type, id, version, last_updated, deleted, body FROM resource ORDER BY last_updated, type, id, version;
DROP TABLE resource;
ALTER TABLE resource_rows RENAME TO resource;
CREATE TABLE IF NOT EXISTS resource_current(
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL,
  UNIQUE(type, id));
CREATE TABLE IF NOT EXISTS search_index(
  type TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL, system TEXT NOT NULL, id TEXT NOT NULL,
  PRIMARY KEY(type, param, value, system, id)) WITHOUT ROWID;
ALTER TABLE resource_current ADD COLUMN indexed BLOB NOT NULL DEFAULT '';
UPDATE resource_current SET indexed = coalesce((
  SELECT group_concat(length(CAST(s.param AS BLOB)) || ':' || s.param || length(CAST(s.system AS BLOB)) || ':' ||
                      s.system || length(CAST(s.value AS BLOB)) || ':' || s.value, '')
  FROM search_index s WHERE s.type = resource_current.type AND s.id = resource_current.id), '');
CREATE TABLE search_index_by_seq(
  type TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL, system TEXT NOT NULL,
  PRIMARY KEY(type, param, value, seq, system)) WITHOUT ROWID;
INSERT INTO search_index_by_seq
  SELECT s.type, s.param, s.value, c.seq, s.system FROM search_index s
  JOIN resource_current c ON c.type = s.type AND c.id = s.id;
DROP TABLE search_index;
ALTER TABLE search_index_by_seq RENAME TO search_index;
)sql",
    // 3: the reply leaves conversation_content for conversation_reply.
    R"sql(
CREATE TABLE conversation_reply(
  conversation INTEGER PRIMARY KEY REFERENCES conversation(id) ON DELETE CASCADE,
  status INTEGER NOT NULL, format INTEGER NOT NULL, body BLOB NOT NULL);
INSERT INTO conversation_reply
  SELECT conversation, reply_status, reply_format, reply FROM conversation_content WHERE reply_status IS NOT NULL;
CREATE TABLE conversation_message(
  conversation INTEGER PRIMARY KEY REFERENCES conversation(id) ON DELETE CASCADE,
  format INTEGER NOT NULL, body BLOB NOT NULL);
INSERT INTO conversation_message SELECT conversation, format, body FROM conversation_content;
DROP TABLE conversation_content;
ALTER TABLE conversation_message RENAME TO conversation_content;
)sql",
    // 4: unfinished deliveries are indexed by destination (`schema` adds it).
    R"sql(
DROP INDEX IF EXISTS delivery_unfinished;
)sql",
    // 5: the audit trail leaves the resource tables for compact rows. Each
    // AuditEvent becomes the entry numbered by its seq (its id changes from
    // a UUID to that number), read back from the JSON courier wrote.
    R"sql(
INSERT INTO audit(id, recorded, kind, subtype, action, outcome, outcome_text, agent, by_courier,
                  authenticated_by, address, listener, entities, message_id)
  SELECT c.seq, c.last_updated,
    CASE json_extract(r.body, '$.type.code') WHEN 'rest' THEN 0 WHEN '110100' THEN 2 ELSE 1 END,
    coalesce(json_extract(r.body, '$.subtype[0].code'), ''),
    coalesce(json_extract(r.body, '$.action'), 'E'),
    CAST(coalesce(json_extract(r.body, '$.outcome'), '0') AS INTEGER),
    coalesce(json_extract(r.body, '$.outcomeDesc'), ''),
    coalesce(json_extract(r.body, '$.agent[0].name'), ''),
    coalesce(json_extract(r.body, '$.agent[0].requestor'), 1) = 0,
    coalesce(substr(json_extract(r.body, '$.agent[0].policy[0]'),
                    length('urn:courier:authenticated-by:') + 1), ''),
    coalesce(json_extract(r.body, '$.agent[0].network.address'), ''),
    CASE WHEN json_extract(r.body, '$.source.site') LIKE 'courier listener %'
         THEN substr(json_extract(r.body, '$.source.site'), length('courier listener ') + 1) ELSE '' END,
    coalesce((SELECT group_concat(json_extract(e.value, '$.what.reference'), char(10))
              FROM json_each(r.body, '$.entity') e
              WHERE json_extract(e.value, '$.what.reference') IS NOT NULL), ''),
    coalesce((SELECT json_extract(e.value, '$.what.identifier.value') FROM json_each(r.body, '$.entity') e
              WHERE json_extract(e.value, '$.what.identifier.value') IS NOT NULL), '')
  FROM resource_current c JOIN resource r ON r.type = c.type AND r.id = c.id AND r.version = c.version
  WHERE c.type = 'AuditEvent' AND c.deleted = 0;
INSERT INTO audit_entity(value, audit, system)
  SELECT value, seq, system FROM search_index WHERE type = 'AuditEvent' AND param = 'entity';
DELETE FROM search_index WHERE type = 'AuditEvent';
DELETE FROM resource WHERE type = 'AuditEvent';
DELETE FROM resource_current WHERE type = 'AuditEvent';
)sql",
    // 6: conversations' Tasks leave the resource tables. Each keeps its
    // current version's content as its outline (what changes is removed:
    // it comes from the conversation's events), its search rows but its
    // status, and one event with its status, businessStatus and outputs;
    // its older versions are gone. A store from before the timeline gets
    // its events table in the old layout first.
    R"sql(
CREATE TABLE IF NOT EXISTS event(
  id INTEGER PRIMARY KEY,
  conversation INTEGER NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
  at INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
  format INTEGER NOT NULL, body BLOB NOT NULL);
ALTER TABLE event ADD COLUMN state TEXT NOT NULL DEFAULT '';
ALTER TABLE event ADD COLUMN output TEXT NOT NULL DEFAULT '';
CREATE TEMP TABLE old_task(seq INTEGER PRIMARY KEY, conversation INTEGER, last_updated INTEGER, body BLOB);
INSERT INTO old_task
  SELECT c.seq, CAST(substr(c.id, 14) AS INTEGER), c.last_updated, r.body
  FROM resource_current c JOIN resource r ON r.type = c.type AND r.id = c.id AND r.version = c.version
  WHERE c.type = 'Task' AND c.id GLOB 'conversation-[0-9]*' AND c.deleted = 0
    AND CAST(substr(c.id, 14) AS INTEGER) IN (SELECT id FROM conversation);
INSERT INTO conversation_task(conversation, outline)
  SELECT conversation, json_remove(body, '$.status', '$.businessStatus', '$.lastModified', '$.output', '$.meta')
  FROM old_task;
INSERT OR IGNORE INTO task_index(param, value, conversation, system)
  SELECT s.param, s.value, o.conversation, s.system FROM search_index s
  CROSS JOIN old_task o ON o.seq = s.seq WHERE s.type = 'Task' AND s.param != 'status';
INSERT INTO event(conversation, at, kind, detail, format, body, state, output)
  SELECT conversation, last_updated, 'task',
    coalesce(json_extract(body, '$.businessStatus.text'), ''), 0, '',
    coalesce(json_extract(body, '$.status'), ''),
    coalesce((SELECT group_concat(json_extract(o.value, '$.valueReference.reference'), char(10))
              FROM json_each(body, '$.output') o), '')
  FROM old_task WHERE json_extract(body, '$.status') != 'received' ORDER BY conversation;
DROP TABLE old_task;
DELETE FROM search_index WHERE type = 'Task' AND seq IN (
  SELECT seq FROM resource_current WHERE type = 'Task' AND id GLOB 'conversation-[0-9]*');
DELETE FROM resource WHERE type = 'Task' AND id GLOB 'conversation-[0-9]*';
DELETE FROM resource_current WHERE type = 'Task' AND id GLOB 'conversation-[0-9]*';
)sql",
};

class Database {
 public:
  Database(const std::string& path, bool create) {
    const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, wal_write_vfs()) != SQLITE_OK) {
      const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("cannot open " + path + ": " + message);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Database() {
    for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
    sqlite3_close(db_);
  }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Resources written in one commit group get a lastUpdated later than any
  // of an earlier group's: a poll with _lastUpdated=gt(the latest it saw)
  // then misses nothing that was committed after it read.
  Millis resource_time_floor = 0;
  Millis resource_time_max = 0;

  void exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error != nullptr ? error : "unknown error";
      sqlite3_free(error);
      throw std::runtime_error(std::string("SQLite: ") + message);
    }
  }

  // A cached prepared statement, reset and ready to bind.
  sqlite3_stmt* statement(const char* sql) {
    auto [it, inserted] = statements_.try_emplace(sql, nullptr);
    if (inserted &&
        sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &it->second, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("SQLite: ") + sqlite3_errmsg(db_));
    }
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    return it->second;
  }

  sqlite3* handle() const { return db_; }
  std::int64_t last_insert_id() const { return sqlite3_last_insert_rowid(db_); }
  std::int64_t changes() const { return sqlite3_changes64(db_); }
  const char* error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;  // by SQL text
};

// Binds the arguments in order and steps a statement.
class Query {
 public:
  Query(Database& db, const char* sql) : db_(db), statement_(db.statement(sql)) {}
  ~Query() { sqlite3_reset(statement_); }

  Query& bind(std::int64_t value) {
    sqlite3_bind_int64(statement_, ++index_, value);
    return *this;
  }
  Query& bind(int value) { return bind(static_cast<std::int64_t>(value)); }
  Query& bind(std::string_view text) {
    sqlite3_bind_text(statement_, ++index_, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Query& bind_blob(std::string_view bytes) {
    sqlite3_bind_blob(statement_, ++index_, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // True while a row is available.
  bool step() {
    const int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) throw std::runtime_error(std::string("SQLite: ") + db_.error());
    return false;
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
  bool is_null(int column) const { return sqlite3_column_type(statement_, column) == SQLITE_NULL; }
  std::string text(int column) const {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(statement_, column));
    return data == nullptr
               ? std::string()
               : std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
  }

 private:
  Database& db_;
  sqlite3_stmt* statement_;
  int index_ = 0;
};

#define COURIER_CONVERSATION_ROW                                                                     \
  "SELECT c.id, c.received_at, c.listener, c.route, c.event, c.bundle_id, c.header_id, c.reply_to, " \
  "c.state, c.peer, c.updated_at"
// A conversation as listed: its row alone.
constexpr const char* conversation_summary_select = COURIER_CONVERSATION_ROW " FROM conversation c ";
// With its message and reply.
constexpr const char* conversation_select = COURIER_CONVERSATION_ROW
    ", k.format, k.body, p.status, p.format, p.body "
    "FROM conversation c JOIN conversation_content k ON k.conversation = c.id "
    "LEFT JOIN conversation_reply p ON p.conversation = c.id ";
#undef COURIER_CONVERSATION_ROW

// A row of either select; the content only from conversation_select.
Conversation read_conversation(const Query& q, bool with_content = true) {
  Conversation c;
  c.id = q.integer(0);
  c.received_at = q.integer(1);
  c.listener = q.text(2);
  c.route = q.text(3);
  c.event = q.text(4);
  c.bundle_id = q.text(5);
  c.header_id = q.text(6);
  c.reply_to = q.text(7);
  c.state = q.text(8);
  c.peer = q.text(9);
  c.updated_at = q.integer(10);
  if (!with_content) return c;
  c.format = static_cast<int>(q.integer(11));
  c.body = q.text(12);
  if (!q.is_null(13))
    c.reply = StoredReply{static_cast<int>(q.integer(13)), q.text(15), static_cast<int>(q.integer(14))};
  return c;
}

// The identities of the responses recorded for a conversation (the engine
// needs them when it takes up the conversation again).
void read_response_ids(Database& db, Conversation& c) {
  Query q(db, "SELECT message_id FROM response WHERE conversation = ?");
  q.bind(c.id);
  while (q.step()) c.response_ids.push_back(q.text(0));
}

constexpr const char* delivery_select =
    "SELECT d.id, d.conversation, d.kind, c.route, d.destination, d.order_key, d.state, d.attempts, "
    "d.next_at, "
    "d.format, d.body FROM delivery d JOIN conversation c ON c.id = d.conversation ";

Delivery read_delivery(const Query& q) {
  Delivery d;
  d.id = q.integer(0);
  d.conversation = q.integer(1);
  d.kind = static_cast<DeliveryKind>(q.integer(2));
  d.route = q.text(3);
  d.destination = q.text(4);
  d.order_key = q.text(5);
  d.state = delivery_state_from(q.text(6)).value_or(DeliveryState::pending);
  d.attempts = static_cast<int>(q.integer(7));
  d.next_at = q.integer(8);
  d.format = static_cast<int>(q.integer(9));
  d.body = q.text(10);
  return d;
}

Delivery insert_delivery(Database& db, Id conversation, const std::string& route, NewDelivery nd,
                         Millis now) {
  Query(db,
        "INSERT INTO delivery(conversation, kind, destination, order_key, state, attempts, next_at, format, "
        "body) "
        "VALUES(?, ?, ?, ?, 'pending', 0, ?, ?, ?)")
      .bind(conversation)
      .bind(static_cast<int>(nd.kind))
      .bind(nd.destination)
      .bind(nd.order_key)
      .bind(now)
      .bind(nd.format)
      .bind_blob(nd.body)
      .step();
  Delivery d;
  d.id = db.last_insert_id();
  d.conversation = conversation;
  d.kind = nd.kind;
  d.route = route;
  d.destination = std::move(nd.destination);
  d.order_key = std::move(nd.order_key);
  d.next_at = now;
  d.body = std::move(nd.body);
  d.format = nd.format;
  return d;
}

// Row counts per index value, sampled (a thousand rows per index), so that
// SQLite searches by the filter that narrows most: refreshed at every
// start and prune.
constexpr const char* statistics = "PRAGMA analysis_limit = 1000; ANALYZE;";

// Background writes (the audit trail) get this much of each commit
// after its foreground jobs: a burst of them delays an acknowledgment by
// about a slice, not by the whole burst.
constexpr auto kBackgroundSlice = std::chrono::milliseconds(2);
// Past this many waiting, they get long slices until they catch up: the
// backlog stays bounded and the foreground slows down instead.
constexpr std::size_t kBackgroundBacklog = 2000;
constexpr auto kBackgroundCatchUpSlice = std::chrono::milliseconds(50);

// Brings the store to the current layout (see `migrations`).
void migrate(Database& db) {
  constexpr auto current = static_cast<std::int64_t>(std::size(migrations));
  auto single = [&db](const char* sql) {
    Query q(db, sql);
    q.step();
    return q.integer(0);
  };
  const bool fresh = single("SELECT count(*) FROM sqlite_master WHERE name = 'conversation'") == 0;
  const std::int64_t applied = fresh ? current : single("PRAGMA user_version");
  if (applied < current) {
    db.exec("PRAGMA foreign_keys = OFF");
    db.exec("BEGIN");
    db.exec(records_schema);
    for (std::int64_t i = applied; i < current; ++i) db.exec(migrations[i]);
    db.exec(("PRAGMA user_version = " + std::to_string(current)).c_str());
    db.exec("COMMIT");
  }
  db.exec(schema);
  db.exec(records_schema);
  if (fresh) db.exec(("PRAGMA user_version = " + std::to_string(current)).c_str());
  db.exec("PRAGMA foreign_keys = ON");
}

// A write that failed but whose caller waits for an answer: the savepoint is
// rolled back and `callback` (which reports the failure) still runs.
struct JobFailed : std::runtime_error {
  JobFailed(const std::string& what, std::function<void()> callback)
      : std::runtime_error(what), callback(std::move(callback)) {}
  std::function<void()> callback;
};

class SqliteStore final : public Store, public rest::ResourceStore {
 public:
  explicit SqliteStore(const std::string& data_dir) {
    std::filesystem::create_directories(data_dir);
    path_ = (std::filesystem::path(data_dir) / "courier.db").string();
    writer_ = std::make_unique<Database>(path_, true);
    // Set before the first table exists, so that pruning can give pages back.
    writer_->exec("PRAGMA auto_vacuum = INCREMENTAL");
    writer_->exec("PRAGMA journal_mode = WAL");
    // FULL: every commit syncs the WAL, so a committed write survives a
    // crash or power loss; group commit spreads that cost over many writes.
    writer_->exec("PRAGMA synchronous = FULL");
    migrate(*writer_);
    // Each job in a commit group runs in its own savepoint; SQLite copies
    // every page a savepoint changes into a sub-journal, which by default
    // spills to a temporary file past 64 KB and then grows for the whole
    // transaction. In memory it is dropped at each release. Set after the
    // migrations, whose index builds may need more temporary space.
    writer_->exec("PRAGMA temp_store = MEMORY");
    writer_->exec(statistics);
    checkpointer_ = std::make_unique<Checkpointer>(path_, kCheckpointPages);
    checkpointer_->watch(writer_->handle());
    // Several readers, so that searches and reads from different threads
    // (listeners, the engine) run side by side on WAL snapshots.
    for (int i = 0; i < kReaders; ++i) {
      readers_.push_back(std::make_unique<Database>(path_, false));
      readers_.back()->exec("PRAGMA foreign_keys = ON");
      idle_readers_.push_back(readers_.back().get());
    }
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "store-writer");
      write_loop();
    });
  }

  ~SqliteStore() override { close(); }

  void accept(NewConversation nc, bool reprocess_reused_header, Millis reliable_cache_ms,
              std::function<void(AcceptResult)> done) override {
    submit(
        [nc = std::move(nc), reprocess_reused_header, reliable_cache_ms,
         done = std::move(done)](Database& db) mutable {
          AcceptResult result = do_accept(db, std::move(nc), reprocess_reused_header, reliable_cache_ms);
          return [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); };
        },
        true);
  }

  void set_reply(Id conversation, StoredReply reply, std::function<void()> done) override {
    submit([conversation, reply = std::move(reply), done = std::move(done)](Database& db) mutable {
      // The first reply stays: it is what a repeat of the message gets.
      Query(db,
            "INSERT OR IGNORE INTO conversation_reply(conversation, status, format, body) VALUES(?, ?, ?, ?)")
          .bind(conversation)
          .bind(reply.status)
          .bind(reply.format)
          .bind_blob(reply.body)
          .step();
      return std::move(done);
    });
  }

  void forget_reply(Id conversation, std::function<void()> done) override {
    submit([conversation, done = std::move(done)](Database& db) mutable {
      Query(db, "DELETE FROM conversation_reply WHERE conversation = ?").bind(conversation).step();
      return std::move(done);
    });
  }

  void update_delivery(const Delivery& d, std::function<void()> done) override {
    submit([d, done = std::move(done)](Database& db) mutable {
      Query(db, "UPDATE delivery SET state = ?, attempts = ?, next_at = ? WHERE id = ?")
          .bind(to_string(d.state))
          .bind(d.attempts)
          .bind(d.next_at)
          .bind(d.id)
          .step();
      return std::move(done);
    });
  }

  void add_event(Id conversation, Event event, std::string state, std::function<void()> done) override {
    submit([conversation, event = std::move(event), state = std::move(state),
            done = std::move(done)](Database& db) mutable {
      const Millis at = event.at != 0 ? event.at : now_millis();
      Query(db,
            "INSERT INTO event(conversation, at, kind, detail, format, body, state, output) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?)")
          .bind(conversation)
          .bind(at)
          .bind(event.kind)
          .bind(event.detail)
          .bind(event.format)
          .bind_blob(event.body)
          .bind(state)
          .bind(event.output)
          .step();
      if (!event.message_id.empty())
        Query(db, "INSERT OR IGNORE INTO response(conversation, message_id) VALUES(?, ?)")
            .bind(conversation)
            .bind(event.message_id)
            .step();
      // A new version of the conversation's Task.
      if (!state.empty()) {
        Query(db, "UPDATE conversation SET state = ?, updated_at = ? WHERE id = ?")
            .bind(state)
            .bind(at)
            .bind(conversation)
            .step();
      } else if (!event.output.empty()) {
        Query(db, "UPDATE conversation SET updated_at = ? WHERE id = ?").bind(at).bind(conversation).step();
      }
      return std::move(done);
    });
  }

  void add_delivery(Id conversation, NewDelivery nd, std::function<void(Delivery)> done) override {
    submit(
        [conversation, nd = std::move(nd), done = std::move(done)](Database& db) mutable {
          std::string route;
          {
            Query q(db, "SELECT route FROM conversation WHERE id = ?");
            q.bind(conversation);
            if (q.step()) route = q.text(0);
          }
          Delivery d = insert_delivery(db, conversation, route, std::move(nd), now_millis());
          return [done = std::move(done), d = std::move(d)]() mutable { done(std::move(d)); };
        },
        true);
  }

  void find_by_header_id(std::string header_id,
                         std::function<void(std::optional<Conversation>)> done) override {
    submit([header_id = std::move(header_id), done = std::move(done)](Database& db) mutable {
      std::optional<Conversation> found;
      Query q(db,
              (std::string(conversation_select) + "WHERE c.header_id = ? ORDER BY c.received_at DESC LIMIT 1")
                  .c_str());
      q.bind(header_id);
      if (q.step()) {
        found = read_conversation(q);
        read_response_ids(db, *found);
      }
      return [done = std::move(done), found = std::move(found)]() mutable { done(std::move(found)); };
    });
  }

  void add_correlation(Id conversation, std::vector<std::string> keys, std::function<void()> done) override {
    submit([conversation, keys = std::move(keys), done = std::move(done)](Database& db) mutable {
      for (const std::string& key : keys)
        Query(db, "INSERT OR IGNORE INTO correlation(key, conversation) VALUES(?, ?)")
            .bind(key)
            .bind(conversation)
            .step();
      return std::move(done);
    });
  }

  void find_by_correlation(std::vector<std::string> keys,
                           std::function<void(std::optional<Conversation>)> done) override {
    submit([keys = std::move(keys), done = std::move(done)](Database& db) mutable {
      std::optional<Conversation> found;
      for (const std::string& key : keys) {
        Query q(db, (std::string(conversation_select) +
                     "WHERE c.id = (SELECT MAX(conversation) FROM correlation WHERE key = ?)")
                        .c_str());
        q.bind(key);
        if (q.step() && (!found || q.integer(0) > found->id)) found = read_conversation(q);
      }
      if (found) read_response_ids(db, *found);
      return [done = std::move(done), found = std::move(found)]() mutable { done(std::move(found)); };
    });
  }

  void flush(std::function<void()> done) override {
    submit([done = std::move(done)](Database&) mutable { return std::move(done); }, true);
  }

  std::vector<Delivery> unfinished_deliveries(bool forwards) override {
    const Lease db = reader();
    std::vector<Delivery> out;
    Query q(*db,
            (std::string(delivery_select) + "WHERE d.state IN ('pending', 'waiting')" +
             (forwards ? "" : " AND d.kind != " + std::to_string(static_cast<int>(DeliveryKind::forward))) +
             " ORDER BY d.id")
                .c_str());
    while (q.step()) out.push_back(read_delivery(q));
    return out;
  }

  std::vector<Delivery> unfinished_forwards(const std::string& route, const std::string& destination,
                                            Id after, int limit) override {
    const Lease db = reader();
    std::vector<Delivery> out;
    Query q(*db, (std::string(delivery_select) +
                  "WHERE d.destination = ? AND d.state IN ('pending', 'waiting') AND d.id > ? AND d.kind = " +
                  std::to_string(static_cast<int>(DeliveryKind::forward)) +
                  " AND c.route = ? ORDER BY d.id LIMIT ?")
                     .c_str());
    q.bind(destination).bind(after).bind(route).bind(static_cast<std::int64_t>(limit));
    while (q.step()) out.push_back(read_delivery(q));
    return out;
  }

  std::vector<Backlog> unfinished_forward_backlogs() override {
    const Lease db = reader();
    std::vector<Backlog> out;
    Query q(*db,
            ("SELECT c.route, d.destination, count(*) FROM delivery d JOIN conversation c ON c.id = "
             "d.conversation WHERE d.state IN ('pending', 'waiting') AND d.kind = " +
             std::to_string(static_cast<int>(DeliveryKind::forward)) + " GROUP BY c.route, d.destination")
                .c_str());
    while (q.step()) out.push_back(Backlog{q.text(0), q.text(1), q.integer(2)});
    return out;
  }

  std::optional<Delivery> delivery(Id id) override {
    const Lease db = reader();
    Query q(*db, (std::string(delivery_select) + "WHERE d.id = ?").c_str());
    q.bind(id);
    if (!q.step()) return std::nullopt;
    return read_delivery(q);
  }

  std::vector<Conversation> conversations(const ConversationFilter& f) override {
    // The page's ids first, from the index of one filter that carries the
    // others (only the filters set go into the SQL, so SQLite can choose
    // it); then their rows.
    std::string ids = "SELECT id FROM conversation WHERE 1";
    std::vector<std::string> texts;
    auto equal = [&](const char* column, const std::string& value) {
      if (value.empty()) return;
      texts.push_back(value);
      ids += std::string(" AND ") + column + " = ?" + std::to_string(texts.size());
    };
    equal("route", f.route);
    equal("state", f.state);
    equal("event", f.event);
    equal("peer", f.peer);
    if (!f.key.empty()) {
      texts.push_back(f.key);
      const std::string n = "?" + std::to_string(texts.size());
      ids += " AND (bundle_id = " + n + " OR header_id = " + n +
             " OR id IN (SELECT conversation FROM conversation_key WHERE key = " + n + "))";
    }
    const Lease db = reader();
    if (f.delivery) ids += delivery_condition(*db, *f.delivery);
    // The numbers are bound after the texts; unused ones are left unbound.
    const int first_number = static_cast<int>(texts.size()) + 1;
    ids += " AND received_at >= ?" + std::to_string(first_number);
    if (f.until != 0) ids += " AND received_at < ?" + std::to_string(first_number + 1);
    if (f.before != 0) {
      // The page after conversation `before`, in the list's own order.
      const std::string n = "?" + std::to_string(first_number + 2);
      ids += " AND (received_at, id) < (SELECT received_at, id FROM conversation WHERE id = " + n + ")";
    }
    constexpr const char* newest_first = " ORDER BY c.received_at DESC, c.id DESC";
    const std::string sql = std::string(conversation_summary_select) + "WHERE c.id IN (" + ids +
                            " ORDER BY received_at DESC, id DESC LIMIT ?" + std::to_string(first_number + 3) +
                            ")" + newest_first;
    std::vector<Conversation> out;
    Query q(*db, sql.c_str());
    for (const std::string& text : texts) q.bind(text);
    q.bind(f.since).bind(f.until).bind(f.before).bind(f.limit);
    while (q.step()) out.push_back(read_conversation(q, false));
    return out;
  }

  // Conversations with a parked (or a pending) delivery, as a condition
  // on the conversation's id. Partial indexes keep those deliveries at
  // hand. A few of them are best looked up one by one and sorted; many are
  // best met while the list is walked in time order, which `+id` (no index
  // for this term) makes SQLite do.
  static std::string delivery_condition(Database& db, DeliveryState state) {
    const char* which =
        state == DeliveryState::parked ? "state = 'parked'" : "state IN ('pending', 'waiting')";
    Query count(db, (std::string("SELECT count(*) FROM delivery WHERE ") + which).c_str());
    count.step();
    constexpr std::int64_t few = 2000;
    return std::string(count.integer(0) <= few ? " AND id IN" : " AND +id IN") +
           " (SELECT conversation FROM delivery WHERE " + which + ")";
  }

  StoreSummary summary() override {
    StoreSummary s;
    for (const char* suffix : {"", "-wal"}) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(path_ + suffix, ec);
      if (!ec) s.size_bytes += static_cast<std::int64_t>(size);
    }
    const Lease db = reader();
    Query q(*db,
            "SELECT c.route, count(*) FROM delivery d JOIN conversation c ON c.id = d.conversation "
            "WHERE d.state = 'parked' GROUP BY c.route ORDER BY c.route");
    while (q.step()) s.parked_by_route.emplace_back(q.text(0), q.integer(1));
    return s;
  }

  std::optional<Conversation> conversation(Id id) override {
    const Lease db = reader();
    return select_conversation(*db, id);
  }

  std::vector<Event> events(Id conversation) override {
    const Lease db = reader();
    std::vector<Event> out;
    Query q(*db,
            "SELECT at, kind, detail, body, format, output FROM event WHERE conversation = ? ORDER BY id");
    q.bind(conversation);
    while (q.step())
      out.push_back(Event{
          q.integer(0), q.text(1), q.text(2), q.text(3), static_cast<int>(q.integer(4)), {}, q.text(5)});
    return out;
  }

  std::vector<Delivery> deliveries(Id conversation) override {
    const Lease db = reader();
    std::vector<Delivery> out;
    Query q(*db, (std::string(delivery_select) + "WHERE d.conversation = ? ORDER BY d.id").c_str());
    q.bind(conversation);
    while (q.step()) out.push_back(read_delivery(q));
    return out;
  }

  std::int64_t prune(Millis before) override {
    std::int64_t removed = 0;
    std::promise<void> deleted;
    submit([&](Database& db) {
      Query(db,
            "DELETE FROM conversation WHERE received_at < ? AND NOT EXISTS (SELECT 1 FROM delivery d WHERE "
            "d.conversation = conversation.id AND d.state IN ('pending', 'waiting'))")
          .bind(before)
          .step();
      removed = db.changes();
      // The audit trail is kept as long as the messages it speaks of.
      Query(db, "DELETE FROM audit WHERE recorded < ?").bind(before).step();
      return std::function<void()>([&] { deleted.set_value(); });
    });
    deleted.get_future().wait();
    // Outside a transaction: give the freed pages back to the file system.
    submit_raw("PRAGMA incremental_vacuum");
    submit_raw(statistics);
    // A background checkpoint would make it give up at once.
    const auto checkpoints_held = checkpointer_->hold();
    submit_raw("PRAGMA wal_checkpoint(TRUNCATE)");
    return removed;
  }

  rest::ResourceStore& resources() override { return *this; }

  // ---- the FHIR REST store -------------------------------------------------

  void write(rest::Write w, std::function<void(rest::WriteResult)> done) override {
    auto work = [w = std::move(w), done = std::move(done)](Database& db) mutable -> std::function<void()> {
      rest::WriteResult result;
      try {
        result = do_write(db, std::move(w));
      } catch (const std::exception& e) {
        // The savepoint is rolled back below; the caller must still hear.
        result.outcome = rest::WriteResult::Outcome::failed;
        result.error = e.what();
        auto callback = [done = std::move(done), result = std::move(result)]() mutable {
          done(std::move(result));
        };
        throw JobFailed(e.what(), std::move(callback));
      }
      return [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); };
    };
    submit(std::move(work), true);
  }

  void write_all(std::vector<rest::Write> writes,
                 std::function<void(std::vector<rest::WriteResult>)> done) override {
    auto work = [writes = std::move(writes),
                 done = std::move(done)](Database& db) mutable -> std::function<void()> {
      using Outcome = rest::WriteResult::Outcome;
      std::vector<rest::WriteResult> results;
      bool stopped = false;
      for (rest::Write& w : writes) {
        try {
          results.push_back(do_write(db, std::move(w)));
        } catch (const std::exception& e) {
          results.push_back(rest::WriteResult{Outcome::failed, {}, e.what()});
        }
        const Outcome o = results.back().outcome;
        if (o == Outcome::conflict || o == Outcome::ambiguous || o == Outcome::exists ||
            o == Outcome::failed || o == Outcome::refused) {
          stopped = true;
          break;
        }
      }
      auto callback = [done = std::move(done), results = std::move(results)]() mutable {
        done(std::move(results));
      };
      // Roll the whole transaction back, and still answer.
      if (stopped) throw JobFailed("transaction stopped", std::move(callback));
      return callback;
    };
    submit(std::move(work), true);
  }

  std::optional<rest::ResourceVersion> read(const std::string& type, const std::string& id,
                                            std::optional<std::int64_t> version) override {
    const Lease db = reader();
    if (type == kAuditType) {
      if (version && *version != 1) return std::nullopt;  // an entry has one version
      return select_audit(*db, id);
    }
    if (const Id conversation = task_conversation(type, id)) {
      std::vector<rest::ResourceVersion> versions = task_versions(*db, conversation, version);
      if (versions.empty()) return std::nullopt;
      return std::move(versions.back());
    }
    return select_version(*db, type, id, version);
  }

  std::vector<rest::ResourceVersion> history(const std::string& type, const std::string& id) override {
    const Lease db = reader();
    std::vector<rest::ResourceVersion> out;
    if (type == kAuditType) {
      if (auto entry = select_audit(*db, id)) out.push_back(std::move(*entry));
      return out;
    }
    if (const Id conversation = task_conversation(type, id)) {
      out = task_versions(*db, conversation, std::nullopt, true);
      std::reverse(out.begin(), out.end());
      return out;
    }
    Query q(*db,
            "SELECT type, id, version, last_updated, deleted, body FROM resource WHERE type = ? AND id = ? "
            "ORDER BY version DESC");
    q.bind(type).bind(id);
    while (q.step()) out.push_back(read_version(q));
    return out;
  }

  rest::SearchResult search(const rest::SearchQuery& query) override {
    const Lease db = reader();
    // One read transaction: the counts, the walk and the page's bodies see
    // one snapshot, and the WAL's read lock is taken once, not per statement.
    run(*db, "BEGIN");
    struct End {
      Database& db;
      ~End() {
        try {
          run(db, "COMMIT");
        } catch (const std::exception&) {
          // A read transaction has nothing to lose; the next BEGIN would fail
          // loudly if this one were still open.
        }
      }
    } end{*db};
    return query.type == kAuditType  ? run_audit_search(*db, query)
           : query.type == kTaskType ? run_task_search(*db, query)
                                     : run_search(*db, query);
  }

  void append_audit(std::vector<rest::AuditEntry> entries, std::function<void()> done) override {
    submit_background([entries = std::move(entries),
                       done = std::move(done)](Database& db) mutable -> std::function<void()> {
      for (const rest::AuditEntry& e : entries) insert_audit(db, e);
      return std::move(done);
    });
  }

  void close() override {
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      closing_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    checkpointer_->stop();
    sqlite3_wal_hook(writer_->handle(), nullptr, nullptr);
  }

 private:
  // A write: runs inside the batch's transaction and returns the callback
  // to run once the batch is committed.
  using Work = std::function<std::function<void()>(Database&)>;
  struct Job {
    Work work;
    bool durable;
  };

  // `durable`: the callback runs only after the write is synced to disk.
  // Otherwise it is committed without a sync of its own, and becomes
  // durable with the next synced commit (the WAL is written in order).
  template <typename F>
  void submit(F&& work, bool durable = false) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(Job{Work(std::forward<F>(work)), durable});
    }
    wake_.notify_one();
  }

  // Records courier keeps for itself (the audit trail): committed in
  // order among themselves, a slice per commit after the foreground jobs, so
  // that a burst of them never holds up an acknowledgment. Unsynced, like
  // submit(work, false).
  template <typename F>
  void submit_background(F&& work) {
    {
      std::lock_guard lock(mutex_);
      background_.push_back(Job{Work(std::forward<F>(work)), false});
    }
    wake_.notify_one();
  }

  // Runs SQL that may not run inside a transaction, and waits for it.
  void submit_raw(const char* sql) {
    std::promise<void> finished;
    {
      std::lock_guard lock(mutex_);
      raw_.push_back([&, sql] {
        writer_->exec(sql);
        finished.set_value();
      });
    }
    wake_.notify_one();
    finished.get_future().wait();
  }

  void write_loop() {
    std::vector<Job> batch;
    bool synced = true;
    std::vector<std::function<void()>> callbacks;
    std::vector<std::function<void()>> raw;
    // One job inside the batch's transaction, under its own savepoint.
    const auto run_job = [&](Job& job) {
      run(*writer_, "SAVEPOINT one");
      try {
        callbacks.push_back(job.work(*writer_));
        run(*writer_, "RELEASE one");
      } catch (const JobFailed& failed) {
        // Undone, and its caller told so.
        run(*writer_, "ROLLBACK TO one");
        run(*writer_, "RELEASE one");
        callbacks.push_back(failed.callback);
      } catch (const std::exception&) {
        // One bad write must not undo the others; its callback never
        // runs, so nothing is acknowledged for it.
        run(*writer_, "ROLLBACK TO one");
        run(*writer_, "RELEASE one");
      }
    };
    for (;;) {
      std::size_t background_backlog = 0;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock,
                   [&] { return closing_ || !queue_.empty() || !background_.empty() || !raw_.empty(); });
        if (queue_.empty() && background_.empty() && raw_.empty() && closing_) return;
        // Group commit: everything that queued up while the last fsync ran.
        const std::size_t n = std::min<std::size_t>(queue_.size(), 1024);
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        background_backlog = background_.size();
        raw.swap(raw_);
      }
      if (!batch.empty() || background_backlog > 0) {
        // Sync only when some write in the batch needs it: a message being
        // acknowledged does; a delivery's new state does not (after a crash
        // it would be retried, and receivers deduplicate).
        const bool durable = std::any_of(batch.begin(), batch.end(), [](const Job& j) { return j.durable; });
        if (durable != synced) {
          writer_->exec(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
          synced = durable;
        }
        checkpointer_->catch_up(writer_->handle());
        run(*writer_, "BEGIN IMMEDIATE");
        for (Job& job : batch) run_job(job);
        // Then background jobs for a slice of time; a long one when they
        // have fallen far behind, so that they catch up and stay bounded.
        const auto slice_end =
            std::chrono::steady_clock::now() +
            (background_backlog > kBackgroundBacklog ? kBackgroundCatchUpSlice : kBackgroundSlice);
        for (std::size_t done = 0; done < background_backlog; ++done) {
          if (done > 0 && std::chrono::steady_clock::now() >= slice_end) break;
          Job job;
          {
            std::lock_guard lock(mutex_);
            job = std::move(background_.front());
            background_.pop_front();
          }
          run_job(job);
        }
        run(*writer_, "COMMIT");
        writer_->resource_time_floor = writer_->resource_time_max + 1;
        batch.clear();
        for (auto& callback : callbacks) {
          if (callback) callback();
        }
        callbacks.clear();
      }
      for (auto& job : raw) job();
      raw.clear();
    }
  }

  // A statement without results, prepared once (sqlite3_exec would compile
  // it again on every call, which costs more than the writes themselves).
  static void run(Database& db, const char* sql) { Query(db, sql).step(); }

  static rest::ResourceVersion read_version(const Query& q) {
    return rest::ResourceVersion{q.text(0),    q.text(1),         q.integer(2),
                                 q.integer(3), q.integer(4) != 0, q.text(5)};
  }

  // A resource's current version, with its place in resource_current: its
  // seq and its index rows, which a write replacing it removes.
  struct Current {
    rest::ResourceVersion version;
    std::int64_t seq = 0;
    std::string indexed;
  };

  static std::optional<Current> select_current(Database& db, const std::string& type, const std::string& id) {
    Query q(db,
            "SELECT r.type, r.id, r.version, r.last_updated, r.deleted, r.body, c.seq, c.indexed "
            "FROM resource_current c "
            "JOIN resource r ON r.type = c.type AND r.id = c.id AND r.version = c.version "
            "WHERE c.type = ? AND c.id = ?");
    q.bind(type).bind(id);
    if (!q.step()) return std::nullopt;
    return Current{read_version(q), q.integer(6), q.text(7)};
  }

  static std::optional<rest::ResourceVersion> select_version(Database& db, const std::string& type,
                                                             const std::string& id,
                                                             std::optional<std::int64_t> version) {
    if (!version) {
      std::optional<Current> current = select_current(db, type, id);
      if (!current) return std::nullopt;
      return std::move(current->version);
    }
    Query q(db,
            "SELECT type, id, version, last_updated, deleted, body FROM resource "
            "WHERE type = ? AND id = ? AND version = ?");
    q.bind(type).bind(id).bind(*version);
    if (!q.step()) return std::nullopt;
    return read_version(q);
  }

  // How a search finds its candidates, in change order.
  enum class Drive {
    stream,  // the first index criterion has one value: its index rows, in seq order (any number)
    list,    // the first index criterion, several values, few matches: their seqs, collected once
    walk,    // resource_current, row by row, every criterion checked per row
  };

  // A search as SQL: "SELECT …" + from + where + " ORDER BY …", with its
  // arguments in bind order. One statement shape per combination of
  // criteria and value counts, so the statement cache stays small.
  struct SearchSql {
    std::string from;
    std::string where;
    std::string order_by;
    std::vector<std::string> texts;
    std::vector<std::int64_t> numbers;
    std::string kinds;  // 's' a text, 'n' a number, in bind order

    void text(const std::string& value) {
      texts.push_back(value);
      kinds += 's';
    }
    void number(std::int64_t value) {
      numbers.push_back(value);
      kinds += 'n';
    }
    // A token value against the value and system columns of an index row
    // (search_index's, audit_entity's) under `alias`.
    void value_match(const char* alias, const rest::TokenValue& v) {
      where += std::string(alias) + ".value = ?";
      text(v.value);
      if (v.has_system) {
        where += std::string(" AND ") + alias + ".system = ?";
        text(v.system);
      }
    }
    // Any of the values (FHIR's comma), each as value_match.
    void any_value_match(const char* alias, const std::vector<rest::TokenValue>& values) {
      for (std::size_t i = 0; i < values.size(); ++i) {
        where += i ? " OR (" : "(";
        value_match(alias, values[i]);
        where += ")";
      }
    }
    void bind(Query& q) const {
      std::size_t t = 0, n = 0;
      for (char kind : kinds) {
        if (kind == 's')
          q.bind(texts[t++]);
        else
          q.bind(numbers[n++]);
      }
    }
  };

  // _lastUpdated's prefix as SQL.
  static const char* sql_operator(const std::string& comparator) {
    return comparator == "gt"   ? ">"
           : comparator == "lt" ? "<"
           : comparator == "ge" ? ">="
           : comparator == "le" ? "<="
                                : "=";
  }

  // `type_indexed`: whether the type condition may read through an index
  // of resource_current; "+c.type" keeps SQLite from reading every row of
  // the type through one and sorting them (it would, without statistics,
  // even for a search driven by a few index rows).
  static SearchSql search_sql(const rest::SearchQuery& query, Drive drive, bool type_indexed) {
    SearchSql sql;
    sql.from = drive == Drive::stream ? " FROM search_index s CROSS JOIN resource_current c ON c.seq = s.seq"
                                      : " FROM resource_current c";
    sql.where = type_indexed ? " WHERE c.type = ?" : " WHERE +c.type = ?";
    sql.text(query.type);
    sql.where += " AND c.deleted = 0";
    sql.order_by = drive == Drive::stream ? " ORDER BY s.seq" : " ORDER BY c.seq";
    // The index key runs (type, param, value, seq, system): a value and a
    // seq find a row in one descent.
    bool driving = drive != Drive::walk;  // the next index criterion drives
    for (const rest::Criterion& c : query.criteria) {
      switch (c.kind) {
        case rest::Criterion::Kind::id: {
          sql.where += " AND c.id IN (";
          for (std::size_t i = 0; i < c.values.size(); ++i) {
            sql.where += i ? ", ?" : "?";
            sql.text(c.values[i].value);
          }
          sql.where += ")";
          break;
        }
        case rest::Criterion::Kind::last_updated: {
          sql.where += std::string(" AND c.last_updated ") + sql_operator(c.comparator) + " ?";
          sql.number(c.instant);
          break;
        }
        case rest::Criterion::Kind::index: {
          if (driving && drive == Drive::stream) {
            sql.where += " AND s.type = ? AND s.param = ? AND ";
            sql.text(query.type);
            sql.text(c.param);
            sql.value_match("s", c.values.front());
          } else if (driving) {
            // Each seq once (UNION), in order: SQLite walks them and looks
            // each up in resource_current by its rowid.
            sql.where += " AND c.seq IN (";
            for (std::size_t i = 0; i < c.values.size(); ++i) {
              sql.where += i ? " UNION " : "";
              sql.where += "SELECT t.seq FROM search_index t WHERE t.type = ? AND t.param = ? AND ";
              sql.text(query.type);
              sql.text(c.param);
              sql.value_match("t", c.values[i]);
            }
            sql.where += ")";
          } else {
            sql.where += " AND (";
            for (std::size_t i = 0; i < c.values.size(); ++i) {
              sql.where += i ? " OR " : "";
              sql.where +=
                  "EXISTS (SELECT 1 FROM search_index t WHERE t.type = c.type AND t.param = ? AND t.seq = "
                  "c.seq AND ";
              sql.text(c.param);
              sql.value_match("t", c.values[i]);
              sql.where += ")";
            }
            sql.where += ")";
          }
          driving = false;
          break;
        }
      }
    }
    return sql;
  }

  // A search whose most selective index criterion matches at most this many
  // resources is "selective": with several values, its matches are
  // collected first; alone, they are all walked to count them.
  static constexpr std::int64_t kSelective = 2000;

  // How many index rows a criterion matches, counted up to `limit`: rows
  // of `rows` ("table WHERE …", with `keys` bound first) with any of its
  // token values (search_index's, task_index's).
  static std::int64_t matches(Database& db, const std::string& rows, const std::vector<std::string>& keys,
                              const rest::Criterion& c, std::int64_t limit) {
    std::int64_t n = 0;
    for (const rest::TokenValue& v : c.values) {
      Query q(db, ("SELECT COUNT(*) FROM (SELECT 1 FROM " + rows + " AND value = ?" +
                   (v.has_system ? " AND system = ?" : "") + " LIMIT ?)")
                      .c_str());
      for (const std::string& key : keys) q.bind(key);
      q.bind(v.value);
      if (v.has_system) q.bind(v.system);
      q.bind(limit - n);
      if (q.step()) n += q.integer(0);
      if (n >= limit) break;
    }
    return n;
  }

  // Matches come oldest change first, so that pollers and pagers move
  // forward through the writes. A page is found by walking the matches until
  // it is full, plus one to know whether another follows: the search stops
  // there, so a page of 50 among thousands of matches costs about 50 checks.
  // The total is given when it is asked for (_total=accurate, or _count=0),
  // when the walk reached the last match anyway, and, unless _total=none,
  // when counting is cheap: one selective criterion alone (its matches are
  // walked to the end), or a type with few resources.
  static rest::SearchResult run_search(Database& db, const rest::SearchQuery& original) {
    // The index criterion that matches least goes first, to drive. Each is
    // counted only as far as the smallest so far.
    rest::SearchQuery query = original;
    std::optional<std::pair<std::int64_t, std::size_t>> smallest;  // matches, criterion
    for (std::size_t i = 0; i < query.criteria.size(); ++i) {
      if (query.criteria[i].kind != rest::Criterion::Kind::index) continue;
      const std::int64_t limit = smallest ? smallest->first : kSelective + 1;
      const std::int64_t n = matches(db, "search_index WHERE type = ? AND param = ?",
                                     {query.type, query.criteria[i].param}, query.criteria[i], limit);
      if (n == 0) return {0, {}, false};
      if (!smallest || n < limit) smallest.emplace(n, i);
    }
    if (smallest)
      std::rotate(query.criteria.begin(),
                  query.criteria.begin() + static_cast<std::ptrdiff_t>(smallest->second),
                  query.criteria.begin() + static_cast<std::ptrdiff_t>(smallest->second) + 1);
    const bool selective = smallest && smallest->first <= kSelective;
    const Drive drive = !smallest                                   ? Drive::walk
                        : query.criteria.front().values.size() == 1 ? Drive::stream
                        : selective                                 ? Drive::list
                                                                    : Drive::walk;
    // A walk narrowed by ids or a time range reads through their indexes.
    const bool narrowed =
        std::any_of(query.criteria.begin(), query.criteria.end(), [](const rest::Criterion& c) {
          return c.kind == rest::Criterion::Kind::last_updated || c.kind == rest::Criterion::Kind::id;
        });
    const SearchSql sql = search_sql(query, drive, drive == Drive::walk && narrowed);
    rest::SearchResult result;
    using Total = rest::SearchQuery::Total;
    const bool asked = query.total == Total::accurate || (query.count == 0 && query.total != Total::none);
    const bool walk_all =
        selective && (asked || (query.total == Total::automatic && query.criteria.size() == 1));
    if (!walk_all && (asked || (query.total == Total::automatic && !smallest))) {
      // Counted through the type's index (a type with few resources, or
      // asked for); a streamed value may hold a resource twice (two systems).
      const SearchSql count = search_sql(query, drive, true);
      const std::string matched = std::string(drive == Drive::stream ? "SELECT DISTINCT c.seq" : "SELECT 1") +
                                  count.from + count.where;
      Query q(db, (asked ? "SELECT COUNT(*) FROM (" + matched + ")"
                         : "SELECT COUNT(*) FROM (" + matched + " LIMIT ?)")
                      .c_str());
      count.bind(q);
      if (!asked) q.bind(kSelective + 1);
      if (q.step() && (asked || q.integer(0) <= kSelective)) result.total = q.integer(0);
      if (query.count == 0) {
        result.more = result.total.value_or(1) > 0;
        return result;
      }
    }
    std::vector<std::pair<std::string, std::int64_t>> page;  // id, version
    std::int64_t seen = 0;
    {
      Query q(db, ("SELECT c.seq, c.id, c.version" + sql.from + sql.where + sql.order_by).c_str());
      sql.bind(q);
      std::int64_t last_seq = -1;
      while (q.step()) {
        if (q.integer(0) == last_seq) continue;  // the same code in two systems
        last_seq = q.integer(0);
        const std::int64_t n = seen++;
        if (n < query.offset) continue;
        if (n < query.offset + query.count) {
          page.emplace_back(q.text(1), q.integer(2));
        } else {
          result.more = true;
          if (!walk_all) break;
        }
      }
    }
    if ((walk_all || !result.more) && query.total != Total::none) result.total = seen;
    for (const auto& [id, version] : page)
      if (auto v = select_version(db, query.type, id, version)) result.page.push_back(std::move(*v));
    return result;
  }

  // ---- the audit trail ------------------------------------------------------

  static constexpr std::string_view kAuditType = "AuditEvent";

  static void insert_audit(Database& db, const rest::AuditEntry& e) {
    std::string entities;
    for (const std::string& reference : e.entities) {
      if (!entities.empty()) entities += '\n';
      entities += reference;
    }
    Query(db,
          "INSERT INTO audit(recorded, kind, subtype, action, outcome, outcome_text, agent, by_courier, "
          "authenticated_by, address, listener, entities, message_id) "
          "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(e.at)
        .bind(static_cast<int>(e.kind))
        .bind(e.subtype)
        .bind(std::string_view(&e.action, 1))
        .bind(e.outcome)
        .bind(e.outcome_text)
        .bind(e.agent)
        .bind(e.by_courier ? 1 : 0)
        .bind(e.authenticated_by)
        .bind(e.address)
        .bind(e.listener)
        .bind(entities)
        .bind(e.message_id)
        .step();
    const std::int64_t id = db.last_insert_id();
    for (const std::string& reference : e.entities) {
      const std::string normalised = rest::normalised_reference(reference);
      if (normalised.empty()) continue;
      const auto [type, value] = rest::split_reference(normalised);
      Query(db, "INSERT OR IGNORE INTO audit_entity(value, audit, system) VALUES(?, ?, ?)")
          .bind(value)
          .bind(id)
          .bind(type)
          .step();
    }
  }

  static constexpr const char* kAuditColumns =
      "SELECT a.id, a.recorded, a.kind, a.subtype, a.action, a.outcome, a.outcome_text, a.agent, "
      "a.by_courier, a.authenticated_by, a.address, a.listener, a.entities, a.message_id FROM audit a";

  // An entry read with kAuditColumns, as the AuditEvent it is served as.
  static rest::ResourceVersion audit_version(const Query& q) {
    rest::AuditEntry e;
    e.id = q.integer(0);
    e.at = q.integer(1);
    e.kind = static_cast<rest::AuditEntry::Kind>(q.integer(2));
    e.subtype = q.text(3);
    const std::string action = q.text(4);
    e.action = action.empty() ? 'E' : action.front();
    e.outcome = static_cast<int>(q.integer(5));
    e.outcome_text = q.text(6);
    e.agent = q.text(7);
    e.by_courier = q.integer(8) != 0;
    e.authenticated_by = q.text(9);
    e.address = q.text(10);
    e.listener = q.text(11);
    const std::string entities = q.text(12);
    for (std::size_t at = 0; at < entities.size();) {
      const std::size_t end = std::min(entities.find('\n', at), entities.size());
      e.entities.push_back(entities.substr(at, end - at));
      at = end + 1;
    }
    e.message_id = q.text(13);
    fhir::Element event = rest::audit_event(e);
    set_meta(event, 1, e.at);
    return rest::ResourceVersion{std::string(kAuditType), std::to_string(e.id), 1, e.at, false,
                                 fhir::write_json(event)};
  }

  static std::optional<rest::ResourceVersion> select_audit(Database& db, const std::string& id) {
    // The AuditEvent's id is its entry's number.
    const std::optional<std::int64_t> n = util::parse_integer(id);
    if (!n) return std::nullopt;
    Query q(db, (std::string(kAuditColumns) + " WHERE a.id = ?").c_str());
    q.bind(*n);
    if (!q.step()) return std::nullopt;
    return audit_version(q);
  }

  // A search of the audit trail: each criterion a condition on the entry's
  // row; matches oldest first, as in any search. A parameter or system that
  // no entry is indexed by (agent, which names no resource; _tag) matches
  // nothing, as it would in search_index.
  static rest::SearchResult run_audit_search(Database& db, const rest::SearchQuery& query) {
    SearchSql sql;
    sql.where = " WHERE 1";
    for (const rest::Criterion& c : query.criteria) {
      if (c.kind == rest::Criterion::Kind::last_updated) {
        sql.where += std::string(" AND a.recorded ") + sql_operator(c.comparator) + " ?";
        sql.number(c.instant);
        continue;
      }
      if (c.kind == rest::Criterion::Kind::index && c.param == "entity") {
        sql.where += " AND a.id IN (SELECT e.audit FROM audit_entity e WHERE ";
        sql.any_value_match("e", c.values);
        sql.where += ")";
        continue;
      }
      // The rest compare one column with any of the values.
      const bool by_id = c.kind == rest::Criterion::Kind::id;
      const char* column = by_id                                           ? "a.id"
                           : c.param == "agent-name" || c.param == "altid" ? "a.agent"
                           : c.param == "subtype"                          ? "a.subtype"
                           : c.param == "outcome"                          ? "a.outcome"
                                                                           : nullptr;
      if (column == nullptr) return {0, {}, false};
      const std::string system = c.param == "subtype" ? rest::kAuditSubtypeSystem : "";
      std::string list;
      for (const rest::TokenValue& v : c.values) {
        if (v.has_system && v.system != system) continue;
        if (by_id || c.param == "outcome") {
          const std::optional<std::int64_t> n = util::parse_integer(v.value);
          if (!n) continue;
          sql.number(*n);
        } else {
          sql.text(v.value);
        }
        list += list.empty() ? "?" : ", ?";
      }
      if (list.empty()) return {0, {}, false};
      sql.where += std::string(" AND ") + column + " IN (" + list + ")";
    }
    return page_of_rows(db, query, sql, "SELECT COUNT(*) FROM audit a", kAuditColumns, " ORDER BY a.id",
                        [](const Query& q) { return std::optional(audit_version(q)); });
  }

  // A page of the rows "select + sql.where + order_by" lists, each read by
  // `version` (nullopt: left out), for searches over courier's own records:
  // counted ("count + sql.where") when asked for (_total=accurate,
  // _count=0), and otherwise when the page is the last, which says how many
  // there were.
  template <typename Read>
  static rest::SearchResult page_of_rows(Database& db, const rest::SearchQuery& query, const SearchSql& sql,
                                         const std::string& count, const std::string& select,
                                         const char* order_by, Read version) {
    rest::SearchResult result;
    using Total = rest::SearchQuery::Total;
    if (query.total == Total::accurate || (query.count == 0 && query.total != Total::none)) {
      Query q(db, (count + sql.where).c_str());
      sql.bind(q);
      if (q.step()) result.total = q.integer(0);
      if (query.count == 0) {
        result.more = result.total.value_or(0) > 0;
        return result;
      }
    }
    Query q(db, (select + sql.where + order_by + " LIMIT ? OFFSET ?").c_str());
    sql.bind(q);
    q.bind(query.count + 1).bind(query.offset);
    while (q.step()) {
      if (static_cast<int>(result.page.size()) == query.count) {
        result.more = true;
        break;
      }
      if (std::optional<rest::ResourceVersion> v = version(q)) result.page.push_back(std::move(*v));
    }
    if (!result.more && !result.total && query.total != Total::none &&
        (query.offset == 0 || !result.page.empty()))
      result.total = query.offset + static_cast<std::int64_t>(result.page.size());
    return result;
  }

  // ---- conversations' Tasks -------------------------------------------------

  static constexpr std::string_view kTaskType = "Task";

  // The conversation whose Task `type`/`id` names, or 0.
  static Id task_conversation(std::string_view type, std::string_view id) {
    return type == kTaskType ? message::conversation_of_task(id) : 0;
  }

  // A conversation's Task, version by version (oldest first): the first
  // when it was received, then one per event with a new state or a report.
  // Only `version` when one is asked for, else all of them when `all`, else
  // the current one.
  static std::vector<rest::ResourceVersion> task_versions(Database& db, Id conversation,
                                                          std::optional<std::int64_t> version,
                                                          bool all = false) {
    std::vector<rest::ResourceVersion> out;
    std::string outline;
    message::TaskState state;
    {
      Query q(db,
              "SELECT t.outline, c.received_at, c.listener, c.route FROM conversation_task t "
              "JOIN conversation c ON c.id = t.conversation WHERE t.conversation = ?");
      q.bind(conversation);
      if (!q.step()) return out;
      outline = q.text(0);
      state = message::task_received(q.integer(1), q.text(2), q.text(3));
    }
    const fhir::ParseResult parsed = fhir::parse_json(outline);
    if (!parsed.resource) return out;
    const auto emit = [&] {
      fhir::Element task = message::task_version(*parsed.resource, conversation, state);
      set_meta(task, state.version, state.at);
      out.push_back(rest::ResourceVersion{std::string(kTaskType), message::task_id(conversation),
                                          state.version, state.at, false, fhir::write_json(task)});
    };
    Query q(db,
            "SELECT at, state, detail, output FROM event WHERE conversation = ? AND (state != '' OR output "
            "!= '') "
            "ORDER BY id");
    q.bind(conversation);
    while (q.step()) {
      if (version == state.version || (all && !version)) emit();
      if (version && *version <= state.version) return out;
      ++state.version;
      state.at = q.integer(0);
      if (std::string status = q.text(1); !status.empty()) state.status = std::move(status);
      state.business_status = q.text(2);
      const std::string outputs = q.text(3);
      for (std::size_t at = 0; at < outputs.size();) {
        const std::size_t end = std::min(outputs.find('\n', at), outputs.size());
        std::string reference = outputs.substr(at, end - at);
        if (std::find(state.outputs.begin(), state.outputs.end(), reference) == state.outputs.end())
          state.outputs.push_back(std::move(reference));
        at = end + 1;
      }
    }
    if (!version || *version == state.version) emit();
    return out;
  }

  // The codes a status criterion names, as search_index keeps a code
  // without a system; empty when it names none.
  static std::vector<std::string> task_statuses(const rest::Criterion& c) {
    std::vector<std::string> out;
    for (const rest::TokenValue& v : c.values)
      if (!v.has_system || v.system.empty()) out.push_back(v.value);
    return out;
  }

  // How many conversations a Task criterion matches, counted up to `limit`.
  static std::int64_t task_matches(Database& db, const rest::Criterion& c, std::int64_t limit) {
    if (c.kind == rest::Criterion::Kind::id) return static_cast<std::int64_t>(c.values.size());
    if (c.param == "status") {
      std::int64_t n = 0;
      for (const std::string& status : task_statuses(c)) {
        Query q(db, "SELECT COUNT(*) FROM (SELECT 1 FROM conversation WHERE state = ? LIMIT ?)");
        q.bind(status).bind(limit - n);
        if (q.step()) n += q.integer(0);
        if (n >= limit) break;
      }
      return n;
    }
    return matches(db, "task_index WHERE param = ?", {c.param}, c, limit);
  }

  // A search of Tasks as SQL on conversations (alias c), in one of two
  // shapes, as for resources (run_search): the criterion that matches
  // fewest drives when it matches few (`driver`, its index; -1 for none),
  // and its matches are sorted; otherwise the conversations are walked in
  // the order their Tasks changed, each criterion checked per row, until the
  // page is full. False when nothing can match.
  static bool task_sql(const rest::SearchQuery& query, std::ptrdiff_t driver, SearchSql& sql) {
    sql.from = driver >= 0 ? " FROM conversation c" : " FROM conversation c INDEXED BY conversation_updated";
    // Conversations from before courier kept Tasks have none.
    sql.where = " WHERE EXISTS (SELECT 1 FROM conversation_task t WHERE t.conversation = c.id)";
    for (std::size_t i = 0; i < query.criteria.size(); ++i) {
      const rest::Criterion& c = query.criteria[i];
      const bool drives = driver == static_cast<std::ptrdiff_t>(i);
      switch (c.kind) {
        case rest::Criterion::Kind::id: {
          std::string list;
          for (const rest::TokenValue& v : c.values) {
            if (const Id n = message::conversation_of_task(v.value)) {
              sql.number(n);
              list += list.empty() ? "?" : ", ?";
            }
          }
          if (list.empty()) return false;
          sql.where += " AND c.id IN (" + list + ")";
          break;
        }
        case rest::Criterion::Kind::last_updated:
          sql.where += std::string(" AND c.updated_at ") + sql_operator(c.comparator) + " ?";
          sql.number(c.instant);
          break;
        case rest::Criterion::Kind::index:
          if (c.param == "status") {
            const std::vector<std::string> statuses = task_statuses(c);
            if (statuses.empty()) return false;
            sql.where += drives ? " AND c.state IN (" : " AND +c.state IN (";
            for (std::size_t k = 0; k < statuses.size(); ++k) {
              sql.where += k ? ", ?" : "?";
              sql.text(statuses[k]);
            }
            sql.where += ")";
          } else {
            // Driving: the matches, collected once; else one probe per row.
            sql.where += drives
                             ? " AND c.id IN (SELECT x.conversation FROM task_index x WHERE x.param = ? AND ("
                             : " AND EXISTS (SELECT 1 FROM task_index x WHERE x.param = ? AND "
                               "x.conversation = c.id AND (";
            sql.text(c.param);
            sql.any_value_match("x", c.values);
            sql.where += "))";
          }
          break;
      }
    }
    return true;
  }

  // Conversations' Tasks that match, in the order they changed; a page of
  // them, and their number when asked for or when the page is the last.
  static rest::SearchResult search_conversation_tasks(Database& db, const rest::SearchQuery& query) {
    std::optional<std::pair<std::int64_t, std::size_t>> fewest;  // matches, criterion
    for (std::size_t i = 0; i < query.criteria.size(); ++i) {
      const rest::Criterion& c = query.criteria[i];
      if (c.kind == rest::Criterion::Kind::last_updated) continue;
      const std::int64_t n = task_matches(db, c, fewest ? fewest->first : kSelective + 1);
      if (n == 0) return {0, {}, false};
      if (!fewest || n < fewest->first) fewest.emplace(n, i);
    }
    const std::ptrdiff_t driver =
        fewest && fewest->first <= kSelective ? static_cast<std::ptrdiff_t>(fewest->second) : -1;
    SearchSql sql;
    if (!task_sql(query, driver, sql)) return {0, {}, false};
    return page_of_rows(db, query, sql, "SELECT COUNT(*)" + sql.from, "SELECT c.id" + sql.from,
                        " ORDER BY c.updated_at, c.id", [&db](const Query& q) {
                          std::vector<rest::ResourceVersion> current =
                              task_versions(db, q.integer(0), std::nullopt);
                          return current.empty() ? std::nullopt : std::optional(std::move(current.back()));
                        });
  }

  // A search of Tasks: the conversations' and those that peers wrote,
  // merged in the order they changed.
  static rest::SearchResult run_task_search(Database& db, const rest::SearchQuery& query) {
    if (!Query(db, "SELECT 1 FROM resource_current WHERE type = 'Task' LIMIT 1").step())
      return search_conversation_tasks(db, query);
    // Both from the start up to this page's end (and one more, to know
    // whether another page follows), then merged.
    rest::SearchQuery wide = query;
    wide.offset = 0;
    if (query.count > 0) wide.count = query.offset + query.count + 1;
    rest::SearchResult stored = run_search(db, wide);
    rest::SearchResult own = search_conversation_tasks(db, wide);
    rest::SearchResult result;
    if (stored.total && own.total) result.total = *stored.total + *own.total;
    if (query.count == 0) {
      result.more = stored.more || own.more;
      return result;
    }
    std::vector<rest::ResourceVersion> merged;
    std::merge(std::make_move_iterator(stored.page.begin()), std::make_move_iterator(stored.page.end()),
               std::make_move_iterator(own.page.begin()), std::make_move_iterator(own.page.end()),
               std::back_inserter(merged),
               [](const rest::ResourceVersion& a, const rest::ResourceVersion& b) {
                 return a.last_updated < b.last_updated;
               });
    const auto end = static_cast<std::size_t>(query.offset + query.count);
    result.more = merged.size() > end || stored.more || own.more;
    for (std::size_t i = static_cast<std::size_t>(query.offset); i < std::min(end, merged.size()); ++i)
      result.page.push_back(std::move(merged[i]));
    return result;
  }

  static rest::WriteResult do_write(Database& db, rest::Write w) {
    using Outcome = rest::WriteResult::Outcome;
    // The audit trail is appended to (append_audit), never written as resources.
    if (w.type == kAuditType) throw std::runtime_error("AuditEvents are written by courier alone");
    if (task_conversation(w.type, w.id) != 0)
      return rest::WriteResult{Outcome::refused, {}, "the Task of a conversation follows the conversation"};
    rest::WriteResult result;
    if (w.unless_exists) {
      rest::SearchQuery q = *w.unless_exists;
      q.count = 2;
      q.offset = 0;
      const rest::SearchResult found = run_search(db, q);
      if (found.page.size() > 1) {
        result.outcome = Outcome::ambiguous;
        return result;
      }
      if (found.page.size() == 1 && w.kind == rest::Write::Kind::update && w.update_match && w.resource) {
        w.id = found.page.front().id;
        w.resource->child_or_add("id").set_value(w.id);
      } else if (found.page.size() == 1) {
        result.outcome = Outcome::exists;
        result.resource = found.page.front();
        return result;
      }
    }
    const std::optional<Current> stored = select_current(db, w.type, w.id);
    const rest::ResourceVersion* current = stored ? &stored->version : nullptr;
    if (w.expected_version && (!current || current->deleted || current->version != *w.expected_version)) {
      result.outcome = Outcome::conflict;
      if (current) result.resource = *current;
      return result;
    }
    if (w.kind == rest::Write::Kind::remove && (!current || current->deleted)) {
      result.outcome = Outcome::deleted;  // nothing there: deleting is idempotent
      if (current) result.resource = *current;
      return result;
    }
    // An update that changes nothing makes no new version: a feed that
    // sends the same ward or doctor with every message would otherwise
    // pile up versions of it (HAPI FHIR suppresses these too).
    if (w.kind == rest::Write::Kind::update && w.resource && current && !current->deleted) {
      set_meta(*w.resource, current->version, current->last_updated);
      if (fhir::write_json(*w.resource) == current->json) {
        result.outcome = Outcome::unchanged;
        result.resource = *current;
        return result;
      }
    }
    const Millis now = now_millis();
    rest::ResourceVersion v;
    v.type = w.type;
    v.id = w.id;
    v.version = current ? current->version + 1 : 1;
    // Never earlier than the version before, so _lastUpdated orders versions.
    v.last_updated = std::max({now, db.resource_time_floor, current ? current->last_updated : 0});
    db.resource_time_max = std::max(db.resource_time_max, v.last_updated);
    v.deleted = w.kind == rest::Write::Kind::remove;
    if (!v.deleted && w.resource) {
      fhir::Element& resource = *w.resource;
      set_meta(resource, v.version, v.last_updated);
      v.json = fhir::write_json(resource);
    }
    Query(db, "INSERT INTO resource(type, id, version, last_updated, deleted, body) VALUES(?, ?, ?, ?, ?, ?)")
        .bind(v.type)
        .bind(v.id)
        .bind(v.version)
        .bind(v.last_updated)
        .bind(v.deleted ? 1 : 0)
        .bind_blob(v.json)
        .step();
    if (stored) remove_index_rows(db, v.type, stored->seq, stored->indexed);
    reindex(db, v, v.deleted ? std::vector<rest::IndexEntry>() : w.index);
    result.outcome = v.deleted                      ? Outcome::deleted
                     : !current || current->deleted ? Outcome::created
                                                    : Outcome::updated;
    result.resource = std::move(v);
    return result;
  }

  // A resource's index rows as resource_current.indexed keeps them: each
  // field as its length in bytes, a colon and the bytes (migration 2 writes
  // the same in SQL).
  static std::string encode_index(const std::set<std::tuple<std::string, std::string, std::string>>& rows) {
    std::string out;
    for (const auto& [param, system, value] : rows)
      for (const std::string* field : {&param, &system, &value}) {
        out += std::to_string(field->size());
        out += ':';
        out += *field;
      }
    return out;
  }

  static std::vector<std::array<std::string_view, 3>> decode_index(std::string_view encoded) {
    std::vector<std::array<std::string_view, 3>> rows;
    auto field = [&encoded]() {
      const std::size_t colon = encoded.find(':');
      if (colon == std::string_view::npos) throw std::runtime_error("resource_current.indexed is damaged");
      std::size_t size = 0;
      const auto [end, error] = std::from_chars(encoded.data(), encoded.data() + colon, size);
      if (error != std::errc() || end != encoded.data() + colon || encoded.size() - colon - 1 < size)
        throw std::runtime_error("resource_current.indexed is damaged");
      const std::string_view value = encoded.substr(colon + 1, size);
      encoded.remove_prefix(colon + 1 + size);
      return value;
    };
    while (!encoded.empty()) {
      std::array<std::string_view, 3> row;
      for (std::string_view& f : row) f = field();
      rows.push_back(row);
    }
    return rows;
  }

  static void remove_index_rows(Database& db, const std::string& type, std::int64_t seq,
                                const std::string& indexed) {
    for (const auto& [param, system, value] : decode_index(indexed))
      Query(db,
            "DELETE FROM search_index WHERE type = ? AND param = ? AND value = ? AND seq = ? AND system = ?")
          .bind(type)
          .bind(param)
          .bind(value)
          .bind(seq)
          .bind(system)
          .step();
  }

  // Makes `v` the current version, under a new seq, with `wanted` as its
  // index rows (the old version's, which name its seq, are removed first).
  static void reindex(Database& db, const rest::ResourceVersion& v,
                      const std::vector<rest::IndexEntry>& wanted) {
    std::set<std::tuple<std::string, std::string, std::string>> rows;  // param, system, value
    for (const rest::IndexEntry& e : wanted) rows.emplace(e.param, e.system, e.value);
    // REPLACE gives the row a new seq: the order in which changes happened.
    Query(db,
          "INSERT OR REPLACE INTO resource_current(type, id, version, last_updated, deleted, indexed) "
          "VALUES(?, ?, ?, ?, ?, ?)")
        .bind(v.type)
        .bind(v.id)
        .bind(v.version)
        .bind(v.last_updated)
        .bind(v.deleted ? 1 : 0)
        .bind_blob(encode_index(rows))
        .step();
    const std::int64_t seq = db.last_insert_id();
    for (const auto& [param, system, value] : rows)
      Query(db, "INSERT INTO search_index(type, param, value, seq, system) VALUES(?, ?, ?, ?, ?)")
          .bind(v.type)
          .bind(param)
          .bind(value)
          .bind(seq)
          .bind(system)
          .step();
  }

  // meta.versionId and meta.lastUpdated, as the server sets them.
  static void set_meta(fhir::Element& resource, std::int64_t version, Millis last_updated) {
    fhir::Element* meta = resource.child("meta");
    if (meta == nullptr) {
      meta = &resource.add("meta");
      resource.sort_children();
      meta = resource.child("meta");
    }
    auto& children = meta->children();
    std::erase_if(children, [](const fhir::Element& e) {
      return e.name() == "versionId" || e.name() == "lastUpdated";
    });
    meta->add_value("versionId", std::to_string(version));
    meta->add_value("lastUpdated", iso_time(last_updated));
    meta->sort_children();
  }

  static std::optional<Conversation> select_conversation(Database& db, Id id) {
    Query q(db, (std::string(conversation_select) + "WHERE c.id = ?").c_str());
    q.bind(id);
    if (!q.step()) return std::nullopt;
    Conversation c = read_conversation(q);
    read_response_ids(db, c);
    return c;
  }

  static AcceptResult do_accept(Database& db, NewConversation nc, bool reprocess_reused_header,
                                Millis reliable_cache_ms) {
    const Millis now = now_millis();
    const Millis since = now - reliable_cache_ms;
    AcceptResult result;
    {
      Query q(db,
              "SELECT c.id, c.bundle_id, p.status, p.format, p.body FROM conversation c "
              "LEFT JOIN conversation_reply p ON p.conversation = c.id "
              "WHERE c.header_id = ? AND c.received_at >= ? ORDER BY c.received_at DESC");
      q.bind(nc.header_id).bind(since);
      bool header_seen = false;
      while (q.step()) {
        header_seen = true;
        if (q.text(1) != nc.bundle_id) continue;
        result.outcome = AcceptResult::Outcome::duplicate;
        result.conversation = q.integer(0);
        if (!q.is_null(2))
          result.reply =
              StoredReply{static_cast<int>(q.integer(2)), q.text(4), static_cast<int>(q.integer(3))};
        return result;
      }
      if (header_seen && !reprocess_reused_header) {
        result.outcome = AcceptResult::Outcome::header_reused;
        return result;
      }
    }
    if (!header_seen_guard(db, nc, since)) {
      result.outcome = AcceptResult::Outcome::bundle_id_reused;
      return result;
    }
    Query(db,
          "INSERT INTO conversation(received_at, updated_at, listener, route, event, bundle_id, header_id, "
          "reply_to, state, peer) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 'received', ?)")
        .bind(now)
        .bind(now)
        .bind(nc.listener)
        .bind(nc.route)
        .bind(nc.event)
        .bind(nc.bundle_id)
        .bind(nc.header_id)
        .bind(nc.reply_to)
        .bind(nc.peer)
        .step();
    result.conversation = db.last_insert_id();
    Query(db, "INSERT INTO conversation_content(conversation, format, body) VALUES(?, ?, ?)")
        .bind(result.conversation)
        .bind(nc.format)
        .bind_blob(nc.body)
        .step();
    for (const std::string& key : nc.search_keys)
      Query(db, "INSERT OR IGNORE INTO conversation_key(key, conversation) VALUES(?, ?)")
          .bind(key)
          .bind(result.conversation)
          .step();
    for (const std::string& key : nc.correlation_keys)
      Query(db, "INSERT INTO correlation(key, conversation) VALUES(?, ?)")
          .bind(key)
          .bind(result.conversation)
          .step();
    if (!nc.task_outline.empty()) {
      Query(db, "INSERT INTO conversation_task(conversation, outline) VALUES(?, ?)")
          .bind(result.conversation)
          .bind_blob(nc.task_outline)
          .step();
      nc.task_index.push_back(message::task_number_index(result.conversation));
      for (const IndexEntry& e : nc.task_index)
        Query(db, "INSERT OR IGNORE INTO task_index(param, value, conversation, system) VALUES(?, ?, ?, ?)")
            .bind(e.param)
            .bind(e.value)
            .bind(result.conversation)
            .bind(e.system)
            .step();
    }
    for (NewDelivery& nd : nc.deliveries) {
      result.deliveries.push_back(insert_delivery(db, result.conversation, nc.route, std::move(nd), now));
    }
    return result;
  }

  // False when the Bundle.id was already used by a message with another
  // MessageHeader.id: the sender reused a Bundle id, which is an error.
  static bool header_seen_guard(Database& db, const NewConversation& nc, Millis since) {
    if (nc.bundle_id.empty()) return true;
    Query q(db,
            "SELECT 1 FROM conversation WHERE bundle_id = ? AND header_id != ? AND received_at >= ? LIMIT 1");
    q.bind(nc.bundle_id).bind(nc.header_id).bind(since);
    return !q.step();
  }

  // A reader connection, held by one thread until the lease ends.
  class Lease {
   public:
    Lease(SqliteStore& store, Database* db) : store_(store), db_(db) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      {
        std::lock_guard lock(store_.reader_mutex_);
        store_.idle_readers_.push_back(db_);
      }
      store_.reader_free_.notify_one();
    }
    Database& operator*() const { return *db_; }

   private:
    SqliteStore& store_;
    Database* db_;
  };

  Lease reader() {
    std::unique_lock lock(reader_mutex_);
    reader_free_.wait(lock, [this] { return !idle_readers_.empty(); });
    Database* db = idle_readers_.back();
    idle_readers_.pop_back();
    return Lease(*this, db);
  }

  static constexpr int kReaders = 4;
  // The log's length, in pages, that starts a checkpoint (SQLite's default
  // is 1,000). A long log is checkpointed less often, so that a page many
  // commits change (an index's last leaf, its parents) is copied once for
  // all of them. The log then reaches about 70 MB, which a restart after a
  // crash reads back in well under a second.
  static constexpr int kCheckpointPages = 16000;
  std::unique_ptr<Database> writer_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::string path_;
  std::vector<std::unique_ptr<Database>> readers_;
  std::vector<Database*> idle_readers_;
  std::mutex reader_mutex_;
  std::condition_variable reader_free_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::deque<Job> background_;
  std::vector<std::function<void()>> raw_;
  bool closing_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string& data_dir) {
  // SQLite's memory statistics take one process-wide mutex on every
  // allocation, which the reader threads then queue on; courier never asks
  // for them. Only possible before SQLite initialises, hence once, here.
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  return std::make_unique<SqliteStore>(data_dir);
}

}  // namespace courier::store
