// A problem found in a resource, in the terms of an OperationOutcome issue.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/util/text.h"

namespace courier::fhir {

enum class Severity { fatal, error, warning, information };

std::string_view to_string(Severity severity);

struct Issue {
  Severity severity = Severity::error;
  std::string code;         // OperationOutcome.issue.code: structure, required, value, invalid, ...
  std::string diagnostics;  // what is wrong, for a person; never patient data
  std::string expression;   // FHIRPath location, e.g. Bundle.entry[0].resource
  std::optional<util::LineColumn> where;  // in the source text, when parsed from one
};

using Issues = std::vector<Issue>;

// True when any issue is an error or fatal.
bool has_errors(const Issues& issues);

}  // namespace courier::fhir
