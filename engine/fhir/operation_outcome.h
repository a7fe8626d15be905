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

// The issues of an OperationOutcome a peer sent (severity, code,
// diagnostics, first expression); none when `body` is not one.
Issues read_outcome_issues(const std::string& body, Format format);

// ": DIAGNOSTICS" of the first issue that has some (at most 300 characters),
// to follow "HTTP 422" in a log line or an error; "" when there is none.
std::string outcome_summary(const std::string& body, Format format);

}  // namespace courier::fhir
