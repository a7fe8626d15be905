// FHIRPath's operators and conversions on values, and the compile-time checks.
#pragma once

#include <optional>
#include <string_view>

#include "engine/fhirpath/ast.h"
#include "engine/fhirpath/fhirpath.h"

namespace courier::fhirpath {

// `=` on two items: empty when the answer is unknown (dates of different precision).
std::optional<bool> items_equal(const Item& a, const Item& b);
// `~` on two items.
bool items_equivalent(const Item& a, const Item& b);

// The order of two System values (numbers, strings, dates, quantities);
// empty when it is unknown; an error for values that have no order.
std::optional<std::strong_ordering> order_items(const Node& n, const Item& a, const Item& b);
// True when two quantities' units can be converted into each other.
bool quantities_comparable(const Quantity& a, const Quantity& b);

// Every binary operator but the Boolean ones (which need lazy operands).
Collection binary(const Node& n, const Collection& a, const Collection& b);
Collection negate(const Node& n, const Collection& a);

// toX(): the value as `target` (Boolean, Integer, Decimal, String, Date,
// DateTime, Time, Quantity), or nullopt when it does not convert.
std::optional<Item> convert(const Item& value, std::string_view target);

// A quantity in another unit of the same dimension (toQuantity(unit)).
std::optional<Item> convert_quantity(const Quantity& q, std::string_view unit);

// The semantic checks made when compiling; throws Error (semantic).
void check(const Node& root, const CompileOptions& options);

}  // namespace courier::fhirpath
