// courier: a message-oriented integration engine for hospitals.
// Wiring only: the subcommands live in command_*.cpp.
#include <iostream>

#include "app/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"courier: a FHIR messaging and HL7 v2 integration engine", "courier"};
  app.set_version_flag("--version", "courier " COURIER_VERSION " (FHIR R4 4.0.1)");
  app.require_subcommand(1);
  int status = 0;
  courier::app::add_run_command(app, status);
  courier::app::add_check_command(app, status);
  courier::app::add_test_command(app, status);
  courier::app::add_messages_command(app, status);
  courier::app::add_validate_command(app, status);
  courier::app::add_convert_command(app, status);
  courier::app::add_fhirpath_command(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return status;
}
