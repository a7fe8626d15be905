#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "engine/fhir/codec.h"
#include "engine/rest/rest_call.h"

using namespace courier;
using nlohmann::json;

namespace {

// A message: header, ServiceRequest (focus, with an identifier unless
// told otherwise), Patient (referenced by urn:uuid).
fhir::Element order_message(bool with_identifier = true, bool with_request_id = true) {
  json request = {{"resourceType", "ServiceRequest"},
                  {"status", "active"},
                  {"intent", "order"},
                  {"subject", {{"reference", "urn:uuid:pat"}}}};
  if (with_request_id) request["id"] = "sr1";
  if (with_identifier) request["identifier"] = {{{"system", "urn:oid:1.2"}, {"value", "ORD 7"}}};
  const json bundle = {
      {"resourceType", "Bundle"},
      {"id", "b1"},
      {"type", "message"},
      {"entry",
       {{{"fullUrl", "urn:uuid:hdr"},
         {"resource",
          {{"resourceType", "MessageHeader"},
           {"id", "hdr"},
           {"eventCoding", {{"system", "urn:x"}, {"code", "order"}}},
           {"source", {{"endpoint", "http://placer"}}},
           {"focus", {{{"reference", "urn:uuid:sr"}}}}}}},
        {{"fullUrl", "urn:uuid:sr"}, {"resource", request}},
        {{"fullUrl", "urn:uuid:pat"}, {"resource", {{"resourceType", "Patient"}, {"id", "pat"}}}}}}};
  auto parsed = fhir::parse_json(bundle.dump());
  BOOST_REQUIRE(parsed.ok());
  return std::move(*parsed.resource);
}

route::Destination destination(route::Pattern pattern, route::Interaction interaction) {
  route::Destination d;
  d.name = "d";
  d.pattern = pattern;
  d.interaction = interaction;
  return d;
}

rest::RestCall call_for(const fhir::Element& bundle, const route::Destination& d) {
  auto call = rest::rest_call_for(bundle, d, fhir::Format::json, "http://courier");
  if (const auto* why = std::get_if<std::string>(&call)) BOOST_FAIL(*why);
  return std::get<rest::RestCall>(call);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rest_call)

BOOST_AUTO_TEST_CASE(upsert_is_a_conditional_update_by_identifier_without_the_message_id) {
  const rest::RestCall c =
      call_for(order_message(), destination(route::Pattern::rest, route::Interaction::upsert));
  BOOST_TEST(c.method == "PUT");
  BOOST_TEST(c.path == "ServiceRequest?identifier=urn:oid:1.2|ORD%207");
  const json body = json::parse(c.body);
  BOOST_TEST(body["resourceType"] == "ServiceRequest");
  BOOST_TEST(!body.contains("id"));
  BOOST_TEST(body["meta"]["source"] == "http://courier");  // how courier knows its own writes
}

BOOST_AUTO_TEST_CASE(upsert_falls_back_to_the_id_and_fails_without_either) {
  rest::RestCall c =
      call_for(order_message(false), destination(route::Pattern::rest, route::Interaction::upsert));
  BOOST_TEST(c.method + " " + c.path == "PUT ServiceRequest/sr1");
  BOOST_TEST(json::parse(c.body)["id"] == "sr1");
  auto none = rest::rest_call_for(order_message(false, false),
                                  destination(route::Pattern::rest, route::Interaction::upsert),
                                  fhir::Format::json, "http://courier");
  BOOST_TEST(std::get<std::string>(none) ==
             "the focus ServiceRequest has neither an identifier nor an id to upsert it by");
}

BOOST_AUTO_TEST_CASE(create_is_conditional_when_there_is_an_identifier) {
  const rest::RestCall c =
      call_for(order_message(), destination(route::Pattern::rest, route::Interaction::create));
  BOOST_TEST(c.method + " " + c.path == "POST ServiceRequest");
  BOOST_REQUIRE(c.headers.size() == 1u);
  BOOST_TEST(c.headers[0].first == "If-None-Exist");
  BOOST_TEST(c.headers[0].second == "identifier=urn:oid:1.2|ORD%207");
}

BOOST_AUTO_TEST_CASE(transaction_carries_every_resource_but_the_header) {
  const rest::RestCall c =
      call_for(order_message(), destination(route::Pattern::rest, route::Interaction::transaction));
  BOOST_TEST(c.method == "POST");
  BOOST_TEST(c.path == "");
  const json body = json::parse(c.body);
  BOOST_TEST(body["type"] == "transaction");
  BOOST_REQUIRE(body["entry"].size() == 2u);
  BOOST_TEST(body["entry"][0]["fullUrl"] == "urn:uuid:sr");
  BOOST_TEST(body["entry"][0]["request"]["url"] == "ServiceRequest?identifier=urn:oid:1.2|ORD%207");
  BOOST_TEST(body["entry"][0]["resource"]["subject"]["reference"] == "urn:uuid:pat");
  BOOST_TEST(body["entry"][1]["request"]["method"] == "PUT");
  BOOST_TEST(body["entry"][1]["request"]["url"] == "Patient/pat");
}

BOOST_AUTO_TEST_CASE(requests_for_fillers_are_tagged_actionable_and_created) {
  for (route::Pattern pattern : {route::Pattern::request, route::Pattern::queue}) {
    const rest::RestCall c = call_for(order_message(), destination(pattern, route::Interaction::upsert));
    BOOST_TEST(c.method + " " + c.path == "POST ServiceRequest");
    auto parsed = fhir::parse_json(c.body);
    BOOST_REQUIRE(parsed.ok());
    BOOST_TEST(rest::is_actionable(*parsed.resource));
    BOOST_TEST(parsed.resource->child_value("id").empty());
  }
}

BOOST_AUTO_TEST_CASE(an_operation_gets_the_focus_as_parameters) {
  route::Destination d = destination(route::Pattern::operation, route::Interaction::upsert);
  d.operation = "$validate";
  d.target = "ServiceRequest";
  const rest::RestCall c = call_for(order_message(), d);
  BOOST_TEST(c.method + " " + c.path == "POST ServiceRequest/$validate");
  const json body = json::parse(c.body);
  BOOST_TEST(body["resourceType"] == "Parameters");
  BOOST_TEST(body["parameter"][0]["name"] == "resource");
  BOOST_TEST(body["parameter"][0]["resource"]["resourceType"] == "ServiceRequest");
}

BOOST_AUTO_TEST_CASE(locations_name_resources) {
  BOOST_TEST(rest::resource_of_location("http://h/fhir/ServiceRequest/12/_history/1") == "ServiceRequest/12");
  BOOST_TEST(rest::resource_of_location("ServiceRequest/12") == "ServiceRequest/12");
  BOOST_TEST(rest::resource_of_location("") == "");
}

BOOST_AUTO_TEST_SUITE_END()
