// The v2 → FHIR maps as data (schemas/hl7v2/maps): which segments of a
// message structure become which resources (messages/), what each field of a
// segment becomes (segments/), what each component of a data type becomes
// (datatypes/), and how v2 codes become FHIR codes (vocabulary/). The segment,
// data type and vocabulary maps are generated from the V2-to-FHIR IG's tables
// by schemas/hl7v2/generate_maps.py; the message maps are written by hand.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace courier::hl7v2 {

// "PID-13.2 not-valued", "XTN.3 in [Internet, X.400]".
struct Condition {
  enum class Op { valued, not_valued, equals, not_equals, in, not_in };
  std::size_t position = 0;  // field (segment maps) or component (data type maps)
  std::size_t part = 0;      // component (segment maps) or sub-component, 0: the whole
  Op op = Op::valued;
  std::vector<std::string> values;
};

// One row: the value at `from` becomes `to` (a FHIR path relative to the
// resource or to the data type's element), through a data type map, a
// vocabulary, or as a fixed value.
struct MapRow {
  std::size_t from = 0;
  std::string to;
  std::string map;         // a data type map's name, "" for a primitive value
  std::string vocabulary;  // a vocabulary's name, or ""
  std::optional<std::string> assign;
  std::vector<Condition> when;
  // The value makes a resource of this type of its own (a Practitioner
  // from an XCN, by `map`), which the element at `to` refers to.
  std::string creates;
};

struct FieldMap {
  std::string name;      // "PID[Patient]", "XPN[HumanName]"
  std::string resource;  // segment maps: the resource type made
  std::string context;   // data type maps: the FHIR type the paths start from, when known
  // A data type map that makes a chain of resources (PL: bed, room, …,
  // facility): each instance its rows number ("[2].mode") is a resource of
  // its own, part of the next one made through this element ("partOf");
  // the referring element names the first one made. "" for other maps.
  std::string chain;
  std::vector<MapRow> rows;
};

struct Coding {
  std::string system;
  std::string code;
  std::string display;
};

struct Vocabulary {
  std::string name;
  std::string v2_table;  // "HL70001"
  std::map<std::string, Coding> codes;
};

// What a segment of a message structure becomes.
struct SegmentRule {
  std::string segment;  // "PID"
  std::string map;      // "PID[Patient]"
  // Merge into the resource of the same type that the segment just before
  // (named here) made, rather than make a new one: OBR after ORC.
  std::string merge_after;
  // Always a new resource, even of a type the message has one of (MRG's
  // Patient beside PID's).
  bool always_new = false;
  // References from this resource to the latest resource of a type:
  // {subject: Patient}.
  std::vector<std::pair<std::string, std::string>> links;
  // References to this resource from the latest resource of a type:
  // {DiagnosticReport: result}.
  std::vector<std::pair<std::string, std::string>> linked_from;
  // Values for elements FHIR requires that the message left empty:
  // {status: unknown}.
  std::vector<std::pair<std::string, std::string>> defaults;
  // Values the event itself implies, whatever the segment says, by trigger
  // event: {A03: {status: finished}} (a discharge ends the encounter).
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> set_by_event;
};

// A message structure's segment grammar (schemas/hl7v2/maps/structures):
// segments and groups in order, each with how often it may occur.
struct StructureItem {
  std::string segment;              // a segment, or
  std::string group;                // a group of `items`, or
  std::vector<std::string> choice;  // one segment of these
  int min = 1;
  int max = 1;  // -1: repeats
  std::vector<StructureItem> items;
};

struct Structure {
  std::string name;
  std::vector<StructureItem> items;
};

struct MessageMap {
  std::string structure;              // "ADT_A01"
  std::vector<std::string> triggers;  // the events that use it when MSH-9.3 is empty
  std::vector<SegmentRule> rules;
};

class MapSet {
 public:
  // Loads every map under a folder; throws std::runtime_error naming the
  // file and what is wrong.
  static MapSet load(const std::string& folder);

  const MessageMap* message(const std::string& structure) const;
  // The structure a message type and trigger use ("ADT", "A04" → ADT_A01).
  std::string structure_for(const std::string& type, const std::string& trigger) const;
  const FieldMap* field_map(const std::string& name) const;
  const Vocabulary* vocabulary(const std::string& name) const;
  const Structure* structure(const std::string& name) const;
  std::size_t size() const { return messages_.size() + maps_.size() + vocabularies_.size(); }

 private:
  std::map<std::string, MessageMap> messages_;
  std::map<std::string, std::string> structure_by_event_;  // "ADT^A04" → ADT_A01
  std::map<std::string, FieldMap> maps_;
  std::map<std::string, Vocabulary> vocabularies_;
  std::map<std::string, Structure> structures_;
};

}  // namespace courier::hl7v2
