#include "engine/fhirpath/operations.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "engine/fhir/type_registry.h"

namespace courier::fhirpath {

namespace {

[[noreturn]] void execution_error(const Node& n, const std::string& message) {
  throw Error(Error::Kind::execution, n.position, message);
}

Collection boolean(bool b) {
  return Collection{Item{b}};
}

// ---- units -----------------------------------------------------------------------

struct Unit {
  std::string_view dimension;
  Decimal factor;  // to the dimension's base unit
};

// The UCUM units FHIRPath's comparisons meet in practice, and the definite
// calendar durations (FHIRPath: second ... week equal their UCUM units;
// month and year do not).
std::optional<Unit> unit_of(std::string_view u) {
  static const std::pair<std::string_view, std::pair<std::string_view, const char*>> table[] = {
      {"g", {"mass", "1"}},
      {"mg", {"mass", "0.001"}},
      {"ug", {"mass", "0.000001"}},
      {"kg", {"mass", "1000"}},
      {"ng", {"mass", "0.000000001"}},
      {"m", {"length", "1"}},
      {"cm", {"length", "0.01"}},
      {"mm", {"length", "0.001"}},
      {"km", {"length", "1000"}},
      {"um", {"length", "0.000001"}},
      {"[in_i]", {"length", "0.0254"}},
      {"[ft_i]", {"length", "0.3048"}},
      {"[lb_av]", {"mass", "453.59237"}},
      {"[oz_av]", {"mass", "28.349523125"}},
      {"L", {"volume", "1"}},
      {"Pa", {"pressure", "1"}},
      {"kPa", {"pressure", "1000"}},
      {"mm[Hg]", {"pressure", "133.322387415"}},
      {"mol/L", {"concentration", "1"}},
      {"mmol/L", {"concentration", "0.001"}},
      {"umol/L", {"concentration", "0.000001"}},
      {"g/L", {"mass concentration", "1"}},
      {"g/dL", {"mass concentration", "10"}},
      {"mg/dL", {"mass concentration", "0.01"}},
      {"mg/L", {"mass concentration", "0.001"}},
      {"l", {"volume", "1"}},
      {"mL", {"volume", "0.001"}},
      {"dL", {"volume", "0.1"}},
      {"s", {"time", "1"}},
      {"ms", {"time", "0.001"}},
      {"min", {"time", "60"}},
      {"h", {"time", "3600"}},
      {"d", {"time", "86400"}},
      {"wk", {"time", "604800"}},
      {"second", {"time", "1"}},
      {"seconds", {"time", "1"}},
      {"millisecond", {"time", "0.001"}},
      {"milliseconds", {"time", "0.001"}},
      {"minute", {"time", "60"}},
      {"minutes", {"time", "60"}},
      {"hour", {"time", "3600"}},
      {"hours", {"time", "3600"}},
      {"day", {"time", "86400"}},
      {"days", {"time", "86400"}},
      {"week", {"time", "604800"}},
      {"weeks", {"time", "604800"}},
      {"1", {"one", "1"}},
  };
  for (const auto& [name, unit] : table)
    if (name == u) return Unit{unit.first, *Decimal::parse(unit.second)};
  return std::nullopt;
}

std::string calendar_base(std::string_view u) {
  if (u == "years") return "year";
  if (u == "months") return "month";
  return std::string(u);
}

// Both quantities in one unit, when they can be.
std::optional<std::pair<Decimal, Decimal>> comparable(const Quantity& a, const Quantity& b) {
  if (calendar_base(a.unit) == calendar_base(b.unit)) return std::pair{a.value, b.value};
  const auto ua = unit_of(a.unit);
  const auto ub = unit_of(b.unit);
  if (!ua || !ub || ua->dimension != ub->dimension) return std::nullopt;
  return std::pair{a.value * ua->factor, b.value * ub->factor};
}

// ---- equality ----------------------------------------------------------------------

// A number as a Decimal, when the item is one.
std::optional<Decimal> number(const Item& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v.value)) return Decimal(*i);
  if (const auto* d = std::get_if<Decimal>(&v.value)) return *d;
  return std::nullopt;
}

bool elements_equal(const fhir::Element& a, const fhir::Element& b) {
  if (&a.type() != &b.type() || a.has_value() != b.has_value() || a.value() != b.value() ||
      a.children().size() != b.children().size())
    return false;
  for (std::size_t i = 0; i < a.children().size(); ++i) {
    if (a.children()[i].name() != b.children()[i].name() || !elements_equal(a.children()[i], b.children()[i]))
      return false;
  }
  return true;
}

std::string normalised_text(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::optional<bool> values_compare_equal(const Item& a, const Item& b, bool equivalence) {
  if (const auto na = number(a), nb = number(b); na && nb) {
    if (!equivalence) return *na == *nb;
    const int scale = std::min(na->scale(), nb->scale());
    return na->rounded(scale) == nb->rounded(scale);
  }
  if (const auto* sa = std::get_if<std::string>(&a.value)) {
    const auto* sb = std::get_if<std::string>(&b.value);
    if (sb == nullptr) return false;
    return equivalence ? normalised_text(*sa) == normalised_text(*sb) : *sa == *sb;
  }
  if (const auto* ba = std::get_if<bool>(&a.value)) {
    const auto* bb = std::get_if<bool>(&b.value);
    return bb != nullptr && *ba == *bb;
  }
  if (const auto* ta = std::get_if<Temporal>(&a.value)) {
    const auto* tb = std::get_if<Temporal>(&b.value);
    if (tb == nullptr || (ta->kind == Temporal::Kind::time) != (tb->kind == Temporal::Kind::time))
      return false;
    const auto order = compare(*ta, *tb);
    if (!order) return equivalence ? std::optional<bool>(false) : std::nullopt;
    return *order == 0;
  }
  if (const auto* qa = std::get_if<Quantity>(&a.value)) {
    const auto* qb = std::get_if<Quantity>(&b.value);
    if (qb == nullptr) return false;
    const auto both = comparable(*qa, *qb);
    if (!both) return equivalence ? std::optional<bool>(false) : std::nullopt;
    if (!equivalence) return both->first == both->second;
    // Equivalence compares at the precision of the less precise value.
    const int scale = std::min(qa->value.scale(), qb->value.scale());
    const Decimal unit_a = unit_of(qa->unit) ? unit_of(qa->unit)->factor : Decimal(1);
    return both->first.divide(unit_a).value_or(both->first).rounded(scale) ==
           both->second.divide(unit_a).value_or(both->second).rounded(scale);
  }
  return false;
}

}  // namespace

namespace {

// `=` (equivalence false) or `~` on two items: System values by value;
// complex elements, which have none, by their content.
std::optional<bool> compare_items(const Item& a, const Item& b, bool equivalence) {
  const auto va = system_value(a);
  const auto vb = system_value(b);
  if (!va || !vb) {
    const fhir::Element* ea = a.element();
    const fhir::Element* eb = b.element();
    return ea != nullptr && eb != nullptr && elements_equal(*ea, *eb);
  }
  return values_compare_equal(*va, *vb, equivalence);
}

}  // namespace

std::optional<bool> items_equal(const Item& a, const Item& b) {
  return compare_items(a, b, false);
}

bool items_equivalent(const Item& a, const Item& b) {
  return compare_items(a, b, true).value_or(false);
}

namespace {

std::optional<bool> collections_equal(const Collection& a, const Collection& b) {
  if (a.size() != b.size()) return false;
  bool unknown = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto e = items_equal(a[i], b[i]);
    if (e == false) return false;
    if (!e) unknown = true;
  }
  if (unknown) return std::nullopt;
  return true;
}

bool collections_equivalent(const Collection& a, const Collection& b) {
  if (a.size() != b.size()) return false;
  std::vector<bool> used(b.size());
  for (const Item& x : a) {
    bool found = false;
    for (std::size_t j = 0; j < b.size() && !found; ++j)
      if (!used[j] && items_equivalent(x, b[j])) used[j] = found = true;
    if (!found) return false;
  }
  return true;
}

std::optional<Item> single(const Node& n, const Collection& c) {
  if (c.empty()) return std::nullopt;
  if (c.size() > 1)
    execution_error(n, "'" + n.name + "' needs single items, got " + std::to_string(c.size()));
  auto v = system_value(c.front());
  if (!v) {
    const fhir::Element* e = c.front().element();
    if (e != nullptr && e->type().is_primitive() && e->has_value())
      execution_error(n,
                      "the " + e->type().name + " " + e->value() + " is outside the range FHIRPath supports");
    execution_error(n, "'" + n.name + "' cannot be applied to a " + c.front().type_name());
  }
  return v;
}

}  // namespace

bool quantities_comparable(const Quantity& a, const Quantity& b) {
  return comparable(a, b).has_value();
}

std::optional<std::strong_ordering> order_items(const Node& n, const Item& a, const Item& b) {
  if (const auto na = number(a), nb = number(b); na && nb) return *na <=> *nb;
  if (const auto* sa = std::get_if<std::string>(&a.value))
    if (const auto* sb = std::get_if<std::string>(&b.value)) return *sa <=> *sb;
  if (const auto* ta = std::get_if<Temporal>(&a.value))
    if (const auto* tb = std::get_if<Temporal>(&b.value)) {
      if ((ta->kind == Temporal::Kind::time) != (tb->kind == Temporal::Kind::time))
        execution_error(n, "cannot compare a time with a date");
      return compare(*ta, *tb);
    }
  if (const auto* qa = std::get_if<Quantity>(&a.value))
    if (const auto* qb = std::get_if<Quantity>(&b.value)) {
      const auto both = comparable(*qa, *qb);
      if (!both) return std::nullopt;
      return both->first <=> both->second;
    }
  execution_error(n, "cannot compare " + a.type_name() + " with " + b.type_name());
}

namespace {

// Adds a calendar or UCUM time quantity to a date, dateTime or time.
std::optional<Temporal> add_duration(const Node& n, Temporal t, const Quantity& q, int sign) {
  std::string unit = calendar_base(q.unit);
  if (unit.size() > 1 && unit.back() == 's' && unit != "ms" && unit != "s") unit.pop_back();
  // UCUM's 'a' and 'mo' are mean lengths, not calendar years and months, so
  // only the definite units may be added to a date.
  static const std::pair<std::string_view, std::string_view> ucum[] = {
      {"wk", "week"}, {"d", "day"}, {"h", "hour"}, {"min", "minute"}, {"s", "second"}, {"ms", "millisecond"}};
  for (const auto& [code, name] : ucum)
    if (unit == code) unit = name;
  const auto whole = q.value.truncated();
  if (!whole) execution_error(n, "duration out of range");
  const std::int64_t v = sign * *whole;
  if (unit == "year" || unit == "month") {
    if (t.kind == Temporal::Kind::time) execution_error(n, "cannot add " + unit + "s to a time");
    std::int64_t months =
        static_cast<std::int64_t>(t.year_) * 12 + (t.month_ - 1) + (unit == "year" ? v * 12 : v);
    t.year_ = static_cast<int>(months / 12);
    t.month_ = static_cast<int>(months % 12) + 1;
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (t.year_ % 4 == 0 && t.year_ % 100 != 0) || t.year_ % 400 == 0;
    t.day_ = std::min(t.day_, t.month_ == 2 && leap ? 29 : days[t.month_ - 1]);
    return t;
  }
  std::int64_t millis;
  if (unit == "week")
    millis = v * 604800000;
  else if (unit == "day")
    millis = v * 86400000;
  else if (unit == "hour")
    millis = v * 3600000;
  else if (unit == "minute")
    millis = v * 60000;
  else if (unit == "second")
    millis = v * 1000;  // whole seconds, as the quantity is truncated
  else if (unit == "millisecond")
    millis = v;
  else
    execution_error(n, "'" + q.unit + "' is not a unit of time");
  // Durations finer than the value's precision are dropped, as FHIRPath says.
  const bool day_or_coarser = t.kind == Temporal::Kind::date || t.precision <= Temporal::day;
  if (day_or_coarser) millis = millis / 86400000 * 86400000;
  const std::int64_t day_count =
      t.kind != Temporal::Kind::time ? days_from_civil(t.year_, t.month_, t.day_) : 0;
  std::int64_t total = day_count * 86400000 + t.hour_ * 3600000LL + t.minute_ * 60000LL + t.second_ * 1000LL +
                       t.millis_ + millis;
  std::int64_t days = total >= 0 ? total / 86400000 : (total - 86399999) / 86400000;
  std::int64_t rest = total - days * 86400000;
  t.hour_ = static_cast<int>(rest / 3600000);
  t.minute_ = static_cast<int>(rest / 60000 % 60);
  t.second_ = static_cast<int>(rest / 1000 % 60);
  t.millis_ = static_cast<int>(rest % 1000);
  if (t.kind != Temporal::Kind::time) civil_from_days(days, t.year_, t.month_, t.day_);
  return t;
}

Collection arithmetic(const Node& n, const Item& a, const Item& b) {
  const std::string& op = n.name;
  if (op == "+" || op == "-") {
    if (const auto* t = std::get_if<Temporal>(&a.value)) {
      const auto* q = std::get_if<Quantity>(&b.value);
      if (q == nullptr)
        throw Error(Error::Kind::semantic, n.position, "a date can only be added a quantity of time");
      const auto r = add_duration(n, *t, *q, op == "+" ? 1 : -1);
      return r ? Collection{Item{*r}} : Collection{};
    }
    if (op == "+")
      if (const auto* sa = std::get_if<std::string>(&a.value))
        if (const auto* sb = std::get_if<std::string>(&b.value)) return Collection{Item{*sa + *sb}};
  }
  if (const auto* qa = std::get_if<Quantity>(&a.value)) {
    const auto* qb = std::get_if<Quantity>(&b.value);
    if (qb != nullptr && (op == "+" || op == "-")) {
      // In the left operand's unit.
      const auto right = convert_quantity(*qb, qa->unit);
      if (!right) return {};
      const Decimal& y = std::get<Quantity>(right->value).value;
      return Collection{Item{Quantity{op == "+" ? qa->value + y : qa->value - y, qa->unit}}};
    }
    if (qb != nullptr && (op == "*" || op == "/")) {
      // Units multiply and divide in their dimensions' base units.
      const auto ua = unit_of(qa->unit);
      const auto ub = unit_of(qb->unit);
      if (!ua || !ub) return {};
      static const std::pair<std::string_view, std::string_view> base[] = {
          {"mass", "g"}, {"length", "m"}, {"volume", "L"}, {"time", "s"}, {"one", "1"}};
      auto base_of = [&](std::string_view d) {
        for (const auto& [dim, u] : base)
          if (dim == d) return std::string(u);
        return std::string(d);
      };
      const Decimal x = qa->value * ua->factor;
      const Decimal y = qb->value * ub->factor;
      if (op == "*") {
        const std::string unit = ua->dimension == ub->dimension
                                     ? base_of(ua->dimension) + "2"
                                     : base_of(ua->dimension) + "." + base_of(ub->dimension);
        return Collection{Item{Quantity{x * y, unit}}};
      }
      const auto r = x.divide(y);
      if (!r) return {};
      const std::string unit =
          ua->dimension == ub->dimension ? "1" : base_of(ua->dimension) + "/" + base_of(ub->dimension);
      return Collection{Item{Quantity{*r, unit}}};
    }
    if (const auto nb = number(b); nb && (op == "*" || op == "/")) {
      if (op == "*") return Collection{Item{Quantity{qa->value * *nb, qa->unit}}};
      const auto r = qa->value.divide(*nb);
      return r ? Collection{Item{Quantity{*r, qa->unit}}} : Collection{};
    }
    execution_error(n, "'" + op + "' is not defined for these quantities");
  }
  const auto* ia = std::get_if<std::int64_t>(&a.value);
  const auto* ib = std::get_if<std::int64_t>(&b.value);
  const auto na = number(a), nb = number(b);
  if (!na || !nb)
    execution_error(n, "'" + op + "' needs numbers, not " + a.type_name() + " and " + b.type_name());
  if (ia && ib && op != "/") {
    const std::int64_t x = *ia, y = *ib;
    if (op == "+") return Collection{Item{x + y}};
    if (op == "-") return Collection{Item{x - y}};
    if (op == "*") return Collection{Item{x * y}};
    if (y == 0) return {};
    if (op == "div") return Collection{Item{x / y}};
    if (op == "mod") return Collection{Item{x % y}};
  }
  if (op == "+") return Collection{Item{*na + *nb}};
  if (op == "-") return Collection{Item{*na - *nb}};
  if (op == "*") return Collection{Item{*na * *nb}};
  const auto q = na->divide(*nb);
  if (!q) return {};
  if (op == "/") return Collection{Item{*q}};
  const Decimal whole = q->truncated() ? Decimal(*q->truncated()) : Decimal(0);
  if (op == "div") return Collection{Item{whole}};
  return Collection{Item{*na - whole * *nb}};  // mod
}

}  // namespace

Collection binary(const Node& n, const Collection& a, const Collection& b) {
  const BinaryOp op = n.op;
  if (op == BinaryOp::union_) {
    Collection out;
    for (const Collection* c : {&a, &b})
      for (const Item& i : *c)
        if (std::none_of(out.begin(), out.end(), [&](const Item& o) { return items_equal(o, i) == true; }))
          out.push_back(i);
    return out;
  }
  if (op == BinaryOp::equal || op == BinaryOp::not_equal) {
    if (a.empty() || b.empty()) return {};
    const auto e = collections_equal(a, b);
    if (!e) return {};
    return boolean(op == BinaryOp::equal ? *e : !*e);
  }
  if (op == BinaryOp::equivalent || op == BinaryOp::not_equivalent) {
    const bool e = collections_equivalent(a, b);
    return boolean(op == BinaryOp::equivalent ? e : !e);
  }
  if (op == BinaryOp::in || op == BinaryOp::contains) {
    const Collection& item = op == BinaryOp::in ? a : b;
    const Collection& set = op == BinaryOp::in ? b : a;
    if (item.empty()) return {};
    if (item.size() > 1) execution_error(n, "'" + n.name + "' needs a single item");
    return boolean(std::any_of(set.begin(), set.end(),
                               [&](const Item& s) { return items_equal(s, item.front()) == true; }));
  }
  if (op == BinaryOp::concat) {
    auto text = [&](const Collection& c) -> std::string {
      const auto v = single(n, c);
      if (!v) return "";
      const auto* s = std::get_if<std::string>(&v->value);
      if (s == nullptr) execution_error(n, "'&' needs strings");
      return *s;
    };
    return Collection{Item{text(a) + text(b)}};
  }
  const auto va = single(n, a);
  const auto vb = single(n, b);
  if (!va || !vb) return {};
  if (op == BinaryOp::less || op == BinaryOp::greater || op == BinaryOp::less_equal ||
      op == BinaryOp::greater_equal) {
    const auto o = order_items(n, *va, *vb);
    if (!o) return {};
    if (op == BinaryOp::less) return boolean(*o < 0);
    if (op == BinaryOp::greater) return boolean(*o > 0);
    if (op == BinaryOp::less_equal) return boolean(*o <= 0);
    return boolean(*o >= 0);
  }
  return arithmetic(n, *va, *vb);
}

Collection negate(const Node& n, const Collection& a) {
  const auto v = single(n, a);
  if (!v) return {};
  if (const auto* i = std::get_if<std::int64_t>(&v->value)) return Collection{Item{-*i}};
  if (const auto* d = std::get_if<Decimal>(&v->value)) return Collection{Item{-*d}};
  if (const auto* q = std::get_if<Quantity>(&v->value)) return Collection{Item{Quantity{-q->value, q->unit}}};
  execution_error(n, "'-' needs a number");
}

std::optional<Item> convert_quantity(const Quantity& q, std::string_view unit) {
  if (q.unit == unit) return Item{q};
  const auto from = unit_of(q.unit);
  const auto to = unit_of(unit);
  if (!from || !to || from->dimension != to->dimension) return std::nullopt;
  const auto value = (q.value * from->factor).divide(to->factor);
  if (!value) return std::nullopt;
  return Item{Quantity{*value, std::string(unit)}};
}

std::optional<Item> convert(const Item& v, std::string_view target) {
  const auto* s = std::get_if<std::string>(&v.value);
  const auto* i = std::get_if<std::int64_t>(&v.value);
  const auto* d = std::get_if<Decimal>(&v.value);
  const auto* b = std::get_if<bool>(&v.value);
  const auto* t = std::get_if<Temporal>(&v.value);
  const auto* q = std::get_if<Quantity>(&v.value);
  if (target == "String") {
    if (s) return v;
    if (i) return Item{std::to_string(*i)};
    if (d) return Item{d->str()};
    if (b) return Item{std::string(*b ? "true" : "false")};
    if (t) return Item{t->str()};
    if (q) return Item{q->str()};
    return std::nullopt;
  }
  if (target == "Boolean") {
    if (b) return v;
    if (i && (*i == 0 || *i == 1)) return Item{*i == 1};
    if (d && (*d == Decimal(0) || *d == Decimal(1))) return Item{*d == Decimal(1)};
    if (s) {
      std::string l;
      for (char c : *s) l.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      if (l == "true" || l == "t" || l == "yes" || l == "y" || l == "1" || l == "1.0") return Item{true};
      if (l == "false" || l == "f" || l == "no" || l == "n" || l == "0" || l == "0.0") return Item{false};
    }
    return std::nullopt;
  }
  if (target == "Integer") {
    if (i) return v;
    if (b) return Item{static_cast<std::int64_t>(*b ? 1 : 0)};
    if (s) {
      std::string_view text = *s;
      if (text.starts_with('+') || text.starts_with('-')) text.remove_prefix(1);
      if (text.empty() || text.size() > 18 || !std::all_of(text.begin(), text.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
          }))
        return std::nullopt;
      std::int64_t n = 0;
      const std::string_view digits =
          s->starts_with('+') ? std::string_view(*s).substr(1) : std::string_view(*s);
      if (std::from_chars(digits.data(), digits.data() + digits.size(), n).ec != std::errc())
        return std::nullopt;
      return Item{n};
    }
    return std::nullopt;
  }
  if (target == "Decimal") {
    if (d) return v;
    if (i) return Item{Decimal(*i)};
    if (b) return Item{Decimal(*b ? 1 : 0)};
    if (s) {
      std::string_view text = *s;
      if (text.starts_with('+')) text.remove_prefix(1);
      if (text.find_first_of("eE") != std::string_view::npos) return std::nullopt;
      if (auto parsed = Decimal::parse(text)) return Item{*parsed};
    }
    return std::nullopt;
  }
  if (target == "Date" || target == "DateTime" || target == "Time") {
    const auto kind = target == "Date"   ? Temporal::Kind::date
                      : target == "Time" ? Temporal::Kind::time
                                         : Temporal::Kind::date_time;
    if (t) {
      if (t->kind == kind) return v;
      if (kind == Temporal::Kind::time || t->kind == Temporal::Kind::time) return std::nullopt;
      Temporal c = *t;
      c.kind = kind;
      if (kind == Temporal::Kind::date) {
        c.precision = std::min(c.precision, Temporal::day);
        c.offset_minutes.reset();
      }
      return Item{c};
    }
    if (s) {
      if (auto parsed = Temporal::parse(*s, kind)) return Item{*parsed};
    }
    return std::nullopt;
  }
  if (target == "Quantity") {
    if (q) return v;
    if (i || d) return Item{Quantity{i ? Decimal(*i) : *d, "1"}};
    if (b) return Item{Quantity{Decimal(*b ? 1 : 0), "1"}};
    if (s) {
      // "4.5 'mg'" or "1 day"
      const auto space = s->find(' ');
      const auto value = Decimal::parse(s->substr(0, space));
      if (!value) return std::nullopt;
      if (space == std::string::npos) return Item{Quantity{*value, "1"}};
      std::string unit = s->substr(space + 1);
      if (unit.size() >= 2 && unit.front() == '\'' && unit.back() == '\'')
        unit = unit.substr(1, unit.size() - 2);
      else if (!is_calendar_unit(unit))
        return std::nullopt;  // UCUM units are quoted
      return Item{Quantity{*value, unit}};
    }
    return std::nullopt;
  }
  return std::nullopt;
}

// ---- compile-time checks -------------------------------------------------------------

namespace {

struct Checker {
  const CompileOptions& options;

  static std::vector<const fhir::TypeInfo*> types_named(std::string_view name) {
    if (name.starts_with("FHIR.")) name.remove_prefix(5);
    const fhir::TypeInfo* t = fhir::TypeRegistry::r4().find(name);
    if (t == nullptr) return {};
    return {t};
  }

  [[noreturn]] void semantic(const Node& n, const std::string& message) {
    throw Error(Error::Kind::semantic, n.position, message);
  }

  // The children() or descendants() call that leaves a node's result
  // without a defined order (paths and filters keep that); null when ordered.
  static const Node* unordered_source(const Node& n) {
    if (n.kind == Node::Kind::function && (n.name == "children" || n.name == "descendants")) return &n;
    const bool passes_on =
        n.kind == Node::Kind::member ||
        (n.kind == Node::Kind::function && (n.name == "where" || n.name == "select" || n.name == "ofType" ||
                                            n.name == "distinct" || n.name == "repeat"));
    return passes_on && n.input ? unordered_source(*n.input) : nullptr;
  }

  void check_order(const Node& n) {
    if (!options.check_ordered_functions || !n.input) return;
    if (const Node* source = unordered_source(*n.input))
      semantic(n, (n.kind == Node::Kind::indexer ? std::string("an indexer") : n.name + "()") +
                      " depends on order, and the result of " + source->name + "() has none");
  }

  // The possible FHIR types of a node's result; empty when unknown (System
  // values, functions whose result we do not model).
  // Each node is visited once: visiting an argument twice would make the
  // check exponential in the expression's depth.
  std::vector<const fhir::TypeInfo*> walk(const Node& n, const std::vector<const fhir::TypeInfo*>& focus) {
    switch (n.kind) {
      case Node::Kind::member: {
        const auto input = n.input ? walk(*n.input, focus) : focus;
        // A path that starts with a resource type names its own context.
        if (!n.input && input.empty()) return types_named(n.name);
        if (input.empty()) return {};
        std::vector<const fhir::TypeInfo*> out;
        bool found = false;
        for (const fhir::TypeInfo* t : input) {
          if (!n.input && t->is_a(n.name)) {
            out.push_back(t);
            found = true;
            continue;
          }
          for (const fhir::ElementInfo& e : t->elements)
            if (e.name == n.name) {
              found = true;
              out.insert(out.end(), e.types.begin(), e.types.end());
            }
        }
        if (!found)
          for (const fhir::TypeInfo* t : input)
            for (const fhir::ElementInfo& e : t->elements)
              if (e.choice && n.name.starts_with(e.name) && n.name.size() > e.name.size())
                semantic(n, "'" + n.name + "' is not a path; write " + e.name + ".ofType(" +
                                n.name.substr(e.name.size()) + ")");
        if (!found && options.strict) {
          std::string types;
          for (const fhir::TypeInfo* t : input) types += (types.empty() ? "" : ", ") + t->name;
          semantic(n, "'" + n.name + "' is not an element of " + types);
        }
        return out;
      }
      case Node::Kind::function: {
        const auto input = n.input ? walk(*n.input, focus) : focus;
        // The arguments of where(), select(), exists(), all() and repeat() run on each input item.
        const bool per_item = n.name == "where" || n.name == "select" || n.name == "exists" ||
                              n.name == "all" || n.name == "repeat";
        for (const Node& a : n.args) walk(a, per_item ? input : std::vector<const fhir::TypeInfo*>{});
        if (n.name == "first" || n.name == "last" || n.name == "tail" || n.name == "skip" || n.name == "take")
          check_order(n);
        if (n.name == "where" || n.name == "first" || n.name == "last" || n.name == "single" ||
            n.name == "tail" || n.name == "skip" || n.name == "take" || n.name == "distinct")
          return input;
        if ((n.name == "ofType" || n.name == "as") && !n.args.empty())
          return types_named(type_specifier(n.args[0]));
        if ((n.name == "startsWith" || n.name == "endsWith" || n.name == "contains" || n.name == "matches") &&
            !input.empty() && std::none_of(input.begin(), input.end(), [](const fhir::TypeInfo* t) {
              return t->is_primitive();
            }))
          semantic(n, n.name + "() needs a string, not a " + input.front()->name);
        return {};
      }
      case Node::Kind::type_test: {
        walk(n.args.at(0), focus);
        return n.name == "as" ? types_named(n.type_name) : std::vector<const fhir::TypeInfo*>{};
      }
      case Node::Kind::indexer:
        walk(n.args.at(0), focus);
        check_order(n);
        return n.input ? walk(*n.input, focus) : focus;
      case Node::Kind::unary: walk(n.args.at(0), focus); return {};
      case Node::Kind::binary: {
        if (n.name == "+" || n.name == "-") {
          const Node& l = n.args[0];
          const Node& r = n.args[1];
          const bool date =
              l.kind == Node::Kind::literal && std::holds_alternative<Temporal>(l.literal.value);
          const bool plain_number =
              r.kind == Node::Kind::literal && (std::holds_alternative<std::int64_t>(r.literal.value) ||
                                                std::holds_alternative<Decimal>(r.literal.value));
          if (date && plain_number) semantic(n, "a date can only be added a quantity of time, not a number");
        }
        if (n.name == "|") {
          auto a = walk(n.args[0], focus);
          auto b = walk(n.args[1], focus);
          a.insert(a.end(), b.begin(), b.end());
          return a;
        }
        walk(n.args[0], focus);
        walk(n.args[1], focus);
        return {};
      }
      default: return {};
    }
  }
};

}  // namespace

void check(const Node& root, const CompileOptions& options) {
  std::vector<const fhir::TypeInfo*> focus;
  if (!options.context_type.empty())
    if (const auto* t = fhir::TypeRegistry::r4().find(options.context_type)) focus.push_back(t);
  Checker{options}.walk(root, focus);
}

}  // namespace courier::fhirpath
