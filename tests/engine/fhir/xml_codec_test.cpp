#include <boost/test/unit_test.hpp>

#include "engine/fhir/codec.h"

using namespace courier::fhir;

namespace {

Element parse_ok(std::string_view text) {
  ParseResult r = parse_xml(text);
  std::string problems;
  for (const Issue& i : r.issues) problems += i.expression + ": " + i.diagnostics + "; ";
  BOOST_TEST_INFO("issues: " << problems);
  BOOST_REQUIRE(r.ok());
  return std::move(*r.resource);
}

Issue first_error(std::string_view text, std::string_view words) {
  ParseResult r = parse_xml(text);
  BOOST_TEST_INFO("text: " << text);
  BOOST_REQUIRE(!r.ok());
  const Issue& first = r.issues.front();
  BOOST_TEST_INFO("diagnostics: " << first.diagnostics);
  BOOST_TEST(first.diagnostics.find(words) != std::string::npos);
  return first;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(xml_codec)

BOOST_AUTO_TEST_CASE(reads_attributes_choice_types_and_resource_wrappers) {
  const Element bundle = parse_ok(R"(<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<Bundle xmlns="http://hl7.org/fhir">
  <type value="collection"/>
  <entry>
    <resource>
      <Observation>
        <id value="o1"/>
        <extension url="http://example.org/e"><valueString value="x"/></extension>
        <status value="final"/>
        <code><text value="t"/></code>
        <valueQuantity><value value="4.10"/><unit value="mmol/L"/></valueQuantity>
      </Observation>
    </resource>
  </entry>
</Bundle>)");
  const Element* obs = bundle.child("entry")->child("resource");
  BOOST_REQUIRE(obs != nullptr);
  BOOST_TEST(obs->type().name == "Observation");
  BOOST_TEST(obs->child_value("id") == "o1");
  BOOST_TEST(obs->child("extension")->child_value("url") == "http://example.org/e");
  BOOST_TEST(obs->child("value")->type().name == "Quantity");
  BOOST_TEST(obs->child("value")->child_value("value") == "4.10");
  BOOST_TEST(
      write_json(bundle) ==
      R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation",)"
      R"("id":"o1","extension":[{"url":"http://example.org/e","valueString":"x"}],"status":"final",)"
      R"("code":{"text":"t"},"valueQuantity":{"value":4.10,"unit":"mmol/L"}}}]})");
}

BOOST_AUTO_TEST_CASE(a_prefixed_fhir_namespace_is_understood) {
  const Element p =
      parse_ok(R"(<f:Patient xmlns:f="http://hl7.org/fhir"><f:active value="true"/></f:Patient>)");
  BOOST_TEST(p.child_value("active") == "true");
}

BOOST_AUTO_TEST_CASE(newlines_in_values_survive_attribute_normalisation) {
  const Element p =
      parse_ok(R"(<Patient xmlns="http://hl7.org/fhir"><name><text value="a&#xA;b"/></name></Patient>)");
  BOOST_TEST(p.child("name")->child_value("text") == "a\nb");
  BOOST_TEST(write_xml(p).find(R"(<text value="a&#xA;b"/>)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(dtds_and_entities_are_rejected_never_expanded) {
  first_error(
      R"(<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY x "boom">]><Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>)",
      "DOCTYPE and entity declarations are not allowed");
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>)",
              "undeclared entity reference '&x;'");
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"><id value="a&nbsp;"/></Patient>)", "undeclared entity");
  // Inside a comment an ampersand is just text.
  parse_ok(R"(<Patient xmlns="http://hl7.org/fhir"><!-- a & b --><id value="a&amp;b&#65;"/></Patient>)");
}

BOOST_AUTO_TEST_CASE(malformed_xml_has_a_line_and_column) {
  const Issue i =
      first_error("<Patient xmlns=\"http://hl7.org/fhir\">\n  <id value=\"x\">\n</Patient>", "malformed XML");
  BOOST_TEST(to_string(i.severity) == "fatal");
  BOOST_REQUIRE(i.where.has_value());
  BOOST_TEST(i.where->line == 3u);
}

BOOST_AUTO_TEST_CASE(a_document_has_one_root_and_nothing_beside_it) {
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"/>x)", "text outside the root element");
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"/><Patient xmlns="http://hl7.org/fhir"/>)",
              "more than one root element");
  first_error(
      R"(<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>)"
      R"(<div xmlns="http://www.w3.org/1999/xhtml">a</div><div xmlns="http://www.w3.org/1999/xhtml">b</div></text></Patient>)",
      "'div' may appear only once");
  first_error(
      R"(<Patient xmlns="http://hl7.org/fhir"><active value="true"/><active value="false"/></Patient>)",
      "'active' may appear only once");
}

BOOST_AUTO_TEST_CASE(structural_errors_are_named) {
  first_error(R"(<Patient><id value="x"/></Patient>)", "must be in the FHIR namespace");
  first_error(R"(<Patinet xmlns="http://hl7.org/fhir"/>)", "unknown resource type 'Patinet'");
  const Issue unknown =
      first_error(R"(<Patient xmlns="http://hl7.org/fhir"><birthdate value="1970"/></Patient>)",
                  "unknown element 'birthdate' in Patient; did you mean 'birthDate'?");
  BOOST_TEST(unknown.where->column == 38u);
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"><active value="yes"/></Patient>)",
              "'yes' is not a valid boolean");
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"><active value=""/></Patient>)", "is empty");
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"><active>true</active></Patient>)",
              "text content is not allowed");
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"><active value="true" colour="red"/></Patient>)",
              "unknown attribute 'colour'");
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"><name/></Patient>)", "neither a value nor children");
  first_error(R"(<Patient xmlns="http://hl7.org/fhir"><extension><url value="u"/></extension></Patient>)",
              "'url' must be an attribute");
  first_error(
      R"(<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Patient/><Patient/></resource></entry></Bundle>)",
      "must hold exactly one resource");
  first_error(
      R"(<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div>x</div></text></Patient>)",
      "the narrative must be <div xmlns=\"http://www.w3.org/1999/xhtml\">");
  first_error(
      R"(<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div></text></Patient>)",
      "element <script> is not allowed");
}

BOOST_AUTO_TEST_CASE(only_utf8_is_accepted) {
  first_error(R"(<?xml version="1.0" encoding="ISO-8859-1"?><Patient xmlns="http://hl7.org/fhir"/>)",
              "must be UTF-8");
  first_error("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"\xE9\"/></Patient>", "invalid UTF-8");
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_an_error_not_a_stack_overflow) {
  std::string deep = R"(<Patient xmlns="http://hl7.org/fhir">)";
  const int depth = 200000;
  for (int i = 0; i < depth; ++i) deep += R"(<extension url="u">)";
  for (int i = 0; i < depth; ++i) deep += "</extension>";
  deep += "</Patient>";
  first_error(deep, "nesting deeper than 100 levels");
}

BOOST_AUTO_TEST_SUITE_END()
