// libFuzzer target: what a browser sends the console that courier reads
// itself: the Cookie header (for the session cookie) and the query of a
// message-browser search. Whatever they hold, the cookie's value is a part
// of the header, and the search filter is either read or refused with a
// reason, within its bounds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/http/http_support.h"
#include "engine/admin.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The first line is a Cookie header, the rest a query string.
  const std::size_t newline = input.find('\n');
  const std::string_view cookie = input.substr(0, newline);
  const std::string_view query =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  const std::string_view session = courier::adapters::cookie_value(cookie, "courier_session");
  if (!session.empty() &&
      (session.data() < cookie.data() || session.data() + session.size() > cookie.data() + cookie.size()))
    __builtin_trap();
  std::string error;
  const auto filter = courier::admin::conversation_filter(courier::adapters::parse_query(query), error);
  if (error.empty() && (filter.limit < 1 || filter.limit > 1000 || filter.before < 0)) __builtin_trap();
  return 0;
}
