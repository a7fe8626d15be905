// courier convert --to json|xml [FILE|-]: rewrites a resource in the other
// FHIR format.
#include <iostream>

#include "app/commands.h"
#include "app/input.h"
#include "engine/fhir/codec.h"

namespace courier::app {

namespace {

struct ConvertOptions {
  std::string input = "-";
  std::string to;
  bool compact = false;
};

int convert_command(const ConvertOptions& options) {
  std::string error;
  const auto text = read_input(options.input, error);
  if (!text) {
    std::cerr << "courier convert: " << error << '\n';
    return 1;
  }
  const fhir::ParseResult parsed = fhir::parse(*text);
  if (!parsed.ok()) {
    const std::string name = options.input == "-" ? "<stdin>" : options.input;
    for (const fhir::Issue& issue : parsed.issues) {
      if (issue.severity != fhir::Severity::error && issue.severity != fhir::Severity::fatal) continue;
      std::cerr << name;
      if (issue.where) std::cerr << ':' << issue.where->line << ':' << issue.where->column;
      std::cerr << ": " << issue.diagnostics;
      if (!issue.expression.empty()) std::cerr << " (at " << issue.expression << ')';
      std::cerr << '\n';
    }
    return 1;
  }
  const fhir::Format format = options.to == "xml" ? fhir::Format::xml : fhir::Format::json;
  std::cout << fhir::write(*parsed.resource, format, {.pretty = !options.compact});
  return 0;
}

}  // namespace

void add_convert_command(CLI::App& app, int& status) {
  auto options = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Convert a FHIR resource between JSON and XML, writing it to standard output.");
  cmd->add_option("--to", options->to, "the format to write")
      ->required()
      ->check(CLI::IsMember({"json", "xml"}));
  cmd->add_option("input", options->input, "the resource file, or - for standard input")
      ->capture_default_str();
  cmd->add_flag("--compact", options->compact, "no indentation or line breaks");
  cmd->callback([options, &status] { status = convert_command(*options); });
}

}  // namespace courier::app
