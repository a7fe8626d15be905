#include "engine/fhirpath/value.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "engine/fhir/primitive.h"

namespace courier::fhirpath {

namespace {

constexpr int kMaxScale = 28;

}  // namespace

// ---- Decimal -----------------------------------------------------------------

int128 Decimal::pow10(int n) {
  int128 r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}

std::optional<Decimal> Decimal::parse(std::string_view text) {
  if (!fhir::is_json_number(text)) return std::nullopt;
  Decimal d;
  bool negative = false;
  std::size_t i = 0;
  if (text[i] == '-') {
    negative = true;
    ++i;
  }
  int digits = 0;
  bool fraction = false;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.') {
      fraction = true;
      continue;
    }
    if (++digits > 36) return std::nullopt;
    d.mantissa_ = d.mantissa_ * 10 + (text[i] - '0');
    if (fraction) ++d.scale_;
  }
  if (i < text.size()) {
    int exponent = 0;
    std::string_view exponent_text = text.substr(i + 1);
    if (exponent_text.starts_with('+')) exponent_text.remove_prefix(1);
    const char* last = exponent_text.data() + exponent_text.size();
    const auto [end, ec] = std::from_chars(exponent_text.data(), last, exponent);
    if (ec != std::errc() || end != last || exponent > 1000 || exponent < -1000) return std::nullopt;
    d.scale_ -= exponent;
    if (d.scale_ < 0) {
      if (digits - d.scale_ > 36) return std::nullopt;
      d.mantissa_ *= pow10(-d.scale_);
      d.scale_ = 0;
    }
    if (d.scale_ > kMaxScale + 8) return std::nullopt;
  }
  if (negative) d.mantissa_ = -d.mantissa_;
  return d;
}

Decimal Decimal::from_double(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.15g", value);
  return parse(buffer).value_or(Decimal());
}

std::string Decimal::str() const {
  int128 m = mantissa_ < 0 ? -mantissa_ : mantissa_;
  std::string digits;
  do {
    digits.push_back(static_cast<char>('0' + static_cast<int>(m % 10)));
    m /= 10;
  } while (m != 0);
  while (static_cast<int>(digits.size()) <= scale_) digits.push_back('0');
  std::reverse(digits.begin(), digits.end());
  if (scale_ > 0) digits.insert(digits.end() - scale_, '.');
  return (mantissa_ < 0 ? "-" : "") + digits;
}

double Decimal::to_double() const {
  return std::stod(str());
}

bool Decimal::is_integer() const {
  return mantissa_ % pow10(scale_) == 0;
}

std::optional<std::int64_t> Decimal::truncated() const {
  const int128 whole = mantissa_ / pow10(scale_);
  if (whole > INT64_MAX || whole < INT64_MIN) return std::nullopt;
  return static_cast<std::int64_t>(whole);
}

std::pair<int128, int128> Decimal::aligned(const Decimal& a, const Decimal& b) {
  const int scale = std::max(a.scale_, b.scale_);
  return {a.mantissa_ * pow10(scale - a.scale_), b.mantissa_ * pow10(scale - b.scale_)};
}

Decimal Decimal::operator+(const Decimal& o) const {
  auto [x, y] = aligned(*this, o);
  Decimal r;
  r.mantissa_ = x + y;
  r.scale_ = std::max(scale_, o.scale_);
  return r;
}

Decimal Decimal::operator-(const Decimal& o) const {
  return *this + (-o);
}

Decimal Decimal::operator-() const {
  Decimal r = *this;
  r.mantissa_ = -r.mantissa_;
  return r;
}

Decimal Decimal::operator*(const Decimal& o) const {
  Decimal r;
  r.mantissa_ = mantissa_ * o.mantissa_;
  r.scale_ = scale_ + o.scale_;
  while (r.scale_ > kMaxScale) r = r.rounded(r.scale_ - 1);
  return r;
}

std::optional<Decimal> Decimal::divide(const Decimal& o) const {
  if (o.mantissa_ == 0) return std::nullopt;
  // Enough digits for FHIRPath's results (8 decimal places), then trimmed.
  constexpr int places = 16;
  auto [x, y] = aligned(*this, o);
  Decimal r;
  r.mantissa_ = x * pow10(places) / y;
  r.scale_ = places;
  return r.rounded(8).normalised();
}

std::strong_ordering Decimal::operator<=>(const Decimal& o) const {
  auto [x, y] = aligned(*this, o);
  return x < y   ? std::strong_ordering::less
         : x > y ? std::strong_ordering::greater
                 : std::strong_ordering::equal;
}

Decimal Decimal::rounded(int digits) const {
  if (digits >= scale_) return *this;
  const int128 factor = pow10(scale_ - digits);
  int128 q = mantissa_ / factor;
  const int128 rest = mantissa_ % factor;
  if (rest * 2 >= factor) ++q;  // half away from zero
  if (rest * 2 <= -factor) --q;
  Decimal r;
  r.mantissa_ = q;
  r.scale_ = digits < 0 ? 0 : digits;
  if (digits < 0) r.mantissa_ *= pow10(-digits);
  return r;
}

Decimal Decimal::truncated_to(int digits) const {
  if (digits >= scale_) return *this;
  Decimal r;
  r.mantissa_ = mantissa_ / pow10(scale_ - digits);
  r.scale_ = digits;
  return r;
}

std::optional<Decimal> Decimal::padded_to(int digits) const {
  if (digits <= scale_) return *this;
  // int128 holds 38 digits; keep the result well inside them.
  int128 magnitude = mantissa_ < 0 ? -mantissa_ : mantissa_;
  int length = 0;
  for (; magnitude != 0; magnitude /= 10) ++length;
  if (length + digits - scale_ > 36) return std::nullopt;
  Decimal r;
  r.mantissa_ = mantissa_ * pow10(digits - scale_);
  r.scale_ = digits;
  return r;
}

Decimal Decimal::normalised() const {
  Decimal r = *this;
  while (r.scale_ > 0 && r.mantissa_ % 10 == 0) {
    r.mantissa_ /= 10;
    --r.scale_;
  }
  return r;
}

// ---- Temporal ----------------------------------------------------------------

namespace {

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (s[at + i] < '0' || s[at + i] > '9') return false;
    out = out * 10 + (s[at + i] - '0');
  }
  return true;
}

// Reads hh[:mm[:ss[.fff]]] at `at`; returns the position after it, or npos.
std::size_t parse_time_part(std::string_view s, std::size_t at, Temporal& t) {
  if (!digits(s, at, 2, t.hour_) || t.hour_ > 23) return std::string_view::npos;
  t.precision = Temporal::hour;
  at += 2;
  if (at >= s.size() || s[at] != ':') return at;
  if (!digits(s, at + 1, 2, t.minute_) || t.minute_ > 59) return std::string_view::npos;
  t.precision = Temporal::minute;
  at += 3;
  if (at >= s.size() || s[at] != ':') return at;
  if (!digits(s, at + 1, 2, t.second_) || t.second_ > 59) return std::string_view::npos;
  t.precision = Temporal::second;
  at += 3;
  if (at < s.size() && s[at] == '.') {
    std::size_t end = at + 1;
    int millis = 0, count = 0;
    while (end < s.size() && s[end] >= '0' && s[end] <= '9') {
      if (count < 3) millis = millis * 10 + (s[end] - '0');
      ++count;
      ++end;
    }
    if (count == 0) return std::string_view::npos;
    for (int k = count; k < 3; ++k) millis *= 10;
    t.millis_ = millis;
    t.precision = Temporal::millisecond;
    at = end;
  }
  return at;
}

}  // namespace

std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy =
      (153 * static_cast<unsigned>(m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t days, int& year, int& month, int& day) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  year = static_cast<int>(yoe + era * 400 + (month <= 2));
}

std::optional<Temporal> Temporal::parse(std::string_view s, Kind kind) {
  Temporal t;
  t.kind = kind;
  std::size_t at = 0;
  if (kind == Kind::time) {
    at = parse_time_part(s, 0, t);
    if (at != s.size()) return std::nullopt;
    return t;
  }
  if (!digits(s, 0, 4, t.year_)) return std::nullopt;
  t.precision = year;
  at = 4;
  if (at < s.size() && s[at] == '-') {
    if (!digits(s, at + 1, 2, t.month_) || t.month_ < 1 || t.month_ > 12) return std::nullopt;
    t.precision = month;
    at += 3;
    if (at < s.size() && s[at] == '-') {
      if (!digits(s, at + 1, 2, t.day_) || t.day_ < 1 || t.day_ > 31) return std::nullopt;
      t.precision = day;
      at += 3;
    }
  }
  if (at < s.size() && s[at] == 'T') {
    if (kind == Kind::date) return std::nullopt;
    if (at + 1 < s.size()) {
      at = parse_time_part(s, at + 1, t);
      if (at == std::string_view::npos) return std::nullopt;
    } else {
      ++at;  // FHIRPath allows "@2015-02-04T" for a dateTime to the day
    }
  }
  if (at < s.size() && kind == Kind::date_time) {
    if (s[at] == 'Z') {
      t.offset_minutes = 0;
      ++at;
    } else if (s[at] == '+' || s[at] == '-') {
      int h = 0, m = 0;
      if (!digits(s, at + 1, 2, h) || at + 3 >= s.size() || s[at + 3] != ':' || !digits(s, at + 4, 2, m))
        return std::nullopt;
      t.offset_minutes = (s[at] == '-' ? -1 : 1) * (h * 60 + m);
      at += 6;
    }
  }
  if (at != s.size()) return std::nullopt;
  return t;
}

std::string Temporal::str() const {
  char buffer[64];
  std::string out;
  if (kind != Kind::time) {
    std::snprintf(buffer, sizeof buffer, "%04d", year_);
    out = buffer;
    if (precision >= month) {
      std::snprintf(buffer, sizeof buffer, "-%02d", month_);
      out += buffer;
    }
    if (precision >= day) {
      std::snprintf(buffer, sizeof buffer, "-%02d", day_);
      out += buffer;
    }
    if (kind == Kind::date || precision <= day) return out;
    out += 'T';
  }
  std::snprintf(buffer, sizeof buffer, "%02d", hour_);
  out += buffer;
  if (precision >= minute) {
    std::snprintf(buffer, sizeof buffer, ":%02d", minute_);
    out += buffer;
  }
  if (precision >= second) {
    std::snprintf(buffer, sizeof buffer, ":%02d", second_);
    out += buffer;
  }
  if (precision >= millisecond) {
    std::snprintf(buffer, sizeof buffer, ".%03d", millis_);
    out += buffer;
  }
  if (kind == Kind::date_time && offset_minutes) {
    if (*offset_minutes == 0) {
      out += 'Z';
    } else {
      const int m = std::abs(*offset_minutes);
      std::snprintf(buffer, sizeof buffer, "%c%02d:%02d", *offset_minutes < 0 ? '-' : '+', m / 60, m % 60);
      out += buffer;
    }
  }
  return out;
}

namespace {

// precision() digits by Temporal::Precision, for dates and dateTimes and for times.
constexpr std::array<int, 8> kDateDigits = {0, 4, 6, 8, 10, 12, 14, 17};
constexpr std::array<int, 8> kTimeDigits = {0, 0, 0, 0, 2, 4, 6, 9};

int days_in_month(int year, int month) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

}  // namespace

int Temporal::precision_digits() const {
  return (kind == Kind::time ? kTimeDigits : kDateDigits)[precision];
}

std::optional<Decimal> boundary(const Decimal& value, int precision, bool high) {
  if (precision < 0 || precision > kMaxScale || value.scale() >= kMaxScale) return std::nullopt;
  // A value written as 1.587 stands for anything in [1.5865, 1.5875]. The
  // edge of the magnitude is then cut to `precision` places the way the
  // suite (and the Java reference) expects: the lower edge truncated, the
  // upper edge rounded half up; negative values mirror positive ones.
  const bool negative = value.negative();
  const Decimal magnitude = negative ? -value : value;
  const bool upper = high != negative;
  const Decimal half =
      *Decimal::parse("0." + std::string(static_cast<std::size_t>(value.scale()), '0') + "5");
  const Decimal edge = upper ? magnitude + half : magnitude - half;
  const auto cut = (upper ? edge.rounded(precision) : edge.truncated_to(precision)).padded_to(precision);
  if (!cut) return std::nullopt;
  return negative ? -*cut : *cut;
}

std::optional<Temporal> boundary(const Temporal& value, int precision, bool high) {
  const auto& table = value.kind == Temporal::Kind::time ? kTimeDigits : kDateDigits;
  const auto found = std::find(table.begin() + 1, table.end(), precision);
  if (found == table.end() || precision == 0) return std::nullopt;
  const auto target = static_cast<Temporal::Precision>(found - table.begin());
  if (value.kind == Temporal::Kind::date && target > Temporal::day) return std::nullopt;
  Temporal t = value;
  // FHIR has no hour-only times: 08 is read as 08:00 before widening.
  if (t.kind == Temporal::Kind::date_time && t.precision == Temporal::hour) t.precision = Temporal::minute;
  if (t.precision < Temporal::month) t.month_ = high ? 12 : 1;
  if (t.precision < Temporal::day) t.day_ = high ? days_in_month(t.year_, t.month_) : 1;
  if (t.precision < Temporal::hour) t.hour_ = high ? 23 : 0;
  if (t.precision < Temporal::minute) t.minute_ = high ? 59 : 0;
  if (t.precision < Temporal::second) t.second_ = high ? 59 : 0;
  if (t.precision < Temporal::millisecond) t.millis_ = high ? 999 : 0;
  t.precision = target;
  // Without a time zone, a moment could be in any of them: the earliest
  // reading is at +14:00, the latest at -12:00.
  if (t.kind == Temporal::Kind::date_time && target > Temporal::day && !t.offset_minutes)
    t.offset_minutes = high ? -12 * 60 : 14 * 60;
  return t;
}

std::optional<std::strong_ordering> compare(const Temporal& a, const Temporal& b) {
  if ((a.kind == Temporal::Kind::time) != (b.kind == Temporal::Kind::time)) return std::nullopt;
  auto fields = [](const Temporal& t, bool to_utc) {
    std::array<std::int64_t, 7> f{t.year_, t.month_, t.day_, t.hour_, t.minute_, t.second_, t.millis_};
    if (to_utc && t.offset_minutes && *t.offset_minutes != 0 && t.precision >= Temporal::hour) {
      // Shift to UTC through a count of minutes.
      std::int64_t minutes =
          days_from_civil(t.year_, t.month_, t.day_) * 1440 + t.hour_ * 60 + t.minute_ - *t.offset_minutes;
      std::int64_t days = minutes >= 0 ? minutes / 1440 : (minutes - 1439) / 1440;
      minutes -= days * 1440;
      int y = 0, m = 0, d = 0;
      civil_from_days(days, y, m, d);
      f[0] = y;
      f[1] = m;
      f[2] = d;
      f[3] = minutes / 60;
      f[4] = minutes % 60;
    }
    return f;
  };
  const bool zones = a.offset_minutes.has_value() && b.offset_minutes.has_value();
  if (a.offset_minutes.has_value() != b.offset_minutes.has_value() && a.precision >= Temporal::hour &&
      b.precision >= Temporal::hour)
    return std::nullopt;  // one has a zone, the other not: not comparable
  const auto fa = fields(a, zones);
  const auto fb = fields(b, zones);
  // Seconds and milliseconds count as one precision for comparison.
  auto level = [](Temporal::Precision p) { return p == Temporal::millisecond ? 7 : static_cast<int>(p); };
  const int start = a.kind == Temporal::Kind::time ? 3 : 0;
  const int common = std::min(level(a.precision), level(b.precision));
  for (int i = start; i < common; ++i) {
    if (fa[i] != fb[i]) return fa[i] < fb[i] ? std::strong_ordering::less : std::strong_ordering::greater;
  }
  const bool a_seconds = a.precision >= Temporal::second, b_seconds = b.precision >= Temporal::second;
  if (a.precision != b.precision && !(a_seconds && b_seconds)) return std::nullopt;
  if (a_seconds && b_seconds && fa[6] != fb[6])
    return fa[6] < fb[6] ? std::strong_ordering::less : std::strong_ordering::greater;
  return std::strong_ordering::equal;
}

// ---- Quantity and Item ---------------------------------------------------------

bool is_calendar_unit(std::string_view u) {
  static constexpr std::string_view words[] = {"year", "month",  "week",   "day",
                                               "hour", "minute", "second", "millisecond"};
  if (u.ends_with('s')) u.remove_suffix(1);
  return std::find(std::begin(words), std::end(words), u) != std::end(words);
}

std::string Quantity::str() const {
  return value.str() + " " + (is_calendar_unit(unit) ? unit : "'" + unit + "'");
}

std::string Item::type_name() const {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, const fhir::Element*>)
          return v->type().name;
        else if constexpr (std::is_same_v<T, bool>)
          return "boolean";
        else if constexpr (std::is_same_v<T, std::int64_t>)
          return "integer";
        else if constexpr (std::is_same_v<T, Decimal>)
          return "decimal";
        else if constexpr (std::is_same_v<T, std::string>)
          return "string";
        else if constexpr (std::is_same_v<T, Quantity>)
          return "Quantity";
        else if constexpr (std::is_same_v<T, TypeName>)
          return "TypeInfo";
        else
          return v.kind == Temporal::Kind::date   ? "date"
                 : v.kind == Temporal::Kind::time ? "time"
                                                  : "dateTime";
      },
      value);
}

std::optional<Item> system_value(const Item& item) {
  const fhir::Element* e = item.element();
  if (e == nullptr) return item;
  const fhir::TypeInfo& type = e->type();
  using fhir::Primitive;
  if (type.is_primitive()) {
    if (!e->has_value()) return std::nullopt;
    const std::string& v = e->value();
    switch (type.primitive) {
      case Primitive::boolean: return Item{v == "true"};
      case Primitive::integer:
      case Primitive::positive_int:
      case Primitive::unsigned_int: {
        std::int64_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;  // not a valid integer
        return Item{n};
      }
      case Primitive::decimal: {
        auto d = Decimal::parse(v);
        if (!d) return std::nullopt;
        return Item{*d};
      }
      case Primitive::date:
        if (auto t = Temporal::parse(v, Temporal::Kind::date)) return Item{*t};
        return std::nullopt;
      case Primitive::date_time:
      case Primitive::instant:
        if (auto t = Temporal::parse(v, Temporal::Kind::date_time)) return Item{*t};
        return std::nullopt;
      case Primitive::time:
        if (auto t = Temporal::parse(v, Temporal::Kind::time)) return Item{*t};
        return std::nullopt;
      default: return Item{v};
    }
  }
  if (type.is_a("Quantity")) {
    const auto value = Decimal::parse(e->child_value("value"));
    if (!value) return std::nullopt;
    std::string unit(e->child_value("code"));
    if (unit.empty()) unit = std::string(e->child_value("unit"));
    return Item{Quantity{*value, unit}};
  }
  return std::nullopt;
}

}  // namespace courier::fhirpath
