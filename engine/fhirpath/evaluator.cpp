// Evaluation of compiled FHIRPath over the Element tree.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <unordered_map>

#include <re2/re2.h>

#include "engine/fhir/bundle_index.h"
#include "engine/fhir/codec.h"
#include "engine/fhir/xml_support.h"
#include "engine/fhirpath/ast.h"
#include "engine/fhirpath/fhirpath.h"
#include "engine/fhirpath/operations.h"
#include "engine/fhirpath/terminology.h"

namespace courier::fhirpath {

namespace {

struct Context {
  const fhir::Element* resource = nullptr;
  const Collection* root = nullptr;
  const Environment* env = nullptr;
  const Item* this_item = nullptr;
  std::int64_t index = 0;
  const Collection* total = nullptr;
};

[[noreturn]] void execution_error(const Node& n, const std::string& message) {
  throw Error(Error::Kind::execution, n.position, message);
}

class Evaluator;
using Function = Collection (*)(Evaluator&, const Node&, const Collection&, const Context&);

class Evaluator {
 public:
  Collection eval(const Node& n, const Collection& focus, const Context& ctx);

  // Evaluates a function argument for each item of `input`, with $this,
  // $index (and $total) set.
  Collection eval_on(const Node& arg, const Item& item, std::int64_t index, const Context& ctx,
                     const Collection* total = nullptr) {
    Context inner = ctx;
    inner.this_item = &item;
    inner.index = index;
    if (total != nullptr) inner.total = total;
    return eval(arg, Collection{item}, inner);
  }

  // A function argument evaluated once against the outer focus.
  Collection argument(const Node& call, std::size_t i, const Context& ctx) {
    const Collection focus = ctx.this_item != nullptr ? Collection{*ctx.this_item} : *ctx.root;
    return eval(call.args.at(i), focus, ctx);
  }

 private:
  // `limit`: stop after that many results (first() needs one).
  Collection member(const Node& n, const Collection& focus, bool at_root,
                    std::size_t limit = std::numeric_limits<std::size_t>::max());
  Collection call(const Node& n, const Collection& focus, const Context& ctx);
};

// ---- helpers ---------------------------------------------------------------------

void check_arity(const Node& n, std::size_t low, std::size_t high) {
  if (n.args.size() < low || n.args.size() > high)
    throw Error(
        Error::Kind::semantic, n.position,
        n.name + "() takes " +
            (low == high ? std::to_string(low) : std::to_string(low) + " to " + std::to_string(high)) +
            " argument" + (high == 1 ? "" : "s") + ", not " + std::to_string(n.args.size()));
}

// The single item of a collection, converted to a System value; nullopt for
// empty and for complex elements; an error for more than one, and for a
// value FHIRPath cannot hold (a decimal of 1E-245), as the operators say.
std::optional<Item> single_value(const Node& n, const Collection& c) {
  if (c.empty()) return std::nullopt;
  if (c.size() > 1) execution_error(n, "expected a single item, got " + std::to_string(c.size()));
  auto v = system_value(c.front());
  if (const fhir::Element* e = c.front().element();
      !v && e != nullptr && e->type().is_primitive() && e->has_value())
    execution_error(n,
                    "the " + e->type().name + " " + e->value() + " is outside the range FHIRPath supports");
  return v;
}

const std::string* as_string(const std::optional<Item>& v) {
  return v ? std::get_if<std::string>(&v->value) : nullptr;
}

Collection boolean(bool b) {
  return Collection{Item{b}};
}

// Singleton evaluation of a collection as a Boolean: empty → unknown; one
// boolean → it; any other single item → true; more → error.
std::optional<bool> truth(const Node& n, const Collection& c) {
  if (c.empty()) return std::nullopt;
  if (c.size() > 1)
    execution_error(n, "expected a single boolean, got " + std::to_string(c.size()) + " items");
  const auto v = system_value(c.front());
  if (v) {
    if (const bool* b = std::get_if<bool>(&v->value)) return *b;
  }
  return true;
}

std::optional<std::int64_t> integer_argument(Evaluator& ev, const Node& n, std::size_t i,
                                             const Context& ctx) {
  const auto v = single_value(n, ev.argument(n, i, ctx));
  if (!v) return std::nullopt;
  if (const auto* x = std::get_if<std::int64_t>(&v->value)) return *x;
  execution_error(n, n.name + "() expects an integer argument");
}

std::optional<std::string> string_argument(Evaluator& ev, const Node& n, std::size_t i, const Context& ctx) {
  const auto v = single_value(n, ev.argument(n, i, ctx));
  if (!v) return std::nullopt;
  if (const std::string* s = as_string(v)) return *s;
  execution_error(n, n.name + "() expects a string argument");
}

std::string strip_namespace(std::string_view type) {
  if (type.starts_with("FHIR.")) return std::string(type.substr(5));
  return std::string(type);
}

// The FHIRPath `is` test for one item.
// `exact` is for as() and ofType(), which the R4 suite has match a FHIR
// primitive only by its own type (a code is not as(string)), while `is`
// follows derivation (a code is a string, a url is a uri).
bool is_type(const Item& item, std::string_view type, bool exact = false) {
  if (const fhir::Element* e = item.element()) {
    if (type.starts_with("System.")) return false;
    const std::string name = strip_namespace(type);
    return exact && e->type().is_primitive() ? e->type().name == name : e->type().is_a(name);
  }
  std::string_view t = type.starts_with("System.") ? type.substr(7) : type;
  const std::string name = item.type_name();  // boolean, integer, ...
  if (t.size() != name.size()) return false;
  for (std::size_t i = 0; i < t.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(t[i])) != std::tolower(static_cast<unsigned char>(name[i])))
      return false;
  return true;
}

void add_distinct(Collection& out, const Item& item) {
  for (const Item& o : out)
    if (items_equal(o, item) == true) return;
  out.push_back(item);
}

void descendants(const fhir::Element& e, Collection& out) {
  for (const fhir::Element& c : e.children()) {
    out.push_back(Item{&c});
    descendants(c, out);
  }
}

// ---- the function library ------------------------------------------------------

using Functions = std::unordered_map<std::string, Function>;

Collection fn_empty(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  return boolean(in.empty());
}

Collection fn_exists(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 0, 1);
  if (n.args.empty()) return boolean(!in.empty());
  for (std::size_t i = 0; i < in.size(); ++i)
    if (truth(n, ev.eval_on(n.args[0], in[i], static_cast<std::int64_t>(i), ctx)) == true)
      return boolean(true);
  return boolean(false);
}

Collection fn_all(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  for (std::size_t i = 0; i < in.size(); ++i)
    if (truth(n, ev.eval_on(n.args[0], in[i], static_cast<std::int64_t>(i), ctx)) != true)
      return boolean(false);
  return boolean(true);
}

template <bool Want, bool Any>
Collection fn_bool_set(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  for (const Item& item : in) {
    const auto v = system_value(item);
    const bool* b = v ? std::get_if<bool>(&v->value) : nullptr;
    if (b == nullptr) execution_error(n, n.name + "() needs booleans");
    if (Any && *b == Want) return boolean(true);
    if (!Any && *b != Want) return boolean(false);
  }
  return boolean(!Any);
}

Collection fn_subset_of(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const Collection other = ev.argument(n, 0, ctx);
  const bool superset = n.name == "supersetOf";
  const Collection& small = superset ? other : in;
  const Collection& big = superset ? in : other;
  for (const Item& a : small)
    if (std::none_of(big.begin(), big.end(), [&](const Item& b) { return items_equal(a, b) == true; }))
      return boolean(false);
  return boolean(true);
}

Collection fn_count(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  return Collection{Item{static_cast<std::int64_t>(in.size())}};
}

Collection fn_distinct(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  Collection out;
  for (const Item& i : in) add_distinct(out, i);
  return out;
}

Collection fn_is_distinct(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  Collection out;
  for (const Item& i : in) add_distinct(out, i);
  return boolean(out.size() == in.size());
}

Collection fn_where(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  Collection out;
  for (std::size_t i = 0; i < in.size(); ++i)
    if (truth(n, ev.eval_on(n.args[0], in[i], static_cast<std::int64_t>(i), ctx)) == true)
      out.push_back(in[i]);
  return out;
}

Collection fn_select(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  Collection out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    Collection r = ev.eval_on(n.args[0], in[i], static_cast<std::int64_t>(i), ctx);
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

Collection fn_repeat(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  Collection out;
  Collection frontier = in;
  for (int round = 0; !frontier.empty() && round < 1000; ++round) {
    Collection next;
    for (std::size_t i = 0; i < frontier.size(); ++i) {
      for (const Item& r : ev.eval_on(n.args[0], frontier[i], static_cast<std::int64_t>(i), ctx)) {
        const std::size_t before = out.size();
        add_distinct(out, r);
        if (out.size() > before) next.push_back(r);
      }
    }
    frontier = std::move(next);
  }
  return out;
}

// A type name as written in is/as/ofType, checked to name a known type.
const std::string& known_type(const Node& n, const std::string& type) {
  if (type.empty()) throw Error(Error::Kind::semantic, n.position, n.name + "() needs a type name");
  static constexpr std::string_view system[] = {"Boolean", "Integer",  "Decimal", "String",
                                                "Date",    "DateTime", "Time",    "Quantity"};
  if (type.starts_with("System.")) return type;  // an unknown System type matches nothing
  if (std::find(std::begin(system), std::end(system), type) != std::end(system)) return type;
  if (fhir::TypeRegistry::r4().find(strip_namespace(type)) == nullptr)
    execution_error(n, "unknown type " + type);
  return type;
}

Collection fn_of_type(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 1, 1);
  const std::string& type = known_type(n, n.type_name);
  Collection out;
  for (const Item& i : in)
    if (is_type(i, type, true)) out.push_back(i);
  return out;
}

Collection fn_is_as(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 1, 1);
  const std::string& type = known_type(n, n.type_name);
  if (in.empty()) return {};
  if (in.size() > 1) execution_error(n, n.name + "() needs a single item");
  const bool match = is_type(in.front(), type, n.name == "as");
  if (n.name == "is") return boolean(match);
  return match ? in : Collection{};
}

Collection fn_single(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  if (in.size() > 1) execution_error(n, "single() on " + std::to_string(in.size()) + " items");
  return in;
}

Collection fn_first(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  return in.empty() ? Collection{} : Collection{in.front()};
}

Collection fn_last(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  return in.empty() ? Collection{} : Collection{in.back()};
}

Collection fn_tail(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  return in.size() <= 1 ? Collection{} : Collection(in.begin() + 1, in.end());
}

Collection fn_skip_take(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const auto count = integer_argument(ev, n, 0, ctx);
  if (!count) return {};
  const std::size_t k =
      static_cast<std::size_t>(std::clamp<std::int64_t>(*count, 0, static_cast<std::int64_t>(in.size())));
  if (n.name == "skip") return Collection(in.begin() + static_cast<std::ptrdiff_t>(k), in.end());
  return Collection(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(k));
}

Collection fn_intersect_exclude(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const Collection other = ev.argument(n, 0, ctx);
  const bool keep_common = n.name == "intersect";
  Collection out;
  for (const Item& a : in) {
    const bool common =
        std::any_of(other.begin(), other.end(), [&](const Item& b) { return items_equal(a, b) == true; });
    if (common != keep_common) continue;
    if (keep_common)
      add_distinct(out, a);
    else
      out.push_back(a);
  }
  return out;
}

Collection fn_union(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  Collection out;
  for (const Item& i : in) add_distinct(out, i);
  for (const Item& i : ev.argument(n, 0, ctx)) add_distinct(out, i);
  return out;
}

Collection fn_combine(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  Collection out = in;
  const Collection other = ev.argument(n, 0, ctx);
  out.insert(out.end(), other.begin(), other.end());
  return out;
}

Collection fn_iif(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 2, 3);
  if (in.size() > 1) execution_error(n, "iif() on more than one item");
  Context inner = ctx;
  if (!in.empty()) inner.this_item = &in.front();
  const Collection criterion = ev.argument(n, 0, inner);
  if (criterion.size() > 1)
    throw Error(Error::Kind::semantic, n.position, "iif() criterion must be a single boolean");
  if (criterion.size() == 1) {
    const auto v = system_value(criterion.front());
    if (!v || !std::holds_alternative<bool>(v->value))
      throw Error(Error::Kind::semantic, n.position, "iif() criterion must be a boolean");
  }
  if (truth(n, criterion) == true) return ev.argument(n, 1, inner);
  return n.args.size() == 3 ? ev.argument(n, 2, inner) : Collection{};
}

Collection fn_children(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  Collection out;
  for (const Item& i : in)
    if (const fhir::Element* e = i.element())
      for (const fhir::Element& c : e->children()) out.push_back(Item{&c});
  return out;
}

Collection fn_descendants(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  Collection out;
  for (const Item& i : in)
    if (const fhir::Element* e = i.element()) descendants(*e, out);
  return out;
}

Collection fn_trace(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 2);
  const auto name = string_argument(ev, n, 0, ctx);
  if (!ctx.env->trace) return in;
  if (n.args.size() == 1) {
    ctx.env->trace(name.value_or(""), in);
    return in;
  }
  Collection projected;
  for (std::size_t i = 0; i < in.size(); ++i) {
    Collection r = ev.eval_on(n.args[1], in[i], static_cast<std::int64_t>(i), ctx);
    projected.insert(projected.end(), r.begin(), r.end());
  }
  ctx.env->trace(name.value_or(""), projected);
  return in;
}

Collection fn_now(Evaluator&, const Node& n, const Collection&, const Context&) {
  check_arity(n, 0, 0);
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  Temporal v;
  v.kind = n.name == "timeOfDay" ? Temporal::Kind::time
           : n.name == "today"   ? Temporal::Kind::date
                                 : Temporal::Kind::date_time;
  v.year_ = tm.tm_year + 1900;
  v.month_ = tm.tm_mon + 1;
  v.day_ = tm.tm_mday;
  v.hour_ = tm.tm_hour;
  v.minute_ = tm.tm_min;
  v.second_ = tm.tm_sec;
  v.millis_ = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  v.precision = v.kind == Temporal::Kind::date ? Temporal::day : Temporal::millisecond;
  if (v.kind == Temporal::Kind::date_time) v.offset_minutes = 0;
  return Collection{Item{v}};
}

Collection fn_aggregate(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 2);
  Collection total = n.args.size() == 2 ? ev.argument(n, 1, ctx) : Collection{};
  for (std::size_t i = 0; i < in.size(); ++i)
    total = ev.eval_on(n.args[0], in[i], static_cast<std::int64_t>(i), ctx, &total);
  return total;
}

// String functions take a single string input; empty in, empty out.
template <typename F>
Collection on_string(const Node& n, const Collection& in, F&& f) {
  const auto v = single_value(n, in);
  if (!v) return {};
  const std::string* s = as_string(v);
  if (s == nullptr) {
    if (in.front().element() != nullptr && !in.front().element()->type().is_primitive())
      throw Error(Error::Kind::semantic, n.position,
                  n.name + "() needs a string, not a " + in.front().type_name());
    execution_error(n, n.name + "() needs a string");
  }
  return f(*s);
}

// FHIRPath's regular expressions, with RE2: its matching takes time linear
// in the input whatever the pattern, where a backtracking engine
// (std::regex) can take exponential time, or overflow the stack, on a
// pattern such as (a*)*b. FHIRPath runs them in single-line mode: '.' also
// matches a line break.
std::unique_ptr<re2::RE2> compile_regex(const Node& n, const std::string& pattern) {
  re2::RE2::Options options;
  options.set_dot_nl(true);
  options.set_log_errors(false);
  options.set_max_mem(8 << 20);
  auto re = std::make_unique<re2::RE2>(pattern, options);
  if (!re->ok()) execution_error(n, "invalid regular expression: " + re->error());
  return re;
}

// FHIRPath writes a capture group in a substitution as $1; RE2 as \1.
std::string re2_rewrite(const std::string& substitution) {
  std::string out;
  for (std::size_t i = 0; i < substitution.size(); ++i) {
    const char c = substitution[i];
    const bool group = c == '$' && i + 1 < substitution.size() &&
                       std::isdigit(static_cast<unsigned char>(substitution[i + 1]));
    if (group)
      out += '\\';  // $1 becomes \1
    else if (c == '\\')
      out += "\\\\";  // a literal backslash
    else
      out += c;
  }
  return out;
}

// The characters of a UTF-8 string, each as the bytes that encode it.
std::vector<std::string_view> utf8_characters(std::string_view s) {
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 1;
    while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

Collection fn_string(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  const std::string& f = n.name;
  if (f == "length" || f == "upper" || f == "lower" || f == "toChars" || f == "trim") check_arity(n, 0, 0);
  return on_string(n, in, [&](const std::string& s) -> Collection {
    if (f == "length") return Collection{Item{static_cast<std::int64_t>(utf8_length(s))}};
    if (f == "upper" || f == "lower") {
      std::string out = s;
      for (char& c : out)
        c = static_cast<char>(f == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                           : std::tolower(static_cast<unsigned char>(c)));
      return Collection{Item{out}};
    }
    if (f == "trim") {
      const auto first = s.find_first_not_of(" \t\r\n");
      if (first == std::string::npos) return Collection{Item{std::string()}};
      return Collection{Item{s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1)}};
    }
    if (f == "toChars") {
      Collection out;
      for (std::string_view c : utf8_characters(s)) out.push_back(Item{std::string(c)});
      return out;
    }
    if (f == "substring") {
      check_arity(n, 1, 2);
      const auto start = integer_argument(ev, n, 0, ctx);
      if (!start || *start < 0 || *start >= static_cast<std::int64_t>(s.size())) return {};
      std::int64_t length = static_cast<std::int64_t>(s.size());
      if (n.args.size() == 2) {
        const auto l = integer_argument(ev, n, 1, ctx);
        if (!l) return Collection{Item{s.substr(static_cast<std::size_t>(*start))}};
        length = std::max<std::int64_t>(0, *l);
      }
      return Collection{Item{s.substr(static_cast<std::size_t>(*start), static_cast<std::size_t>(length))}};
    }
    if (f == "split") {
      check_arity(n, 1, 1);
      const auto sep = string_argument(ev, n, 0, ctx);
      if (!sep) return {};
      Collection out;
      std::size_t at = 0;
      while (true) {
        const std::size_t next = sep->empty() ? std::string::npos : s.find(*sep, at);
        out.push_back(Item{s.substr(at, next == std::string::npos ? std::string::npos : next - at)});
        if (next == std::string::npos) break;
        at = next + sep->size();
      }
      return out;
    }
    check_arity(n, f == "replace" || f == "replaceMatches" ? 2 : 1,
                f == "replace" || f == "replaceMatches" ? 2 : 1);
    const auto a = string_argument(ev, n, 0, ctx);
    if (!a) return {};
    if (f == "indexOf")
      return Collection{Item{static_cast<std::int64_t>(
          s.find(*a) == std::string::npos ? -1 : static_cast<std::int64_t>(s.find(*a)))}};
    if (f == "startsWith") return boolean(s.starts_with(*a));
    if (f == "endsWith") return boolean(s.ends_with(*a));
    if (f == "contains") return boolean(s.find(*a) != std::string::npos);
    if (f == "matches" || f == "matchesFull") {
      const auto re = compile_regex(n, *a);
      return boolean(f == "matches" ? re2::RE2::PartialMatch(s, *re) : re2::RE2::FullMatch(s, *re));
    }
    const auto b = string_argument(ev, n, 1, ctx);
    if (!b) return {};
    if (f == "replaceMatches") {
      if (a->empty()) return Collection{Item{s}};
      const auto re = compile_regex(n, *a);
      std::string out = s;
      re2::RE2::GlobalReplace(&out, *re, re2_rewrite(*b));
      return Collection{Item{out}};
    }
    // replace: every occurrence; an empty pattern goes between characters.
    if (a->empty()) {
      std::string out = *b;
      for (std::string_view c : utf8_characters(s)) (out += c) += *b;
      return Collection{Item{out}};
    }
    std::string out;
    std::size_t at = 0;
    for (std::size_t next; (next = s.find(*a, at)) != std::string::npos; at = next + a->size())
      out += s.substr(at, next - at) + *b;
    out += s.substr(at);
    return Collection{Item{out}};
  });
}

Collection fn_join(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 0, 1);
  const std::string sep = n.args.empty() ? "" : string_argument(ev, n, 0, ctx).value_or("");
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto v = system_value(in[i]);
    const std::string* s = as_string(v);
    if (s == nullptr) execution_error(n, "join() needs strings");
    if (i > 0) out += sep;
    out += *s;
  }
  return Collection{Item{out}};
}

Collection fn_math(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  const std::string& f = n.name;
  check_arity(n, 0, f == "log" || f == "power" || f == "round" ? 1 : 0);
  const auto v = single_value(n, in);
  if (!v) return {};
  const auto* i = std::get_if<std::int64_t>(&v->value);
  const auto* d = std::get_if<Decimal>(&v->value);
  const auto* q = std::get_if<Quantity>(&v->value);
  if (f == "abs") {
    if (i) return Collection{Item{*i < 0 ? -*i : *i}};
    if (d) return Collection{Item{*d < Decimal(0) ? -*d : *d}};
    if (q) return Collection{Item{Quantity{q->value < Decimal(0) ? -q->value : q->value, q->unit}}};
  }
  if (!i && !d) execution_error(n, f + "() needs a number");
  const Decimal x = i ? Decimal(*i) : *d;
  const double xd = x.to_double();
  auto dec = [](double r) -> Collection {
    if (std::isnan(r) || std::isinf(r)) return {};
    return Collection{Item{Decimal::from_double(r)}};
  };
  if (f == "ceiling") return Collection{Item{static_cast<std::int64_t>(std::ceil(xd))}};
  if (f == "floor") return Collection{Item{static_cast<std::int64_t>(std::floor(xd))}};
  if (f == "truncate") return Collection{Item{x.truncated().value_or(0)}};
  if (f == "exp") return dec(std::exp(xd));
  if (f == "ln") return dec(std::log(xd));
  if (f == "sqrt") return dec(std::sqrt(xd));
  if (f == "round") {
    std::int64_t digits = 0;
    if (!n.args.empty()) {
      const auto p = integer_argument(ev, n, 0, ctx);
      if (!p) return {};
      if (*p < 0) execution_error(n, "round() precision must not be negative");
      digits = *p;
    }
    return Collection{Item{x.rounded(static_cast<int>(digits))}};
  }
  const auto arg = single_value(n, ev.argument(n, 0, ctx));
  if (!arg) return {};
  const auto* ai = std::get_if<std::int64_t>(&arg->value);
  const auto* ad = std::get_if<Decimal>(&arg->value);
  if (!ai && !ad) execution_error(n, f + "() needs a number argument");
  const double y = ai ? static_cast<double>(*ai) : ad->to_double();
  if (f == "log") return dec(std::log(xd) / std::log(y));
  // power
  const double r = std::pow(xd, y);
  if (i && ai && *ai >= 0 && std::fabs(r) < 9e18)
    return Collection{Item{static_cast<std::int64_t>(std::llround(r))}};
  return dec(r);
}

Collection fn_convert(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  const bool test = n.name.starts_with("convertsTo");
  const std::string target = test ? n.name.substr(10) : n.name.substr(2);
  check_arity(n, 0, target == "Quantity" ? 1 : 0);
  const auto v = single_value(n, in);
  if (!v) return {};
  auto converted = convert(*v, target);
  if (converted && !n.args.empty()) {  // toQuantity(unit): in that unit, or nothing
    const auto unit = string_argument(ev, n, 0, ctx);
    if (!unit) return {};
    converted = convert_quantity(std::get<Quantity>(converted->value), *unit);
  }
  if (test) return boolean(converted.has_value());
  return converted ? Collection{*converted} : Collection{};
}

// The innermost resource holding `target` below `node` (skipping contained
// ones: their "#id" references point into their container), and the fullUrl
// of the Bundle entry it is in: what a reference is resolved from. A search
// of the tree, made only for references that need it (relative or "#id").
struct Container {
  const fhir::Element* resource = nullptr;
  std::string_view full_url;
};

bool find_container(const fhir::Element& node, const fhir::Element* target, Container& found) {
  for (const fhir::Element& c : node.children()) {
    if (&c == target || find_container(c, target, found)) {
      if (found.resource == nullptr && node.is_resource() && node.name() != "contained")
        found.resource = &node;
      if (found.full_url.empty() && node.name() == "entry") found.full_url = node.child_value("fullUrl");
      return true;
    }
  }
  return false;
}

Collection fn_resolve(Evaluator&, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 0, 0);
  Collection out;
  const fhir::Element* root = ctx.resource;
  if (root == nullptr) return out;
  std::optional<fhir::BundleIndex> index;
  for (const Item& item : in) {
    std::string reference;
    const fhir::Element* e = item.element();
    if (e != nullptr && e->type().name == "Reference")
      reference = std::string(e->child_value("reference"));
    else if (const auto v = system_value(item); v && as_string(v) != nullptr)
      reference = *as_string(v);
    if (reference.empty()) continue;
    const bool local = reference[0] == '#';
    Container from;
    if (e != nullptr && (local || !fhir::is_absolute_reference(reference))) find_container(*root, e, from);
    if (local) {
      // A contained resource of the resource that holds the reference.
      const fhir::Element* holder = from.resource != nullptr ? from.resource : root;
      for (const fhir::Element& c : holder->children())
        if (c.name() == "contained" && c.child_value("id") == std::string_view(reference).substr(1))
          out.push_back(Item{&c});
      continue;
    }
    if (root->type().name != "Bundle") continue;
    if (fhir::is_absolute_reference(reference)) {  // the common case in messages: one scan, no index
      for (const fhir::Element& entry : root->children())
        if (entry.name() == "entry" && entry.child_value("fullUrl") == reference)
          if (const fhir::Element* target = entry.child("resource")) {
            out.push_back(Item{target});
            break;
          }
      continue;
    }
    if (!index) index.emplace(*root);
    if (const fhir::Element* target = index->resolve(reference, from.full_url)) out.push_back(Item{target});
  }
  return out;
}

Collection fn_extension(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const auto url = string_argument(ev, n, 0, ctx);
  Collection out;
  if (!url) return out;
  for (const Item& item : in)
    if (const fhir::Element* e = item.element())
      for (const fhir::Element& c : e->children())
        if ((c.name() == "extension" || c.name() == "modifierExtension") && c.child_value("url") == *url)
          out.push_back(Item{&c});
  return out;
}

Collection fn_has_value(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  return boolean(in.size() == 1 && in.front().element() != nullptr && in.front().element()->has_value());
}

Collection fn_get_value(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  if (in.size() != 1 || in.front().element() == nullptr || !in.front().element()->has_value()) return {};
  const auto v = system_value(in.front());
  return v ? Collection{*v} : Collection{};
}

// htmlChecks(): FHIR's narrative rules, txt-1 (only the allowed XHTML: a
// namespaced div root, no scripts, forms, frames or event handlers) and
// txt-2 (some non-whitespace content).
Collection fn_html_checks(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  if (in.empty()) return {};
  for (const Item& i : in) {
    const fhir::Element* e = i.element();
    if (e == nullptr || e->type().name != "xhtml" || !e->has_value()) return boolean(false);
    if (fhir::check_xhtml(e->value()) || !fhir::xhtml_has_content(e->value())) return boolean(false);
  }
  return boolean(true);
}

Collection fn_conforms_to(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const auto url = string_argument(ev, n, 0, ctx);
  if (!url || in.size() != 1 || in.front().element() == nullptr) return {};
  // Only the core profiles are known: http://hl7.org/fhir/StructureDefinition/[Type]
  constexpr std::string_view core = "http://hl7.org/fhir/StructureDefinition/";
  if (!url->starts_with(core)) execution_error(n, "unknown profile " + *url);
  return boolean(in.front().element()->type().is_a(url->substr(core.size())));
}

// A ValueSet or CodeSystem inside the resource: the resource itself, one
// it contains ("#id" or by URL), or, in a Bundle, an entry or one an entry
// contains.
const fhir::Element* find_local(const fhir::Element* resource, std::string_view type, std::string_view url) {
  if (resource == nullptr) return nullptr;
  const auto matches = [&](const fhir::Element& r) {
    return r.type().name == type && (r.child_value("url") == canonical_without_version(url) ||
                                     (url.starts_with('#') && r.child_value("id") == url.substr(1)));
  };
  const auto in_resource = [&](const fhir::Element& r) -> const fhir::Element* {
    if (matches(r)) return &r;
    for (const fhir::Element* c : r.children_named("contained"))
      if (matches(*c)) return c;
    return nullptr;
  };
  if (const fhir::Element* found = in_resource(*resource)) return found;
  if (resource->type().name == "Bundle")
    for (const fhir::Element* entry : resource->children_named("entry"))
      if (const fhir::Element* r = entry->child("resource"))
        if (const fhir::Element* found = in_resource(*r)) return found;
  return nullptr;
}

// memberOf(valueset): whether a code, Coding, CodeableConcept or string is
// in a value set that is at hand (see terminology.h).
Collection fn_member_of(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const auto url = string_argument(ev, n, 0, ctx);
  if (!url || in.empty()) return {};
  if (in.size() > 1) execution_error(n, "memberOf() needs a single item");
  const Terminology* terminology = ctx.env->terminology;
  std::shared_ptr<const CodeSet> codes;
  try {
    if (const fhir::Element* local = find_local(ctx.resource, "ValueSet", *url)) {
      codes = std::make_shared<const CodeSet>(expand(*local, [&](std::string_view type, std::string_view u) {
        const fhir::Element* found = find_local(ctx.resource, type, u);
        return found == nullptr && terminology != nullptr ? terminology->find(type, u) : found;
      }));
    } else if (const fhir::Element* loaded =
                   terminology != nullptr ? terminology->find("ValueSet", *url) : nullptr) {
      codes = terminology->expansion(*loaded);
    } else {
      execution_error(n, "value set " + *url + " is not available locally");
    }
  } catch (const ExpansionError& e) {
    execution_error(n, std::string("memberOf(): ") + e.what());
  }
  const Item& item = in.front();
  if (const fhir::Element* e = item.element(); e != nullptr && !e->type().is_primitive()) {
    const auto coding_in = [&](const fhir::Element& coding) {
      return codes->contains(coding.child_value("system"), coding.child_value("code"));
    };
    if (e->type().name == "Coding") return boolean(coding_in(*e));
    if (e->type().name == "CodeableConcept") {
      const auto codings = e->children_named("coding");
      return boolean(
          std::any_of(codings.begin(), codings.end(), [&](const auto* c) { return coding_in(*c); }));
    }
    execution_error(n, "memberOf() needs a code, Coding, CodeableConcept or string, not a " + e->type().name);
  }
  const auto value = system_value(item);
  const std::string* code = value ? std::get_if<std::string>(&value->value) : nullptr;
  if (code == nullptr) execution_error(n, "memberOf() needs a code, Coding, CodeableConcept or string");
  const auto member = codes->contains_code(*code);
  return member ? boolean(*member) : Collection{};
}

Collection fn_not(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  const auto t = truth(n, in);
  return t ? boolean(!*t) : Collection{};
}

Collection fn_precision(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  const auto v = single_value(n, in);
  if (!v) return {};
  if (const auto* d = std::get_if<Decimal>(&v->value))
    return Collection{Item{static_cast<std::int64_t>(d->scale())}};
  if (const auto* t = std::get_if<Temporal>(&v->value))
    return Collection{Item{static_cast<std::int64_t>(t->precision_digits())}};
  return {};
}

// lowBoundary([precision]) and highBoundary([precision]) of a decimal,
// quantity or temporal value.
Collection fn_boundary(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 0, 1);
  const auto v = single_value(n, in);
  if (!v) return {};
  const bool high = n.name == "highBoundary";
  std::optional<std::int64_t> precision;
  if (!n.args.empty()) {
    precision = integer_argument(ev, n, 0, ctx);
    if (!precision) return {};
  }
  const auto decimal = [&](const Decimal& d) -> std::optional<Decimal> {
    return boundary(d, static_cast<int>(precision.value_or(8)), high);
  };
  if (const auto* i = std::get_if<std::int64_t>(&v->value)) {
    const auto r = decimal(Decimal(*i));
    return r ? Collection{Item{*r}} : Collection{};
  }
  if (const auto* d = std::get_if<Decimal>(&v->value)) {
    const auto r = decimal(*d);
    return r ? Collection{Item{*r}} : Collection{};
  }
  if (const auto* q = std::get_if<Quantity>(&v->value)) {
    const auto r = decimal(q->value);
    return r ? Collection{Item{Quantity{*r, q->unit}}} : Collection{};
  }
  if (const auto* t = std::get_if<Temporal>(&v->value)) {
    const int fallback = t->kind == Temporal::Kind::date ? 8 : t->kind == Temporal::Kind::time ? 9 : 17;
    const auto r = boundary(*t, static_cast<int>(precision.value_or(fallback)), high);
    return r ? Collection{Item{*r}} : Collection{};
  }
  execution_error(n, n.name + "() needs a number, quantity, date, dateTime or time");
}

Collection fn_type(Evaluator&, const Node& n, const Collection& in, const Context&) {
  check_arity(n, 0, 0);
  Collection out;
  for (const Item& i : in) {
    if (const fhir::Element* e = i.element()) {
      out.push_back(Item{TypeName{"FHIR", e->type().name}});
      continue;
    }
    std::string name = i.type_name();
    if (name == "dateTime") name = "DateTime";
    name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
    out.push_back(Item{TypeName{"System", name}});
  }
  return out;
}

// sort(key, ...): ascending by each key in turn; a key written -expr sorts descending.
Collection fn_sort(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  struct Keyed {
    Item item;
    std::vector<std::optional<Item>> keys;
  };
  std::vector<Keyed> rows;
  for (std::size_t i = 0; i < in.size(); ++i) {
    Keyed row{in[i], {}};
    if (n.args.empty()) row.keys.push_back(system_value(in[i]));
    for (const Node& key : n.args) {
      const Node& expr = key.kind == Node::Kind::unary && key.name == "-" ? key.args[0] : key;
      row.keys.push_back(single_value(n, ev.eval_on(expr, in[i], static_cast<std::int64_t>(i), ctx)));
    }
    rows.push_back(std::move(row));
  }
  auto less = [&](const Keyed& a, const Keyed& b) {
    for (std::size_t k = 0; k < a.keys.size(); ++k) {
      const bool descending =
          k < n.args.size() && n.args[k].kind == Node::Kind::unary && n.args[k].name == "-";
      const auto& x = a.keys[k];
      const auto& y = b.keys[k];
      if (!x || !y) {
        if (x.has_value() == y.has_value()) continue;
        return !x.has_value();  // items without the key come first, either way
      }
      const auto o = order_items(n, *x, *y);
      if (!o || *o == 0) continue;
      return (*o < 0) != descending;
    }
    return false;
  };
  std::stable_sort(rows.begin(), rows.end(), less);
  Collection out;
  for (auto& r : rows) out.push_back(std::move(r.item));
  return out;
}

std::string base64_encode(std::string_view in, bool url) {
  const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += alphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  unsigned v = 0;
  int bits = 0;
  for (char c : in) {
    int d;
    if (c >= 'A' && c <= 'Z')
      d = c - 'A';
    else if (c >= 'a' && c <= 'z')
      d = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      d = c - '0' + 52;
    else if (c == '+' || c == '-')
      d = 62;
    else if (c == '/' || c == '_')
      d = 63;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    v = (v << 6) | static_cast<unsigned>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((v >> bits) & 0xFF);
    }
  }
  return out;
}

Collection fn_encode(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const auto format = string_argument(ev, n, 0, ctx);
  const auto v = single_value(n, in);
  const std::string* s = as_string(v);
  if (!format || s == nullptr) return {};
  static constexpr char hex[] = "0123456789abcdef";
  if (n.name == "encode") {
    if (*format == "base64" || *format == "urlbase64")
      return Collection{Item{base64_encode(*s, *format == "urlbase64")}};
    if (*format == "hex") {
      std::string out;
      for (unsigned char c : *s) {
        out += hex[c >> 4];
        out += hex[c & 15];
      }
      return Collection{Item{out}};
    }
    return {};
  }
  if (*format == "base64" || *format == "urlbase64") {
    auto decoded = base64_decode(*s);
    return decoded ? Collection{Item{*decoded}} : Collection{};
  }
  if (*format == "hex") {
    if (s->size() % 2 != 0) return {};
    std::string out;
    for (std::size_t i = 0; i < s->size(); i += 2) {
      unsigned byte = 0;
      const auto [end, ec] = std::from_chars(s->data() + i, s->data() + i + 2, byte, 16);
      if (ec != std::errc() || end != s->data() + i + 2) return {};  // not hex: nothing to decode
      out += static_cast<char>(byte);
    }
    return Collection{Item{out}};
  }
  return {};
}

Collection fn_escape(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const auto format = string_argument(ev, n, 0, ctx);
  const auto v = single_value(n, in);
  const std::string* s = as_string(v);
  if (!format || s == nullptr) return {};
  static const std::pair<std::string_view, std::string_view> html[] = {
      {"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}};
  static const std::pair<std::string_view, std::string_view> json[] = {
      {"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}, {"\r", "\\r"}, {"\t", "\\t"}};
  const auto& table = *format == "html" ? html : json;
  if (*format != "html" && *format != "json") return {};
  std::string out;
  const bool escape = n.name == "escape";
  for (std::size_t i = 0; i < s->size();) {
    bool replaced = false;
    for (const auto& [plain, coded] : table) {
      const std::string_view from = escape ? plain : coded;
      if (std::string_view(*s).substr(i).starts_with(from)) {
        out += escape ? coded : plain;
        i += from.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += (*s)[i++];
  }
  return Collection{Item{out}};
}

Collection fn_comparable(Evaluator& ev, const Node& n, const Collection& in, const Context& ctx) {
  check_arity(n, 1, 1);
  const auto a = single_value(n, in);
  const auto b = single_value(n, ev.argument(n, 0, ctx));
  if (!a || !b) return {};
  const auto* qa = std::get_if<Quantity>(&a->value);
  const auto* qb = std::get_if<Quantity>(&b->value);
  if (qa == nullptr || qb == nullptr) execution_error(n, "comparable() needs quantities");
  return boolean(quantities_comparable(*qa, *qb));
}

const Functions& functions() {
  static const Functions table = {
      {"empty", fn_empty},
      {"exists", fn_exists},
      {"all", fn_all},
      {"allTrue", fn_bool_set<true, false>},
      {"anyTrue", fn_bool_set<true, true>},
      {"allFalse", fn_bool_set<false, false>},
      {"anyFalse", fn_bool_set<false, true>},
      {"subsetOf", fn_subset_of},
      {"supersetOf", fn_subset_of},
      {"count", fn_count},
      {"distinct", fn_distinct},
      {"isDistinct", fn_is_distinct},
      {"where", fn_where},
      {"select", fn_select},
      {"repeat", fn_repeat},
      {"ofType", fn_of_type},
      {"is", fn_is_as},
      {"as", fn_is_as},
      {"single", fn_single},
      {"first", fn_first},
      {"last", fn_last},
      {"tail", fn_tail},
      {"skip", fn_skip_take},
      {"take", fn_skip_take},
      {"intersect", fn_intersect_exclude},
      {"exclude", fn_intersect_exclude},
      {"union", fn_union},
      {"combine", fn_combine},
      {"iif", fn_iif},
      {"children", fn_children},
      {"descendants", fn_descendants},
      {"trace", fn_trace},
      {"now", fn_now},
      {"today", fn_now},
      {"timeOfDay", fn_now},
      {"aggregate", fn_aggregate},
      {"indexOf", fn_string},
      {"substring", fn_string},
      {"startsWith", fn_string},
      {"endsWith", fn_string},
      {"contains", fn_string},
      {"upper", fn_string},
      {"lower", fn_string},
      {"replace", fn_string},
      {"matches", fn_string},
      {"matchesFull", fn_string},
      {"replaceMatches", fn_string},
      {"length", fn_string},
      {"toChars", fn_string},
      {"trim", fn_string},
      {"split", fn_string},
      {"join", fn_join},
      {"abs", fn_math},
      {"ceiling", fn_math},
      {"exp", fn_math},
      {"floor", fn_math},
      {"ln", fn_math},
      {"log", fn_math},
      {"power", fn_math},
      {"round", fn_math},
      {"sqrt", fn_math},
      {"truncate", fn_math},
      {"toBoolean", fn_convert},
      {"toInteger", fn_convert},
      {"toDecimal", fn_convert},
      {"toString", fn_convert},
      {"toDate", fn_convert},
      {"toDateTime", fn_convert},
      {"toTime", fn_convert},
      {"toQuantity", fn_convert},
      {"convertsToBoolean", fn_convert},
      {"convertsToInteger", fn_convert},
      {"convertsToDecimal", fn_convert},
      {"convertsToString", fn_convert},
      {"convertsToDate", fn_convert},
      {"convertsToDateTime", fn_convert},
      {"convertsToTime", fn_convert},
      {"convertsToQuantity", fn_convert},
      {"resolve", fn_resolve},
      {"extension", fn_extension},
      {"hasValue", fn_has_value},
      {"getValue", fn_get_value},
      {"htmlChecks", fn_html_checks},
      {"conformsTo", fn_conforms_to},
      {"memberOf", fn_member_of},
      {"not", fn_not},
      {"precision", fn_precision},
      {"lowBoundary", fn_boundary},
      {"highBoundary", fn_boundary},
      {"type", fn_type},
      {"sort", fn_sort},
      {"encode", fn_encode},
      {"decode", fn_encode},
      {"escape", fn_escape},
      {"unescape", fn_escape},
      {"comparable", fn_comparable},
  };
  return table;
}

// ---- evaluation ----------------------------------------------------------------

Collection Evaluator::member(const Node& n, const Collection& focus, bool at_root, std::size_t limit) {
  Collection out;
  for (const Item& item : focus) {
    if (out.size() >= limit) break;
    if (const auto* q = std::get_if<Quantity>(&item.value)) {  // System.Quantity's properties
      if (n.name == "value") out.push_back(Item{q->value});
      if (n.name == "unit") out.push_back(Item{q->unit});
      continue;
    }
    if (const auto* t = std::get_if<TypeName>(&item.value)) {
      if (n.name == "namespace") out.push_back(Item{t->space});
      if (n.name == "name") out.push_back(Item{t->name});
      continue;
    }
    const fhir::Element* e = item.element();
    if (e == nullptr) continue;
    // At the start of a path a type name selects the focus: Patient.name
    if (at_root && !n.name.empty() && std::isupper(static_cast<unsigned char>(n.name[0])) &&
        e->type().is_a(n.name)) {
      out.push_back(item);
      continue;
    }
    for (const fhir::Element& c : e->children()) {
      if (c.name() != n.name) continue;
      out.push_back(Item{&c});
      if (out.size() >= limit) break;
    }
  }
  out.resize(std::min(out.size(), limit));
  return out;
}

Collection Evaluator::call(const Node& n, const Collection& focus, const Context& ctx) {
  return reinterpret_cast<Function>(n.function)(*this, n, focus, ctx);
}

// Looks up every function of the tree once, so that an unknown one is a
// compile-time (semantic) error and a call costs no lookup.
void bind_functions(Node& n) {
  if (n.kind == Node::Kind::function) {
    const auto& table = functions();
    const auto it = table.find(n.name);
    if (it == table.end())
      throw Error(Error::Kind::semantic, n.position, "unknown function " + n.name + "()");
    n.function = reinterpret_cast<void (*)()>(it->second);
    // ofType/is/as: the type argument, written down once (checked when run).
    if ((n.name == "ofType" || n.name == "is" || n.name == "as") && n.args.size() == 1)
      n.type_name = type_specifier(n.args[0]);
  }
  if (n.input) bind_functions(*n.input);
  for (Node& a : n.args) bind_functions(a);
}

Collection Evaluator::eval(const Node& n, const Collection& focus, const Context& ctx) {
  switch (n.kind) {
    case Node::Kind::empty: return {};
    case Node::Kind::no_value: execution_error(n, n.name);
    case Node::Kind::literal: return Collection{n.literal};
    case Node::Kind::this_item: return ctx.this_item != nullptr ? Collection{*ctx.this_item} : focus;
    case Node::Kind::index: return Collection{Item{ctx.index}};
    case Node::Kind::total: return ctx.total != nullptr ? *ctx.total : Collection{};
    case Node::Kind::variable: {
      if (n.name == "resource" || n.name == "rootResource")
        return ctx.resource != nullptr ? Collection{Item{ctx.resource}} : Collection{};
      if (n.name == "context") return *ctx.root;
      if (n.name == "ucum") return Collection{Item{std::string("http://unitsofmeasure.org")}};
      if (n.name == "sct") return Collection{Item{std::string("http://snomed.info/sct")}};
      if (n.name == "loinc") return Collection{Item{std::string("http://loinc.org")}};
      if (n.name.starts_with("vs-"))
        return Collection{Item{"http://hl7.org/fhir/ValueSet/" + n.name.substr(3)}};
      if (n.name.starts_with("ext-"))
        return Collection{Item{"http://hl7.org/fhir/StructureDefinition/" + n.name.substr(4)}};
      if (auto it = ctx.env->variables.find(n.name); it != ctx.env->variables.end()) return it->second;
      execution_error(n, "unknown variable %" + n.name);
    }
    case Node::Kind::member: {
      if (n.input) return member(n, eval(*n.input, focus, ctx), false);
      return member(n, focus, true);
    }
    case Node::Kind::function: {
      // path.first() takes the first match without collecting the rest.
      if (n.input && n.input->kind == Node::Kind::member && n.args.empty() &&
          n.function == reinterpret_cast<void (*)()>(&fn_first)) {
        const Node& path = *n.input;
        return path.input ? member(path, eval(*path.input, focus, ctx), false, 1)
                          : member(path, focus, true, 1);
      }
      if (n.input) return call(n, eval(*n.input, focus, ctx), ctx);
      return call(n, focus, ctx);
    }
    case Node::Kind::indexer: {
      const Collection input = eval(*n.input, focus, ctx);
      const auto index = single_value(n, eval(n.args[0], focus, ctx));
      if (!index) return {};
      const auto* i = std::get_if<std::int64_t>(&index->value);
      if (i == nullptr) execution_error(n, "an index must be an integer");
      if (*i < 0 || *i >= static_cast<std::int64_t>(input.size())) return {};
      return Collection{input[static_cast<std::size_t>(*i)]};
    }
    case Node::Kind::unary: {
      const Collection operand = eval(n.args[0], focus, ctx);
      if (n.name == "+") return operand;
      return negate(n, operand);
    }
    case Node::Kind::type_test: {
      const Collection operand = eval(n.args[0], focus, ctx);
      if (operand.empty()) return {};
      if (operand.size() > 1) execution_error(n, "'" + n.name + "' needs a single item");
      const bool match = is_type(operand.front(), n.type_name, n.name == "as");
      if (n.name == "is") return boolean(match);
      return match ? operand : Collection{};
    }
    case Node::Kind::binary: {
      const BinaryOp op = n.op;
      if (op == BinaryOp::and_ || op == BinaryOp::or_ || op == BinaryOp::xor_ || op == BinaryOp::implies) {
        const auto a = truth(n, eval(n.args[0], focus, ctx));
        if (op == BinaryOp::and_ && a == false) return boolean(false);
        if (op == BinaryOp::or_ && a == true) return boolean(true);
        if (op == BinaryOp::implies && a == false) return boolean(true);
        const auto b = truth(n, eval(n.args[1], focus, ctx));
        if (op == BinaryOp::and_) {
          if (b == false) return boolean(false);
          if (a && b) return boolean(true);
          return {};
        }
        if (op == BinaryOp::or_) {
          if (b == true) return boolean(true);
          if (a && b) return boolean(false);
          return {};
        }
        if (op == BinaryOp::xor_) return a && b ? boolean(*a != *b) : Collection{};
        // implies, a true or unknown
        if (b == true) return boolean(true);
        if (a == true && b == false) return boolean(false);
        return {};
      }
      const Collection a = eval(n.args[0], focus, ctx);
      const Collection b = eval(n.args[1], focus, ctx);
      return binary(n, a, b);
    }
  }
  return {};
}

}  // namespace

std::string output_text(const Item& item) {
  if (const fhir::Element* e = item.element(); e != nullptr && !e->type().is_primitive())
    return fhir::write_json(*e);
  const auto v = system_value(item);
  if (!v) {  // a FHIR value beyond FHIRPath's ranges (a decimal of 1E-245) is shown as written
    const fhir::Element* e = item.element();
    return e != nullptr ? e->value() : std::string();
  }
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>)
          return x ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::int64_t>)
          return std::to_string(x);
        else if constexpr (std::is_same_v<T, Decimal>)
          return x.str();
        else if constexpr (std::is_same_v<T, std::string>)
          return x;
        else if constexpr (std::is_same_v<T, Temporal>)
          return (x.kind == Temporal::Kind::time ? "@T" : "@") + x.str();
        else if constexpr (std::is_same_v<T, Quantity>)
          return x.str();
        else if constexpr (std::is_same_v<T, TypeName>)
          return x.space + "." + x.name;
        else
          return {};
      },
      v->value);
}

std::string_view to_string(Error::Kind kind) {
  switch (kind) {
    case Error::Kind::syntax: return "syntax";
    case Error::Kind::semantic: return "semantic";
    case Error::Kind::execution: return "execution";
  }
  return "execution";
}

Expression Expression::compile(std::string_view text, const CompileOptions& options) {
  Expression e;
  e.text_ = std::string(text);
  auto root = std::make_shared<Node>(parse(text));
  bind_functions(*root);
  check(*root, options);
  e.root_ = std::move(root);
  return e;
}

std::vector<std::pair<std::string, std::size_t>> Expression::string_arguments(
    std::string_view function) const {
  std::vector<std::pair<std::string, std::size_t>> out;
  const std::function<void(const Node&)> visit = [&](const Node& n) {
    if (n.kind == Node::Kind::function && n.name == function)
      for (const Node& a : n.args)
        if (const auto* s = std::get_if<std::string>(&a.literal.value); a.kind == Node::Kind::literal && s)
          out.emplace_back(*s, a.position);
    if (n.input) visit(*n.input);
    for (const Node& a : n.args) visit(a);
  };
  visit(*root_);
  return out;
}

Collection Expression::evaluate(const fhir::Element& resource, const Environment& environment) const {
  return evaluate(Collection{Item{&resource}}, &resource, environment);
}

Collection Expression::evaluate(const Collection& context, const fhir::Element* resource,
                                const Environment& environment) const {
  Evaluator ev;
  Context ctx;
  ctx.resource = resource;
  ctx.root = &context;
  ctx.env = &environment;
  try {
    return ev.eval(*root_, context, ctx);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // A gap in the evaluator must still reach the caller as an execution
    // error (a message refused), never as a crash of the engine.
    throw Error(Error::Kind::execution, 0, std::string("internal error: ") + e.what());
  }
}

}  // namespace courier::fhirpath
