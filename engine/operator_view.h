// What the operator's console watches live: a feed of conversation changes
// (for Server-Sent Events) and each route's delivery latency over the last
// hour. Both hold identifiers and states only, never message content.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/store/store.h"

namespace courier {

struct ConversationChange {
  store::Id conversation = 0;
  store::Millis at = 0;
  std::string route;
  std::string kind;   // received, delivered, parked, response, cancel, ...
  std::string state;  // the conversation's state after it; "" when unchanged
};

// Subscribers run on the thread that publishes (the engine's strand), so
// they only hand the change on.
class ChangeFeed {
 public:
  using Subscriber = std::function<void(const ConversationChange&)>;
  std::uint64_t subscribe(Subscriber subscriber);
  void unsubscribe(std::uint64_t token);
  void publish(const ConversationChange& change);

 private:
  std::mutex mutex_;
  std::uint64_t next_token_ = 1;
  std::map<std::uint64_t, Subscriber> subscribers_;
};

// Per route, one bucket per minute for the last hour: how many deliveries
// completed and how long they took from receipt.
class LatencyHistory {
 public:
  struct Minute {
    store::Millis start = 0;  // the minute's first millisecond
    std::int64_t count = 0;
    double total_ms = 0;
    double max_ms = 0;
  };
  static constexpr int minutes = 60;

  void record(const std::string& route, double latency_ms, store::Millis now);
  // The last hour's minutes with deliveries, oldest first, by route.
  std::map<std::string, std::vector<Minute>> last_hour(store::Millis now) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<Minute>> routes_;  // ring of `minutes` buckets each
};

}  // namespace courier
