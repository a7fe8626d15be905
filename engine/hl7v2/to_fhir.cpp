#include "engine/hl7v2/to_fhir.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <memory>

#include "engine/fhir/codec.h"
#include "engine/fhir/type_registry.h"
#include "engine/hl7v2/ack.h"
#include "engine/hl7v2/structure.h"
#include "engine/util/text.h"
#include "engine/util/uuid.h"

namespace courier::hl7v2 {
namespace {

using fhir::TypeInfo;

// Enhanced mode's MSH-16 as FHIR's messageheader-response-request: when the
// sender wants to hear the outcome (AL always, ER on error, SU on success,
// NE never). Original mode asks nothing: null.
const char* response_request(const AckRequest& request) {
  if (!request.enhanced) return nullptr;
  switch (request.application) {
    case AckCondition::always: return "always";
    case AckCondition::error_only: return "on-error";
    case AckCondition::success_only: return "on-success";
    case AckCondition::never: return "never";
  }
  return nullptr;
}

// A FHIR element being built: a primitive's text or named children. Kept in
// unique_ptrs so that slots can point at nodes while siblings are added.
struct Node {
  const TypeInfo* type = nullptr;
  const fhir::ElementInfo* element = nullptr;  // what it is in its owner (none for a resource)
  std::string value;
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> children;
  // Which child each (element name, instance key) made: rows that name the
  // same instance write into the same child.
  struct Slot {
    std::string name;
    std::string key;
    Node* node;
  };
  std::vector<Slot> slots;
  // worth_writing's answer, once asked: the tree no longer changes then,
  // and each level of the writing asks about everything below it.
  mutable std::optional<bool> worth;
};

// A value in the v2 message: a field repetition, or a component or
// sub-component of one (0 means "the whole").
struct Source {
  const Segment* segment = nullptr;
  std::size_t field = 0;
  std::size_t repetition = 1;
  std::size_t component = 0;
  std::size_t subcomponent = 0;

  Source child(std::size_t n) const {
    Source part = *this;
    if (component == 0) {
      part.component = n;
    } else if (subcomponent == 0) {
      part.subcomponent = n;
    } else if (n != 1) {
      part.field = 0;  // below a sub-component there is nothing
    }
    return part;
  }
};

// Where a row writes: the instance `key` of element `name` under `owner`,
// or an existing node.
struct Target {
  Node* owner = nullptr;
  std::string name;
  std::string key;
  Node* node = nullptr;
};

bool is_time(fhir::Primitive primitive) {
  return primitive == fhir::Primitive::date || primitive == fhir::Primitive::date_time ||
         primitive == fhir::Primitive::instant || primitive == fhir::Primitive::time;
}

std::string two(int n) {
  char out[3];
  std::snprintf(out, sizeof out, "%02d", n);
  return out;
}

std::string host_offset(int year, int month, int day, int hour, int minute) {
  std::tm local{};
  local.tm_year = year - 1900;
  local.tm_mon = month - 1;
  local.tm_mday = day;
  local.tm_hour = hour;
  local.tm_min = minute;
  local.tm_isdst = -1;
  const std::time_t when = std::mktime(&local);
  std::tm resolved{};
  localtime_r(&when, &resolved);
  const long offset = resolved.tm_gmtoff / 60;
  const long magnitude = offset < 0 ? -offset : offset;
  return std::string(offset < 0 ? "-" : "+") + two(static_cast<int>(magnitude / 60)) + ":" +
         two(static_cast<int>(magnitude % 60));
}

// FHIR strings hold no control characters but tab, CR and LF (the line
// break v2 escapes as .br becomes one).
bool has_control_character(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 && c != '\t' && c != '\r' && c != '\n';
  });
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// A v2 NM as a JSON number ("+007.50" → "7.50"), or "" when it is none.
std::string json_number(std::string_view text) {
  std::string sign;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    if (text.front() == '-') sign = "-";
    text.remove_prefix(1);
  }
  const std::size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (!all_digits(whole) || (dot != std::string_view::npos && !all_digits(fraction))) return {};
  while (whole.size() > 1 && whole.front() == '0') whole.remove_prefix(1);  // JSON has no leading zeros
  return sign + std::string(whole) + (dot == std::string_view::npos ? "" : "." + std::string(fraction));
}

class Converter {
 public:
  Converter(const Message& message, const MapSet& maps, const ConvertOptions& options)
      : message_(message), maps_(maps), options_(options), registry_(fhir::TypeRegistry::r4()) {}

  std::optional<std::string> run(ConvertError& error);
  std::vector<ParseError> take_warnings() { return std::move(warnings_); }

 private:
  struct Made {
    std::string type;
    std::unique_ptr<Node> root;
    std::string made_by;  // the segment whose rule made it
    std::vector<std::pair<std::string, std::string>> defaults;
    bool chained = false;                // made by a chain (a Location from a PL)
    std::optional<std::size_t> part_of;  // in a chain: the next one made (index in made_)
    // The elements a field sent as v2's explicit null ("") maps to.
    std::vector<std::string> nulled = {};
  };

  Node* slot(Node& owner, const std::string& name, const std::string& key);
  Target resolve(Node& base, std::string_view path, const std::string& scope);
  Node* instance(const Target& target);

  std::string text(const Source& source) const;
  bool valued(const Source& source) const;
  bool holds(const std::vector<Condition>& when, const Source& row_source, bool segment_level) const;

  void apply_segment(const FieldMap& map, const Segment& segment, Made& made);
  void mark_nulled(Made& made);
  void apply_row(const MapRow& row, const Source& source, Target target);
  void apply_datatype(const FieldMap& map, const Source& source, const Target& target);
  void apply_chain(const MapRow& row, const FieldMap& map, const Source& source, const Target& target);
  void qualify_chain_identifiers();
  // Why `value` could not be written, or "" (written, or nowhere to write).
  std::string write_leaf(const Target& target, const std::string& value);
  void warn(const Source& source, std::string reason, int code);
  // The message cannot be converted as it is: the first such value, where it is.
  void refuse(const Source& source, const std::string& what);
  std::size_t sequence_of(const Segment& segment) const;
  std::string coding_system_uri(const std::string& name) const;
  void apply_vocabulary(const std::string& name, const Source& source, const Target& target);

  std::string identity(const Made& made) const;
  std::string result_identity(std::size_t index) const;
  std::string stable_id(const Made& made, std::size_t ordinal) const;
  bool worth_writing(const Node& node) const;
  bool judge_worth(const Node& node) const;
  void write_object(std::string& out, const Node& node) const;

  const Message& message_;
  const MapSet& maps_;
  const ConvertOptions& options_;
  const fhir::TypeRegistry& registry_;
  std::vector<Made> made_;
  // The elements that refer to resources rows made, and which.
  std::vector<std::pair<Target, std::size_t>> created_references_;
  std::string bundle_id_;
  std::vector<ParseError> warnings_;
  std::optional<ConvertError> refused_;
};

Node* Converter::slot(Node& owner, const std::string& name, const std::string& key) {
  for (const Node::Slot& existing : owner.slots) {
    if (existing.name == name && existing.key == key) return existing.node;
  }
  if (owner.type == nullptr) return nullptr;
  const fhir::PropertyMatch match = registry_.property(*owner.type, name);
  if (match.element == nullptr || match.type == nullptr) return nullptr;
  auto node = std::make_unique<Node>();
  node->type = match.type;
  node->element = match.element;
  Node* raw = node.get();
  owner.children.emplace_back(name, std::move(node));
  owner.slots.push_back(Node::Slot{name, key, raw});
  return raw;
}

// "[2]" → 2, "name[3]" → name and 3; an absent index is 1.
std::pair<std::string, std::string> split_step(std::string_view step) {
  const std::size_t open = step.find('[');
  if (open == std::string_view::npos) return {std::string(step), "1"};
  const std::size_t close = step.find(']', open);
  return {std::string(step.substr(0, open)), std::string(step.substr(open + 1, close - open - 1))};
}

// Walks all but the last step of a path (creating what is missing) and
// returns where the last step writes. `scope` tells apart the instances
// the first step makes for different field repetitions.
Target Converter::resolve(Node& base, std::string_view path, const std::string& scope) {
  Node* current = &base;
  std::string key_scope = scope;
  for (;;) {
    const std::size_t dot = path.find('.');
    const auto [name, index] = split_step(path.substr(0, dot));
    const std::string key = key_scope + "[" + index + "]";
    if (dot == std::string_view::npos) return Target{current, name, key, nullptr};
    current = slot(*current, name, key);
    if (current == nullptr) return Target{};
    key_scope.clear();
    path.remove_prefix(dot + 1);
  }
}

Node* Converter::instance(const Target& target) {
  if (target.node != nullptr) return target.node;
  if (target.owner == nullptr) return nullptr;
  return slot(*target.owner, target.name, target.key);
}

std::string Converter::text(const Source& source) const {
  if (source.field == 0) return {};
  return message_.value(*source.segment, source.field, source.repetition,
                        source.component == 0 ? 1 : source.component,
                        source.subcomponent == 0 ? 1 : source.subcomponent);
}

bool Converter::valued(const Source& source) const {
  if (source.field == 0) return false;
  const std::string_view raw = message_.raw_value(*source.segment, source.field, source.repetition,
                                                  source.component, source.subcomponent);
  // '""' is v2's explicit null ("delete the value"): nothing to map.
  if (raw == "\"\"") return false;
  const Delimiters& d = message_.delimiters();
  for (const char c : raw) {
    if (c != d.component && c != d.subcomponent) return true;
  }
  return false;
}

bool Converter::holds(const std::vector<Condition>& when, const Source& row_source,
                      bool segment_level) const {
  for (const Condition& condition : when) {
    Source subject;
    if (segment_level) {
      subject = Source{row_source.segment, condition.position,
                       condition.position == row_source.field ? row_source.repetition : 1, 0, 0};
      if (condition.part > 0) subject = subject.child(condition.part);
    } else {
      subject = row_source.child(condition.position);
      if (condition.part > 0) subject = subject.child(condition.part);
    }
    const bool is_valued = valued(subject);
    const std::string value = is_valued ? text(subject) : std::string();
    const bool listed =
        std::find(condition.values.begin(), condition.values.end(), value) != condition.values.end();
    bool ok = true;
    switch (condition.op) {
      case Condition::Op::valued: ok = is_valued; break;
      case Condition::Op::not_valued: ok = !is_valued; break;
      case Condition::Op::equals:
      case Condition::Op::in: ok = is_valued && listed; break;
      case Condition::Op::not_equals:
      case Condition::Op::not_in: ok = !listed; break;
    }
    if (!ok) return false;
  }
  return true;
}

void Converter::apply_segment(const FieldMap& map, const Segment& segment, Made& made) {
  Node& resource = *made.root;
  for (const MapRow& row : map.rows) {
    const std::size_t repetitions = message_.repetitions(segment, row.from);
    if (repetitions == 1 && row.creates.empty() && !row.assign &&
        message_.raw_value(segment, row.from, 1, 0, 0) == "\"\"") {
      // v2's "delete the value". Identifiers are how the record is found:
      // they are never cleared.
      const std::string element = row.to.substr(0, row.to.find_first_of(".["));
      if (element != "identifier" &&
          std::find(made.nulled.begin(), made.nulled.end(), element) == made.nulled.end())
        made.nulled.push_back(element);
    }
    for (std::size_t r = 1; r <= repetitions; ++r) {
      const Source source{&segment, row.from, r, 0, 0};
      if (!valued(source) || !holds(row.when, source, true)) continue;
      apply_row(row, source, resolve(resource, row.to, "r" + std::to_string(r)));
    }
  }
}

void Converter::apply_row(const MapRow& row, const Source& source, Target target) {
  if (target.owner == nullptr && target.node == nullptr) return;  // a path this type does not have
  if (!row.creates.empty()) {
    // A resource of its own (a Practitioner from an XCN): made now, referred
    // to once the ids are known.
    const FieldMap* map = maps_.field_map(row.map);
    if (map == nullptr) return;
    if (!map->chain.empty()) return apply_chain(row, *map, source, target);
    auto root = std::make_unique<Node>();
    root->type = registry_.find_resource(row.creates);
    Node* created = root.get();
    made_.push_back(Made{row.creates, std::move(root), "", {}, false, std::nullopt});
    created_references_.emplace_back(target, made_.size() - 1);
    apply_datatype(*map, source, Target{nullptr, "", "", created});
    return;
  }
  if (row.assign) {
    write_leaf(target, *row.assign);
  } else if (!row.map.empty()) {
    if (const FieldMap* map = maps_.field_map(row.map)) apply_datatype(*map, source, target);
  } else {
    const std::string value = text(source);
    if (has_control_character(value)) return refuse(source, "a control character, which FHIR does not allow");
    if (std::string why = write_leaf(target, value); !why.empty()) warn(source, std::move(why), 102);
  }
  if (!row.vocabulary.empty() && !row.assign) apply_vocabulary(row.vocabulary, source, target);
}

void Converter::apply_datatype(const FieldMap& map, const Source& source, const Target& target) {
  // The table's paths start at the element the row names, except where
  // that element is a primitive and the paths go on into its owner (the
  // FN[HumanName] map used for HumanName.family writes "family").
  Target base = target;
  const bool paths_into_element =
      std::any_of(map.rows.begin(), map.rows.end(), [](const MapRow& row) { return !row.to.empty(); });
  if (paths_into_element && target.owner != nullptr && target.owner->type != nullptr) {
    const fhir::PropertyMatch match = registry_.property(*target.owner->type, target.name);
    if (match.type != nullptr && match.type->is_primitive()) base = Target{nullptr, "", "", target.owner};
  }
  for (const MapRow& row : map.rows) {
    const Source part = source.child(row.from);
    if (!valued(part) || !holds(row.when, source, false)) continue;
    std::string_view path = row.to;
    Target where = base;
    if (path.starts_with("[")) {
      // "[2].given": a second instance of the element itself (a second name).
      const std::size_t close = path.find(']');
      const std::string index(path.substr(1, close - 1));
      if (index != "1") {
        if (base.node != nullptr) continue;  // an existing element has one instance
        where.key += "#" + index;
      }
      path.remove_prefix(close + 1);
      if (path.starts_with(".")) path.remove_prefix(1);
    }
    if (!path.empty()) {
      Node* node = instance(where);
      if (node == nullptr) continue;
      where = resolve(*node, path, "");
    }
    apply_row(row, part, where);
  }
}

// A chain (PL: bed, room, floor, point of care, building, facility): one
// resource per instance the value has, each part of the next one present,
// and the element refers to the first (the most granular).
void Converter::apply_chain(const MapRow& row, const FieldMap& map, const Source& source,
                            const Target& target) {
  // Instance (1 the bed … 6 the facility) → index in made_, most granular first.
  std::map<int, std::size_t> made_at;
  for (const MapRow& part_row : map.rows) {
    const Source part = source.child(part_row.from);
    if (!valued(part) || !holds(part_row.when, source, false)) continue;
    // "[2].mode" (the maps check the form when they load).
    std::string_view path = part_row.to;
    const std::size_t close = path.find(']');
    const int number = std::stoi(std::string(path.substr(1, close - 1)));
    path.remove_prefix(close + 1);
    if (path.starts_with(".")) path.remove_prefix(1);
    const auto [at, fresh] = made_at.try_emplace(number, made_.size());
    if (fresh) {
      auto root = std::make_unique<Node>();
      root->type = registry_.find_resource(row.creates);
      made_.push_back(Made{row.creates, std::move(root), "", {}, true, std::nullopt});
    }
    Node& root = *made_[at->second].root;
    apply_row(part_row, part, path.empty() ? Target{nullptr, "", "", &root} : resolve(root, path, ""));
  }
  if (made_at.empty()) return;
  created_references_.emplace_back(target, made_at.begin()->second);
  for (auto part = made_at.begin(), whole = std::next(part); whole != made_at.end(); part = whole++) {
    made_[part->second].part_of = whole->second;
    created_references_.emplace_back(resolve(*made_[part->second].root, map.chain, ""), whole->second);
  }
}

// v2 names coding systems by HL7 table 0396 ("LN", "HL70001"); FHIR by URI.
std::string Converter::coding_system_uri(const std::string& name) const {
  if (name.find(':') != std::string::npos) return name;
  if (const Vocabulary* systems = maps_.vocabulary("CodingSystem")) {
    const auto found = systems->codes.find(name);
    if (found != systems->codes.end()) return found->second.code;
  }
  if (name.size() == 7 && name.starts_with("HL7") && all_digits(std::string_view(name).substr(3))) {
    return "http://terminology.hl7.org/CodeSystem/v2-" + name.substr(3);
  }
  return name;
}

// A value the message was taken without, for the ACK to say (ERR, severity
// W): where it is, and why, never what it is.
void Converter::warn(const Source& source, std::string reason, int code) {
  warnings_.push_back(ParseError{std::move(reason), sequence_of(*source.segment),
                                 std::string(source.segment->name()), source.field, code});
}

void Converter::refuse(const Source& source, const std::string& what) {
  if (refused_) return;
  const std::string name(source.segment->name());
  const std::size_t sequence = sequence_of(*source.segment);
  refused_ = ConvertError{name + "-" + std::to_string(source.field) + " holds " + what, 102, name, sequence,
                          source.field};
}

// The segment's place among the message's segments of its name (1 for the
// first PID), as an ERR location counts.
std::size_t Converter::sequence_of(const Segment& wanted) const {
  std::size_t sequence = 0;
  for (const Segment& segment : message_.segments()) {
    if (segment.name() == wanted.name()) ++sequence;
    if (&segment == &wanted) break;
  }
  return sequence;
}

std::string Converter::write_leaf(const Target& target, const std::string& value) {
  if (value.empty()) return {};
  Node* node = instance(target);
  if (node == nullptr || node->type == nullptr || !node->type->is_primitive()) return {};
  const fhir::Primitive primitive = node->type->primitive;
  std::string converted = value;
  if (is_time(primitive)) {
    const TimeKind kind = primitive == fhir::Primitive::date      ? TimeKind::date
                          : primitive == fhir::Primitive::instant ? TimeKind::instant
                          : primitive == fhir::Primitive::time    ? TimeKind::time
                                                                  : TimeKind::date_time;
    converted = fhir_time(value, kind, options_.default_offset);
  } else if (target.name == "system" && target.owner != nullptr && target.owner->type != nullptr &&
             (target.owner->type->name == "Coding" || target.owner->type->name == "Quantity")) {
    converted = util::percent_encode_whitespace(coding_system_uri(value));
  } else if (primitive == fhir::Primitive::uri || primitive == fhir::Primitive::url ||
             primitive == fhir::Primitive::canonical) {
    converted = util::percent_encode_whitespace(value);
  } else if (primitive == fhir::Primitive::boolean) {
    converted = value == "Y" || value == "true" ? "true" : value == "N" || value == "false" ? "false" : "";
  } else if (node->type->json_kind == fhir::JsonKind::number) {
    converted = json_number(value);
  }
  node->value = converted;
  if (!converted.empty()) return {};
  return "not a valid " + node->type->name + " for " + target.name + "; left out";
}

void Converter::apply_vocabulary(const std::string& name, const Source& source, const Target& target) {
  const Vocabulary* vocabulary = maps_.vocabulary(name);
  if (vocabulary == nullptr) return;
  const std::string code = text(source.component == 0 ? source.child(1) : source);
  const auto found = vocabulary->codes.find(code);
  Node* node = instance(target);
  if (found == vocabulary->codes.end()) {
    // An unlisted code stays as v2 wrote it in a Coding; a FHIR code it
    // would make invalid (Patient.gender "X"), so there it is left out.
    if (node != nullptr && node->type != nullptr && node->type->primitive == fhir::Primitive::code &&
        !node->value.empty()) {
      node->value.clear();
      warn(source, "a code " + name + " does not list; " + target.name + " left out", 103);
    }
    return;
  }
  const Coding& coding = found->second;
  if (node == nullptr || node->type == nullptr) return;
  if (node->type->is_primitive()) {
    node->value = coding.code;
    // A Coding's code from a vocabulary (CX.5 as Identifier.type's code):
    // the code means something only with the system the map names.
    const bool in_coding = target.name == "code" && target.owner != nullptr &&
                           target.owner->type != nullptr && target.owner->type->name == "Coding";
    if (in_coding && !coding.system.empty())
      if (Node* system = slot(*target.owner, "system", "[1]"); system != nullptr && system->value.empty())
        system->value = coding.system;
    return;
  }
  Node* coding_node = node;
  if (node->type->name == "CodeableConcept") coding_node = slot(*node, "coding", "[1]");
  if (coding_node == nullptr || coding_node->type == nullptr || coding_node->type->name != "Coding") return;
  const std::pair<const char*, const std::string*> parts[] = {
      {"system", &coding.system}, {"code", &coding.code}, {"display", &coding.display}};
  for (const auto& [element, value] : parts) {
    if (value->empty()) continue;
    if (Node* leaf = slot(*coding_node, element, "[1]")) leaf->value = *value;
  }
}

// The first identifier's system and value, when the resource has one.
std::string first_identifier(const Node& resource) {
  for (const auto& [name, child] : resource.children) {
    if (name != "identifier") continue;
    std::string system, value;
    for (const auto& [part, leaf] : child->children) {
      if (part == "system") system = leaf->value;
      if (part == "value") value = leaf->value;
    }
    if (!value.empty()) return system + "|" + value;
  }
  return {};
}

// What tells a resource apart: its first identifier, and for a part of a
// chain the identity of what it is part of too (bed 1 of room 401 is not
// bed 1 of room 402).
std::string Converter::identity(const Made& made) const {
  std::string identifier = first_identifier(*made.root);
  if (!identifier.empty() && made.part_of) {
    const std::string whole = identity(made_[*made.part_of]);
    if (!whole.empty()) identifier += " in " + whole;
  }
  return identifier;
}

// A part of a chain whose identifier has no system gets one that names
// what it is part of ("urn:hl7v2:location:GH/4E/401" for bed 1 there; the
// outermost "urn:hl7v2:location"): a bed or room code is unique only within
// its ward, and REST upserts find a resource by its identifier.
void Converter::qualify_chain_identifiers() {
  std::vector<std::string> systems(made_.size());
  for (std::size_t i = 0; i < made_.size(); ++i) {
    if (!made_[i].chained) continue;
    std::string kind = made_[i].type;  // "location"
    kind[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(kind[0])));
    std::string path;  // from the outermost in
    for (std::optional<std::size_t> at = made_[i].part_of; at; at = made_[*at].part_of) {
      const std::string identifier = first_identifier(*made_[*at].root);
      if (identifier.empty()) continue;
      const std::string value = util::percent_encode(identifier.substr(identifier.find('|') + 1));
      path.insert(0, path.empty() ? value : value + "/");
    }
    systems[i] = "urn:hl7v2:" + kind + (path.empty() ? "" : ":" + path);
  }
  for (std::size_t i = 0; i < made_.size(); ++i) {
    if (systems[i].empty()) continue;
    for (auto& [name, child] : made_[i].root->children) {
      if (name != "identifier") continue;
      const bool has_system =
          std::any_of(child->children.begin(), child->children.end(),
                      [](const auto& part) { return part.first == "system" && !part.second->value.empty(); });
      if (!has_system) {
        if (Node* system = slot(*child, "system", "[chain]")) system->value = systems[i];
      }
      break;  // the first identifier: the one upserts go by
    }
  }
}

// The first coding of a resource's code, as system|code.
std::string first_code(const Node& resource) {
  const auto child = [](const Node& node, std::string_view name) -> const Node* {
    for (const auto& [child_name, child] : node.children)
      if (child_name == name) return child.get();
    return nullptr;
  };
  const Node* code = child(resource, "code");
  const Node* coding = code != nullptr ? child(*code, "coding") : nullptr;
  if (coding == nullptr) return {};
  const Node* system = child(*coding, "system");
  const Node* value = child(*coding, "code");
  return (system != nullptr ? system->value : "") + "|" + (value != nullptr ? value->value : "");
}

// A result (an Observation from an OBX) has no identifier of its own before
// v2.7's OBX-21. It is told apart as the n-th result with its code in the
// report it belongs to (the latest DiagnosticReport before it), so that a
// corrected or repeated report updates its results instead of adding more.
std::string Converter::result_identity(std::size_t index) const {
  if (made_[index].type != "Observation") return {};
  std::size_t report = index;
  while (report > 0 && made_[report - 1].type != "DiagnosticReport") --report;
  if (report == 0) return {};
  const std::string of_report = identity(made_[report - 1]);
  if (of_report.empty()) return {};
  const std::string code = first_code(*made_[index].root);
  std::size_t earlier = 0;
  for (std::size_t i = report; i < index; ++i)
    if (made_[i].type == "Observation" && first_code(*made_[i].root) == code) ++earlier;
  return "result " + code + " #" + std::to_string(earlier + 1) + " of " + of_report;
}

std::string Converter::stable_id(const Made& made, std::size_t ordinal) const {
  std::string identifier = identity(made);
  if (identifier.empty()) identifier = result_identity(ordinal);
  if (!identifier.empty()) return util::stable_uuid(made.type + "|" + identifier);
  return util::stable_uuid(bundle_id_ + "|" + made.type + "|" + std::to_string(ordinal));
}

// Each element a field nulled that the message gives no value otherwise
// (another field, another segment) is named in an extension of the
// resource, for a merge to clear it.
void Converter::mark_nulled(Made& made) {
  for (const std::string& element : made.nulled) {
    const bool valued = std::any_of(
        made.root->children.begin(), made.root->children.end(),
        [&](const auto& child) { return child.first == element && worth_writing(*child.second); });
    if (valued) continue;
    Node* extension = slot(*made.root, "extension", "[v2-null " + element + "]");
    if (extension == nullptr) continue;
    slot(*extension, "url", "[1]")->value = std::string(v2_null_extension);
    slot(*extension, "valueString", "[1]")->value = element;
  }
}

// A primitive with a value, or an element with something worth writing in
// it and all that FHIR requires of it: an element missing a required part
// (a location without its Location, an extension without its url) is left
// out whole.
bool Converter::worth_writing(const Node& node) const {
  if (!node.worth) node.worth = judge_worth(node);
  return *node.worth;
}

bool Converter::judge_worth(const Node& node) const {
  if (node.type->is_primitive()) return !node.value.empty();
  const auto any_named = [&](const fhir::ElementInfo* element) {
    for (const auto& [name, child] : node.children) {
      const bool named =
          element == nullptr || name == element->name || (element->choice && name.starts_with(element->name));
      if (named && worth_writing(*child)) return true;
    }
    return false;
  };
  if (!any_named(nullptr)) return false;
  for (const TypeInfo* level = node.type; level != nullptr; level = level->base) {
    for (const fhir::ElementInfo& element : level->elements) {
      if (element.min > 0 && !any_named(&element)) return false;
    }
  }
  return true;
}

// Writes a node's children as the members of a JSON object (without the
// braces), in the order first written, repeating elements as arrays.
void Converter::write_object(std::string& out, const Node& node) const {
  for (std::size_t i = 0; i < node.children.size(); ++i) {
    const std::string& name = node.children[i].first;
    bool seen = false;
    for (std::size_t k = 0; k < i && !seen; ++k) seen = node.children[k].first == name;
    if (seen) continue;
    std::vector<const Node*> values;
    for (std::size_t k = i; k < node.children.size(); ++k) {
      if (node.children[k].first == name && worth_writing(*node.children[k].second)) {
        values.push_back(node.children[k].second.get());
      }
    }
    if (values.empty()) continue;
    const bool repeats = values.front()->element != nullptr && values.front()->element->repeats();
    const std::size_t count = repeats ? values.size() : 1;  // a single element keeps the first
    if (out.back() != '{') out += ',';
    fhir::append_json_string(out, name);
    out += repeats ? ":[" : ":";
    for (std::size_t v = 0; v < count; ++v) {
      if (v > 0) out += ',';
      const Node& value = *values[v];
      if (!value.type->is_primitive()) {
        out += '{';
        write_object(out, value);
        out += '}';
      } else if (value.type->json_kind == fhir::JsonKind::string) {
        fhir::append_json_string(out, value.value);
      } else {
        out += value.value;  // a number or boolean, checked when written
      }
    }
    if (repeats) out += ']';
  }
}

std::optional<std::string> Converter::run(ConvertError& error) {
  // MSH-9.3 names the structure; without it (v2.3), or when it names one
  // courier has no map for, the type and trigger choose.
  std::string structure = message_.header(9, 3);
  const MessageMap* message_map = structure.empty() ? nullptr : maps_.message(structure);
  if (message_map == nullptr) {
    structure = maps_.structure_for(message_.message_type(), message_.trigger_event());
    message_map = maps_.message(structure);
  }
  if (message_map == nullptr) {
    error = ConvertError{"courier has no map for message structure " + structure, 200, "MSH", 1, 9};
    return std::nullopt;
  }
  if (const Structure* grammar = maps_.structure(structure)) {
    if (const std::optional<ParseError> misfit = check_structure(message_, *grammar)) {
      error = ConvertError{misfit->reason, misfit->code, misfit->segment_name, misfit->segment_index, 0};
      return std::nullopt;
    }
  }
  const std::string sender = message_.header(3, 1) + "|" + message_.header(4, 1);
  bundle_id_ = util::stable_uuid("hl7v2 bundle|" + sender + "|" + message_.control_id());

  const Segment* previous = nullptr;
  std::map<std::string, std::size_t> latest;  // resource type → index in made_
  std::vector<std::pair<std::size_t, std::pair<std::string, std::string>>> links;  // from, (element, type)
  std::vector<std::pair<std::size_t, std::pair<std::string, std::size_t>>>
      back_links;  // owner, (element, to)
  for (const Segment& segment : message_.segments()) {
    for (const SegmentRule& rule : message_map->rules) {
      if (rule.segment != segment.name()) continue;
      const FieldMap* map = maps_.field_map(rule.map);
      if (map == nullptr) continue;
      std::size_t index = made_.size();
      const auto existing = latest.find(map->resource);
      const bool merge = !rule.merge_after.empty() && previous != nullptr &&
                         previous->name() == rule.merge_after && existing != latest.end() &&
                         made_[existing->second].made_by == rule.merge_after;
      // One Patient per message (PID, PD1, PV1 all describe it), unless
      // the rule makes another (MRG: the record merged away).
      const bool single = map->resource == "Patient" && existing != latest.end() && !rule.always_new;
      if (merge || single) {
        index = existing->second;
      } else {
        auto root = std::make_unique<Node>();
        root->type = registry_.find_resource(map->resource);
        made_.push_back(
            Made{map->resource, std::move(root), std::string(segment.name()), {}, false, std::nullopt});
      }
      apply_segment(*map, segment, made_[index]);
      if (const auto implied = rule.set_by_event.find(message_.trigger_event());
          implied != rule.set_by_event.end()) {
        for (const auto& [path, value] : implied->second)
          write_leaf(resolve(*made_[index].root, path, "r1"), value);
      }
      made_[index].defaults.insert(made_[index].defaults.end(), rule.defaults.begin(), rule.defaults.end());
      latest[map->resource] = index;
      for (const auto& link : rule.links) links.push_back({index, link});
      for (const auto& [type, element] : rule.linked_from) {
        const auto owner = latest.find(type);
        if (owner != latest.end() && owner->second != index)
          back_links.push_back({owner->second, {element, index}});
      }
    }
    previous = &segment;
  }

  if (refused_) {
    error = std::move(*refused_);
    return std::nullopt;
  }
  for (Made& made : made_) {
    for (const auto& [path, value] : made.defaults) {
      const Target target = resolve(*made.root, path, "r1");
      const Node* existing = instance(target);
      if (existing != nullptr && existing->value.empty() && existing->children.empty())
        write_leaf(target, value);
    }
  }

  std::vector<std::string> ids;
  for (std::size_t i = 0; i < made_.size(); ++i) ids.push_back(stable_id(made_[i], i));
  qualify_chain_identifiers();
  // The same practitioner named twice in a message is one resource: it is
  // written once (the first time), and both references point at it.
  std::vector<bool> first_of_id(made_.size(), true);
  for (std::size_t i = 0; i < made_.size(); ++i) {
    for (std::size_t k = 0; k < i && first_of_id[i]; ++k) first_of_id[i] = ids[k] != ids[i];
  }
  auto reference = [&](std::size_t index) { return "urn:uuid:" + ids[index]; };
  // Links point at the latest resource of the type made before the end of
  // the message; a type the message does not have is left out.
  for (const auto& [from, link] : links) {
    const auto& [element, type] = link;
    std::size_t to = made_.size();
    for (std::size_t i = 0; i < made_.size(); ++i) {
      if (made_[i].type == type && i != from) to = i;
      if (i >= from && to < made_.size()) break;
    }
    if (to == made_.size()) continue;
    if (Node* ref = instance(resolve(*made_[from].root, element, "r1"))) {
      if (Node* leaf = slot(*ref, "reference", "[1]")) leaf->value = reference(to);
    }
  }
  for (const auto& [target, index] : created_references_) {
    if (Node* ref = instance(target)) {
      if (Node* leaf = slot(*ref, "reference", "[1]")) leaf->value = reference(index);
    }
  }
  for (const auto& [owner, link] : back_links) {
    const auto& [element, to] = link;
    if (Node* ref = slot(*made_[owner].root, element, "[back" + std::to_string(to) + "]")) {
      if (Node* leaf = slot(*ref, "reference", "[1]")) leaf->value = reference(to);
    }
  }

  for (Made& made : made_) mark_nulled(made);

  // The Bundle, written directly: MessageHeader first, then the resources.
  const auto member = [](std::string& out, std::string_view name, std::string_view value) {
    if (out.back() != '{') out += ',';
    fhir::append_json_string(out, name);
    out += ':';
    fhir::append_json_string(out, value);
  };
  std::string out = "{";
  member(out, "resourceType", "Bundle");
  member(out, "id", bundle_id_);
  out += R"(,"identifier":{)";
  member(out, "value", message_.control_id());
  out += '}';
  member(out, "type", "message");
  const std::string timestamp = fhir_time(message_.header(7, 1), TimeKind::instant, options_.default_offset);
  if (!timestamp.empty()) member(out, "timestamp", timestamp);
  const std::string header_id = util::stable_uuid("hl7v2 header|" + sender + "|" + message_.control_id());
  out += R"(,"entry":[{)";
  member(out, "fullUrl", "urn:uuid:" + header_id);
  out += R"(,"resource":{)";
  member(out, "resourceType", "MessageHeader");
  member(out, "id", header_id);
  if (const char* wanted = options_.response_request ? response_request(ack_request(message_)) : nullptr) {
    out += R"(,"extension":[{)";
    member(out, "url", "http://hl7.org/fhir/StructureDefinition/messageheader-response-request");
    member(out, "valueCode", wanted);
    out += "}]";
  }
  out += R"(,"eventCoding":{)";
  member(out, "system", "http://terminology.hl7.org/CodeSystem/v2-0003");
  member(out, "code", message_.trigger_event());
  out += '}';
  const std::string destination_name = message_.header(5, 1);
  if (!destination_name.empty()) {
    out += R"(,"destination":[{)";
    member(out, "name", destination_name);
    // Application names often hold spaces ("GHH LAB"), which a FHIR url cannot.
    member(out, "endpoint", "urn:hl7v2:" + util::percent_encode(destination_name));
    out += "}]";
  }
  const std::string source_name = message_.header(3, 1);
  out += R"(,"source":{)";
  if (!source_name.empty()) member(out, "name", source_name);
  member(out, "endpoint",
         "urn:hl7v2:" + (source_name.empty() ? std::string("unknown") : util::percent_encode(source_name)));
  out += '}';
  if (!made_.empty()) {
    out += R"(,"focus":[)";
    for (std::size_t i = 0; i < made_.size(); ++i) {
      if (!first_of_id[i]) continue;
      out += out.back() == '[' ? "{" : ",{";
      member(out, "reference", reference(i));
      out += '}';
    }
    out += ']';
  }
  out += "}}";
  for (std::size_t i = 0; i < made_.size(); ++i) {
    if (!first_of_id[i]) continue;
    out += ",{";
    member(out, "fullUrl", reference(i));
    out += R"(,"resource":{)";
    member(out, "resourceType", made_[i].type);
    member(out, "id", ids[i]);
    write_object(out, *made_[i].root);
    out += "}}";
  }
  out += "]}";
  return out;
}

}  // namespace

std::string fhir_time(std::string_view v2, TimeKind kind, const std::string& default_offset) {
  std::string_view digits = v2;
  std::string_view fraction, zone;
  const std::size_t zone_at = v2.find_first_of("+-");
  if (zone_at != std::string_view::npos) {
    zone = v2.substr(zone_at);
    digits = v2.substr(0, zone_at);
  }
  if (const std::size_t dot = digits.find('.'); dot != std::string_view::npos) {
    fraction = digits.substr(dot + 1);
    digits = digits.substr(0, dot);
  }
  if (!all_digits(digits) || (!fraction.empty() && !all_digits(fraction)) ||
      (!zone.empty() && (zone.size() != 5 || !all_digits(zone.substr(1))))) {
    return {};
  }
  if (kind == TimeKind::time) {
    if (digits.size() < 2 || digits.size() % 2 != 0 || digits.size() > 6) return {};
    std::string out = std::string(digits.substr(0, 2)) + ":" +
                      (digits.size() >= 4 ? std::string(digits.substr(2, 2)) : "00") + ":" +
                      (digits.size() >= 6 ? std::string(digits.substr(4, 2)) : "00");
    return out;
  }
  if (digits.size() < 4 || digits.size() % 2 != 0 || digits.size() > 14) return {};
  auto number = [&](std::size_t at) { return std::stoi(std::string(digits.substr(at, 2))); };
  const int year = std::stoi(std::string(digits.substr(0, 4)));
  const int month = digits.size() >= 6 ? number(4) : 1;
  const int day = digits.size() >= 8 ? number(6) : 1;
  const int hour = digits.size() >= 10 ? number(8) : 0;
  const int minute = digits.size() >= 12 ? number(10) : 0;
  const int second = digits.size() >= 14 ? number(12) : 0;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return {};
  std::string out(digits.substr(0, 4));
  const bool has_time = digits.size() > 8 || kind == TimeKind::instant;
  if (kind == TimeKind::date || !has_time) {
    if (kind == TimeKind::instant) return {};
    if (digits.size() >= 6) out += "-" + two(month);
    if (digits.size() >= 8) out += "-" + two(day);
    return out;
  }
  out += "-" + two(month) + "-" + two(day) + "T" + two(hour) + ":" + two(minute) + ":" + two(second);
  if (!fraction.empty() && digits.size() == 14) out += "." + std::string(fraction);
  if (!zone.empty()) {
    out += std::string(zone.substr(0, 3)) + ":" + std::string(zone.substr(3, 2));
  } else if (!default_offset.empty()) {
    out += default_offset;
  } else {
    out += host_offset(year, month, day, hour, minute);
  }
  return out;
}

std::optional<std::string> to_fhir(const Message& message, const MapSet& maps, const ConvertOptions& options,
                                   ConvertError& error, std::vector<ParseError>* warnings) {
  Converter converter(message, maps, options);
  std::optional<std::string> bundle = converter.run(error);
  if (warnings != nullptr) *warnings = converter.take_warnings();
  return bundle;
}

}  // namespace courier::hl7v2
