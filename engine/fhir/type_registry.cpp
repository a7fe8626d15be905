#include "engine/fhir/type_registry.h"

#include <algorithm>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "engine/util/text.h"

// The generated metadata, placed in the binary by embedded_types.cpp.
extern "C" const char courier_r4_types_begin[];
extern "C" const char courier_r4_types_end[];

namespace courier::fhir {

namespace {

JsonKind json_kind_of(const TypeInfo& type) {
  if (type.is_a("boolean")) return JsonKind::boolean;
  if (type.is_a("integer") || type.is_a("decimal")) return JsonKind::number;
  return JsonKind::string;
}

Primitive primitive_of(std::string_view name) {
  static const std::pair<std::string_view, Primitive> table[] = {
      {"boolean", Primitive::boolean},
      {"integer", Primitive::integer},
      {"positiveInt", Primitive::positive_int},
      {"unsignedInt", Primitive::unsigned_int},
      {"decimal", Primitive::decimal},
      {"date", Primitive::date},
      {"dateTime", Primitive::date_time},
      {"instant", Primitive::instant},
      {"time", Primitive::time},
      {"string", Primitive::string},
      {"code", Primitive::code},
      {"id", Primitive::id},
      {"markdown", Primitive::markdown},
      {"uri", Primitive::uri},
      {"url", Primitive::url},
      {"canonical", Primitive::canonical},
      {"oid", Primitive::oid},
      {"uuid", Primitive::uuid},
      {"base64Binary", Primitive::base64_binary},
      {"xhtml", Primitive::xhtml},
  };
  for (const auto& [n, p] : table)
    if (n == name) return p;
  throw std::runtime_error("types.json: unknown primitive type " + std::string(name));
}

std::string capitalised(std::string_view s) {
  std::string out(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

}  // namespace

bool TypeInfo::is_a(const TypeInfo& other) const {
  for (const TypeInfo* t = this; t != nullptr; t = t->base)
    if (t == &other) return true;
  return false;
}

bool TypeInfo::is_a(std::string_view other) const {
  for (const TypeInfo* t = this; t != nullptr; t = t->base)
    if (t->name == other) return true;
  return false;
}

std::string wire_name(const ElementInfo& element, const TypeInfo& type) {
  return element.choice ? element.name + capitalised(type.name) : element.name;
}

const TypeRegistry& TypeRegistry::r4() {
  static const std::unique_ptr<TypeRegistry> registry = from_json(std::string_view(
      courier_r4_types_begin, static_cast<std::size_t>(courier_r4_types_end - courier_r4_types_begin)));
  return *registry;
}

std::unique_ptr<TypeRegistry> TypeRegistry::from_json(std::string_view text) {
  const auto doc = nlohmann::json::parse(text);
  auto registry = std::make_unique<TypeRegistry>();
  registry->fhir_version_ = doc.at("fhirVersion").get<std::string>();
  const auto& types = doc.at("types");

  // First pass: create every type so that elements can point at them.
  for (const auto& [name, def] : types.items()) {
    auto info = std::make_unique<TypeInfo>();
    info->name = name;
    const auto kind = def.at("kind").get<std::string>();
    info->kind = kind == "primitive"  ? TypeKind::primitive
                 : kind == "resource" ? TypeKind::resource
                 : kind == "backbone" ? TypeKind::backbone
                                      : TypeKind::complex;
    info->abstract = def.value("abstract", false);
    registry->by_name_.emplace(name, info.get());
    registry->storage_.push_back(std::move(info));
  }
  auto lookup = [&](const std::string& name) {
    const TypeInfo* t = registry->find(name);
    if (t == nullptr) throw std::runtime_error("types.json: unknown type " + name);
    return t;
  };
  for (auto& info : registry->storage_) {
    const auto& def = types.at(info->name);
    if (def.contains("base")) info->base = lookup(def["base"].get<std::string>());
    if (!def.contains("elements")) continue;
    for (const auto& e : def["elements"]) {
      ElementInfo el;
      el.name = e.at("name").get<std::string>();
      for (const auto& t : e.at("types")) el.types.push_back(lookup(t.get<std::string>()));
      if (e.contains("targets")) el.targets = e["targets"].get<std::vector<std::string>>();
      el.min = e.at("min").get<std::uint32_t>();
      el.max = e.at("max").get<std::int32_t>();
      el.index = static_cast<std::uint16_t>(info->elements.size());
      el.choice = e.value("choice", false);
      el.xml_attribute = e.value("xmlAttr", false);
      el.summary = e.value("summary", false);
      el.modifier = e.value("modifier", false);
      info->elements.push_back(std::move(el));
    }
  }
  for (auto& info : registry->storage_) {
    if (info->is_primitive()) {
      info->json_kind = json_kind_of(*info);
      info->primitive = primitive_of(info->name);
    }
    info->number = static_cast<std::uint32_t>(registry->properties_.size());
    PropertyTable& table = registry->properties_.emplace_back();
    for (const auto& el : info->elements)
      for (const TypeInfo* t : el.types) table.emplace(wire_name(el, *t), PropertyMatch{&el, t});
  }
  return registry;
}

const TypeInfo* TypeRegistry::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TypeInfo* TypeRegistry::find_resource(std::string_view name) const {
  const TypeInfo* t = find(name);
  return t != nullptr && t->is_resource() ? t : nullptr;
}

const TypeRegistry::PropertyTable* TypeRegistry::properties(const TypeInfo& type) const {
  const bool ours = type.number < storage_.size() && storage_[type.number].get() == &type;
  return ours ? &properties_[type.number] : nullptr;
}

PropertyMatch TypeRegistry::property(const TypeInfo& type, std::string_view wire) const {
  const PropertyTable* table = properties(type);
  if (table == nullptr) return {};
  auto it = table->find(wire);
  return it == table->end() ? PropertyMatch{} : it->second;
}

std::string TypeRegistry::suggest(const TypeInfo& type, std::string_view wire) const {
  const PropertyTable* table = properties(type);
  if (table == nullptr) return {};
  std::vector<std::string_view> names;
  for (const auto& [name, match] : *table) names.push_back(name);
  return util::closest(wire, names);
}

std::vector<const TypeInfo*> TypeRegistry::resource_types() const {
  std::vector<const TypeInfo*> out;
  for (const auto& t : storage_)
    if (t->is_resource() && !t->abstract) out.push_back(t.get());
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->name < b->name; });
  return out;
}

}  // namespace courier::fhir
