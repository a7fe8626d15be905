#include "engine/operator_view.h"

#include <algorithm>

namespace courier {

std::uint64_t ChangeFeed::subscribe(Subscriber subscriber) {
  std::lock_guard lock(mutex_);
  const std::uint64_t token = next_token_++;
  subscribers_.emplace(token, std::move(subscriber));
  return token;
}

void ChangeFeed::unsubscribe(std::uint64_t token) {
  std::lock_guard lock(mutex_);
  subscribers_.erase(token);
}

void ChangeFeed::publish(const ConversationChange& change) {
  std::lock_guard lock(mutex_);
  for (const auto& [token, subscriber] : subscribers_) subscriber(change);
}

namespace {
constexpr store::Millis minute_ms = 60'000;
}

void LatencyHistory::record(const std::string& route, double latency_ms, store::Millis now) {
  const store::Millis start = now - now % minute_ms;
  std::lock_guard lock(mutex_);
  std::vector<Minute>& ring = routes_[route];
  if (ring.empty()) ring.resize(minutes);
  Minute& bucket = ring[static_cast<std::size_t>((start / minute_ms) % minutes)];
  if (bucket.start != start) bucket = Minute{start, 0, 0, 0};  // an hour old: reused
  ++bucket.count;
  bucket.total_ms += latency_ms;
  bucket.max_ms = std::max(bucket.max_ms, latency_ms);
}

std::map<std::string, std::vector<LatencyHistory::Minute>> LatencyHistory::last_hour(
    store::Millis now) const {
  const store::Millis oldest = now - now % minute_ms - (minutes - 1) * minute_ms;
  std::map<std::string, std::vector<Minute>> out;
  std::lock_guard lock(mutex_);
  for (const auto& [route, ring] : routes_) {
    std::vector<Minute>& minutes_seen = out[route];
    for (const Minute& m : ring)
      if (m.count > 0 && m.start >= oldest) minutes_seen.push_back(m);
    std::sort(minutes_seen.begin(), minutes_seen.end(),
              [](const Minute& a, const Minute& b) { return a.start < b.start; });
  }
  return out;
}

}  // namespace courier
