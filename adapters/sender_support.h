// What the TCP senders share: idle connections kept per peer, and running
// an exchange so that its caller always hears of it once.
#pragma once

#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include "engine/delivery/sender.h"

namespace courier::adapters {

// Runs a sender's exchange; an exception becomes a transient outcome, so
// `done` runs exactly once whatever happens.
template <typename Executor>
void run_exchange(Executor executor, boost::asio::awaitable<delivery::SendOutcome> exchange,
                  std::function<void(delivery::SendOutcome)> done) {
  boost::asio::co_spawn(executor, std::move(exchange),
                        [done = std::move(done)](std::exception_ptr error, delivery::SendOutcome outcome) {
                          if (error) {
                            outcome = {};
                            outcome.kind = delivery::SendOutcome::Kind::transient;
                            outcome.error = "internal error while sending";
                          }
                          done(std::move(outcome));
                        });
}

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
