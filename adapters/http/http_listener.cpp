#include "adapters/http/http_listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <atomic>
#include <tuple>

#include "adapters/acceptor.h"
#include "adapters/caller.h"
#include "adapters/engine_awaitable.h"
#include "adapters/http/console_support.h"
#include "adapters/http/http_support.h"
#include "adapters/tls/tls.h"
#include "engine/admin.h"
#include "engine/fhir/operation_outcome.h"
#include "engine/rest/rest_api.h"
#include "engine/rest/search.h"
#include "engine/security/audit.h"
#include "engine/security/security.h"
#include "engine/util/text.h"

namespace courier::adapters {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct HttpSettings {
  std::string address = "0.0.0.0";
  std::uint16_t port = 8080;
  std::string base = "/fhir";
  std::string public_url;  // "" = derived from the bound address
  std::size_t max_body = 16u << 20;
  milliseconds header_timeout{10'000};
  milliseconds idle_timeout{60'000};
  milliseconds body_timeout{60'000};
  std::size_t max_connections = 1024;
  std::shared_ptr<ReloadableTls> tls;  // null: plain TCP
  bool authenticate = false;           // every request needs a known peer
  std::string console = "console";     // the operator console's files; "" serves none
};

int audit_outcome(unsigned status) {
  return status < 400 ? 0 : status < 500 ? 4 : 8;
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

class HttpListener final : public Listener {
 public:
  HttpListener(std::string name, HttpSettings settings)
      : Listener(std::move(name)), settings_(std::move(settings)) {}

  void start(asio::io_context& io, Engine& engine) override {
    engine_ = &engine;
    security_ = engine.options().security.get();
    acceptor_.emplace(io);
    bound_port_ = listen_on(*acceptor_, name(), settings_.address, settings_.port);
    asio::co_spawn(io, accept_loop(), asio::detached);
  }

  void stop() override {
    if (acceptor_) {
      boost::system::error_code ignored;
      acceptor_->close(ignored);
    }
  }

  std::uint16_t port() const override { return bound_port_; }

  std::string describe() const override {
    return std::string(settings_.tls ? "https" : "http") + " on " + settings_.address + ":" +
           std::to_string(bound_port_) + ", FHIR base " + settings_.base +
           (settings_.authenticate ? ", peers authenticated" : "");
  }

  bool authenticates() const override { return settings_.authenticate; }

  void reload_tls() override {
    if (settings_.tls) settings_.tls->reload();
  }

  std::string base_url() const override {
    if (!settings_.public_url.empty()) return settings_.public_url;
    const std::string host =
        settings_.address == "0.0.0.0" || settings_.address == "::" ? "localhost" : settings_.address;
    const std::uint16_t port =
        bound_port_ != 0 ? bound_port_ : settings_.port;  // before start: the configured one
    return std::string(settings_.tls ? "https://" : "http://") + host + ":" + std::to_string(port) +
           settings_.base;
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_->async_accept(use_tuple);
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      if (ec) continue;  // e.g. too many open files: keep serving the others
      socket.set_option(tcp::no_delay(true), ec);
      if (settings_.tls) {
        // Over the limit, a TLS connection is closed at once: answering it
        // would first cost a handshake.
        if (connections_.load() >= settings_.max_connections) {
          socket.close(ec);
          continue;
        }
        asio::co_spawn(acceptor_->get_executor(), tls_session(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(acceptor_->get_executor(), plain_session(std::move(socket)), asio::detached);
      }
    }
  }

  // Counts a connection from its start (a TLS one from before its
  // handshake) to its end.
  struct Counted {
    explicit Counted(std::atomic<std::size_t>& count) : count(count) { ++count; }
    ~Counted() { --count; }
    std::atomic<std::size_t>& count;
  };

  asio::awaitable<void> plain_session(tcp::socket socket) {
    const Counted counted(connections_);
    const bool over_limit = connections_.load() > settings_.max_connections;
    beast::tcp_stream stream(std::move(socket));
    const PeerPtr no_certificate;
    co_await serve(stream, no_certificate, over_limit);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> tls_session(tcp::socket socket) {
    const Counted counted(connections_);
    // The session keeps the context it began with, whatever SIGHUP loads.
    const std::shared_ptr<asio::ssl::context> context = settings_.tls->context();
    beast::tcp_stream tcp_stream(std::move(socket));
    tcp_stream.expires_after(settings_.header_timeout);
    // A plain HTTP request on this port gets a plain answer saying so.
    beast::flat_buffer buffer;
    auto [dec, is_tls] = co_await beast::async_detect_ssl(tcp_stream, buffer, use_tuple);
    if (dec) co_return;
    if (!is_tls) {
      co_await refuse_plain_http(tcp_stream);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *context);
    auto [ec, used] =
        co_await stream.async_handshake(asio::ssl::stream_base::server, buffer.data(), use_tuple);
    // A plain client, an unknown CA, an expired certificate: the client
    // hears why from the handshake itself.
    engine_->metrics().add("courier_tls_handshakes_total",
                           {{"listener", name()}, {"outcome", ec ? "failed" : "ok"}});
    if (ec) co_return;
    PeerPtr peer;
    if (settings_.authenticate) {
      if (auto names = peer_certificate_names(stream.native_handle()))
        peer = security_->by_certificate(names->names);
    }
    co_await serve(stream, peer, false);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    std::tie(ec) = co_await stream.async_shutdown(use_tuple);
  }

  asio::awaitable<void> refuse_plain_http(beast::tcp_stream& stream) {
    Response response = text_response(http::status::bad_request,
                                      "this port speaks HTTPS: use " + base_url() + "\n", "text/plain");
    response.keep_alive(false);
    response.prepare_payload();
    co_await http::async_write(stream, response, use_tuple);  // a failure changes nothing: we close
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Serves the requests of one connection, plain or TLS; `certificate_peer`
  // is the peer its client certificate names.
  // `over_limit`: the connection is one too many, and only hears so.
  template <typename Stream>
  asio::awaitable<void> serve(Stream& stream, const PeerPtr& certificate_peer, bool over_limit) {
    auto& tcp_layer = beast::get_lowest_layer(stream);
    boost::system::error_code address_error;
    const Caller connection{certificate_peer,
                            tcp_layer.socket().remote_endpoint(address_error).address().to_string()};
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(settings_.max_body);
      parser.header_limit(16 * 1024);
      tcp_layer.expires_after(first ? settings_.header_timeout : settings_.idle_timeout);
      first = false;
      auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
      // A Content-Length over the limit fails here, once the header is read.
      bool too_large = hec == http::error::body_limit;
      if (hec && !too_large) break;  // closed, timed out or malformed: nothing to answer
      Response response;
      bool keep_alive = parser.get().keep_alive();
      if (over_limit) {
        response = error_response(parser.get(), http::status::service_unavailable, "transient",
                                  "courier has too many connections open; try again shortly");
        keep_alive = false;
      } else {
        boost::system::error_code bec;
        if (!too_large) {
          tcp_layer.expires_after(settings_.body_timeout);
          std::tie(bec, std::ignore) = co_await http::async_read(stream, buffer, parser, use_tuple);
          too_large = bec == http::error::body_limit;
        }
        if (too_large) {
          response = error_response(parser.get(), http::status::payload_too_large, "too-costly",
                                    "the body is larger than this listener's limit of " +
                                        std::to_string(settings_.max_body) + " bytes");
          keep_alive = false;
        } else if (bec) {
          break;
        } else {
          Identified who = identify(parser.get(), connection);
          if (who.refusal) {
            response = std::move(*who.refusal);
          } else if (parser.get().target() == "/admin/events" && parser.get().method() == http::verb::get &&
                     (!who.caller.peer || who.caller.peer->is_operator)) {
            // The connection becomes the stream of changes until the client leaves.
            co_await stream_changes(stream, who.caller);
            break;
          } else {
            response = co_await handle(parser.get(), who);
          }
        }
      }
      response.version(11);
      response.keep_alive(keep_alive);
      response.set(http::field::server, "courier/0.1");
      response.prepare_payload();
      tcp_layer.expires_after(settings_.body_timeout);
      auto [wec, wn] = co_await http::async_write(stream, response, use_tuple);
      if (!wec && too_large) co_await drain(tcp_layer);
      if (wec || !keep_alive) break;
    }
  }

  // After refusing a body mid-send: closing at once would discard the
  // answer along with the unread body (a reset), so the peer's sending is
  // read and dropped for a moment first.
  static asio::awaitable<void> drain(beast::tcp_stream& tcp_layer) {
    boost::system::error_code ignored;
    tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp_layer.expires_after(std::chrono::seconds(2));
    std::array<char, 16 * 1024> scratch;
    for (std::size_t total = 0; total < (64u << 20);) {
      auto [ec, n] = co_await tcp_layer.async_read_some(asio::buffer(scratch), use_tuple);
      if (ec) break;
      total += n;
    }
  }

  // Who sent the request, or why it is refused.
  struct Identified {
    Caller caller;
    std::optional<Response> refusal;
    std::string session_token;  // the console session the request came with
  };

  // Who sent the request: a bearer token or an API key when one is given,
  // else a console session's cookie, else the client certificate's peer.
  // Requests from a browser must come from courier's own pages: a cookie
  // needs the session's CSRF token on anything but a read, and a
  // cross-site Origin is refused (which also guards a listener that does
  // not authenticate).
  Identified identify(const Request& request, const Caller& connection) {
    const Caller anonymous{nullptr, connection.address};
    const std::string_view path = request.target().substr(0, request.target().find('?'));
    const bool read = request.method() == http::verb::get || request.method() == http::verb::head;
    const std::string_view origin = request[http::field::origin];
    if (!read && !origin.empty() && !same_origin(origin, request[http::field::host])) {
      return {
          anonymous,
          forbidden(request, anonymous, "a request from another site (Origin " + std::string(origin) + ")"),
          {}};
    }
    if (!settings_.authenticate) return {anonymous, std::nullopt, {}};
    security::Authentication who{connection.peer, ""};
    std::string session_token;
    const std::string_view authorization = request[http::field::authorization];
    const std::string_view api_key = request["X-API-Key"];
    const std::string_view cookie = cookie_value(request[http::field::cookie], session_cookie);
    if (!authorization.empty()) {
      constexpr std::string_view bearer = "Bearer ";
      who = authorization.size() > bearer.size() &&
                    beast::iequals(authorization.substr(0, bearer.size()), bearer)
                ? security_->by_token(authorization.substr(bearer.size()), std::time(nullptr))
                : security::Authentication{nullptr, "the Authorization header is not a Bearer token"};
    } else if (!api_key.empty()) {
      who = security_->by_api_key(api_key);
    } else if (!cookie.empty()) {
      if (auto session = sessions_.find(cookie)) {
        who.peer = session->peer;
        session_token = std::string(cookie);
        if (!read && request["X-CSRF-Token"] != session->csrf) {
          const Caller caller{who.peer, connection.address};
          return {
              caller, forbidden(request, caller, "the console session's CSRF token is missing or wrong"), {}};
        }
      } else {
        who.error = "the console session has ended; log in again";
      }
    }
    // Load balancers and SMART clients discover courier before they log
    // in, and the console's page loads before its operator does.
    const bool open_path = path == "/healthz" || path == settings_.base + "/metadata" ||
                           (read && (path == "/console" || path.starts_with("/console/")));
    if (who.peer || open_path) return {Caller{who.peer, connection.address}, std::nullopt, session_token};
    engine_->metrics().add("courier_access_refused_total",
                           {{"listener", name()}, {"reason", "unauthenticated"}});
    Response response =
        error_response(request, http::status::unauthorized, "login",
                       who.error.empty() ? "courier needs a client certificate of a known peer, "
                                           "a bearer token or an API key"
                                         : who.error);
    response.set(http::field::www_authenticate, authorization.empty()
                                                    ? std::string(R"(Bearer realm="courier")")
                                                    : R"(Bearer realm="courier", error="invalid_token")");
    audit_access(anonymous, kind_of(path), "unauthenticated", 'E', 401);
    return {anonymous, std::move(response), {}};
  }

  // "https://host:port" against the Host header "host:port".
  static bool same_origin(std::string_view origin, std::string_view host) {
    const std::size_t scheme = origin.find("://");
    return scheme != std::string_view::npos && origin.substr(scheme + 3) == host;
  }

  static security::AuditRecord::Kind kind_of(std::string_view path) {
    if (path == "/metrics" || path.starts_with("/admin/") || path.starts_with("/console/"))
      return security::AuditRecord::Kind::operator_;
    return path.ends_with("$process-message") ? security::AuditRecord::Kind::message
                                              : security::AuditRecord::Kind::rest;
  }

  void audit_access(const Caller& caller, security::AuditRecord::Kind kind, std::string subtype, char action,
                    unsigned status, std::vector<std::string> entities = {}) {
    security::AuditRecord r;
    r.kind = kind;
    r.subtype = std::move(subtype);
    r.action = action;
    r.outcome = audit_outcome(status);
    if (r.outcome != 0) r.outcome_text = "HTTP " + std::to_string(status);
    r.peer = caller.peer;
    r.address = caller.address;
    r.listener = name();
    r.entities = std::move(entities);
    engine_->audit(std::move(r));
  }

  // The format to answer in: _format, then Accept, then the request's own.
  static fhir::Format answer_format(const Request& request, const std::map<std::string, std::string>& query,
                                    std::optional<fhir::Format> request_format) {
    if (auto it = query.find("_format"); it != query.end()) {
      if (auto f = accepted_format(it->second)) return *f;
    }
    if (auto f = accepted_format(request[http::field::accept])) return *f;
    return request_format.value_or(fhir::Format::json);
  }

  static Response fhir_response(http::status status, std::string body, fhir::Format format) {
    Response response{status, 11};
    if (!body.empty()) response.set(http::field::content_type, content_type(format));
    response.body() = std::move(body);
    return response;
  }

  Response error_response(const Request& request, http::status status, const std::string& code,
                          const std::string& diagnostics) {
    const fhir::Format format = answer_format(request, {}, format_of(request[http::field::content_type], ""));
    return fhir_response(status, fhir::outcome_text(code, diagnostics, format), format);
  }

  static Response text_response(http::status status, std::string body, std::string_view type) {
    Response response{status, 11};
    response.set(http::field::content_type, type);
    response.body() = std::move(body);
    return response;
  }

  Response forbidden(const Request& request, const Caller& caller, const std::string& why) {
    const std::string_view path = request.target().substr(0, request.target().find('?'));
    audit_access(caller, kind_of(path), "forbidden", 'E', 403);
    engine_->metrics().add("courier_access_refused_total", {{"listener", name()}, {"reason", "forbidden"}});
    return error_response(request, http::status::forbidden, "forbidden", why);
  }

  // Coroutines here take the caller by reference: GCC 12 mishandles class
  // parameters passed by value to coroutines (a string's buffer is freed
  // twice).
  asio::awaitable<Response> handle(const Request& request, const Identified& who) {
    const Caller& caller = who.caller;
    const PeerPtr& peer = caller.peer;
    const std::string_view target = request.target();
    const std::size_t question = target.find('?');
    const std::string_view path = target.substr(0, question);
    const auto query = parse_query(question == std::string_view::npos ? "" : target.substr(question + 1));
    const bool get = request.method() == http::verb::get;
    const bool post = request.method() == http::verb::post;
    const std::string& base = settings_.base;

    if (path == "/healthz" && get) co_return text_response(http::status::ok, "ok\n", "text/plain");
    if (path == "/console" || path.starts_with("/console/")) co_return console(request, path, who);
    const bool operator_path = path == "/metrics" || path.starts_with("/admin/");
    if (operator_path && peer && !peer->is_operator)
      co_return forbidden(request, caller, "peer '" + peer->name + "' is not an operator");
    if (path == "/metrics" && get) {
      audit_access(caller, security::AuditRecord::Kind::operator_, "metrics", 'R', 200);
      co_return text_response(http::status::ok, engine_->metrics().prometheus_text(),
                              "text/plain; version=0.0.4");
    }
    if (path.starts_with("/admin/")) {
      Response response = admin(request, path, query, caller);
      audit_access(caller, security::AuditRecord::Kind::operator_, "admin", get ? 'R' : 'E',
                   response.result_int(), {std::string(path)});
      co_return response;
    }
    if (path == base + "/metadata" && get) {
      const fhir::Format format = answer_format(request, query, std::nullopt);
      co_return fhir_response(http::status::ok, fhir::write(engine_->capability_statement(), format), format);
    }
    if (path.starts_with(base + "/MessageDefinition/") && get) {
      const fhir::Format format = answer_format(request, query, std::nullopt);
      const auto definition = engine_->message_definition(path.substr(base.size() + 19));
      if (!definition) {
        co_return error_response(request, http::status::not_found, "not-found", "no such MessageDefinition");
      }
      co_return fhir_response(http::status::ok, fhir::write(*definition, format), format);
    }
    if (path == base + "/$process-message") {
      if (!post) {
        co_return error_response(request, http::status::method_not_allowed, "not-supported",
                                 "$process-message takes a message Bundle by POST");
      }
      if (peer && !peer->scopes.allows("MessageHeader", security::Interaction::create))
        co_return forbidden(
            request, caller,
            "peer '" + peer->name + "' has no scope to send messages (system/MessageHeader.c)");
      co_return co_await process_message(request, query, caller);
    }
    if (path == base || path.starts_with(base + "/")) {
      const std::string_view raw_query =
          question == std::string_view::npos ? "" : target.substr(question + 1);
      co_return co_await rest(request, path.substr(std::min(path.size(), base.size() + 1)), raw_query, query,
                              caller);
    }
    co_return error_response(request, http::status::not_found, "not-found",
                             "courier serves FHIR under " + base + "/ here, not " + std::string(path));
  }

  // The embedded FHIR REST store: everything else under the FHIR base.
  asio::awaitable<Response> rest(const Request& request, std::string_view path, std::string_view raw_query,
                                 const std::map<std::string, std::string>& query, const Caller& caller) {
    rest::RestRequest r;
    r.peer = caller.peer;
    r.method = std::string(request.method_string());
    r.set_target(raw_query.empty() ? std::string(path) : std::string(path) + "?" + std::string(raw_query));
    r.body = request.body();
    if (!r.body.empty()) r.body_format = format_of(request[http::field::content_type], r.body);
    r.answer_format = answer_format(request, query, r.body_format);
    r.if_match = std::string(request[http::field::if_match]);
    r.if_none_exist = std::string(request["If-None-Exist"]);
    r.prefer = std::string(request["Prefer"]);
    r.base_url = base_url();
    const std::vector<std::string> segments = r.segments;  // for the audit trail, as the API read them
    rest::RestResponse answer = co_await async_rest(*engine_, std::move(r), asio::use_awaitable);
    Response response =
        fhir_response(static_cast<http::status>(answer.status), std::move(answer.body), answer.format);
    for (const auto& [name, value] : answer.headers) response.set(name, value);
    audit_rest(caller, request.method(), segments, answer);
    co_return response;
  }

  asio::awaitable<Response> process_message(const Request& request,
                                            const std::map<std::string, std::string>& query,
                                            const Caller& caller) {
    const std::optional<fhir::Format> format = format_of(request[http::field::content_type], request.body());
    if (!format) {
      co_return error_response(request, http::status::unsupported_media_type, "not-supported",
                               "send the message as application/fhir+json or application/fhir+xml, not " +
                                   std::string(request[http::field::content_type]));
    }
    Inbound inbound;
    inbound.listener = name();
    inbound.peer = caller.peer;
    inbound.peer_address = caller.address;
    inbound.body = request.body();
    inbound.format = format;
    if (auto it = query.find("async"); it != query.end()) inbound.async = it->second == "true";
    if (auto it = query.find("response-url"); it != query.end()) {
      // Only an HTTP(S) address: other schemes (mllp://) are courier's own
      // return paths, which a placer must not be able to aim.
      if (!it->second.starts_with("http://") && !it->second.starts_with("https://"))
        co_return error_response(request, http::status::bad_request, "invalid",
                                 "response-url must be an http:// or https:// address");
      inbound.response_url = it->second;
    }
    Reply reply = co_await async_accept(*engine_, std::move(inbound), asio::use_awaitable);
    const fhir::Format wanted = answer_format(request, query, format);
    if (!reply.body.empty() && reply.format != wanted) {
      // Answer in the format asked for; the stored original stays as it was.
      const fhir::ParseResult parsed = fhir::parse(reply.body);
      if (parsed.resource) {
        reply.body = fhir::write(*parsed.resource, wanted);
        reply.format = wanted;
      }
    }
    co_return fhir_response(static_cast<http::status>(reply.status), std::move(reply.body), reply.format);
  }

  // A REST interaction in the audit trail: what was done, to which
  // resource (the one named, or the one a create made).
  void audit_rest(const Caller& caller, http::verb method, const std::vector<std::string>& parts,
                  const rest::RestResponse& answer) {
    std::string subtype = "read";
    char action = 'R';
    std::vector<std::string> entities;
    if (parts.size() >= 2 && !parts[1].empty() && parts[1] != "_search")
      entities.push_back(parts[0] + "/" + parts[1]);
    switch (method) {
      case http::verb::get:
        if (parts.size() == 1) subtype = "search";
        if (parts.size() == 3) subtype = "history";  // [type]/[id]/_history; with a version, a read
        break;
      case http::verb::post:
        if (parts.size() == 2 && parts[1] == "_search") {
          subtype = "search";
          break;
        }
        subtype = parts.empty() || parts[0].empty() ? "batch" : "create";
        action = subtype == "batch" ? 'E' : 'C';
        for (const auto& [header, value] : answer.headers) {
          // Location: [base]/Type/id/_history/1
          if (header == "Location") entities.push_back(rest::normalised_reference(value));
        }
        break;
      case http::verb::put:
        subtype = "update";
        action = 'U';
        break;
      case http::verb::delete_:
        subtype = "delete";
        action = 'D';
        break;
      default: break;
    }
    audit_access(caller, security::AuditRecord::Kind::rest, subtype, action,
                 static_cast<unsigned>(answer.status), std::move(entities));
  }

  static Response json_response(http::status status, const nlohmann::json& body) {
    Response response = text_response(status, body.dump(2) + "\n", "application/json");
    response.set(http::field::cache_control, "no-store");
    return response;
  }

  // Message bodies hold patient data: only for peers that may read
  // Bundles (everyone, when the listener does not authenticate).
  static bool may_read_messages(const PeerPtr& peer) {
    return !peer || peer->scopes.allows("Bundle", security::Interaction::read);
  }

  // The id in "/admin/PREFIX/ID/ACTION" when the path has that shape.
  static std::optional<std::int64_t> id_between(std::string_view path, std::string_view prefix,
                                                std::string_view action) {
    if (!path.starts_with(prefix) || !path.ends_with(action) || path.size() <= prefix.size() + action.size())
      return std::nullopt;
    return util::parse_integer(path.substr(prefix.size(), path.size() - prefix.size() - action.size()));
  }

  Response admin(const Request& request, std::string_view path,
                 const std::map<std::string, std::string>& query, const Caller& caller) {
    const bool get = request.method() == http::verb::get;
    const bool post = request.method() == http::verb::post;
    constexpr std::string_view conversations = "/admin/conversations";
    if (path == conversations && get) {
      std::string error;
      const store::ConversationFilter filter = admin::conversation_filter(query, error);
      if (!error.empty()) return json_response(http::status::bad_request, {{"error", error}});
      return json_response(http::status::ok, admin::conversation_list(engine_->store(), filter));
    }
    if (path == "/admin/dashboard" && get) return json_response(http::status::ok, admin::dashboard(*engine_));
    if (path == "/admin/routes" && get) return json_response(http::status::ok, admin::routes(*engine_));
    if (path.starts_with(conversations) && get) {
      const auto id = util::parse_integer(path.substr(std::min(path.size(), conversations.size() + 1)));
      const bool bodies = query.count("bodies") != 0;
      if (bodies && !may_read_messages(caller.peer))
        return json_response(
            http::status::forbidden,
            {{"error", "peer '" + caller.peer->name + "' may not read messages (system/Bundle.r)"}});
      const nlohmann::json detail = id ? admin::conversation_detail(engine_->store(), *id, bodies) : nullptr;
      if (detail.is_null())
        return json_response(http::status::not_found, {{"error", "no such conversation"}});
      return json_response(http::status::ok, detail);
    }
    std::string error;
    if (auto id = id_between(path, "/admin/deliveries/", "/replay"); id && post) {
      if (engine_->replay(*id, error)) return json_response(http::status::ok, {{"replayed", *id}});
      return json_response(http::status::conflict, {{"error", error}});
    }
    if (auto id = id_between(path, "/admin/deliveries/", "/retry"); id && post) {
      if (engine_->retry_now(*id, error)) return json_response(http::status::ok, {{"retrying", *id}});
      return json_response(http::status::conflict, {{"error", error}});
    }
    if (auto id = id_between(path, "/admin/conversations/", "/cancel"); id && post) {
      if (engine_->cancel(*id, error)) return json_response(http::status::ok, {{"cancelling", *id}});
      return json_response(http::status::conflict, {{"error", error}});
    }
    if (path == "/admin/prune" && post) {
      const auto& prune = engine_->operator_info().prune;
      if (!prune)
        return json_response(http::status::not_found, {{"error", "this engine has no retention policy"}});
      return json_response(http::status::ok, {{"pruned", prune()}});
    }
    return json_response(http::status::not_found, {{"error", "unknown admin path"}});
  }

  // The console: its files, and the session a login opens.
  Response console(const Request& request, std::string_view path, const Identified& who) {
    const bool get = request.method() == http::verb::get;
    const bool post = request.method() == http::verb::post;
    const PeerPtr& peer = who.caller.peer;
    if (path == "/console/session" && get) {
      nlohmann::json state{{"authenticationRequired", settings_.authenticate},
                           {"authenticated", !settings_.authenticate || peer != nullptr}};
      if (peer) state["peer"] = peer->name;
      state["operator"] = !settings_.authenticate || (peer && peer->is_operator);
      state["mayReadMessages"] = !settings_.authenticate || (peer && may_read_messages(peer));
      if (!who.session_token.empty())
        if (auto session = sessions_.find(who.session_token)) state["csrf"] = session->csrf;
      return json_response(http::status::ok, state);
    }
    if (path == "/console/login" && post) {
      // The request itself carried the API key or token (identify() read it).
      if (!settings_.authenticate)
        return json_response(http::status::ok,
                             {{"authenticated", true}, {"operator", true}, {"mayReadMessages", true}});
      if (!peer || !who.session_token.empty())
        return json_response(http::status::bad_request,
                             {{"error", "log in with an X-API-Key or a bearer token"}});
      const ConsoleSessions::Opened opened = sessions_.open(peer);
      audit_access(who.caller, security::AuditRecord::Kind::operator_, "login", 'E', 200, {"/console/login"});
      Response response = json_response(http::status::ok, {{"authenticated", true},
                                                           {"peer", peer->name},
                                                           {"operator", peer->is_operator},
                                                           {"mayReadMessages", may_read_messages(peer)},
                                                           {"csrf", opened.csrf}});
      response.set(http::field::set_cookie, session_cookie_header(opened.token, settings_.tls != nullptr));
      return response;
    }
    if (path == "/console/logout" && post) {
      if (!who.session_token.empty()) {
        sessions_.close(who.session_token);
        audit_access(who.caller, security::AuditRecord::Kind::operator_, "logout", 'E', 200,
                     {"/console/logout"});
      }
      Response response = json_response(http::status::ok, {{"authenticated", false}});
      response.set(http::field::set_cookie, session_cookie_header("", settings_.tls != nullptr));
      return response;
    }
    if (!get)
      return json_response(http::status::method_not_allowed,
                           {{"error", "the console's pages are read with GET"}});
    if (path == "/console") {
      Response response = text_response(http::status::moved_permanently, "", "text/plain");
      response.set(http::field::location, "/console/");
      return response;
    }
    const std::optional<Asset> asset =
        settings_.console.empty() ? std::nullopt : console_asset(settings_.console, path.substr(9));
    if (!asset)
      return text_response(
          http::status::not_found,
          settings_.console.empty() ? "this listener serves no console\n" : "no such console file\n",
          "text/plain");
    Response response = text_response(http::status::ok, asset->body, asset->content_type);
    // The page runs only its own scripts and can be framed by no one.
    response.set("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                 "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    response.set("X-Content-Type-Options", "nosniff");
    response.set("Referrer-Policy", "no-referrer");
    response.set(http::field::cache_control, "no-cache");
    return response;
  }

  // GET /admin/events: Server-Sent Events, one per conversation change,
  // and a comment every 15 s so that proxies and the client see the
  // connection alive (and a closed one is noticed).
  template <typename Stream>
  asio::awaitable<void> stream_changes(Stream& stream, const Caller& caller) {
    using namespace asio::experimental::awaitable_operators;
    using Channel = asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)>;
    audit_access(caller, security::AuditRecord::Kind::operator_, "admin", 'R', 200, {"/admin/events"});
    const auto executor = co_await asio::this_coro::executor;
    auto channel = std::make_shared<Channel>(executor, 1024);
    // A client too slow to keep up is told to reload rather than fed forever.
    auto overflowed = std::make_shared<std::atomic<bool>>(false);
    const std::uint64_t token =
        engine_->changes().subscribe([channel, overflowed](const ConversationChange& c) {
          nlohmann::json data{{"conversation", c.conversation},
                              {"at", store::iso_time(c.at)},
                              {"route", c.route},
                              {"kind", c.kind}};
          if (!c.state.empty()) data["state"] = c.state;
          if (!channel->try_send(boost::system::error_code{}, "data: " + data.dump() + "\n\n"))
            overflowed->store(true);
        });
    struct Unsubscribe {
      ChangeFeed& feed;
      std::uint64_t token;
      ~Unsubscribe() { feed.unsubscribe(token); }
    } unsubscribe{engine_->changes(), token};
    auto& tcp_layer = beast::get_lowest_layer(stream);
    const std::string head =
        "HTTP/1.1 200 OK\r\nServer: courier/0.1\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        "retry: 2000\n\n";
    tcp_layer.expires_after(settings_.body_timeout);
    auto [hec, hn] = co_await asio::async_write(stream, asio::buffer(head), use_tuple);
    if (hec) co_return;
    asio::steady_timer heartbeat(executor);
    for (;;) {
      heartbeat.expires_after(std::chrono::seconds(15));
      auto next = co_await (channel->async_receive(use_tuple) || heartbeat.async_wait(use_tuple));
      std::string frame = ": alive\n\n";
      if (next.index() == 0) {
        auto& [ec, text] = std::get<0>(next);
        if (ec) break;
        frame = std::move(text);
      }
      if (overflowed->exchange(false)) frame = "event: overflow\ndata: {}\n\n";
      tcp_layer.expires_after(settings_.body_timeout);
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(frame), use_tuple);
      if (wec) break;
    }
    channel->close();
  }

  HttpSettings settings_;
  Engine* engine_ = nullptr;
  std::optional<tcp::acceptor> acceptor_;
  std::uint16_t bound_port_ = 0;
  std::atomic<std::size_t> connections_ = 0;
  const security::Security* security_ = nullptr;
  ConsoleSessions sessions_;
};

}  // namespace

std::unique_ptr<Listener> parse_http_listener(std::string name, const YAML::Node& node,
                                              config::YamlReader& reader) {
  const std::string where = "listener '" + name + "'";
  if (!reader.check_keys(
          node,
          {"name", "type", "address", "port", "base", "public-url", "max-body", "header-timeout",
           "idle-timeout", "body-timeout", "max-connections", "tls", "authentication", "console"},
          where)) {
    return nullptr;
  }
  HttpSettings s;
  if (node["address"]) s.address = reader.scalar(node["address"], where + ".address").value_or(s.address);
  if (node["port"])
    s.port =
        static_cast<std::uint16_t>(reader.integer(node["port"], where + ".port", 0, 65535).value_or(s.port));
  if (node["base"]) {
    s.base = reader.scalar(node["base"], where + ".base").value_or(s.base);
    while (s.base.ends_with('/')) s.base.pop_back();
    if (!s.base.empty() && !s.base.starts_with('/'))
      reader.fail(node["base"], where + ".base must start with '/'");
  }
  if (node["public-url"])
    s.public_url = reader.scalar(node["public-url"], where + ".public-url").value_or("");
  if (node["max-body"])
    s.max_body = static_cast<std::size_t>(reader.size(node["max-body"], where + ".max-body").value_or(1));
  if (node["header-timeout"])
    s.header_timeout =
        reader.duration(node["header-timeout"], where + ".header-timeout").value_or(s.header_timeout);
  if (node["idle-timeout"])
    s.idle_timeout = reader.duration(node["idle-timeout"], where + ".idle-timeout").value_or(s.idle_timeout);
  if (node["body-timeout"])
    s.body_timeout = reader.duration(node["body-timeout"], where + ".body-timeout").value_or(s.body_timeout);
  if (node["max-connections"]) {
    s.max_connections = static_cast<std::size_t>(
        reader.integer(node["max-connections"], where + ".max-connections", 1, 1'000'000).value_or(1));
  }
  if (node["tls"]) s.tls = parse_tls(node["tls"], reader, where + ".tls", true);
  s.authenticate = read_authentication(node, reader, where);
  if (node["console"]) s.console = reader.scalar(node["console"], where + ".console").value_or("");
  return std::make_unique<HttpListener>(std::move(name), std::move(s));
}

}  // namespace courier::adapters
