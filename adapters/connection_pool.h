// Idle connections kept per peer ("host:port") for senders to reuse.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace courier::adapters {

template <typename Stream>
class ConnectionPool {
 public:
  explicit ConnectionPool(std::size_t per_peer) : per_peer_(per_peer) {}

  std::optional<Stream> take(const std::string& peer) {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(peer);
    if (it == idle_.end() || it->second.empty()) return std::nullopt;
    Stream stream = std::move(it->second.back());
    it->second.pop_back();
    return stream;
  }

  void give_back(const std::string& peer, Stream stream) {
    std::lock_guard lock(mutex_);
    auto& pool = idle_[peer];
    if (pool.size() < per_peer_) pool.push_back(std::move(stream));
  }

 private:
  std::size_t per_peer_;
  std::mutex mutex_;
  std::map<std::string, std::vector<Stream>> idle_;
};

}  // namespace courier::adapters
