// Bearer tokens the FHIR way (SMART Backend Services): JWT access tokens
// signed by a configured issuer with RS256 or ES384, keys from a JWKS
// file, checked for issuer, audience, expiry and not-before.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace courier::security {

struct VerifiedToken {
  std::string subject;  // sub, else client_id
  std::string scope;    // the scope claim, space-separated
};

class JwtVerifier {
 public:
  // Reads a JWKS document (RSA keys, and EC keys on P-384); throws
  // std::runtime_error saying what is wrong with it.
  JwtVerifier(std::string_view jwks_json, std::string issuer, std::string audience);
  ~JwtVerifier();
  JwtVerifier(JwtVerifier&&) noexcept;

  // The token's subject and scopes when it is well formed, signed by one
  // of the keys and valid at `now` (seconds since the epoch); otherwise
  // nullopt with the reason in `why` (which never quotes the token).
  std::optional<VerifiedToken> verify(std::string_view token, std::int64_t now, std::string& why) const;

  std::size_t key_count() const;

 private:
  struct Key;
  std::vector<Key> keys_;
  std::string issuer_;
  std::string audience_;
};

}  // namespace courier::security
