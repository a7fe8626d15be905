#include <boost/test/unit_test.hpp>

#include "engine/admin.h"
#include "engine/metrics.h"
#include "engine/operator_view.h"

using namespace courier;

BOOST_AUTO_TEST_SUITE(operator_view)

BOOST_AUTO_TEST_CASE(the_change_feed_reaches_subscribers_until_they_leave) {
  ChangeFeed feed;
  std::vector<std::string> heard;
  const auto token = feed.subscribe([&](const ConversationChange& c) { heard.push_back(c.kind); });
  feed.publish({1, 0, "lab", "received", "received"});
  feed.unsubscribe(token);
  feed.publish({1, 0, "lab", "delivered", "completed"});
  BOOST_TEST(heard == std::vector<std::string>{"received"});
}

BOOST_AUTO_TEST_CASE(latency_is_kept_per_minute_for_an_hour) {
  LatencyHistory history;
  const store::Millis hour = 3'600'000;
  const store::Millis now = 100 * hour + 30'000;
  history.record("lab", 10, now - 2 * hour);  // too old to show
  history.record("lab", 10, now - 60'000);
  history.record("lab", 30, now - 60'000);
  history.record("lab", 5, now);
  const auto minutes = history.last_hour(now).at("lab");
  BOOST_REQUIRE(minutes.size() == 2u);
  BOOST_TEST(minutes[0].count == 2);
  BOOST_TEST(minutes[0].total_ms / static_cast<double>(minutes[0].count) == 20.0);
  BOOST_TEST(minutes[0].max_ms == 30.0);
  BOOST_TEST(minutes[1].count == 1);
  BOOST_TEST(minutes[1].start == now - 30'000);
}

BOOST_AUTO_TEST_CASE(metric_totals_sum_the_matching_series) {
  Metrics m;
  m.add("courier_deliveries_total", {{"route", "lab"}, {"destination", "lis"}, {"outcome", "delivered"}}, 3);
  m.add("courier_deliveries_total", {{"route", "lab"}, {"destination", "file"}, {"outcome", "delivered"}}, 2);
  m.add("courier_deliveries_total", {{"route", "lab"}, {"destination", "lis"}, {"outcome", "parked"}});
  m.add("courier_deliveries_total", {{"route", "lab-2"}, {"destination", "lis"}, {"outcome", "delivered"}});
  BOOST_TEST(m.total("courier_deliveries_total", {{"route", "lab"}, {"outcome", "delivered"}}) == 5.0);
  BOOST_TEST(m.total("courier_deliveries_total", {{"route", "lab"}}) == 6.0);  // not lab-2
  BOOST_TEST(m.total("courier_deliveries_total", {{"route", "none"}}) == 0.0);
}

BOOST_AUTO_TEST_CASE(the_conversation_filter_reads_times_and_refuses_nonsense) {
  std::string error;
  const auto f = admin::conversation_filter({{"route", "lab"},
                                             {"q", "MRN1"},
                                             {"since", "2026-11-26T10:00:00Z"},
                                             {"until", "1800000000000"},
                                             {"before", "42"},
                                             {"limit", "20"}},
                                            error);
  BOOST_TEST(error.empty());
  BOOST_TEST(f.route == "lab");
  BOOST_TEST(f.key == "MRN1");
  BOOST_TEST(f.since == 1795687200000);
  BOOST_TEST(f.until == 1800000000000);
  BOOST_TEST(f.before == 42);
  BOOST_TEST(f.limit == 20);
  admin::conversation_filter({{"since", "yesterday"}}, error);
  BOOST_TEST(error.find("since") != std::string::npos);
  error.clear();
  admin::conversation_filter({{"limit", "5000"}}, error);
  BOOST_TEST(error.find("limit") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
