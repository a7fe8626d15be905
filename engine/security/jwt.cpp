#include "engine/security/jwt.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <nlohmann/json.hpp>

#include <stdexcept>

#include "engine/util/text.h"

namespace courier::security {

namespace {

// Tolerated clock difference between the issuer and courier.
constexpr std::int64_t kLeewaySeconds = 30;

// A string member, or "" when it is absent or not a string.
std::string text_member(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::string decoded_member(const nlohmann::json& key, const char* name) {
  if (!key.contains(name) || !key[name].is_string())
    throw std::runtime_error(std::string("a key has no '") + name + "'");
  std::optional<std::string> bytes = util::base64url_decode(key[name].get<std::string>());
  if (!bytes || bytes->empty())
    throw std::runtime_error(std::string("a key's '") + name + "' is not base64url");
  return *bytes;
}

// Builds a public key from OpenSSL parameters; null when they do not make one.
EVP_PKEY* key_from(const char* algorithm, OSSL_PARAM_BLD* builder) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(builder);
  EVP_PKEY_CTX* context = EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr);
  EVP_PKEY* key = nullptr;
  if (params == nullptr || context == nullptr || EVP_PKEY_fromdata_init(context) != 1 ||
      EVP_PKEY_fromdata(context, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    key = nullptr;
  }
  EVP_PKEY_CTX_free(context);
  OSSL_PARAM_free(params);
  return key;
}

EVP_PKEY* rsa_key(const nlohmann::json& jwk) {
  const std::string n = decoded_member(jwk, "n");
  const std::string e = decoded_member(jwk, "e");
  BIGNUM* modulus =
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr);
  BIGNUM* exponent =
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, modulus);
  OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, exponent);
  EVP_PKEY* key = key_from("RSA", builder);
  OSSL_PARAM_BLD_free(builder);
  BN_free(modulus);
  BN_free(exponent);
  if (key != nullptr && EVP_PKEY_get_bits(key) < 2048) {
    EVP_PKEY_free(key);
    throw std::runtime_error("an RSA key is shorter than 2048 bits");
  }
  return key;
}

EVP_PKEY* ec_p384_key(const nlohmann::json& jwk) {
  if (text_member(jwk, "crv") != "P-384") throw std::runtime_error("an EC key is not on curve P-384");
  const std::string x = decoded_member(jwk, "x");
  const std::string y = decoded_member(jwk, "y");
  if (x.size() != 48 || y.size() != 48) throw std::runtime_error("an EC key's x or y is not 48 bytes long");
  const std::string point = "\x04" + x + y;  // uncompressed
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(builder, OSSL_PKEY_PARAM_GROUP_NAME, "P-384", 0);
  OSSL_PARAM_BLD_push_octet_string(builder, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  EVP_PKEY* key = key_from("EC", builder);
  OSSL_PARAM_BLD_free(builder);
  return key;
}

// ES384 signatures are r||s, 48 bytes each; OpenSSL verifies DER.
std::optional<std::string> ecdsa_der(std::string_view raw) {
  if (raw.size() != 96) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 48, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 48, 48, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  const int length = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (length <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return out;
}

bool signature_valid(EVP_PKEY* key, const EVP_MD* digest, std::string_view signed_text,
                     std::string_view signature) {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  const bool valid =
      context != nullptr && EVP_DigestVerifyInit(context, nullptr, digest, nullptr, key) == 1 &&
      EVP_DigestVerify(context, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size()) == 1;
  EVP_MD_CTX_free(context);
  return valid;
}

std::optional<std::int64_t> seconds_claim(const nlohmann::json& claims, const char* name) {
  if (!claims.contains(name) || !claims[name].is_number()) return std::nullopt;
  return claims[name].get<std::int64_t>();
}

}  // namespace

struct JwtVerifier::Key {
  std::string kid;
  std::string algorithm;  // RS256 or ES384
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
};

JwtVerifier::JwtVerifier(std::string_view jwks_json, std::string issuer, std::string audience)
    : issuer_(std::move(issuer)), audience_(std::move(audience)) {
  const nlohmann::json jwks = nlohmann::json::parse(jwks_json, nullptr, false);
  if (!jwks.is_object() || !jwks.contains("keys") || !jwks["keys"].is_array())
    throw std::runtime_error("not a JWKS document (a JSON object with a 'keys' array)");
  for (const nlohmann::json& jwk : jwks["keys"]) {
    if (!jwk.is_object()) throw std::runtime_error("a key is not a JSON object");
    if (jwk.contains("use") && jwk["use"] != "sig") continue;  // encryption keys verify nothing
    const std::string kty = text_member(jwk, "kty");
    Key key;
    key.kid = text_member(jwk, "kid");
    if (kty == "RSA") {
      key.algorithm = "RS256";
      key.key.reset(rsa_key(jwk));
    } else if (kty == "EC") {
      key.algorithm = "ES384";
      key.key.reset(ec_p384_key(jwk));
    } else {
      throw std::runtime_error("key type '" + kty + "' is not supported (RSA for RS256, EC P-384 for ES384)");
    }
    if (jwk.contains("alg") && jwk["alg"] != key.algorithm)
      throw std::runtime_error("a " + kty + " key names alg " + jwk["alg"].dump() + "; courier verifies " +
                               key.algorithm + " with it");
    if (!key.key) throw std::runtime_error("a " + kty + " key is not a valid public key");
    keys_.push_back(std::move(key));
  }
  if (keys_.empty()) throw std::runtime_error("the JWKS holds no signing key");
}

JwtVerifier::~JwtVerifier() = default;
JwtVerifier::JwtVerifier(JwtVerifier&&) noexcept = default;

std::size_t JwtVerifier::key_count() const {
  return keys_.size();
}

std::optional<VerifiedToken> JwtVerifier::verify(std::string_view token, std::int64_t now,
                                                 std::string& why) const {
  const std::size_t first = token.find('.');
  const std::size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    why = "the bearer token is not a JWT (three base64url parts)";
    return std::nullopt;
  }
  const std::optional<std::string> header_text = util::base64url_decode(token.substr(0, first));
  const std::optional<std::string> claims_text =
      util::base64url_decode(token.substr(first + 1, second - first - 1));
  const std::optional<std::string> signature = util::base64url_decode(token.substr(second + 1));
  const nlohmann::json header = header_text ? nlohmann::json::parse(*header_text, nullptr, false) : nullptr;
  const nlohmann::json claims = claims_text ? nlohmann::json::parse(*claims_text, nullptr, false) : nullptr;
  if (!header.is_object() || !claims.is_object() || !signature) {
    why = "the bearer token is not a JWT (its parts are not base64url JSON)";
    return std::nullopt;
  }
  const std::string algorithm = text_member(header, "alg");
  if (header.contains("crit")) {  // RFC 7515: unknown critical parameters make it invalid
    why = "the token names critical header parameters courier does not know";
    return std::nullopt;
  }
  if (algorithm != "RS256" && algorithm != "ES384") {
    why = "the token is signed with '" + algorithm + "'; courier accepts RS256 and ES384";
    return std::nullopt;
  }
  const std::string kid =
      header.contains("kid") && header["kid"].is_string() ? header["kid"].get<std::string>() : "";
  std::string signature_bytes = *signature;
  if (algorithm == "ES384") {
    std::optional<std::string> der = ecdsa_der(signature_bytes);
    if (!der) {
      why = "the token's ES384 signature is not 96 bytes long";
      return std::nullopt;
    }
    signature_bytes = std::move(*der);
  }
  const std::string_view signed_text = token.substr(0, second);
  const EVP_MD* digest = algorithm == "RS256" ? EVP_sha256() : EVP_sha384();
  bool verified = false;
  for (const Key& key : keys_) {
    if (key.algorithm != algorithm || (!kid.empty() && key.kid != kid)) continue;
    if (signature_valid(key.key.get(), digest, signed_text, signature_bytes)) {
      verified = true;
      break;
    }
  }
  if (!verified) {
    why = "the token's signature does not verify with the issuer's keys";
    return std::nullopt;
  }
  if (text_member(claims, "iss") != issuer_) {
    why = "the token was issued by another issuer";
    return std::nullopt;
  }
  bool audience_ok = false;
  if (claims.contains("aud") && claims["aud"].is_string()) audience_ok = claims["aud"] == audience_;
  if (claims.contains("aud") && claims["aud"].is_array()) {
    for (const auto& a : claims["aud"]) audience_ok = audience_ok || a == audience_;
  }
  if (!audience_ok) {
    why = "the token is meant for another audience";
    return std::nullopt;
  }
  const std::optional<std::int64_t> expires = seconds_claim(claims, "exp");
  if (!expires) {
    why = "the token has no expiry (exp)";
    return std::nullopt;
  }
  if (*expires + kLeewaySeconds <= now) {
    why = "the token has expired";
    return std::nullopt;
  }
  if (const std::optional<std::int64_t> not_before = seconds_claim(claims, "nbf");
      not_before && *not_before > now + kLeewaySeconds) {
    why = "the token is not valid yet (nbf)";
    return std::nullopt;
  }
  VerifiedToken result;
  result.subject = text_member(claims, "sub");
  if (result.subject.empty()) result.subject = text_member(claims, "client_id");
  if (result.subject.empty()) {
    why = "the token names no subject (sub or client_id)";
    return std::nullopt;
  }
  result.scope = text_member(claims, "scope");
  return result;
}

}  // namespace courier::security
