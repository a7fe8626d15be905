// memberOf() with local value sets, trace(), htmlChecks(), the ordered-function check and
// the boundary functions' edges, beyond what the official suite covers.
#include <boost/test/unit_test.hpp>

#include "engine/fhir/codec.h"
#include "engine/fhirpath/fhirpath.h"
#include "engine/fhirpath/terminology.h"
#include "tests/support/files.h"

using namespace courier;
using fhirpath::Expression;

namespace {

fhir::Element parse(std::string_view text) {
  auto parsed = fhir::parse(text);
  BOOST_REQUIRE_MESSAGE(parsed.ok(), (parsed.issues.empty() ? "" : parsed.issues.front().diagnostics));
  return std::move(*parsed.resource);
}

std::string run(std::string_view expression, const fhir::Element& resource,
                const fhirpath::Environment& env = {}) {
  const fhirpath::Collection result = Expression::compile(expression).evaluate(resource, env);
  std::string out;
  for (const auto& item : result) out += (out.empty() ? "" : " ") + fhirpath::output_text(item);
  return out;
}

std::string error_of(std::string_view expression, const fhir::Element& resource,
                     const fhirpath::Environment& env = {}) {
  try {
    run(expression, resource, env);
  } catch (const fhirpath::Error& e) {
    return std::string(fhirpath::to_string(e.kind())) + ": " + e.what();
  }
  return "no error";
}

// A small hierarchical code system and value sets built on it.
constexpr std::string_view kCodeSystem = R"({
  "resourceType": "CodeSystem", "url": "http://example.org/cs/colour", "status": "active", "content": "complete",
  "concept": [
    {"code": "warm", "concept": [{"code": "red"}, {"code": "orange", "property": [{"code": "shade", "valueCode": "light"}]}]},
    {"code": "cool", "concept": [{"code": "blue"}, {"code": "green"}]}
  ]})";

constexpr std::string_view kValueSets = R"({
  "resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "ValueSet", "url": "http://example.org/vs/warm", "status": "active",
      "compose": {"include": [{"system": "http://example.org/cs/colour",
                               "filter": [{"property": "concept", "op": "is-a", "value": "warm"}]}]}}},
    {"resource": {"resourceType": "ValueSet", "url": "http://example.org/vs/all-but-warm", "status": "active",
      "compose": {"include": [{"system": "http://example.org/cs/colour"}],
                  "exclude": [{"valueSet": ["http://example.org/vs/warm"]}]}}},
    {"resource": {"resourceType": "ValueSet", "url": "http://example.org/vs/light", "status": "active",
      "compose": {"include": [{"system": "http://example.org/cs/colour",
                               "filter": [{"property": "shade", "op": "=", "value": "light"}]}]}}},
    {"resource": {"resourceType": "ValueSet", "url": "http://example.org/vs/regex", "status": "active",
      "compose": {"include": [{"system": "http://example.org/cs/colour",
                               "filter": [{"property": "code", "op": "regex", "value": "r.*"}]}]}}},
    {"resource": {"resourceType": "ValueSet", "url": "http://example.org/vs/two-systems", "status": "active",
      "compose": {"include": [{"system": "http://example.org/a", "concept": [{"code": "x"}]},
                              {"system": "http://example.org/b", "concept": [{"code": "x"}]}]}}},
    {"resource": {"resourceType": "ValueSet", "url": "http://example.org/vs/loop", "status": "active",
      "compose": {"include": [{"valueSet": ["http://example.org/vs/loop"]}]}}}
  ]})";

// The code system and value sets above, loaded as an operator would.
struct Loaded {
  fhirpath::Terminology terminology;
  fhirpath::Environment env;
  Loaded() {
    BOOST_TEST(terminology.add(parse(kCodeSystem)) == 1u);
    BOOST_TEST(terminology.add(parse(kValueSets)) == 6u);
    env.terminology = &terminology;
  }
};

constexpr std::string_view kObservation = R"({
  "resourceType": "Observation", "status": "final",
  "code": {"coding": [{"system": "http://example.org/cs/colour", "code": "orange"},
                      {"system": "http://loinc.org", "code": "2093-3"}]},
  "valueCodeableConcept": {"coding": [{"system": "http://example.org/cs/colour", "code": "blue"}]}
})";

}  // namespace

BOOST_AUTO_TEST_SUITE(fhirpath_functions)

BOOST_FIXTURE_TEST_CASE(member_of_loaded_value_sets, Loaded) {
  const fhir::Element obs = parse(kObservation);
  BOOST_TEST(run("code.memberOf('http://example.org/vs/warm')", obs, env) == "true");
  BOOST_TEST(run("code.coding[0].memberOf('http://example.org/vs/warm')", obs, env) == "true");
  BOOST_TEST(run("code.coding[1].memberOf('http://example.org/vs/warm')", obs, env) == "false");
  BOOST_TEST(run("value.ofType(CodeableConcept).memberOf('http://example.org/vs/warm')", obs, env) ==
             "false");
  BOOST_TEST(run("value.ofType(CodeableConcept).memberOf('http://example.org/vs/all-but-warm')", obs, env) ==
             "true");
  // The excluded value set takes "warm" itself and its children.
  BOOST_TEST(run("code.coding[0].memberOf('http://example.org/vs/all-but-warm|1.0')", obs, env) == "false");
  BOOST_TEST(run("code.coding[0].memberOf('http://example.org/vs/light')", obs, env) == "true");
  BOOST_TEST(run("'red'.memberOf('http://example.org/vs/warm')", obs, env) == "true");
  BOOST_TEST(run("'blue'.memberOf('http://example.org/vs/warm')", obs, env) == "false");
  // A bare code cannot tell which of two systems it belongs to.
  BOOST_TEST(run("'x'.memberOf('http://example.org/vs/two-systems')", obs, env) == "");
  BOOST_TEST(run("{}.memberOf('http://example.org/vs/warm')", obs, env) == "");
}

BOOST_FIXTURE_TEST_CASE(member_of_says_what_it_cannot_do, Loaded) {
  const fhir::Element obs = parse(kObservation);
  BOOST_TEST(error_of("code.memberOf('http://example.org/vs/unknown')", obs, env) ==
             "execution: value set http://example.org/vs/unknown is not available locally");
  BOOST_TEST(error_of("code.memberOf('http://example.org/vs/warm')", obs) ==
             "execution: value set http://example.org/vs/warm is not available locally");
  BOOST_TEST(error_of("code.memberOf('http://example.org/vs/regex')", obs, env) ==
             "execution: memberOf(): the filter 'code regex' cannot be evaluated locally");
  BOOST_TEST(error_of("code.memberOf('http://example.org/vs/loop')", obs, env).find("too deeply") !=
             std::string::npos);
  BOOST_TEST(error_of("status.memberOf(1)", obs, env) == "execution: memberOf() expects a string argument");
  BOOST_TEST(error_of("code.coding.memberOf('http://example.org/vs/warm')", obs, env) ==
             "execution: memberOf() needs a single item");
}

BOOST_AUTO_TEST_CASE(member_of_value_sets_inside_the_resource) {
  // A contained value set, by "#id" or by URL, and the suite's expansion example in a Bundle entry.
  const fhir::Element obs = parse(R"({
    "resourceType": "Observation", "status": "final",
    "contained": [{"resourceType": "ValueSet", "id": "vs1", "url": "http://example.org/vs/local", "status": "active",
                   "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "2093-3"}]}]}}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "2093-3"}]}})");
  BOOST_TEST(run("code.memberOf('#vs1')", obs) == "true");
  BOOST_TEST(run("code.memberOf('http://example.org/vs/local')", obs) == "true");

  const fhir::Element expansion = parse(
      testing::read_file(testing::conformance_dir() / "fhirpath-r4" / "valueset-example-expansion.xml"));
  const fhir::Element bundle =
      parse(R"({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": )" +
            fhir::write_json(expansion) + R"(}, {"resource": )" + std::string(kObservation) + "}]}");
  const std::string url = "http://hl7.org/fhir/ValueSet/example-expansion";
  // 2093-3 sits under an abstract grouping entry; the grouping itself is no code.
  BOOST_TEST(run("entry[1].resource.code.coding[1].memberOf('" + url + "')", bundle) == "true");
  BOOST_TEST(run("entry[1].resource.code.coding[0].memberOf('" + url + "')", bundle) == "false");
  BOOST_TEST(run("'14647-2'.memberOf('" + url + "')", bundle) == "true");
}

BOOST_AUTO_TEST_CASE(trace_writes_only_where_asked) {
  const fhir::Element obs = parse(kObservation);
  std::vector<std::string> traces;
  fhirpath::Environment env;
  env.trace = [&](std::string_view name, const fhirpath::Collection& items) {
    std::string line(name);
    for (const auto& i : items) line += " " + fhirpath::output_text(i);
    traces.push_back(line);
  };
  BOOST_TEST(run("code.coding.trace('codings', code).count()", obs, env) == "2");
  BOOST_TEST(run("code.coding.code.trace('codes').count()", obs, env) == "2");
  BOOST_REQUIRE(traces.size() == 2u);
  BOOST_TEST(traces[0] == "codings orange 2093-3");
  BOOST_TEST(traces[1] == "codes orange 2093-3");
  BOOST_TEST(run("code.coding.trace('nowhere').count()", obs) == "2");
}

BOOST_AUTO_TEST_CASE(order_dependent_functions_on_unordered_collections) {
  fhirpath::CompileOptions checked;
  checked.check_ordered_functions = true;
  const auto semantic = [&](std::string_view text) {
    try {
      Expression::compile(text, checked);
    } catch (const fhirpath::Error& e) {
      return e.kind() == fhirpath::Error::Kind::semantic;
    }
    return false;
  };
  BOOST_TEST(semantic("Patient.children().skip(1)"));
  BOOST_TEST(semantic("descendants().where(url.exists()).first()"));
  BOOST_TEST(semantic("children().code[0]"));
  BOOST_TEST(!semantic("Patient.name.first()"));
  BOOST_TEST(!semantic("children().exists()"));
  BOOST_TEST(semantic("children().first().exists()"));
  BOOST_CHECK_NO_THROW(Expression::compile("Patient.children().skip(1)"));  // off by default
}

BOOST_AUTO_TEST_CASE(boundary_edges) {
  const fhir::Element obs = parse(kObservation);
  BOOST_TEST(run("2.5.lowBoundary(1)", obs) == "2.4");
  BOOST_TEST(run("@2016-02.highBoundary(8)", obs) == "@2016-02-29");  // a leap year
  BOOST_TEST(run("@2015-02.highBoundary(8)", obs) == "@2015-02-28");
  BOOST_TEST(run("@2015-02-03.lowBoundary(10)", obs) == "");  // a date has no hours
  BOOST_TEST(run("@2015-02-03T10:00:00Z.highBoundary()", obs) == "@2015-02-03T10:00:00.999Z");
  BOOST_TEST(run("@T10.lowBoundary(5)", obs) == "");                              // 5 is no time precision
  BOOST_TEST(run("1000000000000000000000000000000.0.lowBoundary()", obs) == "");  // beyond our digits
  BOOST_TEST(error_of("'a'.lowBoundary()", obs).starts_with("execution: lowBoundary() needs a number"));
}

BOOST_AUTO_TEST_CASE(html_checks_apply_the_narrative_rules) {
  const auto patient_with = [](const std::string& div) {
    fhir::Element patient = fhir::Element::resource("Patient");
    fhir::Element& text = patient.add("text");
    text.add_value("status", "generated");
    text.add_value("div", div);
    return patient;
  };
  const std::string open = R"(<div xmlns="http://www.w3.org/1999/xhtml">)";
  BOOST_TEST(run("text.div.htmlChecks()", patient_with(open + "<p>Jane <b>Doe</b></p></div>")) == "true");
  BOOST_TEST(run("text.div.htmlChecks()", patient_with(open + R"(<img src="#photo"/></div>)")) == "true");
  BOOST_TEST(run("text.div.htmlChecks()", patient_with(open + " <p> </p> </div>")) == "false");  // txt-2
  BOOST_TEST(run("text.div.htmlChecks()", patient_with(open + "<script>x()</script>ok</div>")) == "false");
  BOOST_TEST(run("text.div.htmlChecks()", patient_with(open + R"x(<p onclick="x()">ok</p></div>)x")) ==
             "false");
  BOOST_TEST(run("text.div.htmlChecks()", patient_with("<div>no namespace</div>")) == "false");
  BOOST_TEST(run("text.status.htmlChecks()", patient_with(open + "ok</div>")) == "false");
  BOOST_TEST(run("text.nothing.htmlChecks()", patient_with(open + "ok</div>")) == "");
}

BOOST_AUTO_TEST_SUITE_END()
