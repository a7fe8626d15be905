// The lexical rules of FHIR's primitive types.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "engine/fhir/type_registry.h"

namespace courier::fhir {

// True for text in JSON's number grammar (which is also FHIR's decimal).
bool is_json_number(std::string_view text);

// Checks a primitive value against its type's rules; returns what is wrong.
std::optional<std::string> check_primitive(const TypeInfo& type, std::string_view value);

}  // namespace courier::fhir
