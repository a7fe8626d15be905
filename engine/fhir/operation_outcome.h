// Issues as an OperationOutcome, the form in which FHIR peers read them.
#pragma once

#include <string>

#include "engine/fhir/codec.h"
#include "engine/fhir/element.h"
#include "engine/fhir/issue.h"

namespace courier::fhir {

// One OperationOutcome.issue per issue, with severity, code, diagnostics,
// expression, and the source line and column as the standard
// operationoutcome-issue-line/-col extensions. No issues gives a single
// "information" issue saying so, since an OperationOutcome needs one.
Element to_operation_outcome(const Issues& issues);

// An OperationOutcome with one error issue, written in `format`.
std::string outcome_text(const std::string& code, const std::string& diagnostics, Format format,
                         const std::string& expression = {});

// The error and fatal issues of `issues` (what made a request fail) as an
// OperationOutcome written in `format`; warnings are left out.
std::string error_outcome_text(Issues issues, Format format);

}  // namespace courier::fhir
