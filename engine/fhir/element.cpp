#include "engine/fhir/element.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace courier::fhir {

Element Element::resource(std::string_view type_name, const TypeRegistry& registry) {
  const TypeInfo* type = registry.find_resource(type_name);
  if (type == nullptr || type->abstract)
    throw std::invalid_argument("unknown resource type " + std::string(type_name));
  return Element(nullptr, type);
}

const Element* Element::child(std::string_view name) const {
  for (const Element& c : children_)
    if (c.name() == name) return &c;
  return nullptr;
}

Element* Element::child(std::string_view name) {
  return const_cast<Element*>(std::as_const(*this).child(name));
}

std::string_view Element::child_value(std::string_view name) const {
  const Element* c = child(name);
  return c != nullptr && c->has_value() ? std::string_view(c->value()) : std::string_view();
}

std::vector<const Element*> Element::children_named(std::string_view name) const {
  std::vector<const Element*> out;
  for (const Element& c : children_)
    if (c.name() == name) out.push_back(&c);
  return out;
}

Element& Element::add(std::string_view name, std::string_view type_name, const TypeRegistry& registry) {
  const ElementInfo* found = nullptr;
  for (const ElementInfo& e : type_->elements)
    if (e.name == name) found = &e;
  if (found == nullptr) throw std::invalid_argument(type_->name + " has no element " + std::string(name));
  const TypeInfo* type = found->types.size() == 1 ? found->types.front() : nullptr;
  if (!type_name.empty()) {
    const TypeInfo* wanted = registry.find(type_name);
    const bool fits = wanted != nullptr && std::any_of(found->types.begin(), found->types.end(),
                                                       [&](const TypeInfo* t) { return wanted->is_a(*t); });
    if (!fits)
      throw std::invalid_argument(type_->name + "." + std::string(name) + " cannot hold " +
                                  std::string(type_name));
    type = wanted;
  }
  if (type == nullptr || type->abstract)
    throw std::invalid_argument(type_->name + "." + std::string(name) + " needs a concrete type");
  return children_.emplace_back(found, type);
}

Element& Element::add_value(std::string_view name, std::string value, std::string_view type_name,
                            const TypeRegistry& registry) {
  Element& e = add(name, type_name, registry);
  e.set_value(std::move(value));
  return e;
}

Element& Element::child_or_add(std::string_view name) {
  if (Element* existing = child(name)) return *existing;
  add(name);
  sort_children();
  return *child(name);
}

void Element::sort_children() {
  auto index = [](const Element& e) { return e.info_ != nullptr ? e.info_->index : 0; };
  if (std::is_sorted(children_.begin(), children_.end(),
                     [&](const Element& a, const Element& b) { return index(a) < index(b); }))
    return;
  std::stable_sort(children_.begin(), children_.end(),
                   [&](const Element& a, const Element& b) { return index(a) < index(b); });
}

std::vector<const ElementInfo*> Element::drop_extra_singles() {
  std::vector<const ElementInfo*> dropped;
  for (std::size_t i = 1; i < children_.size();) {
    const ElementInfo* info = children_[i].info_;
    if (info != nullptr && info == children_[i - 1].info_ && !info->repeats()) {
      if (dropped.empty() || dropped.back() != info) dropped.push_back(info);
      children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  return dropped;
}

}  // namespace courier::fhir
