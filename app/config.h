// The engine configuration, conf/courier.yaml.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace courier::app {

struct ListenerConfig {
  std::string name;
  std::string type;
};

struct Config {
  std::string data_dir;
  std::vector<ListenerConfig> listeners;
  std::vector<std::string> routes;  // route files to load
};

// Replaces ${VAR} and ${VAR:-default} with the environment's values. An
// unset ${VAR} without a default is an error, returned in `error`.
std::optional<std::string> expand_variables(std::string_view text, std::string& error);

// Loads and checks a configuration file. Errors read
// "file:line:col: what is wrong" and name the closest valid key.
std::optional<Config> load_config(const std::string& path, std::string& error);

}  // namespace courier::app
