// Local terminology for memberOf(): value sets and code systems that are
// at hand without a terminology server, either inside the resource being
// evaluated (contained, or entries of a Bundle) or loaded by the operator
// (`value-sets:` in the config, `courier fhirpath --terminology FILE`).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "engine/fhir/element.h"

namespace courier::fhirpath {

// Finds a ValueSet or CodeSystem (`type`) by canonical URL; null when unknown.
using TerminologyFinder = std::function<const fhir::Element*(std::string_view type, std::string_view url)>;

// Raised when a value set cannot be expanded with what is local (a code
// system that is not loaded, a filter we do not evaluate).
class ExpansionError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The codes of an expanded value set.
struct CodeSet {
  std::set<std::pair<std::string, std::string>> codes;  // (system, code)
  std::set<std::string, std::less<>> systems;

  bool contains(std::string_view system, std::string_view code) const;
  // A bare code (a string or a `code` element): its system is the value
  // set's only one; empty when the value set spans several systems.
  std::optional<bool> contains_code(std::string_view code) const;
};

// Expands a ValueSet: its `expansion` when it has one, else its `compose`
// (concept lists, whole code systems, is-a / descendent-of / is-not-a / in /
// not-in / = filters, included and excluded value sets). Throws ExpansionError.
CodeSet expand(const fhir::Element& value_set, const TerminologyFinder& find);

// The canonical URL without a "|version" suffix.
std::string_view canonical_without_version(std::string_view url);

class Terminology {
 public:
  // Adds a ValueSet or CodeSystem, or each one a Bundle holds; returns how
  // many were added.
  std::size_t add(fhir::Element resource);
  const fhir::Element* find(std::string_view type, std::string_view url) const;
  std::size_t size() const { return resources_.size(); }

  // The expansion of one of this terminology's value sets, computed once.
  std::shared_ptr<const CodeSet> expansion(const fhir::Element& value_set) const;

 private:
  std::deque<fhir::Element> resources_;  // a deque keeps addresses stable
  std::map<std::pair<std::string, std::string>, const fhir::Element*> by_url_;
  mutable std::mutex cache_mutex_;
  mutable std::map<const fhir::Element*, std::shared_ptr<const CodeSet>> cache_;
};

}  // namespace courier::fhirpath
