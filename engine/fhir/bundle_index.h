// Finds the entries of a Bundle that references point at, following the
// rules of FHIR's bundle page: absolute references match a fullUrl; a
// relative `Type/id` resolves against the base of the referring entry's
// fullUrl, or else matches the resource of that type and id.
#pragma once

#include <string_view>
#include <vector>

#include "engine/fhir/element.h"

namespace courier::fhir {

class BundleIndex {
 public:
  struct Entry {
    std::string_view full_url;  // "" when absent
    const Element* resource;    // null when the entry has none
  };

  explicit BundleIndex(const Element& bundle);

  const std::vector<Entry>& entries() const { return entries_; }
  // The resource `reference` points at, from the entry with `from_full_url`;
  // null when it is not in the Bundle. Contained ("#id") references are not
  // a Bundle's to resolve.
  const Element* resolve(std::string_view reference, std::string_view from_full_url = {}) const;

 private:
  std::vector<Entry> entries_;
};

// True for a reference that names its target absolutely (a URL or a URN).
bool is_absolute_reference(std::string_view reference);

// "Patient/123" (dropping any "/_history/…"), split into type and id, when
// `reference` ends in that form; empty views otherwise.
std::pair<std::string_view, std::string_view> reference_type_and_id(std::string_view reference);

}  // namespace courier::fhir
