// Runs the official FHIRPath test suite for R4
// (../shared/conformance/fhirpath-r4/tests-fhir-r4.xml) and reports passed,
// failed and total by group.
// Usage: fhirpath_suite [--list-failures] [EXPECTED_FAILURES_FILE]
// Exits 1 when a test fails that the expected-failures file does not list,
// so the list may only shrink; listed tests that now pass are named.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include <pugixml.hpp>

#include "engine/fhir/codec.h"
#include "engine/fhirpath/fhirpath.h"
#include "tests/support/files.h"

using namespace courier;

namespace {

struct Output {
  std::string type;
  std::string value;
};

// True when every result is a decimal equal, digit for digit, to an untyped
// expected output. This lets "-0.0" (what the suite writes for
// (-0.0034).lowBoundary(1)) match our 0.0: an exact decimal has no negative
// zero, and FHIRPath's own `=` calls the two equal.
bool same_decimals(const fhirpath::Collection& result, const std::vector<Output>& expected) {
  if (result.size() != expected.size()) return false;
  for (std::size_t i = 0; i < result.size(); ++i) {
    const auto* got = std::get_if<fhirpath::Decimal>(&result[i].value);
    const auto want = fhirpath::Decimal::parse(expected[i].value);
    if (!expected[i].type.empty() || got == nullptr || !want || *got != *want ||
        got->scale() != want->scale())
      return false;
  }
  return true;
}

// What the test expects, and what happened, as one line for a person.
std::string run_test(const pugi::xml_node& test, const fhir::Element* resource) {
  const pugi::xml_node expr = test.child("expression");
  const std::string text = expr.text().get();
  const std::string invalid = expr.attribute("invalid").value();
  const bool strict = std::string_view(test.attribute("mode").value()) == "strict" ||
                      std::string_view(expr.attribute("mode").value()) == "strict";
  const bool predicate = std::string_view(test.attribute("predicate").value()) == "true";
  std::vector<Output> expected;
  for (const pugi::xml_node& o : test.children("output"))
    expected.push_back({o.attribute("type").value(), o.text().get()});
  fhirpath::Collection result;
  try {
    fhirpath::CompileOptions options;
    options.strict = strict;
    options.check_ordered_functions =
        std::string_view(test.attribute("checkOrderedFunctions").value()) == "true";
    if (resource != nullptr) options.context_type = resource->type().name;
    const auto compiled = fhirpath::Expression::compile(text, options);
    result = resource != nullptr ? compiled.evaluate(*resource)
                                 : compiled.evaluate(fhirpath::Collection{}, nullptr);
  } catch (const fhirpath::Error& e) {
    if (invalid.empty())
      return std::string("unexpected ") + std::string(fhirpath::to_string(e.kind())) + " error: " + e.what();
    if (invalid != "true" && invalid != fhirpath::to_string(e.kind()))
      return "expected a " + invalid + " error, got " + std::string(fhirpath::to_string(e.kind())) + ": " +
             e.what();
    return {};
  }
  if (!invalid.empty()) return "expected a " + invalid + " error, got a result";
  if (predicate) result = fhirpath::Collection{fhirpath::Item{!result.empty()}};
  // A few outputs in the suite carry no type; those match on value alone.
  std::string got;
  for (std::size_t i = 0; i < result.size(); ++i)
    got += " " + (i < expected.size() && expected[i].type.empty() ? "" : result[i].type_name()) + ":" +
           fhirpath::output_text(result[i]);
  std::string want;
  for (const auto& o : expected) want += " " + o.type + ":" + o.value;
  if (got != want && !same_decimals(result, expected)) return "expected [" + want + " ] got [" + got + " ]";
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  bool list_failures = false;
  std::string expected_failures_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--list-failures")
      list_failures = true;
    else
      expected_failures_file = a;
  }
  std::set<std::string> expected_failures;
  if (!expected_failures_file.empty()) {
    std::ifstream in(expected_failures_file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') expected_failures.insert(line.substr(0, line.find(' ')));
  }
  const auto folder = testing::conformance_dir() / "fhirpath-r4";
  pugi::xml_document doc;
  if (!doc.load_file((folder / "tests-fhir-r4.xml").c_str())) {
    std::cerr << "cannot read tests-fhir-r4.xml\n";
    return 2;
  }
  std::map<std::string, fhir::Element> inputs;
  std::size_t passed = 0, failed = 0, unexpected = 0;
  std::vector<std::string> now_passing;
  for (const pugi::xml_node& group : doc.child("tests").children("group")) {
    std::size_t group_passed = 0, group_total = 0;
    int unnamed = 0;
    for (const pugi::xml_node& test : group.children("test")) {
      std::string name = test.attribute("name").value();
      if (name.empty()) name = std::string(group.attribute("name").value()) + "#" + std::to_string(++unnamed);
      const std::string input = test.attribute("inputfile").value();
      if (!input.empty() && !inputs.count(input)) {
        auto parsed = fhir::parse(testing::read_file(folder / input));
        if (!parsed.resource) {
          std::cerr << "cannot read input " << input << '\n';
          return 2;
        }
        inputs.emplace(input, std::move(*parsed.resource));
      }
      std::string problem;
      try {
        problem = run_test(test, input.empty() ? nullptr : &inputs.at(input));
      } catch (const std::exception& e) {
        problem = std::string("exception: ") + e.what();
      }
      ++group_total;
      if (problem.empty()) {
        ++passed;
        ++group_passed;
        if (expected_failures.count(name)) now_passing.push_back(name);
        continue;
      }
      ++failed;
      const bool listed = expected_failures.count(name) != 0;
      if (!listed) ++unexpected;
      if (list_failures || !listed)
        std::cout << (listed ? "  expected failure " : "  FAIL ") << name << ": "
                  << test.child("expression").text().get() << " -- " << problem << '\n';
    }
    std::cout << group.attribute("name").value() << ": " << group_passed << "/" << group_total << '\n';
  }
  for (const auto& n : now_passing)
    std::cout << "now passing, remove from the expected failures: " << n << '\n';
  std::cout << "FHIRPath R4 suite: " << passed << " passed, " << failed << " failed, of " << passed + failed
            << " (" << unexpected << " not in the expected failures)\n";
  return unexpected == 0 ? 0 : 1;
}
