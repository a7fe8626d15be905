// courier run [--config FILE]: runs the engine until SIGINT or SIGTERM.
#include <csignal>
#include <filesystem>
#include <iostream>

#include "app/commands.h"
#include "app/config.h"

namespace courier::app {

namespace {

struct RunOptions {
  std::string config = "conf/courier.yaml";
};

int run_command(const RunOptions& options) {
  std::string error;
  const auto config = load_config(options.config, error);
  if (!config) {
    std::cerr << "courier run: " << error << '\n';
    return 1;
  }
  if (!config->listeners.empty()) {
    const ListenerConfig& listener = config->listeners.front();
    std::cerr << "courier run: " << options.config << ": listener '" << listener.name << "' has type '"
              << listener.type << "', which this build does not provide (known types: none yet)\n";
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(config->data_dir, ec);
  if (ec) {
    std::cerr << "courier run: cannot create data directory " << config->data_dir << ": " << ec.message()
              << '\n';
    return 1;
  }
  // Block the stop signals before any thread exists, then wait for one.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::cerr << "courier: running with " << options.config << ", data in " << config->data_dir
            << "; no listeners are configured, so no messages are received. Stop with Ctrl-C.\n";
  int signal = 0;
  sigwait(&stop, &signal);
  std::cerr << "courier: stopping on signal " << signal << '\n';
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int& status) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run the engine with a configuration file.");
  cmd->add_option("--config", options->config, "the engine configuration")->capture_default_str();
  cmd->callback([options, &status] { status = run_command(*options); });
}

}  // namespace courier::app
