// courier messages [list|show ID|replay ID]: the operator's view of the
// conversations in the store, the same JSON as /admin/ on the HTTP listener.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "adapters/http/http_support.h"
#include "adapters/tls/tls.h"
#include "app/commands.h"
#include "app/config.h"
#include "engine/admin.h"
#include "engine/store/sqlite_store.h"

namespace courier::app {

namespace {

struct MessagesOptions {
  std::string config = "conf/courier.yaml";
  std::string action = "list";
  std::int64_t id = 0;
  std::string route, state, event, peer, key;
  std::string since;  // a duration back from now: 1h, 2d
  int limit = 50;
  bool bodies = false;
  bool json = false;
  std::string url;  // the running engine, for replay
};

// True when a running engine holds the data directory.
bool engine_running(const std::string& data_dir) {
  const std::string path = (std::filesystem::path(data_dir) / "courier.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  return held;
}

// One request to the running engine's /admin/ API, over HTTP or HTTPS.
// An engine that authenticates its peers needs an operator's API key:
// it is read from COURIER_API_KEY (never from the command line, where
// other users could see it). HTTPS servers are verified against
// COURIER_CA_FILE, else the system's CAs.
template <typename Stream>
int admin_request(Stream& stream, const adapters::Url& url, const std::string& target) {
  namespace http = boost::beast::http;
  http::request<http::string_body> request{http::verb::post, target, 11};
  request.set(http::field::host, url.host_header());
  if (const char* key = std::getenv("COURIER_API_KEY"); key != nullptr && *key != '\0')
    request.set("X-API-Key", key);
  request.prepare_payload();
  http::write(stream, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  std::cout << response.body();
  if (response.result() == http::status::unauthorized || response.result() == http::status::forbidden)
    std::cerr
        << "courier messages: the engine wants an operator: set COURIER_API_KEY to an operator's API key\n";
  return response.result() == http::status::ok ? 0 : 1;
}

// Asks the running engine to replay, through its /admin/ API.
int replay_through_engine(const std::string& base, std::int64_t id) {
  namespace beast = boost::beast;
  const auto url = adapters::parse_url(base);
  if (!url) {
    std::cerr << "courier messages: cannot reach the engine at '" << base
              << "' (give --url http://HOST:PORT or https://HOST:PORT)\n";
    return 1;
  }
  const std::string target = "/admin/deliveries/" + std::to_string(id) + "/replay";
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream tcp(io);
    tcp.expires_after(std::chrono::seconds(30));
    tcp.connect(resolver.resolve(url->host, url->port));
    if (!url->tls) return admin_request(tcp, *url, target);
    adapters::TlsSettings settings;
    if (const char* ca = std::getenv("COURIER_CA_FILE")) settings.ca_file = ca;
    const adapters::ReloadableTls tls(adapters::ReloadableTls::Role::client, settings);
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), *tls.context());
    adapters::expect_server_name(stream.native_handle(), url->host);
    stream.handshake(boost::asio::ssl::stream_base::client);
    return admin_request(stream, *url, target);
  } catch (const std::exception& e) {
    std::cerr << "courier messages: cannot reach the engine at " << base << ": " << e.what() << '\n';
    return 1;
  }
}

void print_table(const nlohmann::json& list) {
  std::cout << "ID      RECEIVED                  STATE        ROUTE               EVENT\n";
  for (const auto& c : list) {
    std::string id = std::to_string(c["id"].get<std::int64_t>());
    id.resize(std::max<std::size_t>(id.size(), 7), ' ');
    std::string state = c["state"].get<std::string>();
    state.resize(std::max<std::size_t>(state.size(), 12), ' ');
    std::string route = c["route"].get<std::string>();
    route.resize(std::max<std::size_t>(route.size(), 19), ' ');
    std::cout << id << ' ' << c["received"].get<std::string>() << "  " << state << ' ' << route << ' '
              << c["event"].get<std::string>() << '\n';
  }
}

void print_timeline(const nlohmann::json& c) {
  std::cout << "conversation " << c["id"] << ": " << c["event"].get<std::string>() << " via route "
            << c["route"].get<std::string>() << ", " << c["state"].get<std::string>() << '\n'
            << "  Bundle.id " << c["bundleId"].get<std::string>() << ", MessageHeader.id "
            << c["messageHeaderId"].get<std::string>() << '\n';
  for (const auto& d : c["deliveries"]) {
    std::cout << "  delivery " << d["id"] << " (" << d["kind"].get<std::string>() << ") to "
              << d["destination"].get<std::string>() << ": " << d["state"].get<std::string>() << " after "
              << d["attempts"] << " attempt(s)\n";
  }
  for (const auto& e : c["timeline"]) {
    std::string kind = e["kind"].get<std::string>();
    kind.resize(std::max<std::size_t>(kind.size(), 10), ' ');
    std::cout << "  " << e["at"].get<std::string>() << "  " << kind << ' ' << e["detail"].get<std::string>()
              << '\n';
  }
}

int messages_command(const MessagesOptions& o) {
  std::vector<std::string> errors;
  const Config config = load_config(o.config, errors);
  if (!errors.empty()) {
    for (const std::string& e : errors) std::cerr << "courier messages: " << e << '\n';
    return 1;
  }
  if (!std::filesystem::exists(std::filesystem::path(config.data_dir) / "courier.db")) {
    std::cerr << "courier messages: no store in " << config.data_dir << " yet\n";
    return 1;
  }
  if (o.action == "replay" && engine_running(config.data_dir)) {
    std::string url = o.url;
    if (url.empty()) std::ifstream((std::filesystem::path(config.data_dir) / "listener-url").string()) >> url;
    return replay_through_engine(url, o.id);
  }
  auto store = store::open_sqlite_store(config.data_dir);
  if (o.action == "list") {
    store::ConversationFilter filter{
        .route = o.route, .state = o.state, .event = o.event, .peer = o.peer, .key = o.key};
    filter.limit = o.limit;
    if (!o.since.empty()) {
      const auto back = config::parse_duration(o.since);
      if (!back) {
        std::cerr << "courier messages: --since takes a duration such as 30m, 2h or 7d\n";
        return 2;
      }
      filter.since = store::now_millis() - back->count();
    }
    const nlohmann::json list = admin::conversation_list(*store, filter);
    if (o.json) {
      std::cout << list.dump(2) << '\n';
    } else {
      print_table(list);
    }
    return 0;
  }
  if (o.action == "show") {
    const nlohmann::json detail = admin::conversation_detail(*store, o.id, o.bodies);
    if (detail.is_null()) {
      std::cerr << "courier messages: no conversation " << o.id << '\n';
      return 1;
    }
    if (o.json) {
      std::cout << detail.dump(2) << '\n';
    } else {
      print_timeline(detail);
    }
    return 0;
  }
  // replay with the engine stopped: mark it pending; the next start sends it.
  std::string error;
  if (!admin::reopen_parked(*store, o.id, error)) {
    std::cerr << "courier messages: " << error << '\n';
    return 1;
  }
  store->close();
  std::cout << "delivery " << o.id << " will be sent when courier next starts\n";
  return 0;
}

}  // namespace

void add_messages_command(CLI::App& app, int& status) {
  auto o = std::make_shared<MessagesOptions>();
  CLI::App* cmd =
      app.add_subcommand("messages", "List conversations, show one as a timeline, replay a parked delivery.");
  cmd->add_option("--config", o->config, "the engine configuration")->capture_default_str();
  cmd->require_subcommand(0, 1);
  CLI::App* list = cmd->add_subcommand("list", "Recent conversations, newest first (the default).");
  list->add_option("--route", o->route, "only this route");
  list->add_option("--state", o->state,
                   "only this state (received, accepted, in-progress, completed, rejected, on-hold, failed)");
  list->add_option("--event", o->event, "only this event (system|code)");
  list->add_option("--peer", o->peer, "only those from this peer (or claimed sender)");
  list->add_option("--id", o->key,
                   "only those with this business identifier (patient MRN, order id, MSH-10, Bundle or "
                   "MessageHeader id)");
  list->add_option("--since", o->since, "only those received within this time (30m, 2h, 7d)");
  list->add_option("--limit", o->limit, "at most this many")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  list->add_flag("--json", o->json, "print JSON, as /admin/conversations does");
  CLI::App* show = cmd->add_subcommand("show", "One conversation: deliveries and timeline.");
  show->add_option("id", o->id, "the conversation id")->required();
  show->add_flag("--bodies", o->bodies, "include the messages (patient data)");
  show->add_flag("--json", o->json, "print JSON, as /admin/conversations/ID does");
  CLI::App* replay = cmd->add_subcommand("replay", "Send a parked delivery again.");
  replay->add_option("id", o->id, "the delivery id (from show)")->required();
  replay->add_option("--url", o->url, "the running engine's HTTP listener, when not the configuration's");
  cmd->callback([o, cmd, &status] {
    for (const char* name : {"list", "show", "replay"}) {
      if (cmd->got_subcommand(name)) o->action = name;
    }
    status = messages_command(*o);
  });
}

}  // namespace courier::app
