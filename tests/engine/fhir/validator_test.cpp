#include <boost/test/unit_test.hpp>

#include "engine/fhir/codec.h"
#include "engine/fhir/operation_outcome.h"
#include "engine/fhir/validator.h"

using namespace courier::fhir;

namespace {

Issues validate_text(std::string_view text) {
  ParseResult r = parse(text);
  BOOST_REQUIRE(r.ok());
  return validate(*r.resource);
}

std::string describe(const Issues& issues) {
  std::string out;
  for (const Issue& i : issues)
    out += std::string(to_string(i.severity)) + " " + i.expression + ": " + i.diagnostics + "\n";
  return out;
}

// Checks that exactly one issue has `severity` and contains `words`, at `expression`.
void expect_issue(const Issues& issues, Severity severity, std::string_view words,
                  std::string_view expression) {
  std::size_t found = 0;
  for (const Issue& i : issues)
    if (i.severity == severity && i.diagnostics.find(words) != std::string::npos) {
      ++found;
      BOOST_TEST(i.expression == expression, "expression of '" << words << "'");
    }
  BOOST_TEST(found == 1u, "'" << words << "' in:\n" << describe(issues));
}

// A valid message Bundle; tests break one rule at a time.
std::string message(std::string_view header_extra = "", std::string_view entries_extra = "",
                    std::string_view bundle_type = "message") {
  return std::string(R"({"resourceType":"Bundle","id":"b1","type":")") + std::string(bundle_type) +
         R"(","timestamp":"2024-05-01T10:00:00Z","entry":[)"
         R"({"fullUrl":"urn:uuid:c757873d-ec9a-4326-a141-556f43239520","resource":{"resourceType":"MessageHeader","id":"h1",)"
         R"("eventCoding":{"system":"http://example.org/events","code":"order"},)"
         R"("source":{"endpoint":"http://placer.example.org/fhir"},)"
         R"("focus":[{"reference":"ServiceRequest/sr1"}])" +
         std::string(header_extra) +
         R"(}},{"fullUrl":"http://placer.example.org/fhir/ServiceRequest/sr1","resource":{"resourceType":"ServiceRequest",)"
         R"("id":"sr1","status":"active","intent":"order","subject":{"reference":"Patient/p1"}}},)"
         R"({"fullUrl":"http://placer.example.org/fhir/Patient/p1","resource":{"resourceType":"Patient","id":"p1"}})" +
         std::string(entries_extra) + "]}";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(validator)

BOOST_AUTO_TEST_CASE(a_valid_message_has_no_errors) {
  const Issues issues = validate_text(message());
  BOOST_TEST(!has_errors(issues), describe(issues));
}

BOOST_AUTO_TEST_CASE(cardinality_and_primitive_formats) {
  const Issues issues = validate_text(
      R"({"resourceType":"Observation","id":"bad id","code":{"text":"x"},"effectiveDateTime":"2024-02-30"})");
  expect_issue(issues, Severity::error, "Observation.status: minimum required = 1, but only found 0",
               "Observation");
  expect_issue(issues, Severity::error, "not a valid id", "Observation.id");
  expect_issue(issues, Severity::error, "not a valid dateTime", "Observation.effective.ofType(dateTime)");
}

BOOST_AUTO_TEST_CASE(ele_1_an_id_alone_is_not_content) {
  const Issues issues = validate_text(
      R"({"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"id":"g"}]}],"maritalStatus":{"id":"m"}})");
  BOOST_TEST(
      describe(issues) ==
      "error Patient.name[0].given[1]: ele-1: the element has neither a value nor children other than an id\n"
      "error Patient.maritalStatus: ele-1: the element has neither a value nor children other than an id\n");
}

BOOST_AUTO_TEST_CASE(too_many_repeats_is_a_maximum_error) {
  const Issues issues = validate_text(
      R"({"resourceType":"Bundle","type":"message","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"MessageHeader",)"
      R"("eventUri":"urn:e","source":{"endpoint":"urn:s"}}}],"link":[{"relation":"self","url":"urn:x"}]})");
  BOOST_TEST(!has_errors(issues), describe(issues));
  Element bundle = Element::resource("Bundle");
  bundle.add_value("type", "collection");
  Element& entry = bundle.add("entry");
  Element& first = entry.add("resource", "Patient");
  first.add_value("active", "true");
  first.add_value("active", "false");  // built in memory: readers would refuse this
  expect_issue(validate(bundle), Severity::error, "Patient.active: maximum allowed = 1, but found 2",
               "Bundle.entry[0].resource");
}

BOOST_AUTO_TEST_CASE(bdl_12_the_first_entry_of_a_message_is_a_message_header) {
  const Issues issues = validate_text(
      R"({"resourceType":"Bundle","type":"message","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"}}]})");
  expect_issue(issues, Severity::error, "bdl-12", "Bundle");
}

BOOST_AUTO_TEST_CASE(bdl_5_bdl_7_bdl_8_and_full_url_agreement) {
  const Issues issues = validate_text(message(
      "",
      R"(,{"fullUrl":"http://placer.example.org/fhir/Patient/p1","resource":{"resourceType":"Patient","id":"p1"}},)"
      R"({"fullUrl":"http://placer.example.org/fhir/Patient/p2/_history/1","resource":{"resourceType":"Patient","id":"p2"}},)"
      R"({"fullUrl":"http://placer.example.org/fhir/Patient/p3","resource":{"resourceType":"Patient","id":"p4"}},)"
      R"({"fullUrl":"http://placer.example.org/fhir/Practitioner/p5","resource":{"resourceType":"Patient","id":"p5"}},)"
      R"({"fullUrl":"urn:uuid:0f1e9a2b-0000-4000-8000-000000000001"})"));
  expect_issue(issues, Severity::error, "bdl-7", "Bundle.entry[3]");
  expect_issue(issues, Severity::error, "bdl-8", "Bundle.entry[4]");
  expect_issue(issues, Severity::error, "disagrees with the resource id 'p4'", "Bundle.entry[5]");
  expect_issue(issues, Severity::error, "names a Practitioner but the entry holds a Patient",
               "Bundle.entry[6]");
  expect_issue(issues, Severity::error, "bdl-5", "Bundle.entry[7]");
}

BOOST_AUTO_TEST_CASE(bundle_type_rules_for_requests_responses_and_documents) {
  const Issues issues = validate_text(
      R"({"resourceType":"Bundle","type":"document","total":1,"entry":[{"fullUrl":"urn:uuid:1",)"
      R"("resource":{"resourceType":"Patient"},"request":{"method":"GET","url":"Patient"},"search":{"mode":"match"}}]})");
  expect_issue(issues, Severity::error, "bdl-1:", "Bundle");
  expect_issue(issues, Severity::error, "bdl-2", "Bundle.entry[0]");
  expect_issue(issues, Severity::error, "bdl-3", "Bundle.entry[0]");
  expect_issue(issues, Severity::error, "bdl-9", "Bundle");
  expect_issue(issues, Severity::error, "bdl-10", "Bundle");
  expect_issue(issues, Severity::error, "bdl-11", "Bundle");
}

BOOST_AUTO_TEST_CASE(message_header_required_elements) {
  const Issues issues = validate_text(
      R"({"resourceType":"Bundle","type":"message","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"MessageHeader",)"
      R"("source":{"name":"x"},"response":{"code":"ok"}}}]})");
  expect_issue(issues, Severity::error, "MessageHeader.event[x]: minimum required = 1",
               "Bundle.entry[0].resource");
  expect_issue(issues, Severity::error, "MessageHeader.source.endpoint: minimum required = 1",
               "Bundle.entry[0].resource.source");
  expect_issue(issues, Severity::error, "MessageHeader.response.identifier: minimum required = 1",
               "Bundle.entry[0].resource.response");
}

BOOST_AUTO_TEST_CASE(focus_must_be_in_the_bundle_other_header_references_should_be) {
  const Issues issues = validate_text(message(
      R"(,"sender":{"reference":"http://elsewhere.example.org/Organization/o1"},"author":{"reference":"urn:uuid:0f1e9a2b-0000-4000-8000-00000000000a"},)"
      R"("destination":[{"endpoint":"http://filler.example.org","receiver":{"reference":"Organization/missing"}}])"));
  BOOST_TEST(!has_errors(validate_text(message())));
  expect_issue(issues, Severity::warning,
               "MessageHeader.sender 'http://elsewhere.example.org/Organization/o1'",
               "Bundle.entry[0].resource.sender");
  expect_issue(issues, Severity::error,
               "MessageHeader.author 'urn:uuid:0f1e9a2b-0000-4000-8000-00000000000a' does not resolve",
               "Bundle.entry[0].resource.author");
  expect_issue(issues, Severity::error, "MessageHeader.destination.receiver 'Organization/missing'",
               "Bundle.entry[0].resource.destination[0].receiver");

  std::string missing_focus = message();
  missing_focus.replace(missing_focus.find("ServiceRequest/sr1"), 18, "ServiceRequest/nope");
  expect_issue(validate_text(missing_focus), Severity::error,
               "MessageHeader.focus 'ServiceRequest/nope' does not resolve",
               "Bundle.entry[0].resource.focus[0]");
}

BOOST_AUTO_TEST_CASE(references_between_entries_that_do_not_resolve_are_warnings) {
  std::string text = message();
  text.replace(text.find("Patient/p1\"}"), 10, "Patient/p9");
  const Issues issues = validate_text(text);
  BOOST_TEST(!has_errors(issues));
  expect_issue(issues, Severity::warning, "reference 'Patient/p9' does not resolve",
               "Bundle.entry[1].resource.subject");
}

BOOST_AUTO_TEST_CASE(response_details_must_be_an_operation_outcome_consistent_with_the_code) {
  const std::string outcome =
      R"(,{"fullUrl":"urn:uuid:0f1e9a2b-0000-4000-8000-00000000000b","resource":{"resourceType":"OperationOutcome",)"
      R"("issue":[{"severity":"error","code":"invalid"}]}})";
  const std::string details = R"(,"details":{"reference":"urn:uuid:0f1e9a2b-0000-4000-8000-00000000000b"}})";
  expect_issue(validate_text(message(R"(,"response":{"identifier":"m1","code":"ok")" + details, outcome)),
               Severity::error, "response.code is 'ok' but response.details reports errors",
               "Bundle.entry[0].resource.response.details");
  BOOST_TEST(!has_errors(
      validate_text(message(R"(,"response":{"identifier":"m1","code":"fatal-error")" + details, outcome))));
  expect_issue(validate_text(message(R"(,"response":{"identifier":"m1","code":"fatal-error")" + details)),
               Severity::error, "response.details must reference an OperationOutcome in the Bundle",
               "Bundle.entry[0].resource.response.details");
  expect_issue(validate_text(message(R"(,"response":{"identifier":"m1","code":"fine"})")), Severity::error,
               "response.code 'fine' is not one of", "Bundle.entry[0].resource.response.code");
  expect_issue(validate_text(message(R"(,"response":{"identifier":"not an id!","code":"ok"})")),
               Severity::error, "not a valid id", "Bundle.entry[0].resource.response.identifier");
}

BOOST_AUTO_TEST_CASE(issues_become_an_operation_outcome) {
  Issues issues{{Severity::error, "required", "something is missing", "Bundle.entry[0].resource",
                 courier::util::LineColumn{3, 7}}};
  const std::string json = write_json(to_operation_outcome(issues));
  BOOST_TEST(
      json ==
      R"({"resourceType":"OperationOutcome","issue":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line","valueInteger":3},)"
      R"({"url":"http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col","valueInteger":7}],)"
      R"("severity":"error","code":"required","diagnostics":"something is missing","expression":["Bundle.entry[0].resource"]}]})");
  const std::string empty = write_json(to_operation_outcome({}));
  BOOST_TEST(empty.find(R"("severity":"information")") != std::string::npos);
  BOOST_TEST(validate(to_operation_outcome(issues)).empty());
}

BOOST_AUTO_TEST_SUITE_END()
