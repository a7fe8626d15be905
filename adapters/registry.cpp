// register_builtin_adapters: every transport courier knows, by name.
#include "adapters/file/file_sender.h"
#include "adapters/http/http_listener.h"
#include "adapters/http/http_sender.h"
#include "adapters/listener.h"
#include "adapters/mllp/mllp_listener.h"
#include "adapters/mllp/mllp_sender.h"
#include "adapters/tls/tls.h"

namespace courier::adapters {

const std::map<std::string, ListenerParser>& listener_types() {
  static const std::map<std::string, ListenerParser> types{{"http", parse_http_listener},
                                                           {"mllp", parse_mllp_listener}};
  return types;
}

Engine::Senders make_senders(boost::asio::io_context& io, std::shared_ptr<const hl7v2::MapSet> v2_maps,
                             std::shared_ptr<ReloadableTls> tls) {
  if (!tls) tls = std::make_shared<ReloadableTls>(ReloadableTls::Role::client, TlsSettings{});
  // rest and request destinations with an endpoint use HTTP too; without
  // one (and queue always), the engine writes to its own store.
  const std::shared_ptr<delivery::Sender> http = make_http_sender(io, tls);
  return Engine::Senders{{route::Pattern::messaging, http},
                         {route::Pattern::rest, http},
                         {route::Pattern::request, http},
                         {route::Pattern::operation, http},
                         {route::Pattern::file, make_file_sender()},
                         {route::Pattern::mllp, make_mllp_sender(io, v2_maps, tls)}};
}

}  // namespace courier::adapters
