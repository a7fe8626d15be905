// The courier subcommands. Each adds itself to the command line and, when
// chosen, leaves its exit status in `status`: 0 success, 1 wrong input,
// 2 usage error.
#pragma once

#include <CLI/CLI.hpp>

namespace courier::app {

void add_run_command(CLI::App& app, int& status);
void add_check_command(CLI::App& app, int& status);
void add_test_command(CLI::App& app, int& status);
void add_messages_command(CLI::App& app, int& status);
void add_validate_command(CLI::App& app, int& status);
void add_convert_command(CLI::App& app, int& status);
void add_fhirpath_command(CLI::App& app, int& status);

}  // namespace courier::app
