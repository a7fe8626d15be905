// The HTTP listener: FHIR's $process-message, metadata, /healthz, /metrics
// and the operator's /admin/ JSON, on Boost.Beast with C++20 coroutines.
#pragma once

#include "adapters/listener.h"

namespace courier::adapters {

std::unique_ptr<Listener> parse_http_listener(std::string name, const YAML::Node& node,
                                              config::YamlReader& reader);

}  // namespace courier::adapters
