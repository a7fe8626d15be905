// A P-384 public key (JWKS) and a token it signed (ES384, expires in 2100)
// for tests: no secret here, the private key was thrown away.
#pragma once

namespace courier::test {

inline constexpr const char* kJwks =
    R"({"keys":[{"kty":"EC","kid":"ec","use":"sig","crv":"P-384",)"
    R"("x":"DH3x2ONySccELBeRhTKYauWbAAvAjvG74bEUzPSsB3E6SZ8nbJyDv6xcsd-b-Dl8",)"
    R"("y":"Oxv0Oaef-c8OfUPdIea70aCRIOD-PA7HaAr8eDbeBJGktSFlyRY3oAm2kvqoFBQ0"}]})";
inline constexpr const char* kIssuer = "https://issuer.example";
inline constexpr const char* kAudience = "https://courier.example/fhir";
// sub "fuzz", scope "system/Patient.rs", exp 4102444800.
inline constexpr const char* kToken =
    "eyJhbGciOiJFUzM4NCIsImtpZCI6ImVjIiwidHlwIjoiSldUIn0."
    "eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoiaHR0cHM6Ly9jb3VyaWVyLmV4YW1wbGUvZmhpciIsInN1YiI6ImZ1"
    "enoiLCJl"
    "eHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoic3lzdGVtL1BhdGllbnQucnMifQ."
    "J4071eY6c5xtYHvM2Nd-YEEykfvfnErgtzNhzLrLOU_fWbiYbyVzZgf2OIlarhCsstEI2950KhsLEOWLI9d_"
    "1a5ca_mxTcISZlUv1BrVUO4-dvaNhCYJsOzvm2tasb4d";

}  // namespace courier::test
