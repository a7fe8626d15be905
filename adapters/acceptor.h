// Opening a listener's socket: the same for every TCP listener.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace courier::adapters {

// Binds `acceptor` to address:port and listens; throws std::runtime_error
// naming the listener when it cannot. Returns the port bound (the chosen
// one for port 0).
inline std::uint16_t listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& listener,
                               const std::string& address, std::uint16_t port) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(address, ec), port);
  if (ec) throw std::runtime_error("listener " + listener + ": '" + address + "' is not an IP address");
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint, ec);
  if (ec) {
    throw std::runtime_error("listener " + listener + ": cannot listen on " + address + ":" +
                             std::to_string(port) + ": " + ec.message());
  }
  acceptor.listen(asio::socket_base::max_listen_connections);
  return acceptor.local_endpoint().port();
}

}  // namespace courier::adapters
