#include "app/config.h"

#include <glob.h>

#include <filesystem>

#include "adapters/tls/tls.h"
#include "app/input.h"
#include "engine/config/yaml_reader.h"
#include "engine/fhir/codec.h"
#include "engine/hl7v2/maps.h"
#include "engine/route/route.h"
#include "engine/security/security.h"
#include "engine/util/text.h"

namespace courier::app {

namespace {

// "routes/*.yaml" → the matching files, sorted; a plain path as it is.
void expand_pattern(const std::string& pattern, const YAML::Node& node, config::YamlReader& reader,
                    std::string_view what, std::vector<std::string>& out) {
  if (pattern.find_first_of("*?[") == std::string::npos) {
    if (!std::filesystem::exists(pattern))
      reader.fail(node, std::string(what) + " " + pattern + " does not exist");
    out.push_back(pattern);
    return;
  }
  glob_t found{};
  if (::glob(pattern.c_str(), 0, nullptr, &found) == 0) {
    for (std::size_t i = 0; i < found.gl_pathc; ++i) {
      const std::string path = found.gl_pathv[i];
      // Test case files live beside the routes; they are not routes.
      if (!path.ends_with(".test.yaml")) out.push_back(path);
    }
  }
  globfree(&found);
}

// The v2 maps: from the folder hl7v2-maps names, else from the shipped
// folder when it is there (relative to the working directory, like routes).
void read_v2_maps(const YAML::Node& root, config::YamlReader& reader, Config& config) {
  constexpr const char* shipped = "schemas/hl7v2/maps";
  const bool named = static_cast<bool>(root["hl7v2-maps"]);
  const std::string folder = named ? reader.scalar(root["hl7v2-maps"], "hl7v2-maps").value_or("") : shipped;
  if (!named && !std::filesystem::is_directory(folder)) return;
  try {
    config.engine.v2_maps = std::make_shared<const hl7v2::MapSet>(hl7v2::MapSet::load(folder));
  } catch (const std::exception& error) {
    reader.fail(named ? root["hl7v2-maps"] : root, std::string("hl7v2-maps: ") + error.what());
  }
}

void read_listeners(const YAML::Node& listeners, config::YamlReader& reader, Config& config) {
  if (!listeners.IsSequence()) {
    reader.fail(listeners, "listeners must be a list");
    return;
  }
  const auto& types = adapters::listener_types();
  std::vector<std::string_view> type_names;
  for (const auto& [name, parser] : types) type_names.push_back(name);
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const YAML::Node node = listeners[i];
    const std::string where = "listeners[" + std::to_string(i) + "]";
    if (!node.IsMap()) {
      reader.fail(node, where + " must be a mapping with name and type");
      continue;
    }
    if (!node["name"] || !node["type"]) {
      reader.fail(node, where + " needs a name and a type");
      continue;
    }
    const auto name = reader.scalar(node["name"], where + ".name");
    const auto type = reader.scalar(node["type"], where + ".type");
    if (!name || !type) continue;
    for (const auto& other : config.listeners) {
      if (other->name() == *name) reader.fail(node["name"], "two listeners are named '" + *name + "'");
    }
    auto parser = types.find(*type);
    if (parser == types.end()) {
      std::string known;
      for (std::string_view t : type_names) known += (known.empty() ? "" : ", ") + std::string(t);
      std::string message = where + ".type: unknown listener type '" + *type + "' (known: " + known + ")";
      const std::string near = util::closest(*type, type_names);
      if (!near.empty()) message += "; did you mean '" + near + "'?";
      reader.fail(node["type"], message);
      continue;
    }
    if (auto listener = parser->second(*name, node, reader)) config.listeners.push_back(std::move(listener));
  }
}

// A list of file patterns under `key`, such as routes: [routes/*.yaml].
void read_file_list(const YAML::Node& root, const std::string& key, std::string_view what,
                    config::YamlReader& reader, std::vector<std::string>& out) {
  const YAML::Node list = root[key];
  if (!list) return;
  if (!list.IsSequence()) {
    reader.fail(list, key + " must be a list of " + std::string(what) + "s (patterns such as " + key +
                          "/*.json allowed)");
    return;
  }
  for (std::size_t i = 0; i < list.size(); ++i)
    if (auto pattern = reader.scalar(list[i], key + "[" + std::to_string(i) + "]"))
      expand_pattern(*pattern, list[i], reader, what, out);
}

}  // namespace

std::shared_ptr<fhirpath::Terminology> load_terminology(const std::vector<std::string>& files,
                                                        std::vector<std::string>& errors) {
  auto terminology = std::make_shared<fhirpath::Terminology>();
  for (const std::string& file : files) {
    std::string error;
    const auto text = read_input(file, error);
    if (!text) {
      errors.push_back(error);
      continue;
    }
    fhir::ParseResult parsed = fhir::parse(*text);
    if (!parsed.ok()) {
      for (const auto& issue : parsed.issues) errors.push_back(file + ": " + issue.diagnostics);
      continue;
    }
    if (terminology->add(std::move(*parsed.resource)) == 0)
      errors.push_back(file + ": holds no ValueSet or CodeSystem");
  }
  return terminology;
}

Config load_config(const std::string& path, std::vector<std::string>& errors) {
  Config config;
  config.path = path;
  config::YamlReader reader(path);
  YAML::Node root;
  if (reader.load(root) && !root.IsNull()) {
    reader.check_keys(root,
                      {"data-dir", "public-url", "listeners", "routes", "value-sets", "reliable-cache",
                       "on-reused-header-id", "sync-wait", "retention", "notification-retry", "hl7v2-maps",
                       "security", "outbound-tls", "deliveries-in-memory"},
                      "the configuration");
    if (root.IsMap()) {
      if (root["data-dir"]) config.data_dir = reader.scalar(root["data-dir"], "data-dir").value_or("");
      if (root["public-url"])
        config.public_url = reader.scalar(root["public-url"], "public-url").value_or("");
      if (root["reliable-cache"]) {
        config.engine.reliable_cache =
            reader.duration(root["reliable-cache"], "reliable-cache").value_or(config.engine.reliable_cache);
      }
      if (root["on-reused-header-id"]) {
        config.engine.reprocess_reused_header =
            reader.choice(root["on-reused-header-id"], "on-reused-header-id", {"reject", "reprocess"}) ==
            "reprocess";
      }
      if (root["sync-wait"])
        config.engine.sync_wait =
            reader.duration(root["sync-wait"], "sync-wait").value_or(config.engine.sync_wait);
      if (root["deliveries-in-memory"]) {
        config.engine.deliveries_in_memory = static_cast<std::size_t>(
            reader.integer(root["deliveries-in-memory"], "deliveries-in-memory", 2, 10'000'000)
                .value_or(static_cast<std::int64_t>(config.engine.deliveries_in_memory)));
      }
      if (root["notification-retry"]) {
        route::read_retry_policy(reader, root["notification-retry"], "notification-retry",
                                 config.engine.notification_retry);
      }
      if (root["retention"])
        config.retention = reader.duration(root["retention"], "retention").value_or(config.retention);
      read_v2_maps(root, reader, config);
      if (root["security"]) config.engine.security = security::Security::parse(root["security"], reader);
      if (root["outbound-tls"])
        config.outbound_tls = adapters::parse_tls(root["outbound-tls"], reader, "outbound-tls", false);
      if (root["listeners"]) read_listeners(root["listeners"], reader, config);
      for (const auto& listener : config.listeners) {
        if (listener->authenticates() && !config.engine.security)
          reader.fail(root, "listener '" + listener->name() +
                                "' authenticates its peers, but the configuration has no security section "
                                "naming them");
      }
      read_file_list(root, "routes", "route file", reader, config.route_files);
      read_file_list(root, "value-sets", "value set file", reader, config.value_set_files);
    } else {
      reader.fail(root, "the configuration must be a mapping of keys such as data-dir and listeners");
    }
  }
  errors.insert(errors.end(), reader.errors().begin(), reader.errors().end());
  return config;
}

Loaded load_all(const std::string& config_path, const std::vector<std::string>& route_files,
                std::vector<std::string>& errors) {
  Loaded loaded{load_config(config_path, errors), {}};
  std::vector<std::string> listener_names;
  for (const auto& listener : loaded.config.listeners) listener_names.push_back(listener->name());
  const std::vector<std::string>& files = route_files.empty() ? loaded.config.route_files : route_files;
  loaded.routes = route::load_routes(files, listener_names,
                                     load_terminology(loaded.config.value_set_files, errors), errors);
  return loaded;
}

}  // namespace courier::app
