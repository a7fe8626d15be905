#include <boost/test/unit_test.hpp>

#include "engine/fhir/codec.h"
#include "tests/support/roundtrip.h"

using namespace courier::fhir;

namespace {

Element parse_ok(std::string_view text) {
  ParseResult r = parse(text);
  std::string problems;
  for (const Issue& i : r.issues) problems += i.expression + ": " + i.diagnostics + "; ";
  BOOST_TEST_INFO("issues: " << problems);
  BOOST_REQUIRE(r.ok());
  return std::move(*r.resource);
}

// The issue of a bad document whose message contains `words`.
Issue error_with(std::string_view text, std::string_view words) {
  ParseResult r = parse(text);
  BOOST_TEST_INFO("text: " << text);
  BOOST_REQUIRE(!r.ok());
  BOOST_REQUIRE(!r.issues.empty());
  std::string all;
  for (const Issue& i : r.issues) {
    if (i.diagnostics.find(words) != std::string::npos) return i;
    all += i.diagnostics + "; ";
  }
  BOOST_TEST_INFO("diagnostics: " << all);
  BOOST_TEST(false);
  return r.issues.front();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(json_codec)

BOOST_AUTO_TEST_CASE(decimals_keep_their_exact_text_through_xml_and_back) {
  const std::string json =
      R"({"resourceType":"Observation","status":"final","code":{"text":"weight"},)"
      R"("valueQuantity":{"value":2.00,"unit":"kg"},"component":[{"code":{"text":"a"},"valueQuantity":{"value":1.50e3}}]})";
  const Element obs = parse_ok(json);
  const Element* value = obs.child("value");
  BOOST_REQUIRE(value != nullptr);
  BOOST_TEST(value->type().name == "Quantity");
  BOOST_TEST(value->child_value("value") == "2.00");
  const std::string xml = write_xml(obs);
  BOOST_TEST(xml.find(R"(<valueQuantity><value value="2.00"/>)") != std::string::npos);
  const std::string back = write_json(parse_ok(xml));
  BOOST_TEST(back.find(R"("value":2.00)") != std::string::npos);
  BOOST_TEST(back.find(R"("value":1.50e3)") != std::string::npos);
  BOOST_TEST(courier::testing::roundtrip_difference(json).empty());
}

BOOST_AUTO_TEST_CASE(meaning_comparison_sees_a_lost_decimal_zero) {
  BOOST_TEST(courier::testing::normalised_json(R"({"v":2.00})") !=
             courier::testing::normalised_json(R"({"v":2})"));
  BOOST_TEST(courier::testing::normalised_json(R"({"a":1,"b":2})") ==
             courier::testing::normalised_json(R"({"b":2,"a":1})"));
}

BOOST_AUTO_TEST_CASE(primitive_extensions_and_ids_in_both_formats) {
  const std::string json = R"({"resourceType":"Patient","birthDate":"1970-03-30","_birthDate":{"id":"bd",)"
                           R"("extension":[{"url":"http://example.org/time","valueTime":"14:35:45"}]}})";
  const Element patient = parse_ok(json);
  const Element* birth = patient.child("birthDate");
  BOOST_REQUIRE(birth != nullptr);
  BOOST_TEST(birth->value() == "1970-03-30");
  BOOST_TEST(birth->child_value("id") == "bd");
  const std::string xml = write_xml(patient);
  BOOST_TEST(xml.find(R"(<birthDate id="bd" value="1970-03-30"><extension url="http://example.org/time">)"
                      R"(<valueTime value="14:35:45"/></extension></birthDate>)") != std::string::npos);
  BOOST_TEST(write_json(parse_ok(xml)) == write_json(patient));
}

BOOST_AUTO_TEST_CASE(a_primitive_with_only_an_extension_writes_only_the_underscore_property) {
  const std::string json =
      R"({"resourceType":"Patient","_gender":{"extension":[{"url":"http://example.org/x","valueBoolean":true}]}})";
  const Element patient = parse_ok(json);
  const std::string out = write_json(patient);
  BOOST_TEST(out.find(R"("gender")") == std::string::npos);
  BOOST_TEST(out.find(R"("_gender":{)") != std::string::npos);
  BOOST_TEST(write_xml(patient).find(R"(<gender><extension url="http://example.org/x">)") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(repeating_primitives_use_parallel_arrays_padded_with_null) {
  const std::string json = R"({"resourceType":"Patient","name":[{"_given":[null,{"id":"g2"},null],)"
                           R"("given":["Peter",null,"James"]}]})";
  const Element patient = parse_ok(json);
  const auto given = patient.child("name")->children_named("given");
  BOOST_REQUIRE(given.size() == 3u);
  BOOST_TEST(given[0]->value() == "Peter");
  BOOST_TEST(!given[1]->has_value());
  BOOST_TEST(given[1]->child_value("id") == "g2");
  BOOST_TEST(given[2]->value() == "James");
  BOOST_TEST(
      write_json(patient) ==
      R"({"resourceType":"Patient","name":[{"given":["Peter",null,"James"],"_given":[null,{"id":"g2"},null]}]})");
}

BOOST_AUTO_TEST_CASE(resource_type_may_come_anywhere_in_the_object) {
  const Element bundle = parse_ok(
      R"({"type":"collection","entry":[{"resource":{"id":"p","resourceType":"Patient"}}],"resourceType":"Bundle"})");
  BOOST_TEST(bundle.type().name == "Bundle");
  BOOST_TEST(bundle.child("entry")->child("resource")->type().name == "Patient");
}

BOOST_AUTO_TEST_CASE(contained_and_entry_resources_are_wrapped_in_xml) {
  const std::string json =
      R"({"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":)"
      R"({"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p1"}],)"
      R"("status":"final","code":{"text":"x"},"subject":{"reference":"#p1"}}}]})";
  const std::string xml = write_xml(parse_ok(json));
  BOOST_TEST(xml.find(R"(<entry><fullUrl value="urn:uuid:1"/><resource><Observation><contained><Patient>)"
                      R"(<id value="p1"/></Patient></contained>)") != std::string::npos);
  BOOST_TEST(xml.find(R"(<Bundle xmlns="http://hl7.org/fhir">)") != std::string::npos);
  BOOST_TEST(courier::testing::roundtrip_difference(json).empty());
}

BOOST_AUTO_TEST_CASE(elements_are_written_in_definition_order) {
  const Element patient = parse_ok(R"({"resourceType":"Patient","gender":"male","active":true,"id":"x"})");
  BOOST_TEST(write_json(patient) == R"({"resourceType":"Patient","id":"x","active":true,"gender":"male"})");
}

BOOST_AUTO_TEST_CASE(narrative_is_xhtml_in_xml_and_a_string_in_json) {
  const std::string json =
      R"({"resourceType":"Patient","text":{"status":"generated","div":)"
      R"("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>A &amp; B <b>bold</b></p></div>"}})";
  const Element patient = parse_ok(json);
  const std::string xml = write_xml(patient);
  BOOST_TEST(xml.find(R"(<div xmlns="http://www.w3.org/1999/xhtml"><p>A &amp; B <b>bold</b></p></div>)") !=
             std::string::npos);
  BOOST_TEST(write_json(parse_ok(xml)) == write_json(patient));
}

BOOST_AUTO_TEST_CASE(strings_are_escaped_both_ways) {
  const std::string json =
      R"({"resourceType":"Patient","name":[{"text":"a\"b\\c\nd\te <&> \u00e9 \ud83d\ude00"}]})";
  const Element patient = parse_ok(json);
  BOOST_TEST(patient.child("name")->child_value("text") == "a\"b\\c\nd\te <&> \xC3\xA9 \xF0\x9F\x98\x80");
  const std::string xml = write_xml(patient);
  BOOST_TEST(xml.find(R"(value="a&quot;b\c&#xA;d&#x9;e &lt;&amp;&gt; )") != std::string::npos);
  BOOST_TEST(write_json(parse_ok(xml)) == write_json(patient));
}

BOOST_AUTO_TEST_CASE(pretty_output_reads_back_the_same) {
  const Element patient = parse_ok(R"({"resourceType":"Patient","id":"x","name":[{"given":["A","B"]}]})");
  const std::string pretty = write_json(patient, {.pretty = true});
  BOOST_TEST(pretty.find("\n  \"id\": \"x\"") != std::string::npos);
  BOOST_TEST(write_json(parse_ok(pretty)) == write_json(patient));
  BOOST_TEST(write_json(parse_ok(write_xml(patient, {.pretty = true}))) == write_json(patient));
}

BOOST_AUTO_TEST_CASE(narrative_must_be_one_xhtml_div) {
  const std::string start = R"({"resourceType":"Patient","text":{"status":"generated","div":")";
  error_with(start + R"(<div xmlns=\"http://www.w3.org/1999/xhtml\">a</div>%"}})",
             "text outside the root element");
  error_with(start + R"(<div>a</div>"}})", "must declare xmlns");
  error_with(start + R"(<p xmlns=\"http://www.w3.org/1999/xhtml\">a</p>"}})", "root element must be <div>");
  error_with(start + R"(<div xmlns=\"http://www.w3.org/1999/xhtml\"><a onclick=\"x()\">a</a></div>"}})",
             "event attribute 'onclick'");
  error_with(start + R"(<div xmlns=\"http://www.w3.org/1999/xhtml\">a &nbsp; b</div>"}})",
             "undeclared entity");
  error_with(start + R"(<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a</div>"}})", "not well-formed XML");
}

// ---- bad input ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_json_names_line_and_column) {
  const Issue i = error_with("{\n  \"resourceType\": \"Patient\",\n  \"active\": tru\n}", "malformed JSON");
  BOOST_TEST(to_string(i.severity) == "fatal");
  BOOST_REQUIRE(i.where.has_value());
  BOOST_TEST(i.where->line == 3u);
  BOOST_TEST(i.where->column == 13u);
}

BOOST_AUTO_TEST_CASE(json_syntax_errors) {
  error_with(R"({"resourceType":"Patient",})", "expected a string");
  error_with(R"({"resourceType":"Patient"} x)", "unexpected text after the resource");
  error_with(R"({"resourceType":"Patient","id":"a)", "unterminated string");
  error_with(R"({"resourceType":"Patient","id":"a\q"})", "invalid escape");
  error_with(R"({"resourceType":"Patient","id":"\ud800"})", "unpaired surrogate");
  error_with("{\"resourceType\":\"Patient\",\"id\":\"a\tb\"}", "control character");
  error_with(R"({"resourceType":"Patient","name":[{"text":"a\u0000b"}]})",
             "control character U+0000 is not allowed");
  error_with(R"({"resourceType":"Patient","name":[{"text":"a\fb"}]})",
             "control character U+000C is not allowed");
  error_with(R"({"resourceType":"Observation","valueInteger":01})", "invalid number");
  error_with(R"([1,2])", "neither FHIR JSON");
  error_with(R"(  "Patient")", "neither FHIR JSON");
  error_with("", "empty");
}

BOOST_AUTO_TEST_CASE(duplicate_keys_are_errors) {
  const Issue i =
      error_with(R"({"resourceType":"Patient","active":true,"active":false})", "duplicate property 'active'");
  BOOST_TEST(i.where->column == 41u);
}

BOOST_AUTO_TEST_CASE(unknown_properties_suggest_the_closest_name) {
  const Issue i =
      error_with(R"({"resourceType":"Patient","birthdate":"1970"})", "unknown property 'birthdate'");
  BOOST_TEST(i.diagnostics.find("did you mean 'birthDate'?") != std::string::npos);
  BOOST_TEST(i.expression == "Patient");
}

BOOST_AUTO_TEST_CASE(wrong_json_types_are_named) {
  error_with(R"({"resourceType":"Patient","active":"true"})",
             "a boolean must be a JSON boolean, not a string");
  error_with(R"({"resourceType":"Patient","gender":1})", "a code must be a JSON string, not a number");
  error_with(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":"1"})",
             "an integer must be a JSON number");
  error_with(R"({"resourceType":"Patient","name":{"text":"x"}})", "'name' must be an array");
  error_with(R"({"resourceType":"Patient","gender":["male"]})", "'gender' must not be an array");
  error_with(R"({"resourceType":"Patient","maritalStatus":"M"})", "expected an object for maritalStatus");
  error_with(R"({"resourceType":"Patient","active":{"value":true}})",
             "must be a primitive value, not an object");
  error_with(R"({"resourceType":"Patient","active":null})", "null is only allowed");
  error_with(R"({"resourceType":"Patient","maritalStatus":{}})", "empty objects are not allowed");
  error_with(R"({"resourceType":"Patient","name":[{"given":["a",null],"_given":[null]}]})",
             "an item of 'given' is null in both 'given' and '_given'");
  error_with(R"({"resourceType":"Observation","valueString":"a","valueBoolean":true})",
             "'value[x]' may have only one value");
  error_with(R"({"resourceType":"Patient","name":[]})", "empty arrays are not allowed");
}

BOOST_AUTO_TEST_CASE(unknown_resource_types_are_errors) {
  error_with(R"({"resourceType":"Patinet"})", "unknown resourceType 'Patinet'");
  error_with(R"({"resourceType":"DomainResource"})", "unknown resourceType 'DomainResource'");
  error_with(R"({"id":"x"})", "must have a resourceType");
  error_with(R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"id":"x"}}]})",
             "must have a resourceType");
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_rejected_with_its_offset) {
  const Issue i = error_with("{\"resourceType\":\"Patient\",\"id\":\"a\xC3\x28\"}", "invalid UTF-8");
  BOOST_TEST(i.where->column == 34u);
  error_with("{\"resourceType\":\"Patient\",\"id\":\"\xED\xA0\x80\"}", "invalid UTF-8");  // a surrogate
  error_with("{\"resourceType\":\"Patient\",\"id\":\"\xC0\xAF\"}", "invalid UTF-8");      // overlong
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_an_error_not_a_stack_overflow) {
  for (const std::size_t depth : {std::size_t{150}, std::size_t{1000000}}) {
    std::string deep = R"({"resourceType":"Patient","extension":)";
    for (std::size_t i = 0; i < depth; ++i) deep += R"([{"url":"u","extension":)";
    error_with(deep, "nesting deeper than 100 levels");
  }
  std::string arrays = R"({"resourceType":"Patient","unknown":)" + std::string(1000000, '[');
  error_with(arrays, "nesting deeper than 100 levels");
}

BOOST_AUTO_TEST_CASE(oversized_documents_are_refused_before_reading) {
  const std::string big = R"({"resourceType":"Patient","id":")" + std::string(2000, 'a') + "\"}";
  const ParseResult r = parse_json(big, ParseLimits{.max_bytes = 1000});
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.issues.front().diagnostics.find("more than the limit of 1000") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(errors_are_capped_so_a_hostile_document_stays_cheap) {
  std::string many = R"({"resourceType":"Patient")";
  for (int i = 0; i < 5000; ++i) many += ",\"x" + std::to_string(i) + "\":1";
  many += "}";
  const ParseResult r = parse(many);
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.issues.size() <= 1001u);
  BOOST_TEST(r.issues.back().diagnostics.find("too many errors") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
