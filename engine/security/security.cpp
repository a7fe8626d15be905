#include "engine/security/security.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>

namespace courier::security {

namespace {

std::vector<std::string> string_list(const YAML::Node& node, config::YamlReader& reader,
                                     const std::string& where) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    if (auto value = reader.scalar(node, where)) out.push_back(*value);
    return out;
  }
  if (!node.IsSequence()) {
    reader.fail(node, where + " must be a list");
    return out;
  }
  for (std::size_t i = 0; i < node.size(); ++i)
    if (auto value = reader.scalar(node[i], where + "[" + std::to_string(i) + "]")) out.push_back(*value);
  return out;
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xF];
  }
  return out;
}

std::shared_ptr<const Security> Security::parse(const YAML::Node& node, config::YamlReader& reader) {
  const std::size_t errors_before = reader.errors().size();  // this section's own, not the file's
  auto security = std::make_shared<Security>();
  if (!reader.check_keys(node, {"tokens", "peers"}, "security")) return nullptr;
  if (const YAML::Node tokens = node["tokens"]) {
    if (reader.check_keys(tokens, {"issuer", "audience", "jwks"}, "security.tokens")) {
      const auto issuer =
          tokens["issuer"] ? reader.scalar(tokens["issuer"], "security.tokens.issuer") : std::nullopt;
      const auto audience =
          tokens["audience"] ? reader.scalar(tokens["audience"], "security.tokens.audience") : std::nullopt;
      const auto jwks = tokens["jwks"] ? reader.scalar(tokens["jwks"], "security.tokens.jwks") : std::nullopt;
      if (!issuer || !audience || !jwks) {
        reader.fail(tokens, "security.tokens needs issuer, audience and jwks (a JWKS file)");
      } else {
        std::ifstream file(*jwks);
        std::stringstream text;
        text << file.rdbuf();
        if (!file) {
          reader.fail(tokens["jwks"], "security.tokens.jwks: cannot read " + *jwks);
        } else {
          try {
            security->verifier_.emplace(text.str(), *issuer, *audience);
          } catch (const std::exception& e) {
            reader.fail(tokens["jwks"], "security.tokens.jwks: " + *jwks + ": " + e.what());
          }
        }
      }
    }
  }
  const YAML::Node peers = node["peers"];
  if (peers && !peers.IsSequence()) reader.fail(peers, "security.peers must be a list");
  for (std::size_t i = 0; peers && peers.IsSequence() && i < peers.size(); ++i) {
    const YAML::Node p = peers[i];
    const std::string where = "security.peers[" + std::to_string(i) + "]";
    if (!reader.check_keys(p,
                           {"name", "certificate", "api-key-sha256", "token-subject", "groups", "operator",
                            "scopes", "endpoints", "v2-senders"},
                           where)) {
      continue;
    }
    auto peer = std::make_shared<Peer>();
    KnownPeer known;
    if (p["name"]) peer->name = reader.scalar(p["name"], where + ".name").value_or("");
    if (peer->name.empty()) {
      reader.fail(p, where + " needs a name");
      continue;
    }
    for (const KnownPeer& other : security->peers_)
      if (other.peer->name == peer->name) reader.fail(p["name"], "two peers are named '" + peer->name + "'");
    if (p["certificate"])
      known.certificate_name = reader.scalar(p["certificate"], where + ".certificate").value_or("");
    if (p["token-subject"])
      known.token_subject = reader.scalar(p["token-subject"], where + ".token-subject").value_or("");
    if (p["api-key-sha256"]) {
      known.api_key_sha256 = reader.scalar(p["api-key-sha256"], where + ".api-key-sha256").value_or("");
      if (!is_sha256_hex(known.api_key_sha256))
        reader.fail(p["api-key-sha256"], where +
                                             ".api-key-sha256 must be the key's SHA-256 in lower-case hex "
                                             "(courier never stores the key itself)");
    }
    if (known.certificate_name.empty() && known.token_subject.empty() && known.api_key_sha256.empty())
      reader.fail(p, where + " needs a certificate, token-subject or api-key-sha256 to be known by");
    if (p["groups"]) peer->groups = string_list(p["groups"], reader, where + ".groups");
    if (p["operator"]) peer->is_operator = reader.boolean(p["operator"], where + ".operator").value_or(false);
    if (p["endpoints"]) peer->endpoints = string_list(p["endpoints"], reader, where + ".endpoints");
    if (p["v2-senders"]) peer->v2_senders = string_list(p["v2-senders"], reader, where + ".v2-senders");
    // Without scopes a peer may send messages and nothing more.
    std::vector<std::string> scopes{"system/MessageHeader.c"};
    if (p["scopes"]) {
      scopes.clear();
      for (const std::string& list : string_list(p["scopes"], reader, where + ".scopes")) {
        std::istringstream words(list);
        for (std::string scope; words >> scope;) scopes.push_back(scope);
      }
    }
    for (const std::string& scope : scopes) {
      if (!peer->scopes.add(scope))
        reader.fail(p["scopes"], where + ".scopes: '" + scope +
                                     "' is not a SMART system scope courier understands (such as "
                                     "system/Patient.rs or system/*.read)");
    }
    known.peer = std::move(peer);
    security->peers_.push_back(std::move(known));
  }
  if (reader.errors().size() != errors_before) return nullptr;
  return security;
}

std::shared_ptr<const Peer> Security::by_certificate(const std::vector<std::string>& names) const {
  for (const KnownPeer& known : peers_) {
    if (known.certificate_name.empty()) continue;
    for (const std::string& name : names) {
      if (name != known.certificate_name) continue;
      auto peer = std::make_shared<Peer>(*known.peer);
      peer->authenticated_by = "certificate";
      return peer;
    }
  }
  return nullptr;
}

Authentication Security::by_token(std::string_view token, std::int64_t now) const {
  if (!verifier_) return {nullptr, "this server accepts no bearer tokens"};
  std::string why;
  const std::optional<VerifiedToken> verified = verifier_->verify(token, now, why);
  if (!verified) return {nullptr, why};
  // Only the peers the configuration names get in, whatever else the
  // issuer has registered.
  auto peer = std::make_shared<Peer>();
  for (const KnownPeer& known : peers_) {
    if (!known.token_subject.empty() && known.token_subject == verified->subject) *peer = *known.peer;
  }
  if (peer->name.empty()) return {nullptr, "the token's subject is not a peer courier knows"};
  peer->authenticated_by = "token";
  peer->scopes = Scopes::parse(verified->scope);
  return {std::move(peer), ""};
}

Authentication Security::by_api_key(std::string_view key) const {
  const std::string hash = sha256_hex(key);
  for (const KnownPeer& known : peers_) {
    if (known.api_key_sha256.size() == hash.size() &&
        CRYPTO_memcmp(known.api_key_sha256.data(), hash.data(), hash.size()) == 0) {
      auto peer = std::make_shared<Peer>(*known.peer);
      peer->authenticated_by = "api-key";
      return {std::move(peer), ""};
    }
  }
  return {nullptr, "the API key is not known"};
}

}  // namespace courier::security
