// Fills a courier data directory with N conversations through the store
// interface, as the engine would leave them, for the console benchmark:
// 3 routes, 4 events, 20 peers; 96% completed, 3% failed with a parked
// delivery, 1% still in progress; each with a patient MRN, an order id and
// an MSH-10 as search keys; bodies of the 4 KB lab-order message. Their
// receipt times are then spread evenly over the last 30 days, oldest first,
// as a month of traffic would be.
//
// Usage: console_fill DATA_DIR COUNT
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>

#include "engine/store/sqlite_store.h"
#include "engine/store/store.h"

using namespace courier;

namespace {

// At most this many accepts in flight, so that group commit has company
// without holding the whole fill in memory.
constexpr int window = 2000;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: console_fill DATA_DIR COUNT\n";
    return 2;
  }
  const std::string data_dir = argv[1];
  const long count = std::stol(argv[2]);
  const std::string body = read_file(std::string(COURIER_SOURCE_DIR) + "/bench/data/lab-order-message.json");
  const char* routes[] = {"lab-orders", "adt-feed", "results"};
  const char* events[] = {"http://example.org/fhir/message-events|order-request",
                          "http://terminology.hl7.org/CodeSystem/v2-0003|A01",
                          "http://terminology.hl7.org/CodeSystem/v2-0003|A08",
                          "http://example.org/fhir/message-events|observation-provide"};
  const auto started = std::chrono::steady_clock::now();
  {
    std::unique_ptr<store::Store> store = store::open_sqlite_store(data_dir);
    std::mutex mutex;
    std::condition_variable room;
    int in_flight = 0;
    std::atomic<long> stored = 0;
    for (long i = 0; i < count; ++i) {
      {
        std::unique_lock lock(mutex);
        room.wait(lock, [&] { return in_flight < window; });
        ++in_flight;
      }
      store::NewConversation nc;
      nc.listener = i % 3 == 1 ? "mllp" : "fhir";
      nc.route = routes[i % 3];
      nc.event = events[i % 4];
      nc.bundle_id = "bundle-" + std::to_string(i);
      nc.header_id = "header-" + std::to_string(i);
      nc.peer = "peer-" + std::to_string(i % 20);
      nc.body = body;
      nc.search_keys = {"MRN" + std::to_string(i / 4), "ORD" + std::to_string(i), "MSG" + std::to_string(i)};
      nc.deliveries.push_back(store::NewDelivery{store::DeliveryKind::forward, "destination", "", {}, 0});
      const int fate = static_cast<int>(i % 100);
      store->accept(std::move(nc), false, 0, [&, fate](store::AcceptResult r) {
        store::Delivery d = r.deliveries.front();
        std::string state = "completed";
        std::string kind = "delivered";
        if (fate < 3) {
          d.state = store::DeliveryState::parked;
          state = "failed";
          kind = "parked";
        } else if (fate == 3) {
          d.state = store::DeliveryState::waiting;
          state = "in-progress";
          kind = "attempt";
        } else {
          d.state = store::DeliveryState::delivered;
        }
        d.attempts = 1;
        store->update_delivery(d, [] {});
        store->add_event(r.conversation, store::Event{0, kind, "destination: " + kind, {}, 0}, state, [&] {
          ++stored;
          std::lock_guard lock(mutex);
          --in_flight;
          room.notify_one();
        });
      });
    }
    std::unique_lock lock(mutex);
    room.wait(lock, [&] { return in_flight == 0; });
    lock.unlock();
    store->close();
  }
  // A month of traffic: receipt times spread evenly, in id order.
  sqlite3* db = nullptr;
  const std::string path = (std::filesystem::path(data_dir) / "courier.db").string();
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
  const long long now = store::now_millis();
  const long long month = 30LL * 24 * 3600 * 1000;
  const std::string spread = "UPDATE conversation SET received_at = " + std::to_string(now - month) +
                             " + id * " + std::to_string(month / std::max(count, 1L)) +
                             ", updated_at = " + std::to_string(now - month) + " + id * " +
                             std::to_string(month / std::max(count, 1L));
  char* error = nullptr;
  if (sqlite3_exec(db, spread.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::cerr << "console_fill: " << error << '\n';
    return 1;
  }
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("console_fill: %ld conversations in %.0f s\n", count, seconds);
  return 0;
}
