// The MLLP sender: delivers a FHIR message to a legacy HL7 v2 receiver as
// v2 (a results message as ORU^R01, a response message to an address
// mllp://host:port?acknowledge=MSH… as enhanced mode's application ACK of
// that message), over MLLP, and waits for its ACK: AA/CA delivered; AE/CE
// and no ACK in time retried; AR/CR refused.
#pragma once

#include <memory>
#include <string_view>

#include "engine/delivery/sender.h"

namespace boost::asio {
class io_context;
}

namespace courier::hl7v2 {
class MapSet;
}

namespace courier::adapters {

class ReloadableTls;

// mllp://host:port or mllps://host:port.
bool is_mllp_url(std::string_view url);

// `maps` names coding systems in v2's terms (may be null: URIs are kept);
// `tls` verifies mllps:// receivers and holds courier's client certificate.
std::shared_ptr<delivery::Sender> make_mllp_sender(boost::asio::io_context& io,
                                                   std::shared_ptr<const hl7v2::MapSet> maps,
                                                   std::shared_ptr<ReloadableTls> tls);

}  // namespace courier::adapters
