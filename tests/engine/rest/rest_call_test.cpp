#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "engine/fhir/codec.h"
#include "engine/hl7v2/to_fhir.h"
#include "engine/rest/merging_sender.h"
#include "engine/rest/rest_call.h"

using namespace courier;
using nlohmann::json;

namespace {

// A message: header, ServiceRequest (focus, with an identifier unless
// told otherwise), Patient (its subject, by urn:uuid, when told so).
fhir::Element order_message(bool with_identifier = true, bool with_request_id = true,
                            bool with_subject = false) {
  json request = {{"resourceType", "ServiceRequest"}, {"status", "active"}, {"intent", "order"}};
  if (with_subject) request["subject"] = {{"reference", "urn:uuid:pat"}};
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

BOOST_AUTO_TEST_CASE(identifiers_are_escaped_as_one_search_value) {
  fhir::Element bundle = order_message();
  fhir::Element& request = bundle.children()[3].children()[1];  // entry[1].resource
  BOOST_REQUIRE(request.type().name == "ServiceRequest");
  request.child("identifier")->child("value")->set_value("ORD,7|$\\");
  const rest::RestCall c = call_for(bundle, destination(route::Pattern::rest, route::Interaction::upsert));
  // "\," "\|" "\$" "\\", percent-encoded: one value, not a choice of two.
  BOOST_TEST(c.path == "ServiceRequest?identifier=urn:oid:1.2|ORD%5C,7%5C|%5C%24%5C%5C");
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
  const rest::RestCall c = call_for(order_message(true, true, true),
                                    destination(route::Pattern::rest, route::Interaction::transaction));
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

BOOST_AUTO_TEST_CASE(merge_is_a_transaction_of_conditional_updates_even_for_one_resource) {
  const rest::RestCall c =
      call_for(order_message(), destination(route::Pattern::rest, route::Interaction::merge));
  BOOST_TEST(c.method + " " + c.path == "POST ");
  const json body = json::parse(c.body);
  BOOST_TEST(body["type"] == "transaction");
  BOOST_REQUIRE(body["entry"].size() == 1u);
  BOOST_TEST(body["entry"][0]["request"]["method"] == "PUT");
  BOOST_TEST(body["entry"][0]["request"]["url"] == "ServiceRequest?identifier=urn:oid:1.2|ORD%207");
}

BOOST_AUTO_TEST_CASE(what_the_focus_refers_to_is_written_with_it) {
  // Its subject is a urn:uuid: of the message, which would name nothing on
  // the server: the Patient goes too, in one transaction, the focus first.
  for (route::Pattern pattern : {route::Pattern::rest, route::Pattern::request, route::Pattern::queue}) {
    const rest::RestCall c =
        call_for(order_message(true, true, true), destination(pattern, route::Interaction::upsert));
    BOOST_TEST(c.method + " " + c.path == "POST ");
    const json body = json::parse(c.body);
    BOOST_REQUIRE(body["entry"].size() == 2u);
    BOOST_TEST(body["entry"][0]["resource"]["resourceType"] == "ServiceRequest");
    BOOST_TEST(body["entry"][0]["resource"]["subject"]["reference"] == "urn:uuid:pat");
    BOOST_TEST(body["entry"][1]["fullUrl"] == "urn:uuid:pat");
    BOOST_TEST(body["entry"][1]["request"]["method"] == "PUT");  // by its id: it has no identifier
    BOOST_TEST(body["entry"][1]["request"]["url"] == "Patient/pat");
    BOOST_TEST(!body["entry"][1]["resource"]["meta"].contains("tag"));  // only the request is work
  }
  BOOST_TEST(rest::written_location("", R"({"resourceType":"Bundle","type":"transaction-response","entry":[
      {"response":{"status":"201 Created","location":"ServiceRequest/9/_history/1"}},
      {"response":{"status":"200 OK","location":"Patient/pat/_history/2"}}]})",
                                    fhir::Format::json) == "ServiceRequest/9/_history/1");
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

namespace {

fhir::Element resource_of(const json& j) {
  auto parsed = fhir::parse_json(j.dump());
  BOOST_REQUIRE(parsed.ok());
  return std::move(*parsed.resource);
}

// A FHIR server that answers each call with the next scripted answer and
// keeps what it was sent.
class ScriptedServer final : public delivery::Sender {
 public:
  std::vector<delivery::Outbound> calls;
  std::vector<std::pair<int, json>> answers;

  void send(delivery::Outbound message, std::function<void(delivery::SendOutcome)> done) override {
    calls.push_back(message);
    BOOST_REQUIRE(calls.size() <= answers.size());
    delivery::SendOutcome outcome;
    outcome.status = answers[calls.size() - 1].first;
    outcome.body = answers[calls.size() - 1].second.dump();
    delivery::classify_status(outcome, false);
    done(std::move(outcome));
  }
};

// The patient as an ADT stored it: version 3, two identifiers, an address.
const json stored_patient = {{"resourceType", "Patient"},
                             {"id", "p1"},
                             {"meta", {{"versionId", "3"}, {"source", "http://courier"}}},
                             {"identifier",
                              {{{"system", "urn:mrn"}, {"value", "1"}},
                               {{"system", "http://hl7.org/fhir/sid/us-ssn"}, {"value", "9"}}}},
                             {"name", {{{"family", "Everyman"}, {"given", {"Adam"}}}}},
                             {"address", {{{"city", "Ann Arbor"}}}},
                             {"deceasedBoolean", false}};

json searchset(const std::vector<json>& resources) {
  json entries = json::array();
  for (const json& r : resources) entries.push_back({{"resource", r}, {"search", {{"mode", "match"}}}});
  return {{"resourceType", "Bundle"}, {"type", "searchset"}, {"total", resources.size()}, {"entry", entries}};
}

json batch_response(const json& found) {
  return {{"resourceType", "Bundle"},
          {"type", "batch-response"},
          {"entry", {{{"resource", found}, {"response", {{"status", "200 OK"}}}}}}};
}

const json patient_transaction = {
    {"resourceType", "Bundle"},
    {"type", "transaction"},
    {"entry",
     {{{"fullUrl", "urn:uuid:p"},
       {"resource",
        {{"resourceType", "Patient"},
         {"meta", {{"source", "http://courier/v2"}}},
         {"identifier", {{{"system", "urn:mrn"}, {"value", "1"}}}},
         {"name", {{{"family", "Everyman"}, {"given", {"Adam", "A"}}}}},
         {"deceasedDateTime", "2026-11-01"}}},
       {"request", {{"method", "PUT"}, {"url", "Patient?identifier=urn:mrn|1"}}}}}}};

delivery::SendOutcome merge_through(const std::shared_ptr<ScriptedServer>& server) {
  delivery::Outbound out;
  out.body = patient_transaction.dump();
  out.message_exchange = false;
  std::optional<delivery::SendOutcome> result;
  rest::make_merging_sender(server)->send(out, [&](delivery::SendOutcome o) { result = std::move(o); });
  BOOST_REQUIRE(result.has_value());
  return *result;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(merge)

BOOST_AUTO_TEST_CASE(what_the_message_leaves_out_is_kept_and_identifiers_accumulate) {
  const fhir::Element incoming = resource_of(patient_transaction["entry"][0]["resource"]);
  const json merged =
      json::parse(fhir::write_json(rest::merged_resource(resource_of(stored_patient), incoming)));
  BOOST_TEST(merged["id"] == "p1");
  BOOST_TEST(merged["meta"]["versionId"] == "3");
  BOOST_TEST(merged["meta"]["source"] == "http://courier/v2");
  BOOST_TEST(merged["name"][0]["given"].size() == 2u);      // replaced by the message's
  BOOST_TEST(merged["address"][0]["city"] == "Ann Arbor");  // kept: the message has none
  BOOST_TEST(merged["deceasedDateTime"] == "2026-11-01");   // a choice replaces its other type
  BOOST_TEST(!merged.contains("deceasedBoolean"));
  BOOST_REQUIRE(merged["identifier"].size() == 2u);  // the repeated one once, the message's first
  BOOST_TEST(merged["identifier"][0]["system"] == "urn:mrn");
  BOOST_TEST(merged["identifier"][1]["value"] == "9");
}

BOOST_AUTO_TEST_CASE(elements_v2_nulled_are_cleared) {
  json incoming = patient_transaction["entry"][0]["resource"];
  incoming.erase("deceasedDateTime");
  incoming["extension"] = {{{"url", hl7v2::v2_null_extension}, {"valueString", "address"}},
                           {{"url", hl7v2::v2_null_extension}, {"valueString", "deceasedDateTime"}},
                           {{"url", hl7v2::v2_null_extension}, {"valueString", "identifier"}}};
  const json merged = json::parse(
      fhir::write_json(rest::merged_resource(resource_of(stored_patient), resource_of(incoming))));
  BOOST_TEST(!merged.contains("address"));
  BOOST_TEST(!merged.contains("deceasedBoolean"));  // whichever type the choice had
  BOOST_TEST(!merged.contains("extension"));        // the markers are not stored
  BOOST_TEST(merged["identifier"].size() == 2u);    // never cleared
  BOOST_TEST(merged["name"][0]["family"] == "Everyman");
}

BOOST_AUTO_TEST_CASE(v2_nulls_are_dropped_from_every_other_write) {
  fhir::Element bundle = order_message();
  fhir::Element& request = bundle.children()[3].children()[1];  // entry[1].resource
  BOOST_REQUIRE(request.type().name == "ServiceRequest");
  fhir::Element& extension = request.add("extension");
  extension.add_value("url", std::string(hl7v2::v2_null_extension));
  extension.add_value("value", "note", "string");
  request.sort_children();
  const json upserted =
      json::parse(call_for(bundle, destination(route::Pattern::rest, route::Interaction::upsert)).body);
  BOOST_TEST(!upserted.contains("extension"));
  const json merged =
      json::parse(call_for(bundle, destination(route::Pattern::rest, route::Interaction::merge)).body);
  BOOST_TEST(merged["entry"][0]["resource"]["extension"][0]["valueString"] == "note");  // for the merge
}

BOOST_AUTO_TEST_CASE(reads_then_writes_the_merge_pinned_to_the_version_read) {
  auto server = std::make_shared<ScriptedServer>();
  server->answers = {{200, batch_response(searchset({stored_patient}))},
                     {200, {{"resourceType", "Bundle"}, {"type", "transaction-response"}}}};
  const delivery::SendOutcome outcome = merge_through(server);
  BOOST_TEST(outcome.status == 200);
  BOOST_REQUIRE(server->calls.size() == 2u);
  const json reads = json::parse(server->calls[0].body);
  BOOST_TEST(reads["type"] == "batch");
  BOOST_TEST(reads["entry"][0]["request"]["method"] == "GET");
  BOOST_TEST(reads["entry"][0]["request"]["url"] == "Patient?identifier=urn:mrn|1");
  const json write = json::parse(server->calls[1].body);
  BOOST_TEST(write["type"] == "transaction");
  BOOST_TEST(write["entry"][0]["fullUrl"] == "urn:uuid:p");  // references to it still resolve
  BOOST_TEST(write["entry"][0]["request"]["url"] == "Patient/p1");
  BOOST_TEST(write["entry"][0]["request"]["ifMatch"] == "W/\"3\"");
  BOOST_TEST(write["entry"][0]["resource"]["address"][0]["city"] == "Ann Arbor");
}

BOOST_AUTO_TEST_CASE(a_write_in_between_makes_it_read_and_merge_again) {
  auto server = std::make_shared<ScriptedServer>();
  json newer = stored_patient;
  newer["meta"]["versionId"] = "4";
  server->answers = {{200, batch_response(searchset({stored_patient}))},
                     {412, {{"resourceType", "OperationOutcome"}}},
                     {200, batch_response(searchset({newer}))},
                     {200, {{"resourceType", "Bundle"}, {"type", "transaction-response"}}}};
  BOOST_TEST(merge_through(server).status == 200);
  BOOST_REQUIRE(server->calls.size() == 4u);
  BOOST_TEST(json::parse(server->calls[3].body)["entry"][0]["request"]["ifMatch"] == "W/\"4\"");
}

BOOST_AUTO_TEST_CASE(a_new_or_ambiguous_target_goes_as_the_conditional_update) {
  for (const json& found : {searchset({}), searchset({stored_patient, stored_patient})}) {
    auto server = std::make_shared<ScriptedServer>();
    server->answers = {{200, batch_response(found)}, {412, {{"resourceType", "OperationOutcome"}}}};
    const delivery::SendOutcome outcome = merge_through(server);
    BOOST_TEST(outcome.status == 412);  // not read again: the server's answer stands
    BOOST_REQUIRE(server->calls.size() == 2u);
    const json write = json::parse(server->calls[1].body);
    BOOST_TEST(write["entry"][0]["request"]["url"] == "Patient?identifier=urn:mrn|1");
    BOOST_TEST(!write["entry"][0]["request"].contains("ifMatch"));
  }
}

BOOST_AUTO_TEST_CASE(a_failed_read_is_the_outcome) {
  auto server = std::make_shared<ScriptedServer>();
  server->answers = {{503, {{"resourceType", "OperationOutcome"}}}};
  BOOST_TEST((merge_through(server).kind == delivery::SendOutcome::Kind::transient));
  BOOST_TEST(server->calls.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
