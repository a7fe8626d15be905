// What every listener adapter offers the application: built from its
// config (checked completely, like everything in courier.yaml), then
// started on an io_context with the engine it feeds.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <yaml-cpp/yaml.h>

#include "engine/config/yaml_reader.h"
#include "engine/engine.h"

namespace boost::asio {
class io_context;
}

namespace courier::adapters {

class ReloadableTls;

class Listener {
 public:
  virtual ~Listener() = default;
  // Binds and starts accepting; throws std::runtime_error when it cannot bind.
  virtual void start(boost::asio::io_context& io, Engine& engine) = 0;
  // Stops accepting and closes idle connections.
  virtual void stop() = 0;
  const std::string& name() const { return name_; }
  // The port actually bound (the configured one, or the one chosen for 0).
  virtual std::uint16_t port() const = 0;
  // "http on 127.0.0.1:8080, FHIR base /fhir"
  virtual std::string describe() const = 0;
  // The URL peers use for this listener's FHIR base, when it has one.
  virtual std::string base_url() const { return {}; }
  // True when every peer must prove who it is (needs a security section).
  virtual bool authenticates() const { return false; }
  // Reads its certificate and key again (SIGHUP); established connections
  // keep theirs. Throws std::runtime_error, keeping the old ones, when the
  // new files cannot be used.
  virtual void reload_tls() {}

 protected:
  explicit Listener(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};

// Reads a listener's settings (the keys beside name and type); problems go
// to `reader`. Returns null when the settings are unusable.
using ListenerParser = std::function<std::unique_ptr<Listener>(std::string name, const YAML::Node& node,
                                                               config::YamlReader& reader)>;

// The one place adapters are registered, by the type name config files use.
const std::map<std::string, ListenerParser>& listener_types();
// The senders; `tls` verifies servers and presents courier's client
// certificate on https:// and mllps:// destinations.
Engine::Senders make_senders(boost::asio::io_context& io, std::shared_ptr<const hl7v2::MapSet> v2_maps,
                             std::shared_ptr<ReloadableTls> tls);

}  // namespace courier::adapters
