// libFuzzer target: the bearer token a peer sends, checked against a JWKS
// (and its scope text parsed): whatever it holds, verification answers
// yes or no with a reason, and only the one real token says yes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/security/jwt.h"
#include "engine/security/peer.h"
#include "tests/engine/security/test_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const courier::security::JwtVerifier verifier(courier::test::kJwks, courier::test::kIssuer,
                                                       courier::test::kAudience);
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  std::string why;
  const auto verified = verifier.verify(token, 1'800'000'000, why);
  if (verified.has_value() != (token == courier::test::kToken)) __builtin_trap();
  if (!verified && why.empty()) __builtin_trap();
  (void)courier::security::Scopes::parse(token).allows("Patient", courier::security::Interaction::read);
  return 0;
}
