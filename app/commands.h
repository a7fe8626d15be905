// The courier subcommands. Each adds itself to the command line and, when
// chosen, leaves its exit status in `status`: 0 success, 1 wrong input,
// 2 usage error.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace courier::app {

void add_run_command(CLI::App& app, int& status);
void add_check_command(CLI::App& app, int& status);
void add_test_command(CLI::App& app, int& status);
void add_messages_command(CLI::App& app, int& status);
void add_validate_command(CLI::App& app, int& status);
void add_convert_command(CLI::App& app, int& status);
void add_fhirpath_command(CLI::App& app, int& status);

// The route test cases run against the routes of `config` as they are on
// disk (`files`, else NAME.test.yaml beside each route file): one result per
// case, `differences` empty when it passed. Problems reading the config,
// routes or test files go to `errors`, and then nothing is run.
struct RouteTestResult {
  std::string file;
  std::string name;
  std::string differences;
};
std::vector<RouteTestResult> run_route_tests(const std::string& config, const std::vector<std::string>& files,
                                             std::vector<std::string>& errors);

}  // namespace courier::app
