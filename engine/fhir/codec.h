// Reading and writing FHIR resources as FHIR JSON and FHIR XML.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/fhir/element.h"
#include "engine/fhir/issue.h"

namespace courier::fhir {

enum class Format { json, xml };

std::string_view to_string(Format format);

// Bounds on untrusted input; exceeding one is an error, never a crash.
struct ParseLimits {
  std::size_t max_bytes = 64u << 20;
  std::uint32_t max_depth = 100;  // nested objects/arrays (JSON) or elements (XML)
};

struct ParseResult {
  // Absent when the text could not be read as a resource at all. Present
  // with error issues when parts were unreadable (unknown elements, wrong
  // JSON types): those parts are left out.
  std::optional<Element> resource;
  Issues issues;

  bool ok() const { return resource.has_value() && !has_errors(issues); }
};

ParseResult parse_json(std::string_view text, const ParseLimits& limits = {},
                       const TypeRegistry& registry = TypeRegistry::r4());
ParseResult parse_xml(std::string_view text, const ParseLimits& limits = {},
                      const TypeRegistry& registry = TypeRegistry::r4());

// Parses text known to be in `format`.
ParseResult parse_as(std::string_view text, Format format, const ParseLimits& limits = {},
                     const TypeRegistry& registry = TypeRegistry::r4());

// JSON when the first non-blank byte is '{', XML when it is '<'.
std::optional<Format> detect_format(std::string_view text);
// Detects the format, then parses; an undetectable text is a fatal issue.
ParseResult parse(std::string_view text, const ParseLimits& limits = {},
                  const TypeRegistry& registry = TypeRegistry::r4());

struct WriteOptions {
  bool pretty = false;
};

// Writes any element as JSON: a resource with its resourceType, a complex
// element as an object, a primitive's id and extensions as an object.
std::string write_json(const Element& resource, const WriteOptions& options = {});
// Appends `text` as a JSON string literal, quoted and escaped.
void append_json_string(std::string& out, std::string_view text);
std::string write_xml(const Element& resource, const WriteOptions& options = {});
std::string write(const Element& resource, Format format, const WriteOptions& options = {});

}  // namespace courier::fhir
