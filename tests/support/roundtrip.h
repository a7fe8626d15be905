// The round-trip check used by the example tests: FHIR JSON → model → XML →
// model → JSON must give the same resource by meaning as the original.
#pragma once

#include <string>
#include <string_view>

namespace courier::testing {

// Empty when the round trip keeps the meaning, else what differs.
std::string roundtrip_difference(std::string_view original_json);

// The JSON text as a value in which numbers keep their exact text and each
// narrative div is in canonical form, so that equality is equality by
// meaning. Throws on malformed JSON.
std::string normalised_json(std::string_view json);

}  // namespace courier::testing
