#include <boost/test/unit_test.hpp>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/util/uuid.h"

using namespace courier;

BOOST_AUTO_TEST_SUITE(uuid)

BOOST_AUTO_TEST_CASE(time_ordered_ids_are_version_7_unique_and_sort_in_the_order_made) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20000; ++i) ids.push_back(util::time_ordered_uuid());  // many within a millisecond
  for (std::size_t i = 1; i < ids.size(); ++i) BOOST_TEST_REQUIRE(ids[i - 1] < ids[i]);
  for (const std::string& id : ids) {
    BOOST_TEST_REQUIRE(id.size() == 36u);
    BOOST_TEST_REQUIRE(id[14] == '7');                                          // version
    BOOST_TEST_REQUIRE(std::string("89ab").find(id[19]) != std::string::npos);  // variant 10
  }
}

BOOST_AUTO_TEST_CASE(time_ordered_ids_from_several_threads_do_not_collide) {
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (auto& mine : made)
    threads.emplace_back([&mine] {
      for (int i = 0; i < 5000; ++i) mine.push_back(util::time_ordered_uuid());
    });
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& mine : made) all.insert(mine.begin(), mine.end());
  BOOST_TEST(all.size() == 20000u);
  // Ordered across threads too: ids made by one thread after another's
  // sort after all of those, though they are made in the same millisecond.
  std::string last_of_first, first_of_second;
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) last_of_first = util::time_ordered_uuid();
  }).join();
  std::thread([&] { first_of_second = util::time_ordered_uuid(); }).join();
  BOOST_TEST(last_of_first < first_of_second);
}

BOOST_AUTO_TEST_SUITE_END()
