#include "engine/fhir/operation_outcome.h"

#include <algorithm>

namespace courier::fhir {

std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::fatal: return "fatal";
    case Severity::error: return "error";
    case Severity::warning: return "warning";
    case Severity::information: return "information";
  }
  return "error";
}

bool has_errors(const Issues& issues) {
  return std::any_of(issues.begin(), issues.end(), [](const Issue& i) {
    return i.severity == Severity::error || i.severity == Severity::fatal;
  });
}

namespace {

void add_integer_extension(Element& issue, std::string_view url, std::uint32_t value) {
  Element& ext = issue.add("extension");
  ext.add_value("url", std::string(url));
  ext.add_value("value", std::to_string(value), "integer");
}

}  // namespace

Element to_operation_outcome(const Issues& issues) {
  Element outcome = Element::resource("OperationOutcome");
  if (issues.empty()) {
    Element& issue = outcome.add("issue");
    issue.add_value("severity", "information");
    issue.add_value("code", "informational");
    issue.add_value("diagnostics", "no issues found");
    return outcome;
  }
  for (const Issue& i : issues) {
    Element& issue = outcome.add("issue");
    if (i.where) {
      add_integer_extension(issue, "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line",
                            i.where->line);
      add_integer_extension(issue, "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col",
                            i.where->column);
    }
    issue.add_value("severity", std::string(to_string(i.severity)));
    issue.add_value("code", i.code.empty() ? "processing" : i.code);
    if (!i.diagnostics.empty()) issue.add_value("diagnostics", i.diagnostics);
    if (!i.expression.empty()) issue.add_value("expression", i.expression);
    issue.sort_children();
  }
  return outcome;
}

std::string outcome_text(const std::string& code, const std::string& diagnostics, Format format,
                         const std::string& expression) {
  const Issues issues{Issue{Severity::error, code, diagnostics, expression, std::nullopt}};
  return write(to_operation_outcome(issues), format);
}

std::string error_outcome_text(Issues issues, Format format) {
  std::erase_if(
      issues, [](const Issue& i) { return i.severity != Severity::error && i.severity != Severity::fatal; });
  return write(to_operation_outcome(issues), format);
}

Issues read_outcome_issues(const std::string& body, Format format) {
  Issues issues;
  if (body.empty()) return issues;
  const ParseResult parsed = parse_as(body, format);
  if (!parsed.resource || parsed.resource->type().name != "OperationOutcome") return issues;
  for (const Element* issue : parsed.resource->children_named("issue")) {
    Issue i;
    const std::string_view severity = issue->child_value("severity");
    i.severity = severity == "fatal"         ? Severity::fatal
                 : severity == "warning"     ? Severity::warning
                 : severity == "information" ? Severity::information
                                             : Severity::error;
    i.code = issue->child_value("code");
    i.diagnostics = issue->child_value("diagnostics");
    i.expression = issue->child_value("expression");
    issues.push_back(std::move(i));
  }
  return issues;
}

std::string outcome_summary(const std::string& body, Format format) {
  for (const Issue& issue : read_outcome_issues(body, format)) {
    if (!issue.diagnostics.empty()) return ": " + issue.diagnostics.substr(0, 300);
  }
  return {};
}

}  // namespace courier::fhir
