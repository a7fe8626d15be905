// Small text helpers shared by the parsers and the error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace courier::util {

// Where an offset into a text lies, 1-based, columns counted in bytes.
struct LineColumn {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

LineColumn line_column(std::string_view text, std::size_t offset);

// Offset of the first byte that is not part of well-formed UTF-8 (overlongs,
// surrogates and code points above U+10FFFF are ill-formed), or npos.
std::size_t find_invalid_utf8(std::string_view text);

// Appends the UTF-8 encoding of a code point (assumed valid).
void append_utf8(std::string& out, std::uint32_t code_point);

// The candidate closest to `word` by edit distance, or "" when none is close
// enough to be a plausible misspelling.
std::string closest(std::string_view word, std::span<const std::string_view> candidates);

// The whole text as a decimal integer ("-12"), or nothing.
std::optional<std::int64_t> parse_integer(std::string_view text);

// "%20" and "+" as in a URL's query or a form body.
std::string percent_decode(std::string_view text);
// Percent-encodes what a URL's query value cannot carry as it is; keeps the
// characters FHIR search values use (":/|,").
std::string percent_encode(std::string_view text);
// Percent-encodes whitespace only: a FHIR uri may hold none, and v2 names
// that become uris often do ("GOOD HEALTH HOSPITAL" as an Identifier.system).
std::string percent_encode_whitespace(std::string_view text);

// Standard base64 (RFC 4648), with padding.
std::string base64_encode(std::string_view bytes);
// Base64url (RFC 4648 section 5, as JWTs use it), padding optional;
// nullopt for any other character.
std::optional<std::string> base64url_decode(std::string_view text);

// "a=1&b=x%20y" (a query string, a form body) → {{a, 1}, {b, "x y"}}, in
// order and with repeats kept; a key without '=' gets "".
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view text);

}  // namespace courier::util
