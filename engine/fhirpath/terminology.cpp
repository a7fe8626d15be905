#include "engine/fhirpath/terminology.h"

#include <algorithm>
#include <iterator>

namespace courier::fhirpath {

namespace {

// Value sets may include value sets; a cycle or an absurd depth is an error.
constexpr int kMaxDepth = 16;

using Codes = std::set<std::pair<std::string, std::string>>;

struct Expander {
  const TerminologyFinder& find;

  const fhir::Element& code_system(std::string_view url) const {
    const fhir::Element* cs = find("CodeSystem", url);
    if (cs == nullptr) throw ExpansionError("code system " + std::string(url) + " is not available locally");
    return *cs;
  }

  // Every concept of a code system, each with its descendants (nested concepts).
  static void all_concepts(const fhir::Element& parent, std::string_view system, Codes& out) {
    for (const fhir::Element* c : parent.children_named("concept")) {
      out.emplace(system, c->child_value("code"));
      all_concepts(*c, system, out);
    }
  }

  // The concept with `code`, searched through the hierarchy.
  static const fhir::Element* concept_named(const fhir::Element& parent, std::string_view code) {
    for (const fhir::Element* c : parent.children_named("concept")) {
      if (c->child_value("code") == code) return c;
      if (const fhir::Element* found = concept_named(*c, code)) return found;
    }
    return nullptr;
  }

  static bool has_property(const fhir::Element& entry, std::string_view property, std::string_view value) {
    for (const fhir::Element* p : entry.children_named("property")) {
      if (p->child_value("code") != property) continue;
      const fhir::Element* v = p->child("value");
      if (v != nullptr && v->has_value() && v->value() == value) return true;
      if (v != nullptr && v->child_value("code") == value) return true;  // valueCoding
    }
    return false;
  }

  static void concepts_where(const fhir::Element& parent, std::string_view system, std::string_view property,
                             std::string_view value, Codes& out) {
    for (const fhir::Element* c : parent.children_named("concept")) {
      if (has_property(*c, property, value)) out.emplace(system, c->child_value("code"));
      concepts_where(*c, system, property, value, out);
    }
  }

  // The codes one filter of an include selects from a code system.
  static Codes filtered(const fhir::Element& cs, std::string_view system, const fhir::Element& filter) {
    const std::string_view property = filter.child_value("property");
    const std::string_view op = filter.child_value("op");
    const std::string_view value = filter.child_value("value");
    // The concept named by the filter's value and everything below it.
    const auto subtree = [&](bool with_root) {
      Codes codes;
      if (const fhir::Element* root = concept_named(cs, value)) {
        if (with_root) codes.emplace(system, value);
        all_concepts(*root, system, codes);
      }
      return codes;
    };
    Codes out;
    if (op == "is-a" || op == "descendent-of") {
      out = subtree(op == "is-a");
    } else if (op == "is-not-a") {
      all_concepts(cs, system, out);
      for (const auto& c : subtree(true)) out.erase(c);
    } else if (op == "in" || op == "not-in") {
      std::set<std::string, std::less<>> listed;
      for (std::size_t at = 0; at <= value.size();) {
        const std::size_t comma = std::min(value.find(',', at), value.size());
        listed.emplace(value.substr(at, comma - at));
        at = comma + 1;
      }
      Codes every;
      all_concepts(cs, system, every);
      for (const auto& c : every)
        if ((listed.count(c.second) != 0) == (op == "in")) out.insert(c);
    } else if (op == "=" && property == "concept") {
      if (concept_named(cs, value) != nullptr) out.emplace(system, value);
    } else if (op == "=") {
      concepts_where(cs, system, property, value, out);
    } else {
      throw ExpansionError("the filter '" + std::string(property) + " " + std::string(op) +
                           "' cannot be evaluated locally");
    }
    return out;
  }

  static Codes intersect(const Codes& a, const Codes& b) {
    Codes out;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
    return out;
  }

  // The codes an include (or exclude) of a compose selects.
  Codes selection(const fhir::Element& part, int depth) const {
    const std::string_view system = part.child_value("system");
    std::optional<Codes> out;
    if (!system.empty()) {
      Codes from_system;
      const auto concepts = part.children_named("concept");
      const auto filters = part.children_named("filter");
      if (!concepts.empty()) {
        for (const fhir::Element* c : concepts) from_system.emplace(system, c->child_value("code"));
      } else {
        const fhir::Element& cs = code_system(system);
        if (filters.empty()) all_concepts(cs, system, from_system);
        for (std::size_t i = 0; i < filters.size(); ++i) {
          Codes f = filtered(cs, system, *filters[i]);
          from_system = i == 0 ? std::move(f) : intersect(from_system, f);
        }
      }
      out = std::move(from_system);
    }
    for (const fhir::Element* vs : part.children_named("valueSet")) {
      const fhir::Element* included = find("ValueSet", vs->value());
      if (included == nullptr) throw ExpansionError("value set " + vs->value() + " is not available locally");
      Codes codes = expand(*included, depth + 1).codes;
      out = out ? intersect(*out, codes) : std::move(codes);
    }
    return out.value_or(Codes{});
  }

  CodeSet expand(const fhir::Element& value_set, int depth) const {
    if (depth > kMaxDepth) throw ExpansionError("value sets include each other too deeply (a cycle?)");
    CodeSet result;
    if (const fhir::Element* expansion = value_set.child("expansion");
        expansion != nullptr && expansion->child("contains") != nullptr) {
      add_contains(*expansion, result.codes);
    } else if (const fhir::Element* compose = value_set.child("compose")) {
      for (const fhir::Element* include : compose->children_named("include"))
        result.codes.merge(selection(*include, depth));
      for (const fhir::Element* exclude : compose->children_named("exclude"))
        for (const auto& c : selection(*exclude, depth)) result.codes.erase(c);
    } else {
      throw ExpansionError("value set " + std::string(value_set.child_value("url")) +
                           " has neither an expansion nor a compose");
    }
    for (const auto& c : result.codes) result.systems.insert(c.first);
    return result;
  }

  static void add_contains(const fhir::Element& parent, Codes& out) {
    for (const fhir::Element* c : parent.children_named("contains")) {
      // An abstract entry groups others and is not itself a code to choose.
      if (c->child_value("abstract") != "true" && !c->child_value("code").empty())
        out.emplace(c->child_value("system"), c->child_value("code"));
      add_contains(*c, out);
    }
  }
};

}  // namespace

bool CodeSet::contains(std::string_view system, std::string_view code) const {
  return codes.count({std::string(system), std::string(code)}) != 0;
}

std::optional<bool> CodeSet::contains_code(std::string_view code) const {
  if (systems.size() > 1) return std::nullopt;
  return systems.empty() ? false : contains(*systems.begin(), code);
}

CodeSet expand(const fhir::Element& value_set, const TerminologyFinder& find) {
  return Expander{find}.expand(value_set, 0);
}

std::string_view canonical_without_version(std::string_view url) {
  return url.substr(0, url.find('|'));
}

std::size_t Terminology::add(fhir::Element resource) {
  const std::string_view type = resource.type().name;
  if (type == "Bundle") {
    std::size_t added = 0;
    for (fhir::Element& entry : resource.children())
      if (entry.name() == "entry")
        if (fhir::Element* r = entry.child("resource"); r != nullptr && r->is_resource())
          added += add(std::move(*r));
    return added;
  }
  if (type != "ValueSet" && type != "CodeSystem") return 0;
  const fhir::Element& kept = resources_.emplace_back(std::move(resource));
  by_url_[{std::string(type), std::string(kept.child_value("url"))}] = &kept;
  return 1;
}

const fhir::Element* Terminology::find(std::string_view type, std::string_view url) const {
  const auto it = by_url_.find({std::string(type), std::string(canonical_without_version(url))});
  return it != by_url_.end() ? it->second : nullptr;
}

std::shared_ptr<const CodeSet> Terminology::expansion(const fhir::Element& value_set) const {
  std::lock_guard lock(cache_mutex_);
  auto& cached = cache_[&value_set];
  if (!cached)
    cached = std::make_shared<const CodeSet>(fhirpath::expand(
        value_set, [this](std::string_view type, std::string_view url) { return find(type, url); }));
  return cached;
}

}  // namespace courier::fhirpath
