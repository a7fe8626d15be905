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

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "adapters/tls/tls.h"
#include "engine/delivery/sender.h"

namespace courier::adapters {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// A new, unconnected stream in `stream`. A TLS one takes the current
// client context (OpenSSL keeps it alive while the stream lives, whatever
// SIGHUP loads meanwhile).
inline void open_stream(std::optional<boost::beast::tcp_stream>& stream,
                        boost::asio::any_io_executor executor, const ReloadableTls&) {
  stream.emplace(executor);
}
inline void open_stream(std::optional<TlsStream>& stream, boost::asio::any_io_executor executor,
                        const ReloadableTls& tls) {
  stream.emplace(executor, *tls.context());
}

// Resolves host:port and connects; "" on success, else why not.
inline boost::asio::awaitable<std::string> connect_stream(boost::beast::tcp_stream& stream,
                                                          const std::string& host, const std::string& port) {
  namespace asio = boost::asio;
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  asio::ip::tcp::resolver resolver(stream.get_executor());
  auto [rec, endpoints] = co_await resolver.async_resolve(host, port, use_tuple);
  if (rec) co_return "cannot resolve " + host + ": " + rec.message();
  auto [cec, endpoint] = co_await stream.async_connect(endpoints, use_tuple);
  if (cec) co_return "cannot connect to " + host + ":" + port + ": " + cec.message();
  co_return "";
}

// The same, then the TLS handshake: the server's certificate must chain
// to a trusted CA and name `host` (a DNS name or an IP address).
inline boost::asio::awaitable<std::string> connect_stream(TlsStream& stream, const std::string& host,
                                                          const std::string& port) {
  namespace asio = boost::asio;
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  if (std::string error = co_await connect_stream(boost::beast::get_lowest_layer(stream), host, port);
      !error.empty()) {
    co_return error;
  }
  SSL* ssl = stream.native_handle();
  expect_server_name(ssl, host);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_tuple);
  if (!ec) co_return "";
  const long verify = SSL_get_verify_result(ssl);
  const std::string why = verify != X509_V_OK ? X509_verify_cert_error_string(verify) : ec.message();
  co_return "TLS handshake with " + host + ":" + port + " failed: " + why;
}

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
