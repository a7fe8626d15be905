#include <boost/test/unit_test.hpp>

#include "engine/fhir/codec.h"
#include "engine/fhirpath/fhirpath.h"
#include "tests/support/files.h"

using namespace courier;
using fhirpath::Expression;

namespace {

std::string run(std::string_view expression, const fhir::Element* resource = nullptr) {
  const Expression e = Expression::compile(expression);
  const fhirpath::Collection result =
      resource ? e.evaluate(*resource) : e.evaluate(fhirpath::Collection{}, nullptr);
  std::string out;
  for (const auto& item : result)
    out += (out.empty() ? "" : " ") + item.type_name() + ":" + fhirpath::output_text(item);
  return out;
}

fhir::Element message() {
  auto parsed =
      fhir::parse(testing::read_file(testing::source_dir() / "bench" / "data" / "lab-order-message.json"));
  BOOST_REQUIRE(parsed.ok());
  return std::move(*parsed.resource);
}

fhirpath::Error::Kind error_kind(std::string_view expression, std::size_t& position) {
  try {
    run(expression);
  } catch (const fhirpath::Error& e) {
    position = e.position();
    return e.kind();
  }
  BOOST_FAIL("no error for " << expression);
  return fhirpath::Error::Kind::execution;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fhirpath_engine)

BOOST_AUTO_TEST_CASE(route_expressions_on_a_message) {
  const fhir::Element m = message();
  BOOST_TEST(run("Bundle.entry.first().resource.ofType(MessageHeader).event.ofType(Coding).code", &m) ==
             "code:order-request");
  BOOST_TEST(run("Bundle.entry[0].resource.focus.resolve().ofType(ServiceRequest).code.coding.code", &m) ==
             "code:24323-8");
  BOOST_TEST(run("Bundle.entry[0].resource.focus.resolve().subject.resolve().name.given", &m) ==
             "string:Jane string:Mary");
  BOOST_TEST(run("Bundle.entry.resource.ofType(Specimen).collection.quantity.value", &m) == "decimal:5.0");
  BOOST_TEST(run("Bundle.timestamp > @2020-01-01T00:00:00Z and Bundle.type = 'message'", &m) ==
             "boolean:true");
  BOOST_TEST(run("Bundle.entry.resource.where($this is Organization).name.count()", &m) == "integer:2");
}

BOOST_AUTO_TEST_CASE(resolve_follows_the_bundle_reference_rules) {
  auto parsed = fhir::parse(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"fullUrl":"http://a.example/fhir/Observation/1","resource":{"resourceType":"Observation","id":"1","status":"final",
      "code":{"text":"x"},"subject":{"reference":"Patient/23"},"performer":[{"reference":"Patient/45/_history/2"}],
      "contained":[{"resourceType":"Device","id":"d1"}],"device":{"reference":"#d1"}}},
    {"fullUrl":"http://b.example/fhir/Observation/2","resource":{"resourceType":"Observation","id":"2","status":"final",
      "code":{"text":"y"},"subject":{"reference":"Patient/23"}}},
    {"fullUrl":"http://a.example/fhir/Patient/23","resource":{"resourceType":"Patient","id":"23","gender":"female"}},
    {"fullUrl":"http://a.example/fhir/Patient/45","resource":{"resourceType":"Patient","id":"45","meta":{"versionId":"1"},"gender":"male"}},
    {"fullUrl":"http://a.example/fhir/Patient/45","resource":{"resourceType":"Patient","id":"45","meta":{"versionId":"2"},"gender":"other"}}]})");
  BOOST_REQUIRE(parsed.ok());
  const fhir::Element& b = *parsed.resource;
  BOOST_TEST(run("Bundle.entry[0].resource.subject.resolve().gender", &b) == "code:female");
  // Relative to its own entry's base, http://b.example/fhir/, where there is no Patient/23.
  BOOST_TEST(run("Bundle.entry[1].resource.subject.resolve()", &b) == "");
  BOOST_TEST(run("Bundle.entry[0].resource.performer.resolve().gender", &b) == "code:other");
  // "#d1" is contained in the resource that holds the reference, not in the Bundle.
  BOOST_TEST(run("Bundle.entry[0].resource.device.resolve().id", &b) == "id:d1");
}

BOOST_AUTO_TEST_CASE(decimals_are_exact_and_keep_precision) {
  BOOST_TEST(run("0.1 + 0.2 = 0.3") == "boolean:true");
  BOOST_TEST(run("1.50 * 2") == "decimal:3.00");
  BOOST_TEST(run("7 / 2") == "decimal:3.5");
  BOOST_TEST(run("7 div 2") == "integer:3");
  BOOST_TEST(run("1.0 ~ 1.04") == "boolean:true");  // at the lesser precision
  BOOST_TEST(run("1.0 ~ 1.06") == "boolean:false");
}

BOOST_AUTO_TEST_CASE(three_valued_logic_and_empty_propagation) {
  BOOST_TEST(run("{} and true") == "");
  BOOST_TEST(run("{} and false") == "boolean:false");
  BOOST_TEST(run("{} or true") == "boolean:true");
  BOOST_TEST(run("false implies {}") == "boolean:true");
  BOOST_TEST(run("{} = 1") == "");
}

BOOST_AUTO_TEST_CASE(dates_compare_at_their_precision) {
  BOOST_TEST(run("@2024-01 < @2024-02-15") == "boolean:true");
  BOOST_TEST(run("@2024-01 = @2024-01-15") == "");  // unknown: the month holds both
  BOOST_TEST(run("@2024-01-31 + 1 month") == "date:@2024-02-29");
  BOOST_TEST(run("@2024-01-01T10:00:00+02:00 = @2024-01-01T08:00:00Z") == "boolean:true");
}

BOOST_AUTO_TEST_CASE(errors_have_a_kind_and_a_position) {
  std::size_t at = 0;
  BOOST_TEST((error_kind("1 + ", at) == fhirpath::Error::Kind::syntax));
  BOOST_TEST(at == 4u);
  BOOST_TEST((error_kind("name.nosuchfunction()", at) == fhirpath::Error::Kind::semantic));
  BOOST_TEST(at == 5u);
  BOOST_TEST((error_kind("(1 | 2).single()", at) == fhirpath::Error::Kind::execution));
  BOOST_TEST((error_kind("'abc'.matches('(')", at) == fhirpath::Error::Kind::execution));
}

BOOST_AUTO_TEST_CASE(hostile_expressions_are_syntax_errors_not_stack_overflows) {
  std::size_t at = 0;
  BOOST_TEST((error_kind(std::string(100000, '(') + "1" + std::string(100000, ')'), at) ==
              fhirpath::Error::Kind::syntax));
  BOOST_TEST((error_kind(std::string(100000, '-') + "1", at) == fhirpath::Error::Kind::syntax));
  std::string chain = "1";
  for (int i = 0; i < 50000; ++i) chain += "+1";
  BOOST_TEST((error_kind(chain, at) == fhirpath::Error::Kind::syntax));
  std::string path = "name";
  for (int i = 0; i < 50000; ++i) path += ".given";
  BOOST_TEST((error_kind(path, at) == fhirpath::Error::Kind::syntax));
}

BOOST_AUTO_TEST_CASE(regexes_take_linear_time_and_match_across_lines) {
  // (a*)*b on 40 a's: a backtracking engine tries 2^40 ways; RE2 answers at once.
  BOOST_TEST(run("'" + std::string(40, 'a') + "'.matches('(a*)*b')") == "boolean:false");
  BOOST_TEST(run("'A\nB'.matches('A.B')") == "boolean:true");
  BOOST_TEST(run("'abc-def'.replaceMatches('(\\\\w+)-(\\\\w+)', '$2 $1')") == "string:def abc");
}

BOOST_AUTO_TEST_CASE(strict_mode_knows_the_model) {
  fhirpath::CompileOptions strict;
  strict.strict = true;
  strict.context_type = "Patient";
  BOOST_CHECK_THROW(Expression::compile("name.given1", strict), fhirpath::Error);
  BOOST_CHECK_NO_THROW(Expression::compile("name.given", strict));
  BOOST_CHECK_THROW(Expression::compile("Observation.valueQuantity", {}), fhirpath::Error);
}

BOOST_AUTO_TEST_CASE(a_compiled_expression_runs_many_times) {
  const fhir::Element m = message();
  const Expression e = Expression::compile("Bundle.entry.count()");
  for (int i = 0; i < 3; ++i) BOOST_TEST(fhirpath::output_text(e.evaluate(m).front()) == "7");
}

BOOST_AUTO_TEST_SUITE_END()
