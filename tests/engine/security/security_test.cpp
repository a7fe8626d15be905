#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "engine/fhir/codec.h"
#include "engine/fhir/validator.h"
#include "engine/rest/audit_event.h"
#include "engine/security/audit.h"
#include "engine/security/jwt.h"
#include "engine/security/peer.h"
#include "engine/util/text.h"
#include "tests/engine/security/test_keys.h"

using namespace courier;
using security::Interaction;

BOOST_AUTO_TEST_SUITE(security_tests)

BOOST_AUTO_TEST_CASE(smart_v2_scopes_grant_their_letters_on_their_type) {
  const auto scopes = security::Scopes::parse("system/Patient.cruds system/Task.rs system/Observation.c");
  for (Interaction i : {Interaction::create, Interaction::read, Interaction::update, Interaction::remove,
                        Interaction::search})
    BOOST_TEST(scopes.allows("Patient", i));
  BOOST_TEST(scopes.allows("Task", Interaction::read));
  BOOST_TEST(scopes.allows("Task", Interaction::search));
  BOOST_TEST(!scopes.allows("Task", Interaction::update));
  BOOST_TEST(scopes.allows("Observation", Interaction::create));
  BOOST_TEST(!scopes.allows("Observation", Interaction::read));
  BOOST_TEST(!scopes.allows("Encounter", Interaction::read));
}

BOOST_AUTO_TEST_CASE(smart_v1_scopes_and_wildcards) {
  const auto read = security::Scopes::parse("system/Patient.read");
  BOOST_TEST(read.allows("Patient", Interaction::read));
  BOOST_TEST(read.allows("Patient", Interaction::search));
  BOOST_TEST(!read.allows("Patient", Interaction::create));
  const auto write = security::Scopes::parse("system/Patient.write");
  BOOST_TEST(write.allows("Patient", Interaction::create));
  BOOST_TEST(write.allows("Patient", Interaction::update));
  BOOST_TEST(write.allows("Patient", Interaction::remove));
  BOOST_TEST(!write.allows("Patient", Interaction::read));
  const auto all = security::Scopes::parse("system/*.*");
  BOOST_TEST(all.allows("AuditEvent", Interaction::remove));
  const auto any_read = security::Scopes::parse("system/*.rs");
  BOOST_TEST(any_read.allows("Task", Interaction::search));
  BOOST_TEST(!any_read.allows("Task", Interaction::create));
}

BOOST_AUTO_TEST_CASE(scopes_courier_cannot_enforce_grant_nothing) {
  security::Scopes scopes;
  for (const char* scope : {"patient/Patient.read", "user/*.*", "openid", "system/Patient.rs?category=x",
                            "system/Patient.src", "system/Patient.ccc", "system/.rs", "system/Patient", ""})
    BOOST_TEST(!scopes.add(scope), scope);
  BOOST_TEST(scopes.empty());
}

BOOST_AUTO_TEST_CASE(peers_match_by_name_or_group) {
  security::Peer peer;
  peer.name = "lab";
  peer.groups = {"fillers"};
  BOOST_TEST(peer.matches("lab"));
  BOOST_TEST(peer.matches("group:fillers"));
  BOOST_TEST(!peer.matches("group:lab"));
  BOOST_TEST(!peer.matches("fillers"));
}

BOOST_AUTO_TEST_CASE(base64url_decodes_with_or_without_padding) {
  BOOST_TEST(util::base64url_decode("aGVsbG8").value() == "hello");
  BOOST_TEST(util::base64url_decode("aGVsbG8=").value() == "hello");
  BOOST_TEST(util::base64url_decode("-_8").value() == "\xfb\xff");
  BOOST_TEST(!util::base64url_decode("a+b/").has_value());
  BOOST_TEST(!util::base64url_decode("a").has_value());
}

BOOST_AUTO_TEST_CASE(jwt_es384_token_verifies_and_carries_subject_and_scope) {
  const security::JwtVerifier verifier(test::kJwks, test::kIssuer, test::kAudience);
  std::string why;
  const auto token = verifier.verify(test::kToken, 1'800'000'000, why);
  BOOST_REQUIRE_MESSAGE(token.has_value(), why);
  BOOST_TEST(token->subject == "fuzz");
  BOOST_TEST(token->scope == "system/Patient.rs");
}

BOOST_AUTO_TEST_CASE(jwt_refusals_say_why) {
  std::string why;
  const security::JwtVerifier verifier(test::kJwks, test::kIssuer, test::kAudience);
  BOOST_TEST(!verifier.verify(test::kToken, 4'200'000'000, why));
  BOOST_TEST(why == "the token has expired");
  const security::JwtVerifier other_audience(test::kJwks, test::kIssuer, "https://elsewhere.example");
  BOOST_TEST(!other_audience.verify(test::kToken, 1'800'000'000, why));
  BOOST_TEST(why == "the token is meant for another audience");
  std::string tampered = test::kToken;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  BOOST_TEST(!verifier.verify(tampered, 1'800'000'000, why));
  BOOST_TEST(why == "the token's signature does not verify with the issuer's keys");
  BOOST_TEST(!verifier.verify("abc", 0, why));
  BOOST_TEST(why.find("not a JWT") != std::string::npos);
  // A header whose members are not strings is refused, not thrown over.
  BOOST_TEST(!verifier.verify("eyJhbGciOjV9.eyJzdWIiOiJ4In0.c2ln", 0, why));  // {"alg":5}
  BOOST_TEST(why.find("accepts RS256 and ES384") != std::string::npos);
  // alg none, with any signature, is never accepted.
  BOOST_TEST(!verifier.verify("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", 0, why));
  BOOST_TEST(why.find("accepts RS256 and ES384") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(jwks_documents_that_cannot_be_used_are_refused) {
  BOOST_CHECK_THROW(security::JwtVerifier("not json", "i", "a"), std::runtime_error);
  BOOST_CHECK_THROW(security::JwtVerifier(R"({"keys":[]})", "i", "a"), std::runtime_error);
  BOOST_CHECK_THROW(security::JwtVerifier(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})", "i", "a"),
                    std::runtime_error);
  BOOST_CHECK_THROW(
      security::JwtVerifier(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]})", "i", "a"),
      std::runtime_error);
  BOOST_CHECK_THROW(security::JwtVerifier(R"({"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]})", "i", "a"),
                    std::runtime_error);
}

BOOST_AUTO_TEST_CASE(audit_events_are_valid_r4_and_name_no_content) {
  security::AuditRecord record;
  record.kind = security::AuditRecord::Kind::rest;
  record.subtype = "read";
  record.action = 'R';
  auto peer = std::make_shared<security::Peer>();
  peer->name = "lab";
  peer->authenticated_by = "certificate";
  record.peer = peer;
  record.address = "10.1.2.3";
  record.listener = "fhir";
  record.entities = {"Patient/123"};
  record.message_id = "b-1";
  record.outcome = 4;
  record.outcome_text = "HTTP 403";
  rest::AuditEntry entry = security::audit_entry(record);
  entry.id = 1;
  const std::string json = fhir::write_json(rest::audit_event(entry));
  fhir::ParseResult parsed = fhir::parse_valid(json, fhir::Format::json, fhir::ParseLimits{});
  BOOST_TEST(!fhir::has_errors(parsed.issues), json);
  const nlohmann::json event = nlohmann::json::parse(json);
  BOOST_TEST(event["agent"][0]["name"] == "lab");
  BOOST_TEST(event["agent"][0]["network"]["address"] == "10.1.2.3");
  BOOST_TEST(event["entity"][0]["what"]["reference"] == "Patient/123");
  BOOST_TEST(event["outcome"] == "4");
  BOOST_TEST(event["outcomeDesc"] == "HTTP 403");
  BOOST_TEST(event["agent"][0]["requestor"] == true);
  BOOST_TEST(event["agent"][0]["policy"][0] == "urn:courier:authenticated-by:certificate");
  BOOST_TEST(event["entity"][1]["what"]["identifier"]["value"] == "b-1");
  BOOST_TEST(event["entity"][1]["type"]["code"] == "Bundle");
  BOOST_TEST(event["subtype"][0]["code"] == "read");
  BOOST_TEST(event["type"]["code"] == "rest");
  BOOST_TEST(event["id"] == "1");
  // Courier acting on its own is the agent, with no peer's credentials.
  record.by_courier = true;
  const rest::AuditEntry own = security::audit_entry(record);
  BOOST_TEST(own.agent == "courier");
  BOOST_TEST(own.authenticated_by.empty());
}

BOOST_AUTO_TEST_SUITE_END()
