#include "engine/fhir/bundle_index.h"

namespace courier::fhir {

bool is_absolute_reference(std::string_view reference) {
  return reference.starts_with("urn:") || reference.find("://") != std::string_view::npos;
}

std::pair<std::string_view, std::string_view> reference_type_and_id(std::string_view reference) {
  if (const auto history = reference.find("/_history/"); history != std::string_view::npos)
    reference = reference.substr(0, history);
  const auto slash = reference.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == reference.size()) return {};
  const std::string_view id = reference.substr(slash + 1);
  std::string_view type = reference.substr(0, slash);
  if (const auto before = type.rfind('/'); before != std::string_view::npos) type = type.substr(before + 1);
  if (type.empty() || !std::isupper(static_cast<unsigned char>(type[0]))) return {};
  return {type, id};
}

BundleIndex::BundleIndex(const Element& bundle) {
  for (const Element& entry : bundle.children()) {
    if (entry.name() != "entry") continue;
    entries_.push_back(Entry{entry.child_value("fullUrl"), entry.child("resource")});
  }
}

const Element* BundleIndex::resolve(std::string_view reference, std::string_view from_full_url) const {
  if (reference.empty() || reference[0] == '#') return nullptr;
  if (is_absolute_reference(reference)) {
    for (const Entry& e : entries_)
      if (e.full_url == reference && e.resource != nullptr) return e.resource;
    return nullptr;
  }
  const auto [type, id] = reference_type_and_id(reference);
  if (type.empty()) return nullptr;
  // A version-specific reference names the entry with that meta.versionId.
  std::string_view version;
  if (const auto history = reference.find("/_history/"); history != std::string_view::npos) {
    version = reference.substr(history + 10);
    reference = reference.substr(0, history);
  }
  auto version_matches = [&](const Element& resource) {
    if (version.empty()) return true;
    const Element* meta = resource.child("meta");
    return meta != nullptr && meta->child_value("versionId") == version;
  };
  // Against the referring entry's base: http://x/fhir/Observation/1 → http://x/fhir/
  if (!from_full_url.empty() && !from_full_url.starts_with("urn:")) {
    const auto [from_type, from_id] = reference_type_and_id(from_full_url);
    if (!from_type.empty()) {
      const std::string_view base = from_full_url.substr(0, from_type.data() - from_full_url.data());
      for (const Entry& e : entries_)
        if (e.resource != nullptr && e.full_url.size() == base.size() + reference.size() &&
            e.full_url.starts_with(base) && e.full_url.ends_with(reference) && version_matches(*e.resource))
          return e.resource;
      return nullptr;  // a RESTful entry's relative references resolve against its base only
    }
  }
  for (const Entry& e : entries_)
    if (e.resource != nullptr && e.resource->type().name == type && e.resource->child_value("id") == id &&
        version_matches(*e.resource))
      return e.resource;
  return nullptr;
}

}  // namespace courier::fhir
