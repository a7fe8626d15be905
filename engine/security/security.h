// The peers courier knows and how each proves who it is: a client
// certificate's name, a bearer token from the configured issuer, or a
// static API key (stored only as its SHA-256). Read from the `security:`
// section of courier.yaml.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/config/yaml_reader.h"
#include "engine/security/jwt.h"
#include "engine/security/peer.h"

namespace courier::security {

// An attempt to authenticate: a peer, or why not (for a 401).
struct Authentication {
  std::shared_ptr<const Peer> peer;
  std::string error;
};

class Security {
 public:
  // Reads the section; problems go to `reader`. Null when unusable.
  static std::shared_ptr<const Security> parse(const YAML::Node& node, config::YamlReader& reader);

  // The configured peer a verified certificate names (its CN or a SAN);
  // null for a certificate no peer is configured with.
  std::shared_ptr<const Peer> by_certificate(const std::vector<std::string>& names) const;
  // A bearer token (JWT) whose subject is a configured peer's
  // token-subject: that peer, with the token's scopes.
  Authentication by_token(std::string_view token, std::int64_t now) const;
  Authentication by_api_key(std::string_view key) const;

  bool accepts_tokens() const { return verifier_.has_value(); }

 private:
  struct KnownPeer {
    std::shared_ptr<const Peer> peer;
    std::string certificate_name;
    std::string api_key_sha256;  // lower-case hex
    std::string token_subject;
  };
  std::vector<KnownPeer> peers_;
  std::optional<JwtVerifier> verifier_;
};

// SHA-256 of `text`, in lower-case hex.
std::string sha256_hex(std::string_view text);

}  // namespace courier::security
