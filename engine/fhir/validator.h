// Checks a resource against the R4 structure (cardinalities, primitive
// formats, ele-1) and, for Bundles, the bundle invariants and the rules of
// FHIR messaging.
#pragma once

#include "engine/fhir/element.h"
#include "engine/fhir/issue.h"

namespace courier::fhir {

Issues validate(const Element& resource);

}  // namespace courier::fhir
