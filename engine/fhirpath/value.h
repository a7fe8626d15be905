// FHIRPath values: the System types (Boolean, Integer, Decimal, String,
// Date, DateTime, Time, Quantity) and FHIR elements of the input tree.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/fhir/element.h"

namespace courier::fhirpath {

__extension__ typedef __int128 int128;  // exact decimal arithmetic; GCC and clang have it

// An exact decimal: mantissa / 10^scale. FHIRPath decimals must not pick up
// binary rounding (0.1 + 0.2 = 0.3), and keep their written precision.
class Decimal {
 public:
  Decimal() = default;
  Decimal(std::int64_t integer) : mantissa_(integer) {}  // NOLINT: integers promote
  static std::optional<Decimal> parse(std::string_view text);
  static Decimal from_double(double value);

  std::string str() const;
  double to_double() const;
  int scale() const { return scale_; }
  bool is_integer() const;
  // The value rounded towards zero, when it fits.
  std::optional<std::int64_t> truncated() const;

  Decimal operator+(const Decimal& o) const;
  Decimal operator-(const Decimal& o) const;
  Decimal operator*(const Decimal& o) const;
  std::optional<Decimal> divide(const Decimal& o) const;
  Decimal operator-() const;
  std::strong_ordering operator<=>(const Decimal& o) const;
  bool operator==(const Decimal& o) const { return (*this <=> o) == 0; }
  Decimal rounded(int digits) const;       // half away from zero
  Decimal truncated_to(int digits) const;  // towards zero
  // The same value written with `digits` decimal places (trailing zeros
  // added); nullopt when that does not fit.
  std::optional<Decimal> padded_to(int digits) const;
  bool negative() const { return mantissa_ < 0; }
  Decimal normalised() const;  // trailing zeros removed

 private:
  int128 mantissa_ = 0;
  int scale_ = 0;
  static int128 pow10(int n);
  static std::pair<int128, int128> aligned(const Decimal& a, const Decimal& b);
};

// A date, dateTime or time with the precision it was written to.
struct Temporal {
  enum class Kind : std::uint8_t { date, date_time, time };
  // year, month, day, hour, minute, second (with milliseconds)
  enum Precision : std::uint8_t { year = 1, month, day, hour, minute, second, millisecond };

  Kind kind = Kind::date;
  Precision precision = year;
  int year_ = 0, month_ = 1, day_ = 1, hour_ = 0, minute_ = 0, second_ = 0, millis_ = 0;
  std::optional<int> offset_minutes;  // time zone, when given

  // FHIR's lexical forms (without FHIRPath's '@'); `kind` tells which.
  static std::optional<Temporal> parse(std::string_view text, Kind kind);
  std::string str() const;  // FHIR form, without '@'
  // The number of digits precision() reports: 4 (year) to 17 (millisecond)
  // for dates and dateTimes, 2 to 9 for times.
  int precision_digits() const;
};

// Days since 1970-01-01 of a proleptic Gregorian date, and back.
std::int64_t days_from_civil(int year, int month, int day);
void civil_from_days(std::int64_t days, int& year, int& month, int& day);

// Compares at the common precision; empty when the answer depends on
// digits that one side does not have.
std::optional<std::strong_ordering> compare(const Temporal& a, const Temporal& b);

// lowBoundary() and highBoundary(): the least or greatest value the input
// may stand for, given the digits it was written with, to `precision`
// digits (decimal places for a decimal; 4 to 17 date/time digits, as
// precision() counts them, for a temporal). nullopt when `precision` is
// out of range.
std::optional<Decimal> boundary(const Decimal& value, int precision, bool high);
std::optional<Temporal> boundary(const Temporal& value, int precision, bool high);

// A calendar duration keyword: year, month, week, day, hour, minute,
// second, millisecond, or a plural of one.
bool is_calendar_unit(std::string_view unit);

struct Quantity {
  Decimal value;
  std::string unit;  // a UCUM code, or a calendar duration keyword (year, month, ...)
  std::string str() const;
};

// What type() gives: a type's namespace (System or FHIR) and name.
struct TypeName {
  std::string space;
  std::string name;
};

// One item of a FHIRPath collection.
struct Item {
  std::variant<const fhir::Element*, bool, std::int64_t, Decimal, std::string, Temporal, Quantity, TypeName>
      value;

  const fhir::Element* element() const {
    const auto* e = std::get_if<const fhir::Element*>(&value);
    return e != nullptr ? *e : nullptr;
  }
  // The type name as the FHIRPath test suite writes it: a FHIR type for
  // elements ("code", "HumanName"), else a System type ("integer", "Quantity").
  std::string type_name() const;
};

using Collection = std::vector<Item>;

// An element's primitive value (or Quantity) as a System value; the item
// itself when it is not an element; nullopt for other complex elements.
std::optional<Item> system_value(const Item& item);

}  // namespace courier::fhirpath
