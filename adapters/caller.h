// What both listeners know about who is on a connection, and the
// `authentication:` setting they share.
#pragma once

#include <memory>
#include <string>

#include <yaml-cpp/yaml.h>

#include "engine/config/yaml_reader.h"
#include "engine/security/peer.h"

namespace courier::adapters {

using PeerPtr = std::shared_ptr<const security::Peer>;

// Who is asking: the authenticated peer (null when the listener does not
// authenticate, or does not know it) and its IP address.
struct Caller {
  PeerPtr peer;
  std::string address;
};

// `authentication: none | required` of a listener; true for required.
inline bool read_authentication(const YAML::Node& listener, config::YamlReader& reader,
                                const std::string& where) {
  if (!listener["authentication"]) return false;
  return reader.choice(listener["authentication"], where + ".authentication", {"none", "required"}) ==
         "required";
}

}  // namespace courier::adapters
