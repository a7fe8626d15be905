#include <boost/test/unit_test.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/fhir/codec.h"
#include "engine/rest/audit_event.h"
#include "engine/rest/resource_store.h"
#include "engine/store/sqlite_store.h"

using namespace courier;
using store::AcceptResult;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("courier-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

store::NewConversation conversation(const std::string& bundle_id, const std::string& header_id) {
  store::NewConversation c;
  c.listener = "fhir";
  c.route = "lab";
  c.event = "order-request";
  c.bundle_id = bundle_id;
  c.header_id = header_id;
  c.body = "{}";
  c.deliveries.push_back(store::NewDelivery{store::DeliveryKind::forward, "lis", "Patient/1", {}, 0});
  return c;
}

AcceptResult accept(store::Store& s, store::NewConversation c, bool reprocess = false) {
  std::promise<AcceptResult> result;
  s.accept(std::move(c), reprocess, 60'000, [&](AcceptResult r) { result.set_value(std::move(r)); });
  return result.get_future().get();
}

}  // namespace

// A store as an earlier version left it: `sql` run on a new database file.
static void write_old_store(const std::filesystem::path& dir, const char* sql) {
  std::filesystem::create_directories(dir);
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open((dir / "courier.db").c_str(), &db) == SQLITE_OK);
  BOOST_REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

BOOST_AUTO_TEST_SUITE(sqlite_store)

BOOST_AUTO_TEST_CASE(identity_rules_of_reliable_messaging) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  const AcceptResult first = accept(*s, conversation("b1", "h1"));
  BOOST_TEST(static_cast<int>(first.outcome) == static_cast<int>(AcceptResult::Outcome::stored));
  BOOST_TEST(first.deliveries.size() == 1u);

  std::promise<void> replied;
  s->set_reply(first.conversation, store::StoredReply{200, "original bytes", 0},
               [&] { replied.set_value(); });
  replied.get_future().get();

  const AcceptResult again = accept(*s, conversation("b1", "h1"));
  BOOST_TEST(static_cast<int>(again.outcome) == static_cast<int>(AcceptResult::Outcome::duplicate));
  BOOST_TEST(again.conversation == first.conversation);
  BOOST_REQUIRE(again.reply.has_value());
  BOOST_TEST(again.reply->body == "original bytes");

  BOOST_TEST(static_cast<int>(accept(*s, conversation("b2", "h1")).outcome) ==
             static_cast<int>(AcceptResult::Outcome::header_reused));
  BOOST_TEST(static_cast<int>(accept(*s, conversation("b1", "h2")).outcome) ==
             static_cast<int>(AcceptResult::Outcome::bundle_id_reused));
  BOOST_TEST(static_cast<int>(accept(*s, conversation("b3", "h1"), true).outcome) ==
             static_cast<int>(AcceptResult::Outcome::stored));
}

BOOST_AUTO_TEST_CASE(unfinished_deliveries_survive_reopening) {
  TempDir dir;
  store::Id conversation_id = 0;
  {
    auto s = store::open_sqlite_store(dir.path.string());
    for (int i = 0; i < 50; ++i) {
      const AcceptResult r = accept(*s, conversation("b" + std::to_string(i), "h" + std::to_string(i)));
      if (i == 0) conversation_id = r.conversation;
    }
    store::Delivery d = s->deliveries(conversation_id).at(0);
    d.state = store::DeliveryState::delivered;
    std::promise<void> done;
    s->update_delivery(d, [&] { done.set_value(); });
    done.get_future().get();
    s->close();
  }
  auto s = store::open_sqlite_store(dir.path.string());
  const std::vector<store::Delivery> pending = s->unfinished_deliveries();
  BOOST_TEST(pending.size() == 49u);
  BOOST_TEST(pending.front().route == "lab");
  BOOST_TEST(pending.front().order_key == "Patient/1");
  BOOST_TEST(s->conversations({.limit = 100}).size() == 50u);
}

BOOST_AUTO_TEST_CASE(a_destinations_backlog_is_read_in_order_past_a_point) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  std::vector<store::Id> lis;  // the forward deliveries to "lis", in order
  for (int i = 0; i < 6; ++i) {
    store::NewConversation c = conversation("b" + std::to_string(i), "h" + std::to_string(i));
    c.deliveries.push_back(store::NewDelivery{store::DeliveryKind::forward, "archive", "", {}, 0});
    if (i == 0)
      c.deliveries.push_back(store::NewDelivery{store::DeliveryKind::relay, "http://placer", "", "{}", 0});
    for (const store::Delivery& d : accept(*s, c).deliveries)
      if (d.destination == "lis") lis.push_back(d.id);
  }
  // One of them delivered: no longer in the backlog.
  store::Delivery done = *s->delivery(lis[1]);
  done.state = store::DeliveryState::delivered;
  std::promise<void> written;
  s->update_delivery(done, [&] { written.set_value(); });
  written.get_future().get();

  std::vector<store::Id> read;
  for (const store::Delivery& d : s->unfinished_forwards("lab", "lis", 0, 3)) read.push_back(d.id);
  BOOST_TEST(read == (std::vector<store::Id>{lis[0], lis[2], lis[3]}));
  read.clear();
  for (const store::Delivery& d : s->unfinished_forwards("lab", "lis", lis[3], 10)) read.push_back(d.id);
  BOOST_TEST(read == (std::vector<store::Id>{lis[4], lis[5]}));
  BOOST_TEST(s->unfinished_forwards("other-route", "lis", 0, 10).empty());

  std::vector<store::Backlog> backlogs = s->unfinished_forward_backlogs();
  std::sort(backlogs.begin(), backlogs.end(),
            [](const store::Backlog& a, const store::Backlog& b) { return a.destination < b.destination; });
  BOOST_REQUIRE(backlogs.size() == 2u);
  BOOST_TEST(backlogs[0].destination == "archive");
  BOOST_TEST(backlogs[0].count == 6);
  BOOST_TEST(backlogs[1].destination == "lis");
  BOOST_TEST(backlogs[1].route == "lab");
  BOOST_TEST(backlogs[1].count == 5);

  const std::vector<store::Delivery> others = s->unfinished_deliveries(false);
  BOOST_REQUIRE(others.size() == 1u);
  BOOST_TEST(others[0].destination == "http://placer");
  BOOST_TEST(s->unfinished_deliveries().size() == 12u);
}

BOOST_AUTO_TEST_CASE(pruning_removes_only_finished_conversations) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  const AcceptResult done = accept(*s, conversation("b1", "h1"));
  accept(*s, conversation("b2", "h2"));
  store::Delivery d = s->deliveries(done.conversation).at(0);
  d.state = store::DeliveryState::delivered;
  std::promise<void> updated;
  s->update_delivery(d, [&] { updated.set_value(); });
  updated.get_future().get();
  BOOST_TEST(s->prune(store::now_millis() + 1000) == 1);
  BOOST_TEST(s->conversations({.limit = 10}).size() == 1u);
  BOOST_TEST(!s->conversation(done.conversation).has_value());
}

BOOST_AUTO_TEST_CASE(operators_search_by_every_filter_newest_first) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  std::vector<store::Id> ids;
  for (int i = 0; i < 6; ++i) {
    store::NewConversation c = conversation("b" + std::to_string(i), "h" + std::to_string(i));
    c.route = i % 2 == 0 ? "lab" : "adt";
    c.peer = i < 3 ? "ward" : "lis";
    c.search_keys = {"MRN" + std::to_string(i / 2), "MSG" + std::to_string(i)};
    ids.push_back(accept(*s, std::move(c)).conversation);
  }
  auto found = [&](store::ConversationFilter f) {
    std::vector<store::Id> out;
    for (const store::Conversation& c : s->conversations(f)) out.push_back(c.id);
    return out;
  };
  using Ids = std::vector<store::Id>;
  BOOST_TEST(found({}) == (Ids{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}));
  BOOST_TEST(found({.route = "adt"}) == (Ids{ids[5], ids[3], ids[1]}));
  BOOST_TEST(found({.route = "lab", .peer = "lis"}) == (Ids{ids[4]}));
  BOOST_TEST(found({.key = "MRN1"}) == (Ids{ids[3], ids[2]}));  // one patient, two messages
  BOOST_TEST(found({.key = "MSG4"}) == (Ids{ids[4]}));
  BOOST_TEST(found({.key = "b1"}) == (Ids{ids[1]}));  // the Bundle.id
  BOOST_TEST(found({.key = "h2"}) == (Ids{ids[2]}));  // the MessageHeader.id
  BOOST_TEST(found({.key = "nothing"}).empty());
  BOOST_TEST(found({.before = ids[3], .limit = 2}) == (Ids{ids[2], ids[1]}));  // the next page
  const store::Conversation first = s->conversations({.key = "b0"}).front();
  BOOST_TEST(found({.since = first.received_at, .until = first.received_at + 1}).size() >= 1u);
  BOOST_TEST(found({.until = first.received_at}).empty());
  BOOST_TEST(first.peer == "ward");

  std::promise<void> parked;
  store::Delivery d = s->deliveries(ids[1]).front();
  d.state = store::DeliveryState::parked;
  s->update_delivery(d, [&] { parked.set_value(); });
  parked.get_future().get();
  BOOST_TEST(found({.delivery = store::DeliveryState::parked}) == (Ids{ids[1]}));
  BOOST_TEST(found({.delivery = store::DeliveryState::pending}) ==
             (Ids{ids[5], ids[4], ids[3], ids[2], ids[0]}));
  const store::StoreSummary summary = s->summary();
  BOOST_TEST(summary.size_bytes > 0);
  BOOST_REQUIRE(summary.parked_by_route.size() == 1u);
  BOOST_TEST(summary.parked_by_route[0].first == "adt");
  BOOST_TEST(summary.parked_by_route[0].second == 1);
}

BOOST_AUTO_TEST_CASE(a_store_from_before_the_console_is_migrated) {
  TempDir dir;
  // The conversation table as the first versions made it, with one row.
  write_old_store(dir.path, R"sql(
CREATE TABLE conversation(id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  listener TEXT NOT NULL, route TEXT NOT NULL, event TEXT NOT NULL, bundle_id TEXT NOT NULL,
  header_id TEXT NOT NULL, reply_to TEXT NOT NULL, state TEXT NOT NULL, format INTEGER NOT NULL,
  body BLOB NOT NULL, reply_status INTEGER, reply_format INTEGER, reply BLOB);
INSERT INTO conversation(received_at, updated_at, listener, route, event, bundle_id, header_id, reply_to, state,
  format, body, reply_status, reply_format, reply)
  VALUES(1, 1, 'fhir', 'lab', 'order-request', 'old-b', 'old-h', '', 'completed', 0, '{}', 200, 0, 'old reply');
)sql");
  auto s = store::open_sqlite_store(dir.path.string());
  const auto old_rows = s->conversations({.key = "old-b"});
  BOOST_REQUIRE(old_rows.size() == 1u);
  BOOST_TEST(old_rows[0].peer.empty());
  const auto old_conversation = s->conversation(old_rows[0].id);
  BOOST_REQUIRE(old_conversation.has_value());
  BOOST_TEST(old_conversation->body == "{}");
  BOOST_REQUIRE(old_conversation->reply.has_value());
  BOOST_TEST(old_conversation->reply->body == "old reply");
  BOOST_TEST(old_conversation->reply->status == 200);
  store::NewConversation c = conversation("new-b", "new-h");
  c.peer = "ward";
  c.search_keys = {"MRN9"};
  const store::Id id = accept(*s, std::move(c)).conversation;
  BOOST_TEST(s->conversations({.peer = "ward", .key = "MRN9"}).front().id == id);
}

BOOST_AUTO_TEST_CASE(the_audit_trail_waits_behind_acknowledgments_and_all_lands) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  // More than the store lets wait before it catches up, so several slices.
  constexpr int kRecords = 5000;
  std::mutex mutex;
  std::vector<std::string> order;  // what finished, in order
  std::promise<void> all_landed;
  // The writer is held (in a commit's callback) until everything is queued,
  // so that it finds the acknowledgment behind all of the entries.
  std::promise<void> writer_held;
  std::promise<void> go_on;
  s->flush([&] {
    writer_held.set_value();
    go_on.get_future().wait();
  });
  writer_held.get_future().wait();
  for (int i = 0; i < kRecords; ++i) {
    rest::AuditEntry e;
    e.at = 1000 + i;
    e.subtype = "received";
    e.agent = "lab";
    e.entities = {"Task/conversation-" + std::to_string(i)};
    s->resources().append_audit({e}, [&, i] {
      std::lock_guard lock(mutex);
      order.push_back("a" + std::to_string(i));
      if (i == kRecords - 1) all_landed.set_value();
    });
  }
  s->accept(conversation("b-1", "h-1"), false, 60'000, [&](AcceptResult) {
    std::lock_guard lock(mutex);
    order.push_back("accepted");
  });
  go_on.set_value();
  all_landed.get_future().get();
  std::lock_guard lock(mutex);
  // Every entry landed, in the order given...
  std::vector<std::string> audit;
  std::ptrdiff_t accepted_at = -1;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (order[i] == "accepted")
      accepted_at = static_cast<std::ptrdiff_t>(i);
    else
      audit.push_back(order[i]);
  }
  BOOST_REQUIRE(audit.size() == static_cast<std::size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i)
    BOOST_TEST(audit[static_cast<std::size_t>(i)] == "a" + std::to_string(i));
  // ...and the acknowledgment queued after them went first.
  BOOST_TEST(accepted_at == 0);
  BOOST_TEST(s->resources().read("AuditEvent", std::to_string(kRecords)).has_value());
}

BOOST_AUTO_TEST_CASE(an_update_that_changes_nothing_makes_no_new_version) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  const auto put = [&](const std::string& json) {
    rest::Write w;
    w.kind = rest::Write::Kind::update;
    w.type = "Location";
    w.id = "ward-4e";
    w.resource = *fhir::parse_json(json).resource;
    w.index = {{"identifier", "urn:hl7v2:location:GHH", "4E"}};
    std::promise<rest::WriteResult> result;
    s->resources().write(std::move(w), [&](rest::WriteResult r) { result.set_value(std::move(r)); });
    return result.get_future().get();
  };
  const std::string ward = R"({"resourceType":"Location","id":"ward-4e","name":"Ward 4E"})";
  BOOST_TEST((put(ward).outcome == rest::WriteResult::Outcome::created));
  const rest::WriteResult again = put(ward);
  BOOST_TEST((again.outcome == rest::WriteResult::Outcome::unchanged));
  BOOST_TEST(again.resource.version == 1);
  BOOST_TEST(s->resources().history("Location", "ward-4e").size() == 1u);
  const rest::WriteResult renamed = put(R"({"resourceType":"Location","id":"ward-4e","name":"Ward 4 East"})");
  BOOST_TEST((renamed.outcome == rest::WriteResult::Outcome::updated));
  BOOST_TEST(renamed.resource.version == 2);
}

namespace {

rest::WriteResult put(store::Store& s, const std::string& type, const std::string& id,
                      std::vector<rest::IndexEntry> index) {
  rest::Write w;
  w.kind = rest::Write::Kind::update;
  w.type = type;
  w.id = id;
  // Each write's content differs, so that none is an unchanged update.
  static int writes = 0;
  w.resource = *fhir::parse_json(R"({"resourceType":")" + type + R"(","id":")" + id +
                                 R"(","identifier":[{"value":"w)" + std::to_string(++writes) + R"("}]})")
                    .resource;
  w.index = std::move(index);
  std::promise<rest::WriteResult> result;
  s.resources().write(std::move(w), [&](rest::WriteResult r) { result.set_value(std::move(r)); });
  return result.get_future().get();
}

rest::SearchQuery query(const std::string& type, std::vector<std::pair<std::string, std::string>> params) {
  rest::SearchQuery q;
  q.type = type;
  for (auto& [param, value] : params)
    q.criteria.push_back({rest::Criterion::Kind::index, param, {{false, {}, value}}, {}, 0});
  return q;
}

std::vector<std::string> ids(const rest::SearchResult& r) {
  std::vector<std::string> out;
  for (const auto& v : r.page) out.push_back(v.id);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_store_with_index_rows_by_resource_id_is_migrated) {
  TempDir dir;
  // The REST store as layout 1 kept it: index rows named the resource by
  // type and id. Two ServiceRequests, one with two rows.
  write_old_store(dir.path, R"sql(
CREATE TABLE conversation(id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  listener TEXT NOT NULL, route TEXT NOT NULL, event TEXT NOT NULL, bundle_id TEXT NOT NULL,
  header_id TEXT NOT NULL, reply_to TEXT NOT NULL, state TEXT NOT NULL, peer TEXT NOT NULL);
CREATE TABLE conversation_content(conversation INTEGER PRIMARY KEY REFERENCES conversation(id) ON DELETE CASCADE,
  format INTEGER NOT NULL, body BLOB NOT NULL, reply_status INTEGER, reply_format INTEGER, reply BLOB);
CREATE TABLE resource(type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY(type, id, version)) WITHOUT ROWID;
CREATE TABLE resource_current(seq INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,
  version INTEGER NOT NULL, last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL, UNIQUE(type, id));
CREATE TABLE search_index(type TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL, system TEXT NOT NULL,
  id TEXT NOT NULL, PRIMARY KEY(type, param, value, system, id)) WITHOUT ROWID;
CREATE INDEX search_index_resource ON search_index(type, id, param, value, system);
INSERT INTO resource VALUES('ServiceRequest', 'a', 1, 1, 0, '{"resourceType":"ServiceRequest","id":"a"}');
INSERT INTO resource VALUES('ServiceRequest', 'b', 1, 2, 0, '{"resourceType":"ServiceRequest","id":"b"}');
INSERT INTO resource_current(type, id, version, last_updated, deleted) VALUES('ServiceRequest', 'a', 1, 1, 0);
INSERT INTO resource_current(type, id, version, last_updated, deleted) VALUES('ServiceRequest', 'b', 1, 2, 0);
INSERT INTO search_index VALUES('ServiceRequest', 'status', 'active', '', 'a');
INSERT INTO search_index VALUES('ServiceRequest', 'identifier', 'Ö:1', 'urn:sys', 'a');
INSERT INTO search_index VALUES('ServiceRequest', 'status', 'active', '', 'b');
PRAGMA user_version = 1;
)sql");
  auto s = store::open_sqlite_store(dir.path.string());
  BOOST_TEST(ids(s->resources().search(query("ServiceRequest", {{"status", "active"}}))) ==
             (std::vector<std::string>{"a", "b"}));
  BOOST_TEST(
      ids(s->resources().search(query("ServiceRequest", {{"status", "active"}, {"identifier", "Ö:1"}}))) ==
      (std::vector<std::string>{"a"}));
  // The migrated list of a's rows is what its update removes.
  put(*s, "ServiceRequest", "a", {{"status", "", "completed"}});
  BOOST_TEST(ids(s->resources().search(query("ServiceRequest", {{"status", "active"}}))) ==
             (std::vector<std::string>{"b"}));
  BOOST_TEST(s->resources().search(query("ServiceRequest", {{"identifier", "Ö:1"}})).page.empty());
  BOOST_TEST(ids(s->resources().search(query("ServiceRequest", {{"status", "completed"}}))) ==
             (std::vector<std::string>{"a"}));
}

BOOST_AUTO_TEST_CASE(a_search_walks_matches_in_change_order_and_counts_only_when_cheap) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  // r0..r9 all active, the odd ones tagged; then r2 changes, and moves last.
  for (int i = 0; i < 10; ++i) {
    std::vector<rest::IndexEntry> index{{"status", "", "active"}};
    if (i % 2) index.push_back({"_tag", "urn:tags", "actionable"});
    put(*s, "Task", "r" + std::to_string(i), index);
  }
  put(*s, "Task", "r3", {{"status", "", "active"}, {"_tag", "urn:tags", "actionable"}, {"owner", "", "lab"}});
  rest::SearchQuery both = query("Task", {{"_tag", "actionable"}, {"status", "active"}});
  both.count = 2;
  rest::SearchResult first = s->resources().search(both);
  BOOST_TEST(ids(first) == (std::vector<std::string>{"r1", "r5"}));
  BOOST_TEST(first.more);
  BOOST_TEST(!first.total.has_value());  // two criteria and more to come: not counted
  both.offset = 4;
  rest::SearchResult last = s->resources().search(both);
  BOOST_TEST(ids(last) == (std::vector<std::string>{"r3"}));  // changed last
  BOOST_TEST(!last.more);
  BOOST_TEST(last.total.value_or(-1) == 5);  // the last page knows them all
  both.offset = 0;
  both.total = rest::SearchQuery::Total::accurate;
  BOOST_TEST(s->resources().search(both).total.value_or(-1) == 5);
  rest::SearchQuery one = query("Task", {{"status", "active"}});
  one.count = 1;
  BOOST_TEST(s->resources().search(one).total.value_or(-1) == 10);  // one selective criterion
  one.total = rest::SearchQuery::Total::none;
  BOOST_TEST(!s->resources().search(one).total.has_value());
  // The same code in two systems is one match for a search in any system.
  put(*s, "Task", "r0", {{"status", "", "active"}, {"code", "urn:a", "x"}, {"code", "urn:b", "x"}});
  BOOST_TEST(ids(s->resources().search(query("Task", {{"code", "x"}}))) == (std::vector<std::string>{"r0"}));
  BOOST_TEST(ids(s->resources().search(query("Task", {{"status", "active"}, {"code", "x"}}))) ==
             (std::vector<std::string>{"r0"}));
}

namespace {

rest::AuditEntry audit_entry(store::Millis at, std::string agent, std::string subtype, int outcome,
                             std::vector<std::string> entities) {
  rest::AuditEntry e;
  e.at = at;
  e.kind = rest::AuditEntry::Kind::message;
  e.subtype = std::move(subtype);
  e.outcome = outcome;
  e.agent = std::move(agent);
  e.authenticated_by = "certificate";
  e.address = "10.0.0.7";
  e.listener = "fhir";
  e.entities = std::move(entities);
  e.message_id = "bundle-" + std::to_string(at);
  return e;
}

void append(store::Store& s, std::vector<rest::AuditEntry> entries) {
  std::promise<void> done;
  s.resources().append_audit(std::move(entries), [&] { done.set_value(); });
  done.get_future().get();
}

rest::SearchResult audit_search(store::Store& s, std::vector<rest::Criterion> criteria, int count = 50,
                                int offset = 0) {
  rest::SearchQuery q;
  q.type = "AuditEvent";
  q.criteria = std::move(criteria);
  q.count = count;
  q.offset = offset;
  return s.resources().search(q);
}

rest::Criterion token(std::string param, std::vector<rest::TokenValue> values) {
  return {rest::Criterion::Kind::index, std::move(param), std::move(values), {}, 0};
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_audit_trail_is_read_and_searched_as_audit_events) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  const std::string subtypes = rest::kAuditSubtypeSystem;
  append(*s, {audit_entry(1000, "lab", "received", 0, {"Task/conversation-1"}),
              audit_entry(2000, "courier", "delivered", 0, {"Task/conversation-1"}),
              audit_entry(3000, "ward", "refused", 4, {"Task/conversation-2", "Patient/p1"})});
  // Read by its number, with one version.
  const auto first = s->resources().read("AuditEvent", "1");
  BOOST_REQUIRE(first.has_value());
  BOOST_TEST(first->version == 1);
  BOOST_TEST(first->last_updated == 1000);
  const nlohmann::json event = nlohmann::json::parse(first->json);
  BOOST_TEST(event["id"] == "1");
  BOOST_TEST(event["meta"]["versionId"] == "1");
  BOOST_TEST(event["recorded"] == store::iso_time(1000));
  BOOST_TEST(event["agent"][0]["name"] == "lab");
  BOOST_TEST(event["agent"][0]["policy"][0] == "urn:courier:authenticated-by:certificate");
  BOOST_TEST(event["entity"][0]["what"]["reference"] == "Task/conversation-1");
  BOOST_TEST(event["entity"][1]["what"]["identifier"]["value"] == "bundle-1000");
  BOOST_TEST(s->resources().read("AuditEvent", "1", 1).has_value());
  BOOST_TEST(!s->resources().read("AuditEvent", "1", 2).has_value());
  BOOST_TEST(!s->resources().read("AuditEvent", "4").has_value());
  BOOST_TEST(!s->resources().read("AuditEvent", "not-a-number").has_value());
  BOOST_TEST(s->resources().history("AuditEvent", "3").size() == 1u);
  // Each parameter, with and without its system or type.
  const auto found = [&](std::vector<rest::Criterion> criteria) { return ids(audit_search(*s, criteria)); };
  using V = std::vector<std::string>;
  BOOST_TEST(found({token("entity", {{true, "Task", "conversation-1"}})}) == (V{"1", "2"}));
  BOOST_TEST(found({token("entity", {{false, {}, "p1"}})}) == (V{"3"}));
  BOOST_TEST(found({token("entity", {{true, "Task", "p1"}})}).empty());
  BOOST_TEST(found({token("entity", {{true, "Task", "conversation-2"}, {true, "Task", "conversation-1"}})}) ==
             (V{"1", "2", "3"}));
  BOOST_TEST(found({token("subtype", {{true, subtypes, "refused"}})}) == (V{"3"}));
  BOOST_TEST(found({token("subtype", {{false, {}, "received"}, {false, {}, "delivered"}})}) == (V{"1", "2"}));
  BOOST_TEST(found({token("subtype", {{true, "urn:other", "refused"}})}).empty());
  BOOST_TEST(found({token("agent-name", {{false, {}, "ward"}})}) == (V{"3"}));
  BOOST_TEST(found({token("altid", {{false, {}, "courier"}})}) == (V{"2"}));
  BOOST_TEST(found({token("outcome", {{false, {}, "4"}})}) == (V{"3"}));
  BOOST_TEST(found({token("outcome", {{false, {}, "four"}})}).empty());
  BOOST_TEST(found({token("_tag", {{false, {}, "x"}})}).empty());
  BOOST_TEST(found({{rest::Criterion::Kind::id, "_id", {{false, {}, "2"}, {false, {}, "x"}}, {}, 0}}) ==
             (V{"2"}));
  BOOST_TEST(found({{rest::Criterion::Kind::last_updated, "_lastUpdated", {}, "ge", 2000},
                    token("outcome", {{false, {}, "0"}})}) == (V{"2"}));
  BOOST_TEST(found({{rest::Criterion::Kind::last_updated, "_lastUpdated", {}, "lt", 2000}}) == (V{"1"}));
  // Pages, oldest first; the last one says how many there were.
  rest::SearchResult page = audit_search(*s, {}, 2);
  BOOST_TEST(ids(page) == (V{"1", "2"}));
  BOOST_TEST(page.more);
  page = audit_search(*s, {}, 2, 2);
  BOOST_TEST(ids(page) == (V{"3"}));
  BOOST_TEST(!page.more);
  BOOST_TEST(page.total.value_or(-1) == 3);
  page = audit_search(*s, {token("agent-name", {{false, {}, "lab"}, {false, {}, "ward"}})}, 0);
  BOOST_TEST(page.total.value_or(-1) == 2);
  // Nothing writes AuditEvents as resources.
  rest::Write w;
  w.type = "AuditEvent";
  w.id = "9";
  w.resource = *fhir::parse_json(R"({"resourceType":"AuditEvent","id":"9"})").resource;
  std::promise<rest::WriteResult> written;
  s->resources().write(std::move(w), [&](rest::WriteResult r) { written.set_value(std::move(r)); });
  BOOST_TEST((written.get_future().get().outcome == rest::WriteResult::Outcome::failed));
  // Pruning removes entries recorded before the time, with their references.
  s->prune(2500);
  BOOST_TEST(found({}) == (V{"3"}));
  BOOST_TEST(found({token("entity", {{true, "Task", "conversation-1"}})}).empty());
}

BOOST_AUTO_TEST_CASE(a_store_with_audit_events_as_resources_is_migrated) {
  TempDir dir;
  // Layout 4 kept each AuditEvent as a resource with search rows: made here
  // from a new store by putting one back that way (and taking away what
  // layout 6 added).
  { store::open_sqlite_store(dir.path.string())->close(); }
  rest::AuditEntry old = audit_entry(5000, "lab", "refused", 4, {"Task/conversation-9"});
  old.outcome_text = "HTTP 403";
  fhir::Element resource = rest::audit_event(old);
  resource.child("id")->set_value("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
  const std::string json = fhir::write_json(resource);
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open((dir.path / "courier.db").c_str(), &db) == SQLITE_OK);
  const std::string sql =
      "DROP TABLE audit_entity; DROP TABLE audit; DROP TABLE task_index; DROP TABLE conversation_task;"
      "DROP INDEX conversation_updated; ALTER TABLE event DROP COLUMN state; ALTER TABLE event DROP COLUMN "
      "output;"
      "INSERT INTO resource(type, id, version, last_updated, deleted, body) VALUES('AuditEvent', "
      "'0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', 1, 5000, 0, '" +
      json +
      "');"
      "INSERT INTO resource_current(seq, type, id, version, last_updated, deleted) VALUES(7, 'AuditEvent', "
      "'0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', 1, 5000, 0);"
      "INSERT INTO search_index VALUES('AuditEvent', 'entity', 'conversation-9', 7, 'Task');"
      "INSERT INTO search_index VALUES('AuditEvent', 'subtype', 'refused', 7, '" +
      rest::kAuditSubtypeSystem +
      "');"
      "PRAGMA user_version = 4;";
  BOOST_REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto s = store::open_sqlite_store(dir.path.string());
  // The same event, numbered by its seq, found as before.
  BOOST_TEST(ids(audit_search(*s, {token("entity", {{true, "Task", "conversation-9"}})})) ==
             (std::vector<std::string>{"7"}));
  const auto migrated = s->resources().read("AuditEvent", "7");
  BOOST_REQUIRE(migrated.has_value());
  old.id = 7;
  fhir::Element expected = rest::audit_event(old);
  BOOST_TEST(nlohmann::json::parse(migrated->json).at("agent") ==
             nlohmann::json::parse(fhir::write_json(expected)).at("agent"));
  const nlohmann::json event = nlohmann::json::parse(migrated->json);
  BOOST_TEST(event["outcomeDesc"] == "HTTP 403");
  BOOST_TEST(event["source"]["site"] == "courier listener fhir");
  BOOST_TEST(event["entity"][1]["what"]["identifier"]["value"] == "bundle-5000");
  BOOST_TEST(event["subtype"][0]["code"] == "refused");
  BOOST_TEST(!s->resources().read("AuditEvent", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").has_value());
  // New entries follow it.
  append(*s, {audit_entry(6000, "lab", "received", 0, {})});
  BOOST_TEST(ids(audit_search(*s, {})) == (std::vector<std::string>{"7", "8"}));
}

namespace {

// A conversation with a Task outline as the engine makes it
// (message::task_outline), based on ServiceRequest/sr1.
store::NewConversation conversation_with_task(const std::string& id) {
  store::NewConversation c = conversation("b-" + id, "h-" + id);
  c.task_outline =
      R"({"resourceType":"Task","identifier":[{"system":"urn:lab","value":")" + id +
      R"("}],"basedOn":[{"reference":"ServiceRequest/sr1"}],"intent":"order","focus":{"reference":"ServiceRequest/sr1"}})";
  c.task_index = {{"identifier", "urn:lab", id},
                  {"based-on", "ServiceRequest", "sr1"},
                  {"focus", "ServiceRequest", "sr1"},
                  {"intent", "", "order"}};
  return c;
}

void add_event(store::Store& s, store::Id conversation, const std::string& detail, const std::string& state,
               const std::string& output = {}) {
  std::promise<void> added;
  store::Event event{0, "response", detail, {}, 0};
  event.output = output;
  s.add_event(conversation, std::move(event), state, [&] { added.set_value(); });
  added.get_future().get();
}

nlohmann::json task_json(const rest::ResourceVersion& v) {
  return nlohmann::json::parse(v.json);
}

rest::SearchQuery task_query(std::vector<rest::Criterion> criteria, int count = 50, int offset = 0) {
  rest::SearchQuery q;
  q.type = "Task";
  q.criteria = std::move(criteria);
  q.count = count;
  q.offset = offset;
  return q;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_conversations_task_is_read_from_its_rows_version_by_version) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  const store::Id n = accept(*s, conversation_with_task("ORD1")).conversation;
  const std::string id = "conversation-" + std::to_string(n);
  auto& resources = s->resources();

  std::optional<rest::ResourceVersion> task = resources.read("Task", id);
  BOOST_REQUIRE(task.has_value());
  nlohmann::json json = task_json(*task);
  BOOST_TEST(task->version == 1);
  BOOST_TEST(json["id"] == id);
  BOOST_TEST(json["status"] == "received");
  BOOST_TEST(json["businessStatus"]["text"] == "received from listener fhir, route lab");
  BOOST_TEST(json["identifier"][0]["system"] == "urn:courier:conversation");
  BOOST_TEST(json["identifier"][0]["value"] == std::to_string(n));
  BOOST_TEST(json["basedOn"][0]["reference"] == "ServiceRequest/sr1");
  BOOST_TEST(json["meta"]["versionId"] == "1");

  add_event(*s, n, "ok from lis", "accepted");
  add_event(*s, n, "report DiagnosticReport/7", "", "DiagnosticReport/7");
  add_event(*s, n, "a note that changes nothing", "");
  add_event(*s, n, "report DiagnosticReport/7 (final)", "completed", "DiagnosticReport/7");

  task = resources.read("Task", id);
  BOOST_REQUIRE(task.has_value());
  json = task_json(*task);
  BOOST_TEST(task->version == 4);
  BOOST_TEST(json["status"] == "completed");
  BOOST_TEST(json["businessStatus"]["text"] == "report DiagnosticReport/7 (final)");
  BOOST_TEST(json["output"].size() == 1u);  // the same report twice is one output
  BOOST_TEST(json["output"][0]["valueReference"]["reference"] == "DiagnosticReport/7");
  BOOST_TEST(json["lastModified"] == json["meta"]["lastUpdated"]);

  // Each version as it was.
  const auto v2 = resources.read("Task", id, 2);
  BOOST_REQUIRE(v2.has_value());
  BOOST_TEST(task_json(*v2)["status"] == "accepted");
  BOOST_TEST(!task_json(*v2).contains("output"));
  const auto v3 = resources.read("Task", id, 3);
  BOOST_REQUIRE(v3.has_value());
  BOOST_TEST(task_json(*v3)["status"] == "accepted");
  BOOST_TEST(task_json(*v3)["output"].size() == 1u);
  BOOST_TEST(!resources.read("Task", id, 5).has_value());
  BOOST_TEST(!resources.read("Task", id, 0).has_value());
  const std::vector<rest::ResourceVersion> history = resources.history("Task", id);
  BOOST_REQUIRE(history.size() == 4u);
  BOOST_TEST(history.front().version == 4);
  BOOST_TEST(history.back().version == 1);
  // No other conversation's Task, and none for a conversation without one.
  BOOST_TEST(!resources.read("Task", "conversation-" + std::to_string(n + 1)).has_value());
  const store::Id bare = accept(*s, conversation("b-bare", "h-bare")).conversation;
  BOOST_TEST(!resources.read("Task", "conversation-" + std::to_string(bare)).has_value());

  // Nobody writes it: it follows the conversation.
  rest::Write w;
  w.kind = rest::Write::Kind::update;
  w.type = "Task";
  w.id = id;
  w.resource = *fhir::parse_json(task->json).resource;
  std::promise<rest::WriteResult> written;
  resources.write(std::move(w), [&](rest::WriteResult r) { written.set_value(std::move(r)); });
  BOOST_TEST((written.get_future().get().outcome == rest::WriteResult::Outcome::refused));

  // Pruned with its conversation.
  std::promise<void> done;
  store::Delivery d = s->deliveries(n).front();
  d.state = store::DeliveryState::delivered;
  s->update_delivery(d, [&] { done.set_value(); });
  done.get_future().get();
  BOOST_TEST(s->prune(store::now_millis() + 1) == 1);
  BOOST_TEST(!resources.read("Task", id).has_value());
  BOOST_TEST(
      resources.search(task_query({token("based-on", {{true, "ServiceRequest", "sr1"}})})).page.empty());
}

BOOST_AUTO_TEST_CASE(tasks_are_searched_with_those_of_peers_in_change_order) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  auto& resources = s->resources();
  const store::Id first = accept(*s, conversation_with_task("ORD1")).conversation;
  const store::Id second = accept(*s, conversation_with_task("ORD2")).conversation;
  const std::string first_id = "conversation-" + std::to_string(first);
  const std::string second_id = "conversation-" + std::to_string(second);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  add_event(*s, first, "ok from lis", "accepted");  // the first now changed last
  using V = std::vector<std::string>;
  BOOST_TEST(ids(resources.search(task_query({}))) == (V{second_id, first_id}));
  BOOST_TEST(ids(resources.search(task_query({token("identifier", {{true, "urn:lab", "ORD2"}})}))) ==
             (V{second_id}));
  BOOST_TEST(
      ids(resources.search(task_query({token("identifier", {{false, {}, "ORD1"}, {false, {}, "ORD2"}})}))) ==
      (V{second_id, first_id}));
  BOOST_TEST(ids(resources.search(task_query(
                 {token("identifier", {{true, "urn:courier:conversation", std::to_string(first)}})}))) ==
             (V{first_id}));
  BOOST_TEST(ids(resources.search(task_query({token("status", {{false, {}, "accepted"}})}))) ==
             (V{first_id}));
  BOOST_TEST(ids(resources.search(task_query({token("status", {{true, {}, "received"}})}))) ==
             (V{second_id}));
  BOOST_TEST(resources.search(task_query({token("status", {{true, "urn:other", "received"}})})).page.empty());
  BOOST_TEST(ids(resources.search(task_query({token("based-on", {{true, "ServiceRequest", "sr1"}}),
                                              token("status", {{false, {}, "received"}})}))) ==
             (V{second_id}));
  BOOST_TEST(ids(resources.search(task_query(
                 {{rest::Criterion::Kind::id, "_id", {{false, {}, first_id}}, {}, 0}}))) == (V{first_id}));
  BOOST_TEST(resources.search(task_query({token("owner", {{false, {}, "lab"}})})).page.empty());
  const store::Millis changed = resources.read("Task", first_id)->last_updated;
  BOOST_TEST(ids(resources.search(
                 task_query({{rest::Criterion::Kind::last_updated, "_lastUpdated", {}, "ge", changed}}))) ==
             (V{first_id}));

  // A peer's Task, written last, comes last; pages run across both.
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  put(*s, "Task", "peer-1", {{"status", "", "requested"}});
  BOOST_TEST(ids(resources.search(task_query({}))) == (V{second_id, first_id, "peer-1"}));
  rest::SearchResult page = resources.search(task_query({}, 2));
  BOOST_TEST(ids(page) == (V{second_id, first_id}));
  BOOST_TEST(page.more);
  page = resources.search(task_query({}, 2, 2));
  BOOST_TEST(ids(page) == (V{"peer-1"}));
  BOOST_TEST(!page.more);
  rest::SearchQuery count = task_query({});
  count.count = 0;
  count.total = rest::SearchQuery::Total::accurate;
  BOOST_TEST(resources.search(count).total.value_or(-1) == 3);
  BOOST_TEST(ids(resources.search(
                 task_query({token("status", {{false, {}, "requested"}, {false, {}, "received"}})}))) ==
             (V{second_id, "peer-1"}));
}

BOOST_AUTO_TEST_CASE(a_store_with_conversation_tasks_as_resources_is_migrated) {
  TempDir dir;
  store::Id n = 0;
  {
    auto s = store::open_sqlite_store(dir.path.string());
    n = accept(*s, conversation("b-9", "h-9")).conversation;
    s->close();
  }
  // Layout 5 kept each conversation's Task as a resource with search rows
  // (and one of a pruned conversation stayed behind).
  const std::string id = "conversation-" + std::to_string(n);
  const std::string old_task =
      R"({"resourceType":"Task","id":")" + id +
      R"(","meta":{"versionId":"3","lastUpdated":"2026-11-20T10:00:00Z"},)"
      R"("identifier":[{"system":"urn:courier:conversation","value":")" +
      std::to_string(n) +
      R"("},{"system":"urn:lab","value":"ORD9"}],"basedOn":[{"reference":"ServiceRequest/sr9"}],)"
      R"j("status":"completed","businessStatus":{"text":"report DiagnosticReport/3 (final)"},"intent":"order",)j"
      R"("lastModified":"2026-11-20T10:00:00Z","output":[{"type":{"text":"report"},)"
      R"("valueReference":{"reference":"DiagnosticReport/3"}}]})";
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open((dir.path / "courier.db").c_str(), &db) == SQLITE_OK);
  const std::string sql =
      "DROP TABLE task_index; DROP TABLE conversation_task; DROP INDEX conversation_updated;"
      "ALTER TABLE event DROP COLUMN state; ALTER TABLE event DROP COLUMN output;"
      "INSERT INTO resource(type, id, version, last_updated, deleted, body) VALUES('Task', '" +
      id + "', 3, 1795600000000, 0, '" + old_task +
      "');"
      "INSERT INTO resource(type, id, version, last_updated, deleted, body) VALUES('Task', "
      "'conversation-999', "
      "1, 1795600000000, 0, "
      "'{\"resourceType\":\"Task\",\"id\":\"conversation-999\",\"status\":\"received\"}');"
      "INSERT INTO resource_current(seq, type, id, version, last_updated, deleted) VALUES(11, 'Task', '" +
      id +
      "', 3, 1795600000000, 0);"
      "INSERT INTO resource_current(seq, type, id, version, last_updated, deleted) VALUES(12, 'Task', "
      "'conversation-999', 1, 1795600000000, 0);"
      "INSERT INTO search_index VALUES('Task', 'identifier', '" +
      std::to_string(n) +
      "', 11, 'urn:courier:conversation');"
      "INSERT INTO search_index VALUES('Task', 'identifier', 'ORD9', 11, 'urn:lab');"
      "INSERT INTO search_index VALUES('Task', 'based-on', 'sr9', 11, 'ServiceRequest');"
      "INSERT INTO search_index VALUES('Task', 'status', 'completed', 11, '');"
      "INSERT INTO search_index VALUES('Task', 'status', 'received', 12, '');"
      "UPDATE conversation SET state = 'completed';"
      "PRAGMA user_version = 5;";
  BOOST_REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  auto s = store::open_sqlite_store(dir.path.string());
  auto& resources = s->resources();
  const std::optional<rest::ResourceVersion> task = resources.read("Task", id);
  BOOST_REQUIRE(task.has_value());
  const nlohmann::json json = task_json(*task);
  BOOST_TEST(task->version == 2);  // as received, then as it stood
  BOOST_TEST(json["status"] == "completed");
  BOOST_TEST(json["businessStatus"]["text"] == "report DiagnosticReport/3 (final)");
  BOOST_TEST(json["output"][0]["valueReference"]["reference"] == "DiagnosticReport/3");
  BOOST_TEST(json["identifier"].size() == 2u);  // the number once
  BOOST_TEST(json["identifier"][0]["value"] == std::to_string(n));
  BOOST_TEST(json["lastModified"] == "2026-11-25T09:46:40.000Z");  // when it last changed
  using V = std::vector<std::string>;
  BOOST_TEST(ids(resources.search(task_query({token("based-on", {{true, "ServiceRequest", "sr9"}})}))) ==
             (V{id}));
  BOOST_TEST(ids(resources.search(task_query({token("identifier", {{true, "urn:lab", "ORD9"}})}))) ==
             (V{id}));
  BOOST_TEST(ids(resources.search(task_query({token("status", {{false, {}, "completed"}})}))) == (V{id}));
  // Out of the resource tables, the leftover of a pruned conversation too.
  BOOST_TEST(resources.search(task_query({token("status", {{false, {}, "received"}})})).page.empty());
  BOOST_TEST(!resources.read("Task", "conversation-999").has_value());
  BOOST_TEST(ids(resources.search(task_query({}))) == (V{id}));
}

BOOST_AUTO_TEST_CASE(a_task_search_with_many_matches_walks_them_in_change_order) {
  TempDir dir;
  auto s = store::open_sqlite_store(dir.path.string());
  // More than a criterion may match to drive the search: every one is
  // "intent=order", so the search walks the conversations instead.
  constexpr int kConversations = 2100;
  std::vector<std::promise<AcceptResult>> accepted(kConversations);
  for (int i = 0; i < kConversations; ++i)
    s->accept(
        conversation_with_task("ORD" + std::to_string(i)), false, 60'000,
        [&accepted, i](AcceptResult r) { accepted[static_cast<std::size_t>(i)].set_value(std::move(r)); });
  std::vector<store::Id> ids_in_order;
  for (auto& a : accepted) ids_in_order.push_back(a.get_future().get().conversation);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  add_event(*s, ids_in_order.front(), "ok from lis", "accepted");  // the first is now the last changed
  auto& resources = s->resources();
  const rest::Criterion intent = token("intent", {{false, {}, "order"}});
  rest::SearchResult page = resources.search(task_query({intent}, 3));
  using V = std::vector<std::string>;
  const auto task = [](store::Id n) { return "conversation-" + std::to_string(n); };
  BOOST_TEST(page.more);
  BOOST_REQUIRE(page.page.size() == 3u);
  // Accepted together, they changed in the same milliseconds, in order.
  BOOST_TEST(ids(page) == (V{task(ids_in_order[1]), task(ids_in_order[2]), task(ids_in_order[3])}));
  page = resources.search(task_query({intent}, 2, kConversations - 2));
  BOOST_TEST(ids(page) == (V{task(ids_in_order.back()), task(ids_in_order.front())}));
  BOOST_TEST(!page.more);
  // With a criterion that matches few, that one drives.
  BOOST_TEST(ids(resources.search(task_query({intent, token("status", {{false, {}, "accepted"}})}))) ==
             (V{task(ids_in_order.front())}));
  BOOST_TEST(ids(resources.search(task_query({token("identifier", {{true, "urn:lab", "ORD7"}}), intent}))) ==
             (V{task(ids_in_order[7])}));
  // Many matches of each: walked, each checked per row.
  BOOST_TEST(ids(resources.search(task_query({intent, token("status", {{false, {}, "received"}})}, 1))) ==
             (V{task(ids_in_order[1])}));
  rest::SearchQuery count = task_query({intent});
  count.count = 0;
  count.total = rest::SearchQuery::Total::accurate;
  BOOST_TEST(resources.search(count).total.value_or(-1) == kConversations);
}

BOOST_AUTO_TEST_SUITE_END()
