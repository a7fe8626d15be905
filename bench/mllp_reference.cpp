// The references for the MLLP benchmark, on the same load as courier:
//   fixed:   answers every framed message with the same ACK, reading
//            nothing (the wire limit);
//   durable: appends each message to FILE and answers only after the
//            fdatasync that covers it, with group commit (the disk's
//            durability limit).
// Usage: mllp_reference PORT fixed|durable [FILE]
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "bench/journal.h"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr char kAck[] =
    "\x0bMSH|^~\\&|REF|REF|LOAD|LOAD|20240101000000||ACK^A01^ACK|1|P|2.5.1\rMSA|CA|1\r\x1c\r";

asio::awaitable<void> session(tcp::socket socket, courier::bench::Journal* journal) {
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  std::string pending;
  std::array<char, 16384> buffer;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_tuple);
    if (ec) co_return;
    pending.append(buffer.data(), n);
    // One answer per complete frame (0x1C 0x0D ends one).
    for (std::size_t end; (end = pending.find("\x1c\r")) != std::string::npos;) {
      std::string message = pending.substr(0, end + 2);
      pending.erase(0, end + 2);
      if (journal != nullptr) {
        co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
            [journal, &message](auto handler) {
              auto shared = std::make_shared<decltype(handler)>(std::move(handler));
              journal->append(std::move(message), [shared] {
                auto executor = asio::get_associated_executor(*shared);
                asio::post(executor, [shared] { (*shared)(); });
              });
            },
            asio::use_awaitable);
      }
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(kAck, sizeof kAck - 1), use_tuple);
      if (wec) co_return;
    }
  }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, courier::bench::Journal* journal) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), journal), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc >= 3 ? argv[2] : "";
  if ((mode != "fixed" && mode != "durable") || (mode == "durable" && argc != 4)) {
    std::cerr << "usage: mllp_reference PORT fixed|durable [FILE]\n";
    return 2;
  }
  std::optional<courier::bench::Journal> journal;
  if (mode == "durable") journal.emplace(argv[3]);
  asio::io_context io(2);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                           static_cast<unsigned short>(std::stoi(argv[1]))));
  asio::co_spawn(io, listen(acceptor, journal ? &*journal : nullptr), asio::detached);
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
}
