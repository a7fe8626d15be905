// libFuzzer target: what the REST store reads from a request before it
// touches the database. The input is "TYPE\nQUERY": the query string is
// decoded, read as search parameters of TYPE (a known or unknown type), and
// each reference value normalised; then "TYPE?QUERY" is read as a peer's
// Subscription criteria. Anything must give criteria, unknown parameters or
// an error message; never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/rest/search.h"
#include "engine/util/text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = text.find('\n');
  const std::string_view type = text.substr(0, newline);
  const std::string_view query =
      newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
  const auto params = courier::util::parse_form(query);
  const courier::rest::ParsedSearch parsed = courier::rest::parse_search(type, params);
  std::size_t total = parsed.used.size() + parsed.unknown.size();
  for (const auto& [key, value] : params) total += courier::rest::normalised_reference(value).size();
  const auto criteria = courier::rest::parse_criteria(std::string(type) + "?" + std::string(query));
  total += criteria.index();
  return total == static_cast<std::size_t>(-1) ? 1 : 0;
}
