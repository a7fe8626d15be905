// Tests against material others wrote: the FHIR validator's message cases,
// the R4 message examples, and a committed sample of R4 examples that must
// survive JSON → XML → JSON.
#include <boost/test/unit_test.hpp>

#include "engine/fhir/codec.h"
#include "engine/fhir/validator.h"
#include "tests/support/files.h"
#include "tests/support/roundtrip.h"

using namespace courier::fhir;
using courier::testing::conformance_dir;
using courier::testing::read_file;
using courier::testing::source_dir;

namespace {

// Parse and validate issues of a file, as `courier validate` reports them.
Issues check_file(const std::filesystem::path& path) {
  ParseResult r = parse(read_file(path));
  Issues issues = std::move(r.issues);
  if (r.resource) {
    Issues more = validate(*r.resource);
    issues.insert(issues.end(), more.begin(), more.end());
  }
  return issues;
}

std::vector<std::string> errors_of(const Issues& issues) {
  std::vector<std::string> out;
  for (const Issue& i : issues)
    if (i.severity == Severity::error || i.severity == Severity::fatal)
      out.push_back(i.expression + ": " + i.diagnostics);
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conformance)

BOOST_AUTO_TEST_CASE(validator_case_message_xml_is_valid) {
  const Issues issues = check_file(conformance_dir() / "fhir-test-cases-validator" / "message.xml");
  BOOST_TEST(errors_of(issues).empty(), joined(errors_of(issues)));
  // The file itself has a typo: Encounter.location points at ...cfdc10b48fa, the
  // Location's fullUrl is ...cfdc10b48fad. That is worth a warning.
  bool warned = false;
  for (const Issue& i : issues)
    warned |=
        i.severity == Severity::warning && i.diagnostics ==
                                               "reference 'urn:uuid:75ea28b5-74b8-4d9c-9eb5-cfdc10b48fa' "
                                               "does not resolve to an entry in the Bundle";
  BOOST_TEST(warned);
}

BOOST_AUTO_TEST_CASE(validator_case_message_empty_entry_breaks_bdl_5) {
  const auto errors =
      errors_of(check_file(conformance_dir() / "fhir-test-cases-validator" / "message-empty-entry.xml"));
  BOOST_TEST(errors ==
                 std::vector<std::string>{
                     "Bundle.entry[5]: bdl-5: must be a resource unless there's a request or response"},
             joined(errors));
}

BOOST_AUTO_TEST_CASE(validator_case_uk_message_is_valid) {
  const auto errors = errors_of(check_file(conformance_dir() / "fhir-test-cases-validator" / "uk-msg.json"));
  BOOST_TEST(errors.empty(), joined(errors));
}

BOOST_AUTO_TEST_CASE(validator_case_infinite_loop_ends_with_its_stu3_elements_reported) {
  // An STU3 (ITK) message that sent validators into a loop: it must end,
  // reporting the elements R4 does not have.
  const auto errors =
      errors_of(check_file(conformance_dir() / "fhir-test-cases-validator" / "message-infinite-loop.xml"));
  const std::vector<std::string> expected_start{
      "Bundle.entry[0].resource: unknown element 'event' in MessageHeader",
      "Bundle.entry[0].resource: unknown element 'receiver' in MessageHeader",
      "Bundle.entry[0].resource: unknown element 'timestamp' in MessageHeader",
  };
  BOOST_REQUIRE(errors.size() >= expected_start.size());
  BOOST_TEST(std::vector<std::string>(errors.begin(), errors.begin() + 3) == expected_start, joined(errors));
}

BOOST_AUTO_TEST_CASE(patient_link_messages_break_full_url_agreement_themselves) {
  // The R4 examples of the patient-link request and response give the second
  // Patient the fullUrl .../Patient/pat12 but the id pat2: that, and only
  // that, is an error.
  const auto folder = source_dir() / "tests" / "data" / "fhir-examples";
  const auto request = errors_of(check_file(folder / "Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json"));
  BOOST_TEST(
      request == std::vector<std::string>{"Bundle.entry[2]: fullUrl 'http://acme.com/ehr/fhir/Patient/pat12' "
                                          "disagrees with the resource id 'pat2'"},
      joined(request));
  const auto response = errors_of(check_file(folder / "Bundle-3a0707d3-549e-4467-b8b8-5a2ab3800efe.json"));
  BOOST_TEST(response ==
                 std::vector<std::string>{"Bundle.entry[3]: fullUrl 'http://acme.com/ehr/fhir/Patient/pat12' "
                                          "disagrees with the resource id 'pat2'"},
             joined(response));
}

BOOST_AUTO_TEST_CASE(committed_examples_survive_json_xml_json) {
  std::size_t count = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(source_dir() / "tests" / "data" / "fhir-examples")) {
    const std::string difference = courier::testing::roundtrip_difference(read_file(entry.path()));
    BOOST_TEST(difference.empty(), entry.path().filename().string() << ": " << difference);
    ++count;
  }
  BOOST_TEST(count >= 60u);
}

BOOST_AUTO_TEST_CASE(committed_examples_also_survive_xml_json_xml) {
  // Starting from our XML: XML → JSON → XML must reach a fixed point. (The
  // narrative's spelling may change once, as pugixml re-prints the XHTML.)
  for (const auto& entry :
       std::filesystem::directory_iterator(source_dir() / "tests" / "data" / "fhir-examples")) {
    const std::string xml1 = write_xml(*parse_json(read_file(entry.path())).resource);
    const std::string json1 = write_json(*parse_xml(xml1).resource);
    const std::string xml2 = write_xml(*parse_json(json1).resource);
    const ParseResult again = parse_xml(xml2);
    BOOST_REQUIRE(again.ok());
    BOOST_TEST(write_json(*again.resource) == json1, entry.path().filename());
    BOOST_TEST(write_xml(*again.resource) == xml2, entry.path().filename());
  }
}

BOOST_AUTO_TEST_SUITE_END()
