#include "engine/hl7v2/maps.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <regex>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "engine/fhir/type_registry.h"

namespace courier::hl7v2 {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const fs::path& file, const std::string& what) {
  throw std::runtime_error(file.string() + ": " + what);
}

std::string text(const YAML::Node& node, const char* key, const fs::path& file, bool required = false) {
  const YAML::Node value = node[key];
  if (!value) {
    if (required) fail(file, std::string("'") + key + "' is missing");
    return {};
  }
  if (!value.IsScalar()) fail(file, std::string("'") + key + "' must be a single value");
  return value.as<std::string>();
}

Condition::Op op_of(const std::string& name, const fs::path& file) {
  if (name == "valued") return Condition::Op::valued;
  if (name == "not-valued") return Condition::Op::not_valued;
  if (name == "equals") return Condition::Op::equals;
  if (name == "not-equals") return Condition::Op::not_equals;
  if (name == "in") return Condition::Op::in;
  if (name == "not-in") return Condition::Op::not_in;
  fail(file, "unknown condition '" + name + "' (valued, not-valued, equals, not-equals, in, not-in)");
}

Condition read_condition(const YAML::Node& node, const fs::path& file) {
  Condition condition;
  // "PID-13.2", "XTN.3", "HD.3"
  static const std::regex at(R"(^[A-Z][A-Z0-9]{1,2}[-.](\d+)(?:\.(\d+))?$)");
  const std::string where = text(node, "at", file, true);
  std::smatch match;
  if (!std::regex_match(where, match, at))
    fail(file, "condition 'at: " + where + "' is not like PID-13.2 or XTN.3");
  condition.position = std::stoul(match[1]);
  if (match[2].matched) condition.part = std::stoul(match[2]);
  condition.op = op_of(text(node, "op", file, true), file);
  if (const YAML::Node values = node["values"]) {
    for (const YAML::Node& value : values) condition.values.push_back(value.as<std::string>());
  }
  return condition;
}

// Why a map's path does not exist under a FHIR type, or "" when it does.
// "[2]" steps (another instance) and the empty path (the value itself) are
// fine; below a primitive there is nothing to write.
std::string path_problem(const std::string& type_name, std::string_view path) {
  const fhir::TypeRegistry& registry = fhir::TypeRegistry::r4();
  const fhir::TypeInfo* type = registry.find(type_name);
  while (type != nullptr && !path.empty()) {
    const std::size_t dot = path.find('.');
    std::string_view step = path.substr(0, dot);
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    step = step.substr(0, step.find('['));
    if (step.empty()) continue;
    if (type->is_primitive()) return "'" + std::string(step) + "' is below the primitive " + type->name;
    const fhir::PropertyMatch match = registry.property(*type, step);
    if (match.element == nullptr) {
      const std::string suggestion = registry.suggest(*type, step);
      return type->name + " has no element '" + std::string(step) + "'" +
             (suggestion.empty() ? "" : "; did you mean '" + suggestion + "'?");
    }
    type = match.type;
  }
  return {};
}

FieldMap read_field_map(const YAML::Node& root, const fs::path& file, bool segment) {
  FieldMap map;
  map.name = text(root, "map", file, true);
  const auto open = map.name.find('[');
  if (open == std::string::npos || map.name.back() != ']') fail(file, "'map' must be like PID[Patient]");
  if (segment) {
    map.resource = text(root, "resource", file, true);
    if (fhir::TypeRegistry::r4().find_resource(map.resource) == nullptr) {
      fail(file, "'" + map.resource + "' is not an R4 resource type");
    }
  } else {
    // XPN[HumanName] → HumanName; CWE[code] → code; HD[MessageHeader.source-name] → unknown
    std::string inner = map.name.substr(open + 1, map.name.size() - open - 2);
    inner = inner.substr(0, inner.find_first_of("-."));
    if (fhir::TypeRegistry::r4().find(inner) != nullptr) {
      map.context = inner;
    } else if (!inner.empty()) {
      inner[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(inner[0])));
      if (fhir::TypeRegistry::r4().find(inner) != nullptr) map.context = inner;
    }
  }
  map.chain = text(root, "chain", file);
  if (!map.chain.empty()) {
    if (map.context.empty() || fhir::TypeRegistry::r4().find_resource(map.context) == nullptr)
      fail(file, "'chain' needs a map that makes a resource");
    if (const std::string problem = path_problem(map.context, map.chain + ".reference"); !problem.empty())
      fail(file, "chain '" + map.chain + "': " + problem);
  }
  for (const YAML::Node& node : root["rows"]) {
    MapRow row;
    row.from = node["from"].as<std::size_t>();
    row.to = text(node, "to", file);
    row.map = text(node, "map", file);
    row.vocabulary = text(node, "vocabulary", file);
    if (node["assign"]) row.assign = text(node, "assign", file);
    row.creates = text(node, "creates", file);
    if (!row.creates.empty() &&
        (row.map.empty() || fhir::TypeRegistry::r4().find_resource(row.creates) == nullptr)) {
      fail(file, "row from " + std::to_string(row.from) +
                     ": 'creates' needs a resource type and a map to make it by");
    }
    if (const YAML::Node when = node["when"]) {
      for (const YAML::Node& condition : when) row.when.push_back(read_condition(condition, file));
    }
    // A chain's rows say which of its resources they write: "[2].mode".
    static const std::regex chain_row(R"(\[[1-9][0-9]{0,2}\](\..*)?)");
    if (!map.chain.empty() && !std::regex_match(row.to, chain_row))
      fail(file, "row from " + std::to_string(row.from) + " to '" + row.to +
                     "': a chain's row begins with the number of its resource, like [2]");
    // A path this FHIR type does not have is a mistake in the map, found
    // at start-up (and by courier check) rather than silently skipped.
    const std::string& context = segment ? map.resource : map.context;
    if (!context.empty()) {
      if (const std::string problem = path_problem(context, row.to); !problem.empty()) {
        fail(file, "row from " + std::to_string(row.from) + " to '" + row.to + "': " + problem);
      }
    }
    map.rows.push_back(std::move(row));
  }
  return map;
}

Vocabulary read_vocabulary(const YAML::Node& root, const fs::path& file) {
  Vocabulary vocabulary;
  vocabulary.name = text(root, "vocabulary", file, true);
  vocabulary.v2_table = text(root, "v2-table", file);
  for (const auto& entry : root["codes"]) {
    Coding coding;
    coding.code = text(entry.second, "code", file, true);
    coding.system = text(entry.second, "system", file);
    coding.display = text(entry.second, "display", file);
    vocabulary.codes.emplace(entry.first.as<std::string>(), std::move(coding));
  }
  return vocabulary;
}

std::vector<StructureItem> read_structure_items(const YAML::Node& list, const fs::path& file) {
  std::vector<StructureItem> items;
  for (const YAML::Node& node : list) {
    StructureItem item;
    item.segment = text(node, "segment", file);
    item.group = text(node, "group", file);
    if (const YAML::Node choice = node["choice"]) {
      for (const YAML::Node& name : choice) item.choice.push_back(name.as<std::string>());
    }
    if (int(!item.segment.empty()) + int(!item.group.empty()) + int(!item.choice.empty()) != 1)
      fail(file, "each entry is a segment, a group or a choice");
    item.min = node["min"] ? node["min"].as<int>() : 1;
    item.max = node["max"] ? node["max"].as<int>() : 1;
    if (!item.group.empty()) item.items = read_structure_items(node["segments"], file);
    items.push_back(std::move(item));
  }
  return items;
}

std::vector<std::pair<std::string, std::string>> read_pairs(const YAML::Node& node) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!node) return pairs;
  for (const auto& entry : node)
    pairs.emplace_back(entry.first.as<std::string>(), entry.second.as<std::string>());
  return pairs;
}

MessageMap read_message_map(const YAML::Node& root, const fs::path& file) {
  MessageMap map;
  map.structure = text(root, "message", file, true);
  if (const YAML::Node triggers = root["triggers"]) {
    for (const YAML::Node& trigger : triggers) map.triggers.push_back(trigger.as<std::string>());
  }
  for (const YAML::Node& node : root["segments"]) {
    SegmentRule rule;
    rule.segment = text(node, "segment", file, true);
    rule.map = text(node, "map", file, true);
    rule.merge_after = text(node, "merge-after", file);
    rule.always_new = node["new"] && node["new"].as<bool>();
    rule.links = read_pairs(node["links"]);
    rule.linked_from = read_pairs(node["linked-from"]);
    rule.defaults = read_pairs(node["defaults"]);
    if (const YAML::Node by_event = node["set-by-event"])
      for (const auto& entry : by_event)
        rule.set_by_event[entry.first.as<std::string>()] = read_pairs(entry.second);
    map.rules.push_back(std::move(rule));
  }
  return map;
}

std::vector<fs::path> yaml_files(const fs::path& folder) {
  std::vector<fs::path> files;
  if (!fs::is_directory(folder)) return files;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

MapSet MapSet::load(const std::string& folder) {
  MapSet set;
  const fs::path root(folder);
  if (!fs::is_directory(root / "messages")) {
    throw std::runtime_error(folder + ": not a folder of v2 maps (it has no messages/ folder)");
  }
  // Each YAML file of a folder, read; YAML's own errors name the file.
  const auto each_file = [&](const char* kind,
                             const std::function<void(const YAML::Node&, const fs::path&)>& read) {
    for (const fs::path& file : yaml_files(root / kind)) {
      try {
        read(YAML::LoadFile(file.string()), file);
      } catch (const YAML::Exception& error) {
        fail(file, error.what());
      }
    }
  };
  for (const char* kind : {"segments", "datatypes"}) {
    each_file(kind, [&](const YAML::Node& node, const fs::path& file) {
      FieldMap map = read_field_map(node, file, std::string(kind) == "segments");
      set.maps_.emplace(map.name, std::move(map));
    });
  }
  each_file("vocabulary", [&](const YAML::Node& node, const fs::path& file) {
    Vocabulary vocabulary = read_vocabulary(node, file);
    set.vocabularies_.emplace(vocabulary.name, std::move(vocabulary));
  });
  each_file("structures", [&](const YAML::Node& node, const fs::path& file) {
    Structure structure{text(node, "structure", file, true), read_structure_items(node["segments"], file)};
    set.structures_.emplace(structure.name, std::move(structure));
  });
  each_file("messages", [&](const YAML::Node& node, const fs::path& file) {
    MessageMap map = read_message_map(node, file);
    for (const SegmentRule& rule : map.rules) {
      const auto made = set.maps_.find(rule.map);
      if (made == set.maps_.end()) fail(file, "no segment map '" + rule.map + "'");
      for (const auto& [element, type] : rule.links) {
        if (const std::string problem = path_problem(made->second.resource, element); !problem.empty())
          fail(file, rule.segment + " links " + element + ": " + problem);
      }
      for (const auto& [path, value] : rule.defaults) {
        if (const std::string problem = path_problem(made->second.resource, path); !problem.empty())
          fail(file, rule.segment + " defaults " + path + ": " + problem);
      }
      for (const auto& [event, values] : rule.set_by_event) {
        for (const auto& [path, value] : values) {
          if (const std::string problem = path_problem(made->second.resource, path); !problem.empty())
            fail(file, rule.segment + " set-by-event " + event + " " + path + ": " + problem);
        }
      }
    }
    const std::string type = map.structure.substr(0, map.structure.find('_'));
    for (const std::string& trigger : map.triggers)
      set.structure_by_event_[type + "^" + trigger] = map.structure;
    set.messages_.emplace(map.structure, std::move(map));
  });
  // Every map a row names must exist: a typo in a map is found at start-up.
  for (const auto& [name, map] : set.maps_) {
    for (const MapRow& row : map.rows) {
      const auto used = set.maps_.find(row.map);
      if (!row.map.empty() && used == set.maps_.end()) {
        throw std::runtime_error(folder + ": map " + name + " names a data type map '" + row.map +
                                 "' that is not there");
      }
      if (!row.creates.empty() && used->second.context != row.creates) {
        throw std::runtime_error(folder + ": map " + name + " makes a " + row.creates + " by " + row.map +
                                 ", which does not make one");
      }
    }
  }
  return set;
}

const MessageMap* MapSet::message(const std::string& structure) const {
  const auto it = messages_.find(structure);
  return it == messages_.end() ? nullptr : &it->second;
}

std::string MapSet::structure_for(const std::string& type, const std::string& trigger) const {
  const auto it = structure_by_event_.find(type + "^" + trigger);
  return it == structure_by_event_.end() ? type + "_" + trigger : it->second;
}

const FieldMap* MapSet::field_map(const std::string& name) const {
  const auto it = maps_.find(name);
  return it == maps_.end() ? nullptr : &it->second;
}

const Structure* MapSet::structure(const std::string& name) const {
  const auto it = structures_.find(name);
  return it == structures_.end() ? nullptr : &it->second;
}

const Vocabulary* MapSet::vocabulary(const std::string& name) const {
  const auto it = vocabularies_.find(name);
  return it == vocabularies_.end() ? nullptr : &it->second;
}

}  // namespace courier::hl7v2
