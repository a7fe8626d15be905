#include "engine/rest/search.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>

#include "engine/fhir/type_registry.h"
#include "engine/fhirpath/fhirpath.h"
#include "engine/util/text.h"

namespace courier::rest {

namespace {

// What workflows search on (the list); the expressions follow the R4
// search parameter definitions, narrowed to what courier indexes.
constexpr SearchParamInfo kParams[] = {
    {"identifier", ParamType::token, "identifier"},
    {"status", ParamType::token, "status"},
    {"intent", ParamType::token, "intent"},
    {"code", ParamType::token, "code"},
    {"subject", ParamType::reference, "subject"},
    {"patient", ParamType::reference, "subject | patient"},
    {"based-on", ParamType::reference, "basedOn"},
    {"performer", ParamType::reference, "performer | performer.actor"},
    {"requester", ParamType::reference, "requester"},
    {"focus", ParamType::reference, "focus"},
    {"owner", ParamType::reference, "owner"},
    {"message.destination-uri", ParamType::uri, "entry.first().resource.destination.endpoint"},
    {"message.event", ParamType::token, "entry.first().resource.event"},
    {"message.response-id", ParamType::token, "entry.first().resource.response.identifier"},
    // The audit trail's (AuditEvent; `date` is its recorded time, below).
    {"agent", ParamType::reference, "agent.who"},
    {"altid", ParamType::token, "agent.altId"},
    {"agent-name", ParamType::token, "agent.name"},
    {"entity", ParamType::reference, "entity.what"},
    {"outcome", ParamType::token, "outcome"},
    {"subtype", ParamType::token, "subtype"},
};

// The first element an expression reads ("subject | patient": either).
std::vector<std::string_view> root_elements(std::string_view expression) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  while (at < expression.size()) {
    const std::size_t end = expression.find_first_of(".| ", at);
    out.push_back(expression.substr(at, end - at));
    const std::size_t bar = expression.find('|', at);
    if (bar == std::string_view::npos) break;
    at = expression.find_first_not_of(' ', bar + 1);
  }
  return out;
}

bool applies(const SearchParamInfo& param, std::string_view type) {
  if (param.name.starts_with("message.")) return type == "Bundle";
  const fhir::TypeInfo* info = fhir::TypeRegistry::r4().find(type);
  if (info == nullptr) return false;
  for (std::string_view root : root_elements(param.expression))
    for (const fhir::ElementInfo& e : info->elements)
      if (e.name == root) return true;
  return false;
}

const fhirpath::Expression& compiled(const SearchParamInfo& param) {
  static const auto expressions = [] {
    std::map<std::string_view, fhirpath::Expression> out;
    for (const SearchParamInfo& p : kParams) out.emplace(p.name, fhirpath::Expression::compile(p.expression));
    return out;
  }();
  return expressions.at(param.name);
}

// Token rows of one value: a Coding, a CodeableConcept's codings, an
// Identifier, or a code/string/uri.
void add_tokens(std::string_view param, const fhir::Element& e, std::vector<IndexEntry>& out) {
  const std::string_view type = e.type().name;
  const auto add = [&](std::string_view system, std::string_view value) {
    if (!value.empty())
      out.push_back(IndexEntry{std::string(param), std::string(system), std::string(value)});
  };
  if (type == "Coding") {
    add(e.child_value("system"), e.child_value("code"));
  } else if (type == "CodeableConcept") {
    for (const fhir::Element* c : e.children_named("coding"))
      add(c->child_value("system"), c->child_value("code"));
  } else if (type == "Identifier") {
    add(e.child_value("system"), e.child_value("value"));
  } else if (e.type().is_primitive() && e.has_value()) {
    add({}, e.value());
  }
}

// One row per reference: a relative or absolute reference to a resource as
// its id under its type as the system (so that "Type/id", a bare id and the
// :Type modifier all find it with one index row); anything else (a urn) as
// it is. An index row is a random write into a large B-tree, the costliest
// part of storing a resource, so a second form of the same reference is
// not kept.
void add_reference(std::string_view param, const fhir::Element& e, std::vector<IndexEntry>& out,
                   bool patients_only) {
  if (e.type().name != "Reference") return;
  const std::string reference = normalised_reference(e.child_value("reference"));
  if (reference.empty()) return;
  const auto [type, id] = split_reference(reference);
  if (patients_only && type != "Patient") return;
  out.push_back(IndexEntry{std::string(param), std::string(type), std::string(id)});
}

// FHIR's search escapes: "\," "\|" "\$" and "\\" stand for the character
// itself, so that a value may hold one. The first `separator` in `text`
// that is not escaped, or npos.
std::size_t find_unescaped(std::string_view text, char separator) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == separator) {
      return i;
    }
  }
  return std::string_view::npos;
}

std::string unescaped(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) ++i;
    out += text[i];
  }
  return out;
}

// The values of a parameter ("a,b" is a or b), still escaped within.
std::vector<std::string_view> split_commas(std::string_view text) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t comma = find_unescaped(text, ',');
    out.push_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

std::string search_escaped(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == ',' || c == '|' || c == '$') out += '\\';
    out += c;
  }
  return out;
}

std::optional<Millis> instant_millis(std::string_view text, bool upper) {
  auto t = fhirpath::Temporal::parse(text, fhirpath::Temporal::Kind::date_time);
  if (!t) return std::nullopt;
  if (!t->offset_minutes) t->offset_minutes = 0;
  const auto edge = fhirpath::boundary(*t, 17, upper);
  if (!edge) return std::nullopt;
  const std::int64_t days = fhirpath::days_from_civil(edge->year_, edge->month_, edge->day_);
  return ((days * 24 + edge->hour_) * 60 + edge->minute_ - *edge->offset_minutes) * 60'000 +
         edge->second_ * 1000 + edge->millis_;
}

std::string_view type_name(ParamType type) {
  switch (type) {
    case ParamType::token: return "token";
    case ParamType::reference: return "reference";
    case ParamType::uri: return "uri";
  }
  return "token";
}

std::vector<const SearchParamInfo*> search_params(std::string_view type) {
  std::vector<const SearchParamInfo*> out;
  for (const SearchParamInfo& p : kParams)
    if (applies(p, type)) out.push_back(&p);
  return out;
}

std::string normalised_reference(std::string_view reference) {
  if (reference.empty() || reference.starts_with('#')) return {};
  if (reference.starts_with("urn:")) return std::string(reference);
  std::string_view r = reference;
  if (const std::size_t history = r.find("/_history/"); history != std::string_view::npos)
    r = r.substr(0, history);
  const std::size_t last = r.rfind('/');
  if (last == std::string_view::npos) return std::string(r);
  const std::size_t before = r.rfind('/', last - 1);
  return std::string(before == std::string_view::npos ? r : r.substr(before + 1));
}

std::pair<std::string_view, std::string_view> split_reference(std::string_view normalised) {
  const std::size_t slash = normalised.find('/');
  if (slash == std::string_view::npos || normalised.starts_with("urn:")) return {{}, normalised};
  return {normalised.substr(0, slash), normalised.substr(slash + 1)};
}

std::vector<IndexEntry> index_entries(const fhir::Element& resource) {
  std::vector<IndexEntry> out;
  const std::string_view type = resource.type().name;
  if (const fhir::Element* meta = resource.child("meta"))
    for (const fhir::Element* tag : meta->children_named("tag")) add_tokens("_tag", *tag, out);
  for (const SearchParamInfo* param : search_params(type)) {
    fhirpath::Collection items;
    try {
      items = compiled(*param).evaluate(resource);
    } catch (const fhirpath::Error&) {
      continue;  // nothing to index for this parameter
    }
    for (const fhirpath::Item& item : items) {
      const fhir::Element* e = item.element();
      if (e == nullptr) continue;
      if (param->type == ParamType::reference)
        add_reference(param->name, *e, out, param->name == "patient");
      else
        add_tokens(param->name, *e, out);
    }
  }
  return out;
}

ParsedSearch parse_search(std::string_view type,
                          const std::vector<std::pair<std::string, std::string>>& params) {
  ParsedSearch parsed;
  parsed.query.type = std::string(type);
  const std::vector<const SearchParamInfo*> supported = search_params(type);
  for (const auto& [key, value] : params) {
    const std::size_t colon = key.find(':');
    const std::string name = key.substr(0, colon);
    const std::string modifier = colon == std::string::npos ? std::string() : key.substr(colon + 1);
    // Result and format controls, read by the caller.
    if (name == "_count" || name == "_offset" || name == "_format" || name == "_pretty") continue;
    if (name == "_total" && modifier.empty()) {
      using Total = SearchQuery::Total;
      if (value != "none" && value != "estimate" && value != "accurate") {
        parsed.error = "_total must be none, estimate or accurate, not '" + value + "'";
        return parsed;
      }
      parsed.query.total = value == "none" ? Total::none : Total::accurate;
      parsed.used.emplace_back(key, value);
      continue;
    }
    if (name == "_id" && modifier.empty()) {
      Criterion c{Criterion::Kind::id, "_id", {}, {}, 0};
      for (std::string_view v : split_commas(value)) c.values.push_back(TokenValue{false, {}, unescaped(v)});
      parsed.query.criteria.push_back(std::move(c));
      parsed.used.emplace_back(key, value);
      continue;
    }
    // An AuditEvent is written once, within moments of the time it
    // records: its date is searched as its _lastUpdated.
    const bool audit_date = type == "AuditEvent" && name == "date";
    if ((name == "_lastUpdated" || audit_date) && modifier.empty()) {
      static constexpr std::string_view prefixes[] = {"gt", "lt", "ge", "le", "eq"};
      std::string comparator = "eq";
      std::string_view when = value;
      for (std::string_view p : prefixes)
        if (when.starts_with(p)) {
          comparator = std::string(p);
          when.remove_prefix(2);
        }
      // gt and le compare with the end of the period written; lt and ge
      // with its start.
      const auto instant = instant_millis(when, comparator == "gt" || comparator == "le");
      if (!instant) {
        parsed.error =
            name + ": '" + value + "' is not a date or dateTime (with gt, lt, ge, le or eq before it)";
        return parsed;
      }
      if (comparator == "eq") {
        // eq names the whole period written: a day, a second, a millisecond.
        parsed.query.criteria.push_back(
            Criterion{Criterion::Kind::last_updated, "_lastUpdated", {}, "ge", *instant});
        parsed.query.criteria.push_back(
            Criterion{Criterion::Kind::last_updated, "_lastUpdated", {}, "le", *instant_millis(when, true)});
      } else {
        parsed.query.criteria.push_back(
            Criterion{Criterion::Kind::last_updated, "_lastUpdated", {}, comparator, *instant});
      }
      parsed.used.emplace_back(key, value);
      continue;
    }
    const auto param = std::find_if(supported.begin(), supported.end(),
                                    [&](const SearchParamInfo* p) { return p->name == name; });
    const bool tag = name == "_tag";
    if (param == supported.end() && !tag) {
      parsed.unknown.emplace_back(key, "is not a search parameter courier supports for " + std::string(type));
      continue;
    }
    const ParamType kind = tag ? ParamType::token : (*param)->type;
    const bool type_modifier = kind == ParamType::reference && !modifier.empty() &&
                               fhir::TypeRegistry::r4().find_resource(modifier) != nullptr;
    if (!modifier.empty() && !type_modifier) {
      parsed.unknown.emplace_back(key, "the modifier :" + modifier + " is not supported");
      continue;
    }
    Criterion c{Criterion::Kind::index, tag ? "_tag" : std::string((*param)->name), {}, {}, 0};
    for (std::string_view escaped : split_commas(value)) {
      TokenValue t;
      if (kind == ParamType::token) {
        if (const std::size_t bar = find_unescaped(escaped, '|'); bar != std::string::npos) {
          t = TokenValue{true, unescaped(escaped.substr(0, bar)), unescaped(escaped.substr(bar + 1))};
        } else {
          t = TokenValue{false, {}, unescaped(escaped)};
        }
      } else if (kind == ParamType::reference) {
        const std::string v = unescaped(escaped);
        if (type_modifier) {
          t = TokenValue{true, modifier, v};
        } else {
          const std::string reference = normalised_reference(v);
          const auto [type, id] = split_reference(reference);
          t = TokenValue{!type.empty(), std::string(type), std::string(id)};
        }
      } else {
        t = TokenValue{false, {}, unescaped(escaped)};
      }
      c.values.push_back(std::move(t));
    }
    parsed.query.criteria.push_back(std::move(c));
    parsed.used.emplace_back(key, value);
  }
  return parsed;
}

std::variant<SearchQuery, std::string> parse_criteria(std::string_view criteria) {
  if (criteria.empty()) return std::string("a search such as ServiceRequest?status=active is needed");
  const std::size_t question = criteria.find('?');
  const std::string type(criteria.substr(0, question));
  if (fhir::TypeRegistry::r4().find_resource(type) == nullptr)
    return "'" + type + "' is not a FHIR R4 resource type";
  const std::string_view query = question == std::string_view::npos ? "" : criteria.substr(question + 1);
  ParsedSearch parsed = parse_search(type, util::parse_form(query));
  if (parsed.error) return *parsed.error;
  if (!parsed.unknown.empty()) {
    return "courier cannot search " + type + " by '" + parsed.unknown.front().first + "' (" +
           parsed.unknown.front().second + ")";
  }
  return std::move(parsed.query);
}

}  // namespace courier::rest
