// courier fhirpath [--input FILE] EXPRESSION: evaluates FHIRPath against a
// resource and prints the result as a JSON array of {"type", "value"}.
#include <iostream>

#include "app/commands.h"
#include "app/config.h"
#include "app/input.h"
#include "engine/fhir/codec.h"
#include "engine/fhirpath/fhirpath.h"

namespace courier::app {

namespace {

struct FhirpathOptions {
  std::string input;
  std::string expression;
  bool strict = false;
  std::vector<std::string> terminology;
  bool trace = false;
};

// One result item as {"type": T, "value": V}: booleans and numbers as JSON
// values, complex FHIR values as their FHIR JSON, the rest as the FHIRPath
// test suite writes them ("@2024-01-01", "4 'mg'").
std::string item_json(const fhirpath::Item& item) {
  std::string out = "{\"type\":";
  fhir::append_json_string(out, item.type_name());
  out += ",\"value\":";
  const std::string text = fhirpath::output_text(item);
  const auto value = fhirpath::system_value(item);
  const bool literal = value && (std::holds_alternative<bool>(value->value) ||
                                 std::holds_alternative<std::int64_t>(value->value) ||
                                 std::holds_alternative<fhirpath::Decimal>(value->value));
  const fhir::Element* e = item.element();
  if (literal || (e != nullptr && !e->type().is_primitive()))
    out += text;
  else
    fhir::append_json_string(out, text);
  return out + "}";
}

int fhirpath_command(const FhirpathOptions& options) {
  fhirpath::Expression expression;
  std::optional<fhir::Element> resource;
  try {
    fhirpath::CompileOptions compile;
    compile.strict = options.strict;
    if (!options.input.empty()) {
      std::string error;
      const auto text = read_input(options.input, error);
      if (!text) {
        std::cerr << "courier fhirpath: " << error << '\n';
        return 1;
      }
      fhir::ParseResult parsed = fhir::parse(*text);
      if (!parsed.ok()) {
        for (const auto& issue : parsed.issues)
          std::cerr << "courier fhirpath: " << options.input << ": " << issue.diagnostics << '\n';
        return 1;
      }
      resource = std::move(parsed.resource);
      compile.context_type = resource->type().name;
    }
    std::vector<std::string> errors;
    const auto terminology = load_terminology(options.terminology, errors);
    for (const std::string& e : errors) std::cerr << "courier fhirpath: " << e << '\n';
    if (!errors.empty()) return 1;
    fhirpath::Environment environment;
    environment.terminology = terminology.get();
    if (options.trace)
      environment.trace = [](std::string_view name, const fhirpath::Collection& items) {
        std::string line = "[";
        for (std::size_t i = 0; i < items.size(); ++i) line += (i ? "," : "") + item_json(items[i]);
        std::cerr << "trace " << name << ": " << line << "]\n";
      };
    expression = fhirpath::Expression::compile(options.expression, compile);
    const fhirpath::Collection result =
        resource ? expression.evaluate(*resource, environment)
                 : expression.evaluate(fhirpath::Collection{}, nullptr, environment);
    std::string out = "[";
    for (std::size_t i = 0; i < result.size(); ++i) out += (i ? "," : "") + item_json(result[i]);
    std::cout << out << "]\n";
    return 0;
  } catch (const fhirpath::Error& e) {
    std::cerr << fhirpath::to_string(e.kind()) << ": " << e.what() << " (at character " << e.position() + 1
              << ")\n";
    return 1;
  }
}

}  // namespace

void add_fhirpath_command(CLI::App& app, int& status) {
  auto options = std::make_shared<FhirpathOptions>();
  CLI::App* cmd = app.add_subcommand(
      "fhirpath", "Evaluate a FHIRPath expression against a resource (JSON or XML) and print the result.");
  cmd->add_option("--input", options->input,
                  "the resource file, or - for standard input; none for literal expressions");
  cmd->add_flag("--strict", options->strict,
                "report paths that cannot exist in the model as semantic errors");
  cmd->add_option(
      "--terminology", options->terminology,
      "a ValueSet or CodeSystem file (JSON or XML, or a Bundle of them) for memberOf(); repeatable");
  cmd->add_flag("--trace", options->trace, "write what trace() sees to standard error");
  cmd->add_option("expression", options->expression, "the FHIRPath expression")->required();
  cmd->callback([options, &status] { status = fhirpath_command(*options); });
}

}  // namespace courier::app
