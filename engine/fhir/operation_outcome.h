// Issues as an OperationOutcome, the form in which FHIR peers read them.
#pragma once

#include "engine/fhir/element.h"
#include "engine/fhir/issue.h"

namespace courier::fhir {

// One OperationOutcome.issue per issue, with severity, code, diagnostics,
// expression, and the source line and column as the standard
// operationoutcome-issue-line/-col extensions. No issues gives a single
// "information" issue saying so, since an OperationOutcome needs one.
Element to_operation_outcome(const Issues& issues);

}  // namespace courier::fhir
