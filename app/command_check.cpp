// courier check [--config FILE] [ROUTE_FILES…]: checks the configuration and
// route files completely and prints every problem as file:line:col.
#include <iostream>

#include "app/commands.h"
#include "app/config.h"

namespace courier::app {

namespace {

struct CheckOptions {
  std::string config = "conf/courier.yaml";
  std::vector<std::string> files;
};

int check_command(const CheckOptions& options) {
  std::vector<std::string> errors;
  const Loaded loaded = load_all(options.config, options.files, errors);
  for (const std::string& e : errors) std::cout << e << '\n';
  if (!errors.empty()) {
    std::cerr << "courier check: " << errors.size() << (errors.size() == 1 ? " problem" : " problems")
              << '\n';
    return 1;
  }
  std::cerr << "courier check: ok: " << loaded.config.listeners.size() << " listener(s), "
            << loaded.routes.routes.size() << " route(s)\n";
  return 0;
}

}  // namespace

void add_check_command(CLI::App& app, int& status) {
  auto options = std::make_shared<CheckOptions>();
  CLI::App* cmd =
      app.add_subcommand("check", "Check the configuration and route files; print every problem.");
  cmd->add_option("--config", options->config, "the engine configuration")->capture_default_str();
  cmd->add_option("files", options->files, "route files to check instead of the configuration's");
  cmd->callback([options, &status] { status = check_command(*options); });
}

}  // namespace courier::app
