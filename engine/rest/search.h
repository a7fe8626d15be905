// The search parameters the embedded REST store supports: what each one
// indexes (a FHIRPath expression over the resource) and how a search
// request's parameters become criteria.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "engine/fhir/element.h"
#include "engine/rest/resource_store.h"

namespace courier::rest {

enum class ParamType { token, reference, uri };

struct SearchParamInfo {
  std::string_view name;
  ParamType type;
  std::string_view expression;  // FHIRPath on the resource
};

// The parameters a resource type supports, beyond _id, _lastUpdated and
// _tag (which every type has). A parameter applies to a type when the
// element its expression starts from exists there (ServiceRequest has
// basedOn, Patient does not).
std::vector<const SearchParamInfo*> search_params(std::string_view type);
std::string_view type_name(ParamType type);

// The index rows of a resource, for every parameter of its type.
std::vector<IndexEntry> index_entries(const fhir::Element& resource);

// A reference as the index keeps it: "Type/id" for a relative or absolute
// URL (a /_history/n suffix dropped), the text itself otherwise (urn:uuid:...).
std::string normalised_reference(std::string_view reference);
// A normalised reference as the index row keeps it: {type, id} for
// "Type/id", {"", text} for anything else.
std::pair<std::string_view, std::string_view> split_reference(std::string_view normalised);

// A value written into a search with FHIR's escapes ("\," "\|" "\$" "\\"),
// so that "ORD,77" is one value and not two.
std::string search_escaped(std::string_view value);

// "2026-11-26T10:00:00Z" (any FHIR precision) → milliseconds since 1970,
// the start (or with `upper`, the end) of the period it names. UTC when no
// zone is given.
std::optional<Millis> instant_millis(std::string_view text, bool upper);

// A search request's parameters (in order, repeated ones kept: repeats AND,
// commas OR) as a query. Parameters that are not search parameters of the
// type (or use an unsupported modifier or prefix) go to `unknown`, with
// why, for the caller to refuse (handling=strict) or ignore (lenient). A
// value that cannot be read ("_lastUpdated=yesterday") is an error.
struct ParsedSearch {
  SearchQuery query;
  std::vector<std::pair<std::string, std::string>> used;     // what the self link repeats
  std::vector<std::pair<std::string, std::string>> unknown;  // name, reason
  std::optional<std::string> error;
};
ParsedSearch parse_search(std::string_view type,
                          const std::vector<std::pair<std::string, std::string>>& params);

// A search written as "Type?name=value&…" (a Subscription's criteria, a
// route's trigger): the query, or why courier cannot run it (an unknown
// type, a parameter it does not support, a value it cannot read).
std::variant<SearchQuery, std::string> parse_criteria(std::string_view criteria);

}  // namespace courier::rest
