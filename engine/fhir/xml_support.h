// XML rules shared by the FHIR XML reader and the narrative (XHTML) checks.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pugi {
class xml_document;
}

namespace courier::fhir {

inline constexpr std::string_view kFhirNamespace = "http://hl7.org/fhir";
inline constexpr std::string_view kXhtmlNamespace = "http://www.w3.org/1999/xhtml";

struct XmlProblem {
  std::string message;
  std::size_t offset;
};

// Finds what FHIR XML forbids before any parser sees it: a DOCTYPE (so no
// DTD and no entity declarations) and references to entities other than
// XML's five predefined ones. Comments and CDATA are passed over.
std::optional<XmlProblem> check_xml_safety(std::string_view text);

// A parsed document (loaded with pugi::parse_fragment, so that pugixml keeps
// what lies beside the root) must have one root element and no text beside
// it. Returns the problem.
std::optional<std::string> check_single_root(const pugi::xml_document& doc);

// Checks a narrative `div` as FHIR requires: well-formed XML, a root `div`
// in the XHTML namespace, and none of the elements or attributes FHIR
// forbids (scripts, forms, frames, event handlers, ...). Returns the problem.
std::optional<std::string> check_xhtml(std::string_view xhtml);

// FHIR's txt-2: the narrative has some non-whitespace content (text, or
// an image). False for a fragment that is not well-formed.
bool xhtml_has_content(std::string_view xhtml);

// One spelling of an XHTML fragment, so that two fragments can be compared
// by meaning (attribute quoting, escapes and empty-element forms differ).
std::string canonical_xhtml(std::string_view xhtml);

}  // namespace courier::fhir
