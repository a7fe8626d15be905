// register_builtin_adapters: every transport courier knows, by name.
#include "adapters/file/file_sender.h"
#include "adapters/http/http_listener.h"
#include "adapters/http/http_sender.h"
#include "adapters/listener.h"

namespace courier::adapters {

const std::map<std::string, ListenerParser>& listener_types() {
  static const std::map<std::string, ListenerParser> types{{"http", parse_http_listener}};
  return types;
}

Engine::Senders make_senders(boost::asio::io_context& io) {
  // rest and request destinations with an endpoint use HTTP too; without
  // one (and queue always), the engine writes to its own store.
  const std::shared_ptr<delivery::Sender> http = make_http_sender(io);
  return Engine::Senders{{route::Pattern::messaging, http},
                         {route::Pattern::rest, http},
                         {route::Pattern::request, http},
                         {route::Pattern::operation, http},
                         {route::Pattern::file, make_file_sender()}};
}

}  // namespace courier::adapters
