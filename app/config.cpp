#include "app/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "engine/util/text.h"

namespace courier::app {

std::optional<std::string> expand_variables(std::string_view text, std::string& error) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = text.find("${", i);
    if (start == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, start - i));
    const std::size_t end = text.find('}', start);
    if (end == std::string_view::npos) {
      error = "unterminated ${ in '" + std::string(text) + "'";
      return std::nullopt;
    }
    const std::string_view body = text.substr(start + 2, end - start - 2);
    const std::size_t dash = body.find(":-");
    const std::string name(body.substr(0, dash));
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && *value != '\0') {
      out += value;
    } else if (dash != std::string_view::npos) {
      out.append(body.substr(dash + 2));
    } else {
      error =
          "environment variable " + name + " is not set and has no default (write ${" + name + ":-default})";
      return std::nullopt;
    }
    i = end + 1;
  }
  return out;
}

namespace {

struct ConfigReader {
  std::string path;
  std::string error;

  bool fail(const YAML::Node& node, const std::string& message) {
    const YAML::Mark mark = node.Mark();
    error =
        path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": " + message;
    return false;
  }

  // Every key of `map` must be one of `known`.
  bool check_keys(const YAML::Node& map, std::initializer_list<std::string_view> known,
                  const std::string& where) {
    if (!map.IsMap()) return fail(map, where + " must be a mapping");
    for (const auto& item : map) {
      const std::string key = item.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string message = "unknown key '" + key + "' in " + where;
      const std::string near = util::closest(key, std::span(known.begin(), known.size()));
      if (!near.empty()) message += "; did you mean '" + near + "'?";
      return fail(item.first, message);
    }
    return true;
  }

  bool scalar(const YAML::Node& node, const std::string& field, std::string& out) {
    if (!node.IsScalar()) return fail(node, field + " must be a single value");
    std::string expand_error;
    auto value = expand_variables(node.Scalar(), expand_error);
    if (!value) return fail(node, field + ": " + expand_error);
    out = std::move(*value);
    return true;
  }
};

}  // namespace

std::optional<Config> load_config(const std::string& path, std::string& error) {
  ConfigReader reader{path, {}};
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    error = path + ": cannot read the file";
    return std::nullopt;
  } catch (const YAML::ParserException& e) {
    error =
        path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg;
    return std::nullopt;
  }
  Config config;
  config.data_dir = "./var";
  bool ok =
      root.IsNull() || reader.check_keys(root, {"data-dir", "listeners", "routes"}, "the configuration");
  if (ok && root["data-dir"]) ok = reader.scalar(root["data-dir"], "data-dir", config.data_dir);
  if (ok && root["listeners"]) {
    const YAML::Node listeners = root["listeners"];
    if (!listeners.IsSequence()) {
      ok = reader.fail(listeners, "listeners must be a list");
    } else {
      for (std::size_t i = 0; ok && i < listeners.size(); ++i) {
        const std::string where = "listeners[" + std::to_string(i) + "]";
        ListenerConfig listener;
        ok = reader.check_keys(listeners[i], {"name", "type"}, where) &&
             reader.scalar(listeners[i]["name"], where + ".name", listener.name) &&
             reader.scalar(listeners[i]["type"], where + ".type", listener.type);
        if (ok) config.listeners.push_back(std::move(listener));
      }
    }
  }
  if (ok && root["routes"]) {
    const YAML::Node routes = root["routes"];
    if (!routes.IsSequence()) ok = reader.fail(routes, "routes must be a list of route files");
    for (std::size_t i = 0; ok && i < routes.size(); ++i) {
      std::string file;
      ok = reader.scalar(routes[i], "routes[" + std::to_string(i) + "]", file);
      if (ok) config.routes.push_back(std::move(file));
    }
  }
  if (!ok) {
    error = reader.error;
    return std::nullopt;
  }
  return config;
}

}  // namespace courier::app
