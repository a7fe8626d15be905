// The HTTP side of the `messaging` destination (and of relays to placers):
// POSTs a message and maps the answer to a SendOutcome. Connections are kept
// alive and reused per host.
#pragma once

#include <memory>

#include "engine/delivery/sender.h"

namespace boost::asio {
class io_context;
}

namespace courier::adapters {

class ReloadableTls;

// `tls` verifies https:// servers and holds courier's client certificate.
std::shared_ptr<delivery::Sender> make_http_sender(boost::asio::io_context& io,
                                                   std::shared_ptr<ReloadableTls> tls);

}  // namespace courier::adapters
