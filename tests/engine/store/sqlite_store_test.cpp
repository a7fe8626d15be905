#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <future>

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

BOOST_AUTO_TEST_SUITE_END()
