// Checks a resource against the R4 structure (cardinalities, primitive
// formats, ele-1) and, for Bundles, the bundle invariants and the rules of
// FHIR messaging.
#pragma once

#include "engine/fhir/codec.h"
#include "engine/fhir/element.h"
#include "engine/fhir/issue.h"

namespace courier::fhir {

Issues validate(const Element& resource);

// Reads a resource in `format` and, when it reads cleanly, validates it:
// the resource, and the reader's issues or else the validator's. Usable
// when `resource` is set and the issues hold no error.
ParseResult parse_valid(std::string_view text, Format format, const ParseLimits& limits);

}  // namespace courier::fhir
