// courier: a message-oriented integration engine for hospitals.
// Wiring only: the subcommands live in command_*.cpp.
#include <iostream>

#include "app/commands.h"

#ifdef COURIER_JEMALLOC
// jemalloc's settings (see app/CMakeLists.txt), read when it starts. After a
// burst, glibc's allocator kept what it had freed (115 MB resident, idle,
// after a run at 128 connections); jemalloc's background thread gives
// memory unused for 2 s back to the system. Two arenas, as measured on the
// 2-core machines courier is benchmarked on (jemalloc's default of four per
// core spread the same memory over more half-empty arenas); on a larger
// machine, MALLOC_CONF=narenas:N in the environment overrides it.
extern "C" const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:2000,muzzy_decay_ms:0,narenas:2";
#endif

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
