#include "engine/route/route.h"

#include <algorithm>
#include <cmath>

#include "engine/config/yaml_reader.h"
#include "engine/rest/search.h"
#include "engine/util/text.h"

namespace courier::route {

Milliseconds RetryPolicy::delay_after(int attempt, double jitter01) const {
  double delay = static_cast<double>(initial_delay.count()) * std::ldexp(1.0, std::min(attempt - 1, 40));
  delay = std::min(delay, static_cast<double>(max_delay.count()));
  return Milliseconds(static_cast<std::int64_t>(delay * (0.5 + 0.5 * jitter01)));
}

std::string_view to_string(Pattern pattern) {
  switch (pattern) {
    case Pattern::messaging: return "messaging";
    case Pattern::file: return "file";
    case Pattern::rest: return "rest";
    case Pattern::request: return "request";
    case Pattern::queue: return "queue";
    case Pattern::operation: return "operation";
    case Pattern::status: return "status";
    case Pattern::mllp: return "mllp";
  }
  return "?";
}

bool is_rest(Pattern pattern) {
  return pattern == Pattern::rest || pattern == Pattern::request || pattern == Pattern::queue ||
         pattern == Pattern::operation;
}

bool awaits_events(Pattern pattern) {
  return pattern == Pattern::request || pattern == Pattern::queue;
}

namespace {

// The system|code the route asks for matches the message's event.
bool event_matches(std::string_view wanted, const message::MessageInfo& info) {
  if (wanted.empty()) return true;
  const std::size_t bar = wanted.find('|');
  if (bar == std::string_view::npos) return wanted == info.event_code;
  return wanted.substr(0, bar) == info.event_system && wanted.substr(bar + 1) == info.event_code;
}

}  // namespace

bool Route::matches(const message::MessageInfo& info, const fhir::Element& bundle, std::string_view listener,
                    const fhirpath::Environment& environment) const {
  if (trigger) return false;  // it takes its trigger's messages, by name
  if (!from.empty() && from != listener) return false;
  if (!event_matches(when.event, info)) return false;
  if (!when.source.empty() && when.source != info.source_endpoint) return false;
  if (!when.destination.empty() && std::find(info.destinations.begin(), info.destinations.end(),
                                             when.destination) == info.destinations.end()) {
    return false;
  }
  if (!when.sender.empty() && when.sender != info.sender) return false;
  if (!when.focus.empty() &&
      std::find(info.focus_types.begin(), info.focus_types.end(), when.focus) == info.focus_types.end()) {
    return false;
  }
  if (when.expression) {
    try {
      const fhirpath::Collection result = when.expression->evaluate(bundle, environment);
      // FHIRPath's singleton evaluation of collections as a boolean.
      if (result.size() != 1) return false;
      const auto* value = std::get_if<bool>(&result.front().value);
      if (value == nullptr || !*value) return false;
    } catch (const fhirpath::Error&) {
      return false;
    }
  }
  return true;
}

const Route* RouteSet::match(const message::MessageInfo& info, const fhir::Element& bundle,
                             std::string_view listener) const {
  const fhirpath::Environment env = environment();
  for (const Route& route : routes) {
    if (route.matches(info, bundle, listener, env)) return &route;
  }
  return nullptr;
}

const Route* RouteSet::find(std::string_view name) const {
  for (const Route& route : routes) {
    if (route.name == name) return &route;
  }
  return nullptr;
}

namespace {

class RouteReader {
 public:
  RouteReader(config::YamlReader& yaml, const fhirpath::Terminology* terminology)
      : yaml_(yaml), terminology_(terminology) {}

  std::optional<Route> route(const YAML::Node& node) {
    if (!yaml_.check_keys(node, {"route", "from", "when", "trigger", "to", "allow", "require-source-match"},
                          "a route")) {
      if (!node.IsMap()) return std::nullopt;
    }
    Route route;
    route.file = yaml_.path();
    route.line = node.Mark().line + 1;
    if (!node["route"]) {
      yaml_.fail(node, "a route needs a name: add 'route: NAME'");
    } else if (auto name = yaml_.scalar(node["route"], "route")) {
      route.name = *name;
    }
    const std::string where = "route '" + route.name + "'";
    if (node["from"]) route.from = yaml_.scalar(node["from"], where + ".from").value_or("");
    if (node["when"]) read_when(node["when"], where + ".when", route.when);
    if (const YAML::Node allow = node["allow"]) {
      if (!allow.IsSequence())
        yaml_.fail(allow, where + ".allow must be a list of peer names and group:NAME");
      for (std::size_t i = 0; allow.IsSequence() && i < allow.size(); ++i)
        if (auto who = yaml_.scalar(allow[i], where + ".allow[" + std::to_string(i) + "]"))
          route.allow.push_back(*who);
    }
    if (node["require-source-match"]) {
      route.require_source_match =
          yaml_.boolean(node["require-source-match"], where + ".require-source-match").value_or(false);
    }
    if (node["trigger"]) {
      route.trigger = read_trigger(node["trigger"], where + ".trigger");
      for (const char* key : {"from", "when"})
        if (node[key])
          yaml_.fail(node[key], where + ": a route with a trigger takes no '" + key +
                                    "': its messages come from the trigger alone");
    }
    if (!node["to"]) {
      yaml_.fail(node, where + " has no destinations: add 'to:' with at least one");
    } else if (const YAML::Node to = node["to"]; !to.IsSequence() || to.size() == 0) {
      yaml_.fail(to, where + ".to must be a list of destinations");
    } else {
      for (std::size_t i = 0; i < to.size(); ++i) {
        if (auto destination = read_destination(to[i], where + ".to[" + std::to_string(i) + "]")) {
          const bool duplicate = std::any_of(route.to.begin(), route.to.end(), [&](const Destination& d) {
            return d.name == destination->name;
          });
          if (duplicate) {
            yaml_.fail(to[i], where + " has two destinations named '" + destination->name + "'");
          } else {
            route.to.push_back(std::move(*destination));
          }
        }
      }
    }
    return route;
  }

 private:
  std::optional<fhirpath::Expression> expression(const YAML::Node& node, const std::string& field) {
    const auto text = yaml_.scalar(node, field);
    if (!text) return std::nullopt;
    try {
      auto compiled = fhirpath::Expression::compile(
          *text, {.strict = true, .context_type = "Bundle", .check_ordered_functions = true});
      check_value_sets(compiled, node, field);
      return compiled;
    } catch (const fhirpath::Error& e) {
      yaml_.fail_in_scalar(
          node, e.position(),
          field + ": FHIRPath " + std::string(fhirpath::to_string(e.kind())) + " error: " + e.what());
      return std::nullopt;
    }
  }

  // A memberOf() whose value set is not loaded would fail on every message,
  // so the route would silently never match: say so now.
  void check_value_sets(const fhirpath::Expression& expression, const YAML::Node& node,
                        const std::string& field) {
    if (terminology_ == nullptr) return;
    for (const auto& [url, position] : expression.string_arguments("memberOf")) {
      if (terminology_->find("ValueSet", url) != nullptr) continue;
      yaml_.fail_in_scalar(node, position,
                           field + ": memberOf('" + url +
                               "') names a value set that is not loaded (list its file under value-sets: in "
                               "the configuration)");
    }
  }

  void read_when(const YAML::Node& node, const std::string& where, Match& match) {
    yaml_.check_keys(node, {"event", "source", "destination", "sender", "focus", "expression"}, where);
    if (!node.IsMap()) return;
    if (node["event"]) match.event = yaml_.scalar(node["event"], where + ".event").value_or("");
    if (node["source"]) match.source = yaml_.scalar(node["source"], where + ".source").value_or("");
    if (node["destination"]) {
      match.destination = yaml_.scalar(node["destination"], where + ".destination").value_or("");
    }
    if (node["sender"]) match.sender = yaml_.scalar(node["sender"], where + ".sender").value_or("");
    if (node["focus"]) {
      if (auto focus = yaml_.scalar(node["focus"], where + ".focus")) {
        const fhir::TypeRegistry& registry = fhir::TypeRegistry::r4();
        if (registry.find_resource(*focus) == nullptr) {
          std::string message = where + ".focus: '" + *focus + "' is not a FHIR R4 resource type";
          std::vector<std::string_view> names;
          for (const fhir::TypeInfo* type : registry.resource_types()) names.push_back(type->name);
          const std::string near = util::closest(*focus, names);
          if (!near.empty()) message += "; did you mean '" + near + "'?";
          yaml_.fail(node["focus"], message);
        } else {
          match.focus = *focus;
        }
      }
    }
    if (node["expression"]) match.expression = expression(node["expression"], where + ".expression");
  }

  std::optional<RestTrigger> read_trigger(const YAML::Node& node, const std::string& where) {
    if (!yaml_.check_keys(node, {"on", "event"}, where)) return std::nullopt;
    RestTrigger t;
    if (!node["on"] || !node["event"]) {
      yaml_.fail(node, where +
                           " needs 'on' (a search on courier's FHIR store, such as "
                           "ServiceRequest?status=active) and 'event' (system|code of the message)");
      return std::nullopt;
    }
    t.criteria = yaml_.scalar(node["on"], where + ".on").value_or("");
    auto query = rest::parse_criteria(t.criteria);
    if (auto* problem = std::get_if<std::string>(&query)) {
      yaml_.fail(node["on"], where + ".on: " + *problem);
      return std::nullopt;
    }
    t.query = std::get<rest::SearchQuery>(std::move(query));
    const std::string event = yaml_.scalar(node["event"], where + ".event").value_or("");
    const std::size_t bar = event.find('|');
    if (bar == std::string::npos || bar == 0 || bar + 1 == event.size()) {
      yaml_.fail(
          node["event"],
          where + ".event must be system|code, the event of the messages it makes, not '" + event + "'");
      return std::nullopt;
    }
    t.event_system = event.substr(0, bar);
    t.event_code = event.substr(bar + 1);
    return t;
  }

  std::optional<Destination> read_destination(const YAML::Node& node, const std::string& where) {
    if (!yaml_.check_keys(
            node,
            {"name", "pattern", "endpoint", "folder", "mode", "interaction", "operation", "target",
             "ack-timeout", "retry", "order-by", "parallel", "on-exhausted", "on-timeout"},
            where)) {
      if (!node.IsMap()) return std::nullopt;
    }
    Destination d;
    if (!node["name"]) {
      yaml_.fail(node, where + " needs a name");
    } else {
      d.name = yaml_.scalar(node["name"], where + ".name").value_or("");
    }
    if (!node["pattern"]) {
      yaml_.fail(
          node, where + " needs a pattern: messaging, file, rest, request, queue, operation, status or mllp");
      return std::nullopt;
    }
    const auto pattern =
        yaml_.choice(node["pattern"], where + ".pattern",
                     {"messaging", "file", "rest", "request", "queue", "operation", "status", "mllp"});
    if (!pattern) return std::nullopt;
    for (Pattern p : {Pattern::messaging, Pattern::file, Pattern::rest, Pattern::request, Pattern::queue,
                      Pattern::operation, Pattern::status, Pattern::mllp})
      if (to_string(p) == *pattern) d.pattern = p;
    const std::string kind = "'" + *pattern + "' destinations";
    // Which of the pattern-specific keys each pattern takes.
    const bool takes_endpoint =
        d.pattern != Pattern::file && d.pattern != Pattern::queue && d.pattern != Pattern::status;
    const bool needs_endpoint = d.pattern == Pattern::messaging || d.pattern == Pattern::request ||
                                d.pattern == Pattern::operation || d.pattern == Pattern::mllp;
    if (node["folder"] && d.pattern != Pattern::file)
      yaml_.fail(node["folder"], where + ": 'folder' is for file destinations, not " + kind);
    if (node["mode"] && d.pattern != Pattern::messaging)
      yaml_.fail(node["mode"], where + ": 'mode' is for messaging destinations, not " + kind);
    if (node["interaction"] && d.pattern != Pattern::rest)
      yaml_.fail(node["interaction"], where + ": 'interaction' is for rest destinations, not " + kind);
    for (const char* key : {"operation", "target"})
      if (node[key] && d.pattern != Pattern::operation)
        yaml_.fail(node[key], where + ": '" + key + "' is for operation destinations, not " + kind);
    if (d.pattern == Pattern::operation) {
      if (!node["operation"]) {
        yaml_.fail(node, where + " needs an operation to invoke, such as $validate-code");
      } else {
        d.operation = yaml_.scalar(node["operation"], where + ".operation").value_or("");
        if (!d.operation.starts_with('$') || d.operation.size() < 2)
          yaml_.fail(node["operation"], where +
                                            ".operation must be an operation's name with its $, such as "
                                            "$validate-code, not '" +
                                            d.operation + "'");
      }
      if (node["target"]) {
        d.target = yaml_.scalar(node["target"], where + ".target").value_or("");
        const std::string type = d.target.substr(0, d.target.find('/'));
        if (fhir::TypeRegistry::r4().find_resource(type) == nullptr)
          yaml_.fail(node["target"],
                     where + ".target must be a resource type or Type/id, not '" + d.target + "'");
      }
    }
    if (node["endpoint"] && !takes_endpoint) {
      yaml_.fail(node["endpoint"], where + ": " + kind + " take no endpoint" +
                                       (d.pattern == Pattern::file    ? "; use 'folder'"
                                        : d.pattern == Pattern::queue ? ": they write to courier's own store"
                                                                      : ": courier answers them itself"));
    } else if (node["endpoint"]) {
      if (auto endpoint = yaml_.scalar(node["endpoint"], where + ".endpoint")) {
        // Empty (an unset ${FHIR_UPSTREAM:-}) means courier's own store,
        // for the destinations that can write there.
        if (endpoint->empty() && !needs_endpoint) {
        } else if (d.pattern == Pattern::mllp) {
          const bool mllp_url = (endpoint->starts_with("mllp://") && endpoint->rfind(':') > 6) ||
                                (endpoint->starts_with("mllps://") && endpoint->rfind(':') > 7);
          if (!mllp_url) {
            yaml_.fail(node["endpoint"],
                       where + ".endpoint must be an mllp://host:port (or mllps://) address, not '" +
                           *endpoint + "'");
          }
        } else if (!endpoint->starts_with("http://") && !endpoint->starts_with("https://")) {
          yaml_.fail(node["endpoint"],
                     where + ".endpoint must be an http:// or https:// URL, not '" + *endpoint + "'");
        }
        d.endpoint = *endpoint;
        while (d.endpoint.ends_with('/')) d.endpoint.pop_back();
      }
    } else if (needs_endpoint) {
      yaml_.fail(node, where + " needs an endpoint: the FHIR base URL of the receiver");
    }
    if (d.pattern == Pattern::file) {
      if (!node["folder"]) {
        yaml_.fail(node, where + " needs a folder to write the messages to");
      } else {
        d.endpoint = yaml_.scalar(node["folder"], where + ".folder").value_or("");
      }
    }
    if (node["mode"] && d.pattern == Pattern::messaging)
      d.async = yaml_.choice(node["mode"], where + ".mode", {"sync", "async"}) == "async";
    if (node["interaction"] && d.pattern == Pattern::rest) {
      const auto interaction = yaml_.choice(node["interaction"], where + ".interaction",
                                            {"create", "update", "upsert", "merge", "transaction"});
      d.interaction = interaction == "create"        ? Interaction::create
                      : interaction == "update"      ? Interaction::update
                      : interaction == "transaction" ? Interaction::transaction
                      : interaction == "merge"       ? Interaction::merge
                                                     : Interaction::upsert;
    }
    if (node["ack-timeout"]) {
      d.ack_timeout = yaml_.duration(node["ack-timeout"], where + ".ack-timeout").value_or(d.ack_timeout);
    }
    if (node["retry"]) read_retry_policy(yaml_, node["retry"], where + ".retry", d.retry);
    if (node["order-by"]) d.order_by = expression(node["order-by"], where + ".order-by");
    if (node["parallel"]) {
      d.parallel =
          static_cast<int>(yaml_.integer(node["parallel"], where + ".parallel", 1, 1024).value_or(1));
    }
    if (node["on-exhausted"]) {
      d.on_exhausted = yaml_.choice(node["on-exhausted"], where + ".on-exhausted", {"park", "fail"}) == "fail"
                           ? OnExhausted::fail
                           : OnExhausted::park;
    }
    if (node["on-timeout"]) {
      d.timeout_code =
          yaml_.choice(node["on-timeout"], where + ".on-timeout", {"transient-error", "fatal-error"})
              .value_or(d.timeout_code);
    }
    return d;
  }

  config::YamlReader& yaml_;
  const fhirpath::Terminology* terminology_;  // null: memberOf() URLs are not checked
};

}  // namespace

void read_retry_policy(config::YamlReader& yaml, const YAML::Node& node, const std::string& where,
                       RetryPolicy& retry) {
  if (!yaml.check_keys(node, {"attempts", "backoff"}, where)) return;
  if (node["attempts"]) {
    retry.attempts =
        static_cast<int>(yaml.integer(node["attempts"], where + ".attempts", 1, 1000).value_or(1));
  }
  if (!node["backoff"]) return;
  const auto text = yaml.scalar(node["backoff"], where + ".backoff");
  if (!text) return;
  const std::size_t dots = text->find("..");
  const auto initial = config::parse_duration(text->substr(0, dots));
  const auto max = dots == std::string::npos ? initial : config::parse_duration(text->substr(dots + 2));
  if (!initial || !max || *max < *initial) {
    yaml.fail(node["backoff"], where + ".backoff must be INITIAL..MAX, such as 1s..5m, not '" + *text + "'");
    return;
  }
  retry.initial_delay = *initial;
  retry.max_delay = *max;
}

std::vector<Route> load_route_file(const std::string& path, std::vector<std::string>& errors,
                                   const fhirpath::Terminology* terminology) {
  config::YamlReader yaml(path);
  YAML::Node root;
  std::vector<Route> routes;
  if (yaml.load(root)) {
    RouteReader reader(yaml, terminology);
    if (root.IsMap()) {
      if (auto route = reader.route(root)) routes.push_back(std::move(*route));
    } else if (root.IsSequence()) {
      for (const YAML::Node& node : root) {
        if (auto route = reader.route(node)) routes.push_back(std::move(*route));
      }
    } else {
      yaml.fail(root, "a route file holds a route (a mapping with 'route:') or a list of routes");
    }
  }
  errors.insert(errors.end(), yaml.errors().begin(), yaml.errors().end());
  return routes;
}

RouteSet load_routes(const std::vector<std::string>& paths, const std::vector<std::string>& listeners,
                     std::shared_ptr<const fhirpath::Terminology> terminology,
                     std::vector<std::string>& errors) {
  RouteSet set;
  set.terminology = std::move(terminology);
  for (const std::string& path : paths) {
    for (Route& route : load_route_file(path, errors, set.terminology.get())) {
      const std::string at = route.file + ":" + std::to_string(route.line) + ":1: ";
      if (const Route* other = set.find(route.name); other != nullptr && !route.name.empty()) {
        errors.push_back(at + "route '" + route.name + "' is already defined at " + other->file + ":" +
                         std::to_string(other->line));
        continue;
      }
      if (!route.from.empty() && !listeners.empty() &&
          std::find(listeners.begin(), listeners.end(), route.from) == listeners.end()) {
        std::vector<std::string_view> names(listeners.begin(), listeners.end());
        std::string message = at + "route '" + route.name + "' takes messages from listener '" + route.from +
                              "', which the configuration does not define";
        const std::string near = util::closest(route.from, names);
        if (!near.empty()) message += "; did you mean '" + near + "'?";
        errors.push_back(message);
      }
      set.routes.push_back(std::move(route));
    }
  }
  return set;
}

}  // namespace courier::route
