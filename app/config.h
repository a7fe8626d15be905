// The engine configuration, conf/courier.yaml: the data directory, the
// listeners (each checked by its adapter), the route files to load, and the
// engine's reliable-messaging and delivery settings.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/listener.h"
#include "engine/engine.h"
#include "engine/fhirpath/terminology.h"

namespace courier::app {

struct Config {
  std::string path;
  std::string data_dir = "./var";
  std::string public_url;  // "" = the first HTTP listener's own URL
  std::chrono::milliseconds retention{std::chrono::hours(24 * 30)};
  EngineOptions engine;
  // TLS for the senders (https:// and mllps:// destinations); null = the
  // system's CAs and no client certificate.
  std::shared_ptr<adapters::ReloadableTls> outbound_tls;
  std::vector<std::unique_ptr<adapters::Listener>> listeners;
  std::vector<std::string> route_files;  // patterns expanded, in order
  // ValueSet and CodeSystem files (JSON or XML, or Bundles of them) that
  // route expressions may use with memberOf(); patterns expanded.
  std::vector<std::string> value_set_files;
};

// Loads and checks a configuration file completely. Every problem is added
// to `errors` as "file:line:col: what is wrong", naming the closest valid
// key or value; the result is only usable when `errors` stayed empty.
Config load_config(const std::string& path, std::vector<std::string>& errors);

// Reads ValueSets and CodeSystems (alone or in Bundles) from JSON or XML
// files; each unreadable file, or one holding neither, adds an error.
std::shared_ptr<fhirpath::Terminology> load_terminology(const std::vector<std::string>& files,
                                                        std::vector<std::string>& errors);

// Loads the config, then its routes (or `route_files` instead, when given),
// collecting every error of both.
struct Loaded {
  Config config;
  route::RouteSet routes;
};
Loaded load_all(const std::string& config_path, const std::vector<std::string>& route_files,
                std::vector<std::string>& errors);

}  // namespace courier::app
