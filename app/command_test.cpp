// courier test [--config FILE] [TEST_FILES…]: runs route test cases (an
// input message and what should become of it) without listeners or store.
#include <filesystem>
#include <iostream>

#include "app/commands.h"
#include "app/config.h"
#include "app/input.h"
#include "engine/admission.h"
#include "engine/config/yaml_reader.h"
#include "engine/hl7v2/message.h"
#include "engine/hl7v2/to_fhir.h"

namespace courier::app {

namespace {

struct TestOptions {
  std::string config = "conf/courier.yaml";
  std::vector<std::string> files;
};

struct Expectation {
  std::string route;
  std::optional<std::vector<std::string>> destinations;
  std::optional<std::vector<std::string>> order_keys;
  std::optional<int> status;
};

struct Case {
  std::string name;
  std::string input;     // resolved path
  std::string listener;  // "" for the config's first listener of the input's kind
  bool async = false;
  Expectation expect;
};

std::optional<std::vector<std::string>> string_list(const YAML::Node& node, const std::string& field,
                                                    config::YamlReader& reader) {
  if (!node.IsSequence()) {
    reader.fail(node, field + " must be a list");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < node.size(); ++i) {
    out.push_back(reader.scalar(node[i], field + "[" + std::to_string(i) + "]").value_or(""));
  }
  return out;
}

std::vector<Case> read_cases(const std::string& path, std::vector<std::string>& errors) {
  config::YamlReader reader(path);
  YAML::Node root;
  std::vector<Case> cases;
  if (reader.load(root)) {
    if (!root.IsSequence()) reader.fail(root, "a test file holds a list of test cases");
    const std::filesystem::path folder = std::filesystem::path(path).parent_path();
    for (std::size_t i = 0; root.IsSequence() && i < root.size(); ++i) {
      const YAML::Node node = root[i];
      const std::string where = "test case " + std::to_string(i + 1);
      if (!reader.check_keys(node, {"name", "input", "listener", "async", "expect"}, where)) continue;
      Case c;
      c.name = node["name"] ? reader.scalar(node["name"], where + ".name").value_or("") : where;
      if (node["listener"]) c.listener = reader.scalar(node["listener"], where + ".listener").value_or("");
      if (node["async"]) c.async = reader.boolean(node["async"], where + ".async").value_or(false);
      if (!node["input"] || !node["expect"]) {
        reader.fail(node, where + " needs an input (a message file) and an expect");
        continue;
      }
      if (auto input = reader.scalar(node["input"], where + ".input")) {
        c.input = (folder / *input).string();
        if (!std::filesystem::exists(c.input))
          reader.fail(node["input"], where + ".input: " + c.input + " does not exist");
      }
      const YAML::Node expect = node["expect"];
      if (!reader.check_keys(expect, {"route", "destinations", "order-keys", "status"}, where + ".expect"))
        continue;
      if (!expect["route"]) {
        reader.fail(expect, where + ".expect needs a route (a route name, or none)");
        continue;
      }
      c.expect.route = reader.scalar(expect["route"], where + ".expect.route").value_or("");
      if (expect["destinations"])
        c.expect.destinations = string_list(expect["destinations"], where + ".expect.destinations", reader);
      if (expect["order-keys"])
        c.expect.order_keys = string_list(expect["order-keys"], where + ".expect.order-keys", reader);
      if (expect["status"])
        c.expect.status = static_cast<int>(
            reader.integer(expect["status"], where + ".expect.status", 100, 599).value_or(0));
      cases.push_back(std::move(c));
    }
  }
  errors.insert(errors.end(), reader.errors().begin(), reader.errors().end());
  return cases;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) out += (out.size() > 1 ? ", " : "") + item;
  return out + "]";
}

// The listeners a case's input arrives on by default: the first HTTP one
// for a FHIR message, the first MLLP one for an HL7 v2 message.
struct DefaultListeners {
  std::string fhir;
  std::string v2;
};

bool is_v2(std::string_view text) {
  return text.starts_with("MSH") || text.starts_with("FHS") || text.starts_with("BHS");
}

// An HL7 v2 input becomes the FHIR message the MLLP listener would make of
// it; what stops it there is said as the listener's AR would say it.
std::optional<std::string> v2_to_fhir(const std::string& text, const hl7v2::MapSet* maps, std::string& why) {
  if (maps == nullptr) {
    why = "no HL7 v2 maps are loaded";
    return std::nullopt;
  }
  if (hl7v2::is_batch(text)) {
    why = "a batch: give each of its messages a case of its own";
    return std::nullopt;
  }
  hl7v2::ParseError parse_error;
  const std::optional<hl7v2::Message> message = hl7v2::Message::parse(text, parse_error);
  if (!message) {
    why = "refused (AR): " + parse_error.reason;
    return std::nullopt;
  }
  hl7v2::ConvertError convert_error;
  std::optional<std::string> bundle = hl7v2::to_fhir(*message, *maps, {}, convert_error);
  if (!bundle) why = "refused (AR): " + convert_error.reason;
  return bundle;
}

// What differs between the case's expectation and what courier decides; "" when nothing.
std::string run_case(const Case& c, const route::RouteSet& routes, const hl7v2::MapSet* maps,
                     const DefaultListeners& listeners) {
  std::string error;
  const auto body = read_input(c.input, error);
  if (!body) return error;
  Inbound in;
  in.async = c.async;
  if (is_v2(*body)) {
    in.listener = c.listener.empty() ? listeners.v2 : c.listener;
    std::string why;
    std::optional<std::string> bundle = v2_to_fhir(*body, maps, why);
    // Not converted: no route, and the listener's AR (a 400 here).
    if (!bundle) {
      const bool expected = c.expect.route == "none" && c.expect.status.value_or(400) == 400;
      return expected ? std::string() : "route none, status 400: " + why;
    }
    in.body = std::move(*bundle);
  } else {
    in.listener = c.listener.empty() ? listeners.fhir : c.listener;
    in.body = *body;
  }
  const Admission a = admit(in, routes, {});
  const std::string route = a.route != nullptr ? a.route->name : "none";
  std::vector<std::string> destinations;
  if (a.route != nullptr) {
    for (const route::Destination& d : a.route->to) destinations.push_back(d.name);
  }
  int status = 0;
  if (a.rejection) {
    status = a.rejection->status;
  } else if (a.info.response) {
    status = c.async ? 202 : 204;  // a response is correlated, not routed
  } else {
    switch (first_answer(*a.route, a.info, c.async)) {
      case FirstAnswer::accepted: status = 202; break;
      case FirstAnswer::no_content: status = 204; break;
      case FirstAnswer::courier_response:
      case FirstAnswer::filler_response: status = 200; break;
    }
  }
  std::string differences;
  auto differ = [&](const std::string& what, const std::string& expected, const std::string& got) {
    differences += (differences.empty() ? "" : "; ") + what + " expected " + expected + ", got " + got;
  };
  if (route != c.expect.route) differ("route", c.expect.route, route);
  if (c.expect.destinations && *c.expect.destinations != destinations) {
    differ("destinations", joined(*c.expect.destinations), joined(destinations));
  }
  if (c.expect.order_keys && *c.expect.order_keys != a.order_keys) {
    differ("order-keys", joined(*c.expect.order_keys), joined(a.order_keys));
  }
  if (c.expect.status && *c.expect.status != status)
    differ("status", std::to_string(*c.expect.status), std::to_string(status));
  return differences;
}

int test_command(const TestOptions& options) {
  std::vector<std::string> errors;
  const std::vector<RouteTestResult> results = run_route_tests(options.config, options.files, errors);
  if (!errors.empty()) {
    for (const std::string& e : errors) std::cout << e << '\n';
    std::cerr << "courier test: the routes or test files have problems; nothing was run\n";
    return 1;
  }
  int failed = 0;
  for (const RouteTestResult& r : results) {
    if (r.differences.empty()) {
      std::cout << "ok    " << r.file << ": " << r.name << '\n';
    } else {
      ++failed;
      std::cout << "FAIL  " << r.file << ": " << r.name << ": " << r.differences << '\n';
    }
  }
  std::cerr << "courier test: " << results.size() - failed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace

std::vector<RouteTestResult> run_route_tests(const std::string& config,
                                             const std::vector<std::string>& test_files,
                                             std::vector<std::string>& errors) {
  const Loaded loaded = load_all(config, {}, errors);
  std::vector<std::string> files = test_files;
  if (files.empty()) {
    for (const std::string& route_file : loaded.config.route_files) {
      std::filesystem::path test_file(route_file);
      test_file.replace_extension(".test.yaml");
      if (std::filesystem::exists(test_file)) files.push_back(test_file.string());
    }
  }
  DefaultListeners listeners;
  for (const auto& listener : loaded.config.listeners) {
    const bool mllp = listener->describe().starts_with("mllp");
    std::string& slot = mllp ? listeners.v2 : listeners.fhir;
    if (slot.empty()) slot = listener->name();
  }
  std::vector<std::pair<std::string, std::vector<Case>>> suites;
  for (const std::string& file : files) suites.emplace_back(file, read_cases(file, errors));
  std::vector<RouteTestResult> results;
  if (!errors.empty()) return results;
  const hl7v2::MapSet* maps = loaded.config.engine.v2_maps.get();
  for (const auto& [file, cases] : suites) {
    for (const Case& c : cases)
      results.push_back({file, c.name, run_case(c, loaded.routes, maps, listeners)});
  }
  return results;
}

void add_test_command(CLI::App& app, int& status) {
  auto options = std::make_shared<TestOptions>();
  CLI::App* cmd =
      app.add_subcommand("test", "Run the route test cases (input message, expected route and answer).");
  cmd->add_option("--config", options->config, "the engine configuration")->capture_default_str();
  cmd->add_option("files", options->files, "test files (default: NAME.test.yaml beside each route file)");
  cmd->callback([options, &status] { status = test_command(*options); });
}

}  // namespace courier::app
