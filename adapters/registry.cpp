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
  return Engine::Senders{{route::Pattern::messaging, make_http_sender(io)},
                         {route::Pattern::file, make_file_sender()}};
}

}  // namespace courier::adapters
