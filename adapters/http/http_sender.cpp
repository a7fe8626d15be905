#include "adapters/http/http_sender.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>
#include <vector>

#include "adapters/http/http_support.h"
#include "adapters/sender_support.h"
#include "adapters/tls/tls.h"

namespace courier::adapters {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

class HttpSender final : public delivery::Sender, public std::enable_shared_from_this<HttpSender> {
 public:
  HttpSender(asio::io_context& io, std::shared_ptr<ReloadableTls> tls) : io_(io), tls_(std::move(tls)) {}

  void send(delivery::Outbound message, std::function<void(delivery::SendOutcome)> done) override {
    run_exchange(io_.get_executor(), exchange(shared_from_this(), std::move(message)), std::move(done));
  }

 private:
  static asio::awaitable<delivery::SendOutcome> exchange(std::shared_ptr<HttpSender> self,
                                                         delivery::Outbound message) {
    using Kind = delivery::SendOutcome::Kind;
    delivery::SendOutcome outcome;
    outcome.kind = Kind::transient;
    const std::optional<Url> url = parse_url(message.target);
    if (!url) {
      outcome.kind = Kind::fatal;
      outcome.error = "not an http:// URL: " + message.target;
      co_return outcome;
    }
    http::request<http::string_body> request{http::string_to_verb(message.method), url->target, 11};
    request.set(http::field::host, url->host_header());
    request.set(http::field::user_agent, "courier/0.1");
    request.set(http::field::content_type, content_type(message.format));
    request.set(http::field::accept, content_type(message.format));
    for (const auto& [name, value] : message.headers) request.set(name, value);
    request.keep_alive(true);
    request.body() = std::move(message.body);
    request.prepare_payload();
    if (url->tls) co_return co_await self->exchange_over(self->tls_pool_, *url, request, message);
    co_return co_await self->exchange_over(self->plain_pool_, *url, request, message);
  }

  template <typename Stream>
  asio::awaitable<delivery::SendOutcome> exchange_over(ConnectionPool<Stream>& pool, const Url& url,
                                                       http::request<http::string_body>& request,
                                                       const delivery::Outbound& message) {
    delivery::SendOutcome outcome;
    outcome.kind = delivery::SendOutcome::Kind::transient;
    // A reused connection may have been closed by the peer meanwhile: one
    // more try on a fresh connection in that case.
    for (int round = 0; round < 2; ++round) {
      std::optional<Stream> stream = pool.take(url.host_port());
      const bool reused = stream.has_value();
      if (!stream) {
        open_stream(stream, co_await asio::this_coro::executor, *tls_);
        beast::get_lowest_layer(*stream).expires_after(message.timeout);
        outcome.error = co_await connect_stream(*stream, url.host, url.port);
        if (!outcome.error.empty()) co_return outcome;
      }
      beast::get_lowest_layer(*stream).expires_after(message.timeout);
      auto [wec, written] = co_await http::async_write(*stream, request, use_tuple);
      beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(64u << 20);
      boost::system::error_code rec;
      if (!wec) std::tie(rec, std::ignore) = co_await http::async_read(*stream, buffer, parser, use_tuple);
      const boost::system::error_code ec = wec ? wec : rec;
      if (ec) {
        if (reused && round == 0 && ec != beast::error::timeout) continue;
        outcome.error = ec == beast::error::timeout
                            ? "no answer within " + std::to_string(message.timeout.count()) + " ms"
                            : "connection to " + url.host_port() + " failed: " + ec.message();
        co_return outcome;
      }
      http::response<http::string_body> response = parser.release();
      if (response.keep_alive()) pool.give_back(url.host_port(), std::move(*stream));
      outcome.status = static_cast<int>(response.result_int());
      outcome.body = std::move(response.body());
      outcome.format =
          format_of(response[http::field::content_type], outcome.body).value_or(fhir::Format::json);
      outcome.location = std::string(response[http::field::location]);
      delivery::classify_status(outcome, message.message_exchange);
      co_return outcome;
    }
    co_return outcome;
  }

  asio::io_context& io_;
  std::shared_ptr<ReloadableTls> tls_;
  ConnectionPool<beast::tcp_stream> plain_pool_{64};
  ConnectionPool<TlsStream> tls_pool_{64};
};

}  // namespace

std::shared_ptr<delivery::Sender> make_http_sender(asio::io_context& io, std::shared_ptr<ReloadableTls> tls) {
  return std::make_shared<HttpSender>(io, std::move(tls));
}

}  // namespace courier::adapters
