// The one in-memory form of a FHIR resource: a tree of elements, each knowing
// its definition and concrete type. Both codecs read into it and write from
// it; validation and FHIRPath walk it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/fhir/type_registry.h"

namespace courier::fhir {

class Element {
 public:
  // `info` is the definition in the parent's type (null for a root resource);
  // `type` is the concrete type: for a choice the chosen type, for a
  // resource slot (contained, entry.resource) the actual resource type.
  Element(const ElementInfo* info, const TypeInfo* type) : info_(info), type_(type) {}

  // A new root resource of the named type; throws std::invalid_argument for
  // an unknown resource type.
  static Element resource(std::string_view type_name, const TypeRegistry& registry = TypeRegistry::r4());

  const ElementInfo* info() const { return info_; }
  const TypeInfo& type() const { return *type_; }
  // The element's name ("value" for valueQuantity); a root's resource type.
  std::string_view name() const { return info_ != nullptr ? std::string_view(info_->name) : type_->name; }
  bool is_resource() const { return type_->is_resource(); }

  bool has_value() const { return has_value_; }
  const std::string& value() const { return value_; }
  void set_value(std::string value) {
    value_ = std::move(value);
    has_value_ = true;
  }

  std::vector<Element>& children() { return children_; }
  const std::vector<Element>& children() const { return children_; }

  // Where the element began in its source text (0 when built in memory).
  std::uint32_t offset() const { return offset_; }
  void set_offset(std::size_t offset) { offset_ = static_cast<std::uint32_t>(offset); }

  // The first child with that element name, or null.
  const Element* child(std::string_view name) const;
  Element* child(std::string_view name);
  // The value of the first child with that name, or "" when absent.
  std::string_view child_value(std::string_view name) const;
  std::vector<const Element*> children_named(std::string_view name) const;

  // Appends a child by element name. For a choice or a resource slot the
  // concrete type must be given; throws std::invalid_argument when the name
  // or type does not fit this element's type.
  Element& add(std::string_view name, std::string_view type_name = {},
               const TypeRegistry& registry = TypeRegistry::r4());
  // Appends a primitive child with a value.
  Element& add_value(std::string_view name, std::string value, std::string_view type_name = {},
                     const TypeRegistry& registry = TypeRegistry::r4());

  // The child with that (non-repeating) element name; added in definition
  // order when absent. References to other children do not survive an add.
  Element& child_or_add(std::string_view name);

  // Puts the children in definition order, keeping the order of repeats.
  void sort_children();
  // After sort_children: removes all but the first child of each element
  // that does not repeat, returning those elements. A reader reports them;
  // removing them keeps the tree writable (JSON has one value per key).
  std::vector<const ElementInfo*> drop_extra_singles();

 private:
  const ElementInfo* info_;
  const TypeInfo* type_;
  std::string value_;
  bool has_value_ = false;
  std::uint32_t offset_ = 0;
  std::vector<Element> children_;
};

}  // namespace courier::fhir
