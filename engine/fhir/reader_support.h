// What both FHIR readers do before and after parsing proper.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "engine/fhir/codec.h"

namespace courier::fhir {

// An issue that stops reading, placed at `offset` of `text`.
inline Issue fatal_issue(std::string message, std::string_view text, std::size_t offset) {
  return Issue{Severity::fatal, "structure", std::move(message), "", util::line_column(text, offset)};
}

// The checks made before any parsing: the size limit, then UTF-8.
inline std::optional<Issue> check_input(std::string_view text, const ParseLimits& limits) {
  if (text.size() > limits.max_bytes)
    return fatal_issue("the document is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                           std::to_string(limits.max_bytes),
                       text, 0);
  if (const std::size_t bad = util::find_invalid_utf8(text); bad != std::string_view::npos)
    return fatal_issue("invalid UTF-8", text, bad);
  return std::nullopt;
}

}  // namespace courier::fhir
