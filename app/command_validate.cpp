// courier validate [FILE|-]: checks a resource or message Bundle and prints
// an OperationOutcome.
#include <iostream>

#include "app/commands.h"
#include "app/input.h"
#include "engine/fhir/codec.h"
#include "engine/fhir/operation_outcome.h"
#include "engine/fhir/validator.h"

namespace courier::app {

namespace {

struct ValidateOptions {
  std::string input = "-";
  std::string format = "json";
};

int validate_command(const ValidateOptions& options) {
  std::string error;
  const auto text = read_input(options.input, error);
  if (!text) {
    std::cerr << "courier validate: " << error << '\n';
    return 1;
  }
  fhir::ParseResult parsed = fhir::parse(*text);
  fhir::Issues issues = std::move(parsed.issues);
  if (parsed.resource) {
    fhir::Issues found = fhir::validate(*parsed.resource);
    issues.insert(issues.end(), std::make_move_iterator(found.begin()), std::make_move_iterator(found.end()));
  }
  const fhir::Format format = options.format == "xml" ? fhir::Format::xml : fhir::Format::json;
  std::cout << fhir::write(fhir::to_operation_outcome(issues), format, {.pretty = true});
  return fhir::has_errors(issues) ? 1 : 0;
}

}  // namespace

void add_validate_command(CLI::App& app, int& status) {
  auto options = std::make_shared<ValidateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "validate",
      "Check a FHIR resource or message Bundle (JSON or XML) against the R4 structure and the "
      "messaging rules; print an OperationOutcome. Exit 0 when valid, 1 when not.");
  cmd->add_option("input", options->input, "the resource file, or - for standard input")
      ->capture_default_str();
  cmd->add_option("--format", options->format, "how to write the OperationOutcome")
      ->check(CLI::IsMember({"json", "xml"}))
      ->capture_default_str();
  cmd->callback([options, &status] { status = validate_command(*options); });
}

}  // namespace courier::app
