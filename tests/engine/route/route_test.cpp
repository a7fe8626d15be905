#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/fhir/codec.h"
#include "engine/message/message_info.h"
#include "engine/route/route.h"
#include "tests/support/files.h"

using namespace courier;

namespace {

// Writes `text` to a fresh file and loads it as a route file.
struct Loaded {
  std::string path;
  std::vector<route::Route> routes;
  std::vector<std::string> errors;
};

Loaded load(const std::string& text, const fhirpath::Terminology* terminology = nullptr) {
  static int counter = 0;
  Loaded out;
  out.path = (std::filesystem::temp_directory_path() / ("courier-route-test-" + std::to_string(::getpid()) +
                                                        "-" + std::to_string(++counter) + ".yaml"))
                 .string();
  std::ofstream(out.path) << text;
  out.routes = route::load_route_file(out.path, out.errors, terminology);
  std::filesystem::remove(out.path);
  return out;
}

fhir::Element lab_message() {
  auto parsed =
      fhir::parse(testing::read_file(testing::source_dir() / "bench" / "data" / "lab-order-message.json"));
  BOOST_REQUIRE(parsed.ok());
  return std::move(*parsed.resource);
}

const char* valid_route = R"(route: lab
from: fhir
when:
  event: http://example.org/fhir/message-events|order-request
  focus: ServiceRequest
  expression: Bundle.entry.resource.ofType(ServiceRequest).exists()
to:
  - name: lis
    pattern: messaging
    endpoint: http://lis.example.org/fhir/
    mode: async
    ack-timeout: 5s
    retry: { attempts: 12, backoff: 1s..5m }
    order-by: Bundle.entry.resource.ofType(ServiceRequest).subject.reference
    parallel: 4
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(routes)

BOOST_AUTO_TEST_CASE(a_complete_route_loads_with_every_setting) {
  const Loaded l = load(valid_route);
  BOOST_TEST(l.errors.empty());
  BOOST_REQUIRE_EQUAL(l.routes.size(), 1u);
  const route::Route& r = l.routes[0];
  BOOST_TEST(r.name == "lab");
  BOOST_TEST(r.line == 1);
  BOOST_TEST(r.when.focus == "ServiceRequest");
  BOOST_REQUIRE_EQUAL(r.to.size(), 1u);
  const route::Destination& d = r.to[0];
  BOOST_TEST(d.endpoint == "http://lis.example.org/fhir");  // trailing slash dropped
  BOOST_TEST(d.async);
  BOOST_TEST(d.ack_timeout.count() == 5000);
  BOOST_TEST(d.retry.attempts == 12);
  BOOST_TEST(d.retry.initial_delay.count() == 1000);
  BOOST_TEST(d.retry.max_delay.count() == 300000);
  BOOST_TEST(d.order_by.has_value());
  BOOST_TEST(d.parallel == 4);
}

BOOST_AUTO_TEST_CASE(matching_uses_every_condition) {
  const Loaded l = load(valid_route);
  const fhir::Element bundle = lab_message();
  fhir::Issues issues;
  message::MessageInfo info = *message::read_message_info(bundle, issues);
  const route::Route& r = l.routes[0];
  BOOST_TEST(r.matches(info, bundle, "fhir"));
  BOOST_TEST(!r.matches(info, bundle, "other-listener"));
  message::MessageInfo other_event = info;
  other_event.event_code = "order-cancel";
  BOOST_TEST(!r.matches(other_event, bundle, "fhir"));
  message::MessageInfo other_focus = info;
  other_focus.focus_types = {"Patient"};
  BOOST_TEST(!r.matches(other_focus, bundle, "fhir"));
}

BOOST_AUTO_TEST_CASE(every_error_is_reported_with_place_and_suggestion) {
  const Loaded l = load(R"(route: lab
when:
  evnt: order-request
  focus: ServiceRequst
  expression: Bundle.entry.resource.ofType(ServiceRequest).subjectt
to:
  - name: lis
    pattern: mesaging
  - name: inbox
    pattern: file
    folder: /tmp/x
    retry: { attempts: 0, backoff: 5m..1s }
    ack-timeout: soon
)");
  const std::vector<std::string> expected{
      l.path + ":3:3: unknown key 'evnt' in route 'lab'.when; did you mean 'event'?",
      l.path +
          ":4:10: route 'lab'.when.focus: 'ServiceRequst' is not a FHIR R4 resource type; did you mean "
          "'ServiceRequest'?",
      l.path +
          ":5:60: route 'lab'.when.expression: FHIRPath semantic error: 'subjectt' is not an element of "
          "ServiceRequest",
      l.path +
          ":8:14: route 'lab'.to[0].pattern must be one of messaging, file, rest, request, queue, operation, "
          "status, mllp, not 'mesaging'; did you mean 'messaging'?",
      l.path +
          ":13:18: route 'lab'.to[1].ack-timeout must be a duration such as 500ms, 30s, 5m or 1h, not 'soon'",
      l.path + ":12:24: route 'lab'.to[1].retry.attempts must be a whole number from 1 to 1000, not '0'",
      l.path + ":12:36: route 'lab'.to[1].retry.backoff must be INITIAL..MAX, such as 1s..5m, not '5m..1s'",
  };
  BOOST_TEST(l.errors == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(rest_patterns_take_their_own_keys) {
  const Loaded good = load(R"(route: r
to:
  - {name: ehr, pattern: rest, endpoint: "http://ehr/fhir/", interaction: transaction}
  - {name: local, pattern: rest}
  - {name: lab, pattern: request, endpoint: "http://lab/fhir"}
  - {name: q, pattern: queue}
  - {name: tx, pattern: operation, endpoint: "http://tx/fhir", operation: $validate-code, target: ValueSet}
)");
  BOOST_TEST(good.errors.empty());
  BOOST_REQUIRE(good.routes.size() == 1u);
  const auto& to = good.routes[0].to;
  BOOST_TEST(to[0].endpoint == "http://ehr/fhir");
  BOOST_TEST((to[0].interaction == route::Interaction::transaction));
  BOOST_TEST((to[1].interaction == route::Interaction::upsert));
  BOOST_TEST(to[1].endpoint.empty());
  BOOST_TEST((to[3].pattern == route::Pattern::queue));
  BOOST_TEST(to[4].operation == "$validate-code");
  BOOST_TEST(to[4].target == "ValueSet");

  const Loaded bad = load(R"(route: r
to:
  - {name: a, pattern: queue, endpoint: "http://x/fhir"}
  - {name: b, pattern: request}
  - {name: c, pattern: messaging, endpoint: "http://x/fhir", interaction: create}
  - {name: d, pattern: rest, interaction: upsret}
  - {name: e, pattern: operation, endpoint: "http://tx/fhir", operation: validate, target: Valueset}
)");
  const std::vector<std::string> expected{
      bad.path +
          ":3:41: route 'r'.to[0]: 'queue' destinations take no endpoint: they write to courier's own store",
      bad.path + ":4:5: route 'r'.to[1] needs an endpoint: the FHIR base URL of the receiver",
      bad.path +
          ":5:75: route 'r'.to[2]: 'interaction' is for rest destinations, not 'messaging' destinations",
      bad.path +
          ":6:43: route 'r'.to[3].interaction must be one of create, update, upsert, merge, transaction, not "
          "'upsret'; did you mean 'upsert'?",
      bad.path +
          ":7:74: route 'r'.to[4].operation must be an operation's name with its $, such as "
          "$validate-code, not 'validate'",
      bad.path + ":7:92: route 'r'.to[4].target must be a resource type or Type/id, not 'Valueset'",
  };
  BOOST_TEST(bad.errors == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_trigger_is_a_search_and_an_event) {
  const Loaded good = load(R"(route: t
trigger:
  on: ServiceRequest?status=active&performer=Organization/lab
  event: http://example.org/events|order
to: [{name: q, pattern: queue}]
)");
  BOOST_TEST(good.errors.empty());
  BOOST_REQUIRE(good.routes.size() == 1u);
  BOOST_REQUIRE(good.routes[0].trigger.has_value());
  BOOST_TEST(good.routes[0].trigger->query.type == "ServiceRequest");
  BOOST_TEST(good.routes[0].trigger->query.criteria.size() == 2u);
  BOOST_TEST(good.routes[0].trigger->event_code == "order");

  const Loaded bad = load(R"(- route: a
  when: {event: x}
  trigger: {on: "ServiceRequest?colour=red", event: order}
  to: [{name: q, pattern: queue}]
- route: b
  trigger: {on: "Nonsense", event: "urn:x|y"}
  to: [{name: q, pattern: queue}]
)");
  const std::vector<std::string> expected{
      bad.path +
          ":3:17: route 'a'.trigger.on: courier cannot search ServiceRequest by 'colour' (is not a "
          "search parameter courier supports for ServiceRequest)",
      bad.path +
          ":2:9: route 'a': a route with a trigger takes no 'when': its messages come from the trigger "
          "alone",
      bad.path + ":6:17: route 'b'.trigger.on: 'Nonsense' is not a FHIR R4 resource type",
  };
  BOOST_TEST(bad.errors == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_list_of_routes_and_names_checked_across_files) {
  const Loaded l = load(R"(- route: a
  to: [{name: x, pattern: file, folder: /tmp/a}]
- route: b
  from: fhri
  to: [{name: x, pattern: file, folder: /tmp/b}]
)");
  BOOST_TEST(l.errors.empty());
  BOOST_TEST(l.routes.size() == 2u);
  const std::string path = (std::filesystem::temp_directory_path() / "courier-route-pair.yaml").string();
  std::ofstream(path)
      << "- route: a\n  to: [{name: x, pattern: file, folder: /tmp/a}]\n- route: b\n  from: fhri\n"
         "  to: [{name: x, pattern: file, folder: /tmp/b}]\n";
  std::vector<std::string> errors;
  const route::RouteSet set = route::load_routes({path, path}, {"fhir"}, nullptr, errors);
  std::filesystem::remove(path);
  const std::vector<std::string> expected{
      path +
          ":3:1: route 'b' takes messages from listener 'fhri', which the configuration does not define; did "
          "you mean 'fhir'?",
      path + ":1:1: route 'a' is already defined at " + path + ":1",
      path + ":3:1: route 'b' is already defined at " + path + ":3",
  };
  BOOST_TEST(errors == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(member_of_uses_loaded_value_sets_and_names_missing_ones) {
  auto terminology = std::make_shared<fhirpath::Terminology>();
  auto parsed =
      fhir::parse(R"({"resourceType": "ValueSet", "url": "http://example.org/vs/panels", "status": "active",
      "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "24323-8"}]}]}})");
  BOOST_REQUIRE(parsed.ok());
  terminology->add(std::move(*parsed.resource));
  const std::string route = R"(route: lab
when:
  expression: Bundle.entry.resource.ofType(ServiceRequest).code.memberOf('http://example.org/vs/panels')
to: [{name: out, pattern: file, folder: /tmp}]
)";
  Loaded ok = load(route, terminology.get());
  BOOST_TEST(ok.errors.empty());
  BOOST_REQUIRE(ok.routes.size() == 1u);
  route::RouteSet set;
  set.routes = std::move(ok.routes);
  set.terminology = terminology;
  fhir::Issues issues;
  const fhir::Element bundle = lab_message();
  const auto info = message::read_message_info(bundle, issues);
  BOOST_REQUIRE(info);
  BOOST_TEST(set.match(*info, bundle, "fhir") != nullptr);
  set.terminology.reset();  // without the value set, memberOf() fails and the route does not match
  BOOST_TEST(set.match(*info, bundle, "fhir") == nullptr);

  Loaded missing = load(std::string(route).replace(route.find("panels"), 6, "panel"), terminology.get());
  BOOST_REQUIRE(missing.errors.size() == 1u);
  BOOST_TEST(missing.errors[0] ==
             missing.path +
                 ":3:74: route 'lab'.when.expression: memberOf('http://example.org/vs/panel') "
                 "names a value set that is not loaded (list its file under "
                 "value-sets: in the configuration)");
}

BOOST_AUTO_TEST_CASE(backoff_doubles_up_to_the_maximum_with_jitter) {
  route::RetryPolicy policy{10, std::chrono::milliseconds(1000), std::chrono::milliseconds(8000)};
  BOOST_TEST(policy.delay_after(1, 1.0).count() == 1000);
  BOOST_TEST(policy.delay_after(2, 1.0).count() == 2000);
  BOOST_TEST(policy.delay_after(3, 1.0).count() == 4000);
  BOOST_TEST(policy.delay_after(9, 1.0).count() == 8000);
  BOOST_TEST(policy.delay_after(2, 0.0).count() == 1000);  // jitter: between half and all
}

BOOST_AUTO_TEST_SUITE_END()
