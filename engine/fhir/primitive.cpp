// The R4 regular expressions for primitive values, written as small
// scanners: std::regex is slow and some of these need range checks anyway.
#include "engine/fhir/primitive.h"

#include <cctype>
#include <charconv>

#include "engine/fhir/xml_support.h"

namespace courier::fhir {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// A cursor over a value for the date and time grammars.
struct Scan {
  std::string_view s;
  std::size_t i = 0;

  bool done() const { return i == s.size(); }
  bool literal(char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  // Exactly n digits, as a number.
  std::optional<int> digits(std::size_t n) {
    if (i + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t k = 0; k < n; ++k) {
      if (!is_digit(s[i + k])) return std::nullopt;
      v = v * 10 + (s[i + k] - '0');
    }
    i += n;
    return v;
  }
  bool fraction() {  // (\.[0-9]+)?
    if (!literal('.')) return true;
    const std::size_t from = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    return i > from;
  }
};

bool leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int y, int m) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : days[m - 1];
}

// YYYY, YYYY-MM or YYYY-MM-DD; `full` demands all three.
bool scan_date(Scan& sc, bool full) {
  const auto y = sc.digits(4);
  if (!y || *y == 0) return false;
  if (!sc.literal('-')) return !full;
  const auto m = sc.digits(2);
  if (!m || *m < 1 || *m > 12) return false;
  if (!sc.literal('-')) return !full;
  const auto d = sc.digits(2);
  return d && *d >= 1 && *d <= days_in_month(*y, *m);
}

bool scan_time(Scan& sc) {  // hh:mm:ss(.f+)?
  const auto h = sc.digits(2);
  if (!h || *h > 23 || !sc.literal(':')) return false;
  const auto m = sc.digits(2);
  if (!m || *m > 59 || !sc.literal(':')) return false;
  const auto s = sc.digits(2);
  return s && *s <= 60 && sc.fraction();
}

bool scan_zone(Scan& sc) {  // Z or +hh:mm / -hh:mm up to 14:00
  if (sc.literal('Z')) return true;
  if (!sc.literal('+') && !sc.literal('-')) return false;
  const auto h = sc.digits(2);
  if (!h || !sc.literal(':')) return false;
  const auto m = sc.digits(2);
  return m && *m <= 59 && (*h < 14 || (*h == 14 && *m == 0));
}

bool valid_date(std::string_view v) {
  Scan sc{v};
  return scan_date(sc, false) && sc.done();
}

bool valid_date_time(std::string_view v) {
  Scan sc{v};
  if (!scan_date(sc, false)) return false;
  if (sc.done()) return true;
  // A time needs a full date before it and a zone after it.
  return v.size() > 10 && v[10] == 'T' && sc.i == 10 && sc.literal('T') && scan_time(sc) && scan_zone(sc) &&
         sc.done();
}

bool valid_instant(std::string_view v) {
  Scan sc{v};
  return scan_date(sc, true) && sc.literal('T') && scan_time(sc) && scan_zone(sc) && sc.done();
}

bool valid_time(std::string_view v) {
  Scan sc{v};
  return scan_time(sc) && sc.done();
}

// Integer text in the given range; `sign` allows a leading '-'.
bool valid_integer(std::string_view v, long long low, long long high) {
  std::string_view digits = v.starts_with('-') ? v.substr(1) : v;
  if (digits.empty() || digits.size() > 11 || (digits.size() > 1 && digits[0] == '0')) return false;
  long long n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && end == v.data() + v.size() && n >= low && n <= high;
}

bool valid_code(std::string_view v) {  // [^\s]+(\s[^\s]+)*
  if (v.empty() || is_space(v.front()) || is_space(v.back())) return false;
  for (std::size_t i = 1; i < v.size(); ++i)
    if (is_space(v[i]) && is_space(v[i - 1])) return false;
  return true;
}

bool valid_id(std::string_view v) {
  if (v.empty() || v.size() > 64) return false;
  for (char c : v)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  return true;
}

bool valid_oid(std::string_view v) {  // urn:oid:[0-2](\.(0|[1-9][0-9]*))+
  if (!v.starts_with("urn:oid:")) return false;
  v.remove_prefix(8);
  if (v.empty() || v[0] < '0' || v[0] > '2') return false;
  std::size_t arcs = 0;
  std::size_t i = 1;
  while (i < v.size()) {
    if (v[i] != '.') return false;
    const std::size_t from = ++i;
    while (i < v.size() && is_digit(v[i])) ++i;
    if (i == from || (i - from > 1 && v[from] == '0')) return false;
    ++arcs;
  }
  return arcs > 0;
}

bool valid_uuid(std::string_view v) {
  if (!v.starts_with("urn:uuid:") || v.size() != 45) return false;
  v.remove_prefix(9);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (v[i] == '-')) return false;
    if (!dash && !is_digit(v[i]) && (v[i] < 'a' || v[i] > 'f')) return false;
  }
  return true;
}

bool valid_base64(std::string_view v) {
  std::size_t count = 0;
  for (char c : v) {
    if (is_space(c)) continue;
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') return false;
    ++count;
  }
  return count > 0 && count % 4 == 0;
}

}  // namespace

bool is_json_number(std::string_view v) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t from = i;
    while (i < v.size() && is_digit(v[i])) ++i;
    return i - from;
  };
  if (i < v.size() && v[i] == '-') ++i;
  if (i < v.size() && v[i] == '0')
    ++i;
  else if (digits() == 0)
    return false;
  if (i < v.size() && v[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == v.size();
}

std::optional<std::string> check_primitive(const TypeInfo& type, std::string_view v) {
  auto invalid = [&](std::string_view what = {}) -> std::optional<std::string> {
    std::string message = "not a valid " + type.name;
    if (!what.empty()) message += ": " + std::string(what);
    return message;
  };
  auto rule = [&](bool valid, std::string_view what = {}) { return valid ? std::nullopt : invalid(what); };
  if (v.empty()) return std::string("empty values are not allowed; leave the element out");
  if (type.primitive == Primitive::xhtml) return check_xhtml(v);
  // One pass over the bytes: only those up to space need a second look.
  bool whitespace = false;
  for (char c : v) {
    if (static_cast<unsigned char>(c) > 0x20) continue;
    if (!is_space(c) && c != ' ')
      return std::string("control characters other than tab, CR and LF are not allowed");
    whitespace = true;
  }
  switch (type.primitive) {
    case Primitive::boolean: return rule(v == "true" || v == "false", "use true or false");
    case Primitive::integer:
      return rule(valid_integer(v, -2147483648LL, 2147483647LL), "a 32-bit whole number");
    case Primitive::positive_int: return rule(valid_integer(v, 1, 2147483647LL), "a whole number from 1");
    case Primitive::unsigned_int: return rule(valid_integer(v, 0, 2147483647LL), "a whole number from 0");
    case Primitive::decimal: return rule(is_json_number(v));
    case Primitive::date: return rule(valid_date(v), "YYYY, YYYY-MM or YYYY-MM-DD");
    case Primitive::date_time:
      return rule(valid_date_time(v), "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone");
    case Primitive::instant: return rule(valid_instant(v), "YYYY-MM-DDThh:mm:ss(.sss) with a time zone");
    case Primitive::time: return rule(valid_time(v), "hh:mm:ss");
    case Primitive::code: return rule(valid_code(v), "no leading, trailing or double whitespace");
    case Primitive::id: return rule(valid_id(v), "1 to 64 of A-Z, a-z, 0-9, '-' and '.'");
    case Primitive::oid: return rule(valid_oid(v), "urn:oid: followed by dotted numbers");
    case Primitive::uuid: return rule(valid_uuid(v), "urn:uuid: followed by a lower-case UUID");
    case Primitive::uri:
    case Primitive::url:
    case Primitive::canonical: return rule(!whitespace, "whitespace is not allowed");
    case Primitive::base64_binary: return rule(valid_base64(v));
    case Primitive::string:
    case Primitive::markdown: return rule(v.size() <= (1u << 20), "strings are limited to 1 MB");
    case Primitive::xhtml:
    case Primitive::none: break;
  }
  return std::nullopt;
}

}  // namespace courier::fhir
