// FHIR R4 type metadata: which elements each type has, in definition order,
// their types and cardinalities. Loaded once from the generated
// schemas/fhir/r4/types.json, which is compiled into the binary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace courier::fhir {

struct TypeInfo;

enum class TypeKind : std::uint8_t { primitive, complex, resource, backbone };

// Which primitive a type is, so that checks need not compare names.
enum class Primitive : std::uint8_t {
  none,
  boolean,
  integer,
  positive_int,
  unsigned_int,
  decimal,
  date,
  date_time,
  instant,
  time,
  string,
  code,
  id,
  markdown,
  uri,
  url,
  canonical,
  oid,
  uuid,
  base64_binary,
  xhtml
};

// How a primitive's value is written in JSON.
enum class JsonKind : std::uint8_t { string, number, boolean };

struct ElementInfo {
  std::string name;                    // without "[x]" for choices
  std::vector<const TypeInfo*> types;  // one, or several for a choice
  std::vector<std::string> targets;    // Reference/canonical target types
  std::uint32_t min = 0;
  std::int32_t max = 1;     // -1: unbounded
  std::uint16_t index = 0;  // position in the owning type's element list
  bool choice = false;
  bool xml_attribute = false;
  bool summary = false;
  bool modifier = false;

  bool repeats() const { return max != 1; }
};

struct TypeInfo {
  std::string name;  // "Patient", "string", or a backbone path "Patient.contact"
  TypeKind kind = TypeKind::complex;
  JsonKind json_kind = JsonKind::string;  // primitives only
  Primitive primitive = Primitive::none;
  const TypeInfo* base = nullptr;
  bool abstract = false;
  std::vector<ElementInfo> elements;
  std::uint32_t number = 0;  // its place in its registry, which finds its properties by it

  bool is_primitive() const { return kind == TypeKind::primitive; }
  bool is_resource() const { return kind == TypeKind::resource; }
  // True when this type is `other` or derives from it.
  bool is_a(const TypeInfo& other) const;
  bool is_a(std::string_view other) const;
};

// A property name as it appears on the wire ("valueQuantity", "status"),
// resolved against a type.
struct PropertyMatch {
  const ElementInfo* element = nullptr;
  const TypeInfo* type = nullptr;  // the concrete type (for choices, the suffix)
};

class TypeRegistry {
 public:
  // The registry built from the compiled-in R4 metadata.
  static const TypeRegistry& r4();
  // Builds a registry from the text of a types.json document.
  static std::unique_ptr<TypeRegistry> from_json(std::string_view text);

  const TypeInfo* find(std::string_view name) const;
  const TypeInfo* find_resource(std::string_view name) const;
  // Looks up a wire name ("valueQuantity") in a type's elements.
  PropertyMatch property(const TypeInfo& type, std::string_view wire_name) const;
  // Closest element names of `type` to a misspelt `wire_name`, for messages.
  std::string suggest(const TypeInfo& type, std::string_view wire_name) const;
  const std::string& fhir_version() const { return fhir_version_; }
  std::vector<const TypeInfo*> resource_types() const;

 private:
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using PropertyTable = std::unordered_map<std::string, PropertyMatch, NameHash, std::equal_to<>>;
  const PropertyTable* properties(const TypeInfo& type) const;

  std::string fhir_version_;
  std::vector<std::unique_ptr<TypeInfo>> storage_;
  std::unordered_map<std::string, const TypeInfo*, NameHash, std::equal_to<>> by_name_;
  // By TypeInfo::number: a lookup per JSON member read, so no hashing of the type.
  std::vector<PropertyTable> properties_;
};

// The wire name of an element holding a value of `type`: "value" +
// "Quantity" gives "valueQuantity" for a choice, the plain name otherwise.
std::string wire_name(const ElementInfo& element, const TypeInfo& type);

}  // namespace courier::fhir
