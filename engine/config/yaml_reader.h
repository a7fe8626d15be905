// Reading configuration and route files written in YAML: every error is
// collected as "file:line:col: message", unknown keys get a did-you-mean,
// and every scalar may use ${VAR} and ${VAR:-default}.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace courier::config {

// Replaces ${VAR} and ${VAR:-default} with the environment's values. An
// unset ${VAR} without a default is an error, returned in `error`.
std::optional<std::string> expand_variables(std::string_view text, std::string& error);

// "250ms", "30s", "5m", "2h", "1d"; a bare number is seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

class YamlReader {
 public:
  explicit YamlReader(std::string path) : path_(std::move(path)) {}

  // Loads the file; false (with a diagnostic) when unreadable or not YAML.
  bool load(YAML::Node& root);

  const std::string& path() const { return path_; }
  const std::vector<std::string>& errors() const { return errors_; }
  bool ok() const { return errors_.empty(); }

  // Records "file:line:col: message" at the node. Returns false.
  bool fail(const YAML::Node& node, const std::string& message);
  // The same at a character of a scalar's value (a FHIRPath error's
  // position), found in the file whether the scalar is plain, quoted, or a
  // block (| or >) spanning lines.
  bool fail_in_scalar(const YAML::Node& node, std::size_t offset, const std::string& message);

  // Every key of `map` must be one of `known`; unknown ones are reported
  // with the closest known key. False when `map` is not a mapping or has an
  // unknown key.
  bool check_keys(const YAML::Node& map, std::initializer_list<std::string_view> known,
                  const std::string& where);

  // A scalar with variables expanded.
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& field);
  std::optional<std::chrono::milliseconds> duration(const YAML::Node& node, const std::string& field);
  std::optional<std::int64_t> integer(const YAML::Node& node, const std::string& field, std::int64_t min,
                                      std::int64_t max);
  // A size in bytes: 1048576, 512KiB, 16MiB, 1GiB.
  std::optional<std::int64_t> size(const YAML::Node& node, const std::string& field);
  std::optional<bool> boolean(const YAML::Node& node, const std::string& field);
  // One of `choices`, with a did-you-mean otherwise.
  std::optional<std::string> choice(const YAML::Node& node, const std::string& field,
                                    std::initializer_list<std::string_view> choices);

 private:
  std::string path_;
  std::vector<std::string> lines_;  // the file's text, for positions inside scalars
  std::vector<std::string> errors_;
};

}  // namespace courier::config
