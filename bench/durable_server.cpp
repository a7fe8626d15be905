// The disk's durability limit, as a reference for the messaging benchmark:
// a minimal HTTP server that appends each POSTed body to one file and
// answers 200 only after the fdatasync that covers it. Writes that arrive
// while a sync runs share the next one (group commit), as courier's store
// does. Usage: durable_server PORT FILE
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <condition_variable>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Journal {
 public:
  explicit Journal(const char* path) : fd_(::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw std::runtime_error(std::string("cannot open ") + path);
    thread_ = std::thread([this] { loop(); });
  }

  void append(std::string body, std::function<void()> done) {
    {
      std::lock_guard lock(mutex_);
      pending_.push_back({std::move(body), std::move(done)});
    }
    wake_.notify_one();
  }

 private:
  struct Entry {
    std::string body;
    std::function<void()> done;
  };

  void loop() {
    std::vector<Entry> batch;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !pending_.empty(); });
        batch.swap(pending_);
      }
      std::string data;
      for (const Entry& e : batch) data += e.body;
      if (::write(fd_, data.data(), data.size()) != static_cast<ssize_t>(data.size()) || ::fdatasync(fd_) != 0) {
        std::perror("durable_server");
        std::exit(1);
      }
      for (Entry& e : batch) e.done();
      batch.clear();
    }
  }

  int fd_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Entry> pending_;
  std::thread thread_;
};

asio::awaitable<void> session(tcp::socket socket, Journal& journal) {
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

asio::awaitable<void> listen(tcp::acceptor& acceptor, Journal& journal) {
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
  Journal journal(argv[2]);
  asio::io_context io(2);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(std::stoi(argv[1]))));
  asio::co_spawn(io, listen(acceptor, journal), asio::detached);
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
}
