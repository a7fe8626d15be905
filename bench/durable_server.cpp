// The disk's durability limit, as a reference for the messaging benchmark:
// a minimal HTTP server that appends each POSTed body to one file and
// answers 200 only after the fdatasync that covers it. Writes that arrive
// while a sync runs share the next one (group commit), as courier's store
// does. Usage: durable_server PORT FILE
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <iostream>
#include <thread>

#include "bench/journal.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

asio::awaitable<void> session(tcp::socket socket, courier::bench::Journal& journal) {
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> request;
    auto [ec, n] = co_await http::async_read(stream, buffer, request, use_tuple);
    if (ec) co_return;
    // Wait on this connection's strand until the sync covering the body is done.
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [&journal, &request](auto handler) {
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          journal.append(std::move(request.body()), [shared] {
            auto executor = asio::get_associated_executor(*shared);
            asio::post(executor, [shared] { (*shared)(); });
          });
        },
        asio::use_awaitable);
    http::response<http::string_body> response{http::status::ok, request.version()};
    response.keep_alive(request.keep_alive());
    response.body() = "ok";
    response.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, response, use_tuple);
    if (wec || !request.keep_alive()) co_return;
  }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, courier::bench::Journal& journal) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), journal), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: durable_server PORT FILE\n";
    return 2;
  }
  courier::bench::Journal journal(argv[2]);
  asio::io_context io(2);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                           static_cast<unsigned short>(std::stoi(argv[1]))));
  asio::co_spawn(io, listen(acceptor, journal), asio::detached);
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
}
