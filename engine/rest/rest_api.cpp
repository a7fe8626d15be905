#include "engine/rest/rest_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include "engine/fhir/operation_outcome.h"
#include "engine/fhir/type_registry.h"
#include "engine/fhir/validator.h"
#include "engine/rest/search.h"
#include "engine/util/text.h"
#include "engine/util/uuid.h"

namespace courier::rest {

namespace {

constexpr int kDefaultCount = 50;
constexpr int kMaxCount = 1000;

RestResponse outcome(int status, const std::string& code, const std::string& diagnostics, fhir::Format format,
                     fhir::Severity severity = fhir::Severity::error) {
  const fhir::Issues issues{fhir::Issue{severity, code, diagnostics, {}, std::nullopt}};
  return RestResponse{status, fhir::write(fhir::to_operation_outcome(issues), format), format, {}};
}

RestResponse issues_outcome(int status, fhir::Issues issues, fhir::Format format) {
  std::erase_if(issues, [](const fhir::Issue& i) {
    return i.severity != fhir::Severity::error && i.severity != fhir::Severity::fatal;
  });
  return RestResponse{status, fhir::write(fhir::to_operation_outcome(issues), format), format, {}};
}

// "Thu, 26 Nov 2026 18:33:36 GMT", as HTTP writes dates.
std::string http_date(Millis at) {
  const std::time_t seconds = static_cast<std::time_t>(at / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return text;
}

std::string etag(std::int64_t version) {
  return "W/\"" + std::to_string(version) + "\"";
}

// W/"3" or "3" → 3.
std::optional<std::int64_t> etag_version(std::string_view text) {
  if (text.starts_with("W/")) text.remove_prefix(2);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// One preference of a Prefer header ("return=minimal, handling=strict").
std::string preference(std::string_view prefer, std::string_view name) {
  std::size_t at = 0;
  while (at < prefer.size()) {
    std::size_t end = prefer.find_first_of(",;", at);
    if (end == std::string_view::npos) end = prefer.size();
    std::string_view item = prefer.substr(at, end - at);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with(name) && item.size() > name.size() && item[name.size()] == '=')
      return std::string(item.substr(name.size() + 1));
    at = end + 1;
  }
  return {};
}

std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '/' || c == '|' ||
        c == ',') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// The stored JSON (or its XML) as an answer, with the headers of its version.
RestResponse resource_response(int status, const ResourceVersion& v, const RestRequest& r,
                               bool with_location) {
  RestResponse out;
  out.status = status;
  out.format = r.answer_format;
  out.headers.emplace_back("ETag", etag(v.version));
  out.headers.emplace_back("Last-Modified", http_date(v.last_updated));
  if (with_location)
    out.headers.emplace_back(
        "Location", r.base_url + "/" + v.type + "/" + v.id + "/_history/" + std::to_string(v.version));
  const std::string returned = preference(r.prefer, "return");
  if (returned == "minimal") return out;
  if (returned == "OperationOutcome") {
    RestResponse o = outcome(status, "informational", "done", r.answer_format, fhir::Severity::information);
    out.body = std::move(o.body);
    return out;
  }
  if (r.answer_format == fhir::Format::json) {
    out.body = v.json;
  } else {
    const fhir::ParseResult parsed = fhir::parse_json(v.json);
    out.body = parsed.resource ? fhir::write(*parsed.resource, fhir::Format::xml) : std::string();
  }
  return out;
}

// A Bundle built as JSON text around the stored JSON of its resources (no
// re-parse for a JSON answer); converted when XML is wanted.
RestResponse bundle_response(std::string json, fhir::Format format) {
  if (format == fhir::Format::json) return RestResponse{200, std::move(json), format, {}};
  const fhir::ParseResult parsed = fhir::parse_json(json);
  if (!parsed.resource) return outcome(500, "exception", "the answer could not be written as XML", format);
  return RestResponse{200, fhir::write(*parsed.resource, fhir::Format::xml), format, {}};
}

std::string json_string(std::string_view text) {
  std::string out;
  fhir::append_json_string(out, text);
  return out;
}

class Interaction {
 public:
  Interaction(ResourceStore& store, const fhir::ParseLimits& limits, RestRequest request,
              std::function<void(RestResponse)> done)
      : store_(store), limits_(limits), r_(std::move(request)), done_(std::move(done)) {}

  void run() {
    const auto& s = r_.segments;
    if (s.empty() || s[0].empty())
      return fail(404, "not-supported", "batch and transaction Bundles are not supported yet");
    if (fhir::TypeRegistry::r4().find_resource(s[0]) == nullptr)
      return fail(404, "not-supported", "'" + s[0] + "' is not a FHIR R4 resource type");
    const std::string& m = r_.method;
    if (s.size() == 1 && m == "GET") return search(r_.query);
    if (s.size() == 2 && s[1] == "_search" && m == "POST") return search(form_parameters());
    if (s.size() == 1 && m == "POST") return create();
    if (s.size() == 1 && m == "PUT") return conditional_update();
    if (s.size() == 2 && m == "GET") return read(std::nullopt);
    if (s.size() == 2 && m == "PUT") return update(s[1], etag_version(r_.if_match));
    if (s.size() == 2 && m == "DELETE") return remove();
    if (s.size() == 3 && s[2] == "_history" && m == "GET") return history();
    if (s.size() == 4 && s[2] == "_history" && m == "GET") {
      std::int64_t v = 0;
      const auto [end, ec] = std::from_chars(s[3].data(), s[3].data() + s[3].size(), v);
      if (ec != std::errc() || end != s[3].data() + s[3].size())
        return fail(404, "not-found", "'" + s[3] + "' is not a version number");
      return read(v);
    }
    fail(405, "not-supported", m + " is not supported on this path");
  }

 private:
  void fail(int status, const std::string& code, const std::string& diagnostics) {
    done_(outcome(status, code, diagnostics, r_.answer_format));
  }

  // _search's parameters: the query string's, then the form body's.
  std::vector<std::pair<std::string, std::string>> form_parameters() const {
    std::vector<std::pair<std::string, std::string>> out = r_.query;
    for (auto& pair : util::parse_form(r_.body)) out.push_back(std::move(pair));
    return out;
  }

  // The body as a valid resource of the URL's type, or an answer saying why not.
  std::optional<fhir::Element> body_resource() {
    if (!r_.body_format) {
      fail(415, "not-supported", "send the resource as application/fhir+json or application/fhir+xml");
      return std::nullopt;
    }
    fhir::ParseResult parsed = *r_.body_format == fhir::Format::xml ? fhir::parse_xml(r_.body, limits_)
                                                                    : fhir::parse_json(r_.body, limits_);
    fhir::Issues issues = std::move(parsed.issues);
    if (parsed.resource && !fhir::has_errors(issues)) issues = fhir::validate(*parsed.resource);
    if (!parsed.resource || fhir::has_errors(issues)) {
      done_(issues_outcome(400, std::move(issues), r_.answer_format));
      return std::nullopt;
    }
    if (parsed.resource->type().name != r_.segments[0]) {
      fail(400, "invalid",
           "the body is a " + parsed.resource->type().name + ", but the URL names " + r_.segments[0]);
      return std::nullopt;
    }
    return std::move(parsed.resource);
  }

  static void set_id(fhir::Element& resource, const std::string& id) {
    if (fhir::Element* existing = resource.child("id")) {
      existing->set_value(id);
      return;
    }
    resource.add_value("id", id);
    resource.sort_children();
  }

  // A search for a conditional interaction (If-None-Exist, conditional
  // update): every parameter must be understood, whatever `handling` says.
  std::optional<SearchQuery> condition(const std::vector<std::pair<std::string, std::string>>& params) {
    ParsedSearch parsed = parse_search(r_.segments[0], params);
    if (parsed.error) {
      fail(400, "invalid", *parsed.error);
      return std::nullopt;
    }
    if (!parsed.unknown.empty()) {
      fail(400, "not-supported", parsed.unknown.front().first + " " + parsed.unknown.front().second);
      return std::nullopt;
    }
    if (parsed.query.criteria.empty()) {
      fail(412, "invalid", "a conditional interaction needs search parameters");
      return std::nullopt;
    }
    return std::move(parsed.query);
  }

  void create() {
    std::optional<fhir::Element> resource = body_resource();
    if (!resource) return;
    Write w;
    w.kind = Write::Kind::create;
    w.type = r_.segments[0];
    w.id = util::random_uuid();  // the server assigns the id of a create
    if (!r_.if_none_exist.empty()) {
      std::string_view search = r_.if_none_exist;
      if (const std::size_t q = search.find('?'); q != std::string_view::npos) search = search.substr(q + 1);
      w.unless_exists = condition(util::parse_form(search));
      if (!w.unless_exists) return;
    }
    set_id(*resource, w.id);
    w.index = index_entries(*resource);
    w.resource = std::move(resource);
    submit(std::move(w));
  }

  void update(const std::string& id, std::optional<std::int64_t> expected) {
    if (!r_.if_match.empty() && !expected)
      return fail(400, "invalid", "If-Match must be a version ETag such as W/\"3\"");
    std::optional<fhir::Element> resource = body_resource();
    if (!resource) return;
    const std::string_view body_id = resource->child_value("id");
    if (body_id.empty()) return fail(400, "required", "an update needs the resource's id in the body");
    if (body_id != id)
      return fail(400, "invalid",
                  "the body's id '" + std::string(body_id) + "' is not the URL's '" + id + "'");
    Write w;
    w.kind = Write::Kind::update;
    w.type = r_.segments[0];
    w.id = id;
    w.expected_version = expected;
    w.index = index_entries(*resource);
    w.resource = std::move(resource);
    submit(std::move(w));
  }

  void conditional_update() {
    const std::optional<SearchQuery> query = condition(r_.query);
    if (!query) return;
    SearchQuery probe = *query;
    probe.count = 2;
    const SearchResult found = store_.search(probe);
    if (found.total > 1)
      return fail(412, "multiple-matches",
                  "the search matches " + std::to_string(found.total) + " resources");
    if (found.total == 1) return update(found.page.front().id, std::nullopt);
    // No match: a create, with the body's id if it has one (update as create).
    std::optional<fhir::Element> resource = body_resource();
    if (!resource) return;
    Write w;
    w.kind = Write::Kind::update;
    w.type = r_.segments[0];
    w.id = std::string(resource->child_value("id"));
    if (w.id.empty()) w.id = util::random_uuid();
    set_id(*resource, w.id);
    w.index = index_entries(*resource);
    w.resource = std::move(resource);
    submit(std::move(w));
  }

  void remove() {
    Write w;
    w.kind = Write::Kind::remove;
    w.type = r_.segments[0];
    w.id = r_.segments[1];
    submit(std::move(w));
  }

  void submit(Write w) {
    store_.write(std::move(w), [r = std::move(r_), done = std::move(done_)](WriteResult result) {
      using Outcome = WriteResult::Outcome;
      const ResourceVersion& v = result.resource;
      switch (result.outcome) {
        case Outcome::created: return done(resource_response(201, v, r, true));
        case Outcome::updated: return done(resource_response(200, v, r, true));
        case Outcome::exists: return done(resource_response(200, v, r, true));
        case Outcome::deleted: {
          RestResponse out{204, {}, r.answer_format, {}};
          if (v.version > 0) out.headers.emplace_back("ETag", etag(v.version));
          return done(std::move(out));
        }
        case Outcome::conflict:
          return done(outcome(412, "conflict",
                              v.version == 0
                                  ? "there is no such resource to update with If-Match"
                                  : "version conflict: the current version is " + std::to_string(v.version) +
                                        (v.deleted ? " (deleted)" : ""),
                              r.answer_format));
        case Outcome::ambiguous:
          return done(outcome(412, "multiple-matches", "If-None-Exist matches more than one resource",
                              r.answer_format));
        case Outcome::failed:
          return done(outcome(500, "exception", "the store could not write the resource", r.answer_format));
      }
    });
  }

  void read(std::optional<std::int64_t> version) {
    const std::optional<ResourceVersion> v = store_.read(r_.segments[0], r_.segments[1], version);
    if (!v)
      return fail(404, "not-found",
                  r_.segments[0] + "/" + r_.segments[1] +
                      (version ? " has no version " + std::to_string(*version) : " is not known"));
    if (v->deleted) {
      RestResponse out =
          outcome(410, "deleted", r_.segments[0] + "/" + r_.segments[1] + " was deleted", r_.answer_format);
      out.headers.emplace_back("ETag", etag(v->version));
      return done_(std::move(out));
    }
    RestResponse out = resource_response(200, *v, r_, false);
    done_(std::move(out));
  }

  void history() {
    const std::vector<ResourceVersion> versions = store_.history(r_.segments[0], r_.segments[1]);
    if (versions.empty())
      return fail(404, "not-found", r_.segments[0] + "/" + r_.segments[1] + " is not known");
    const std::string self = r_.base_url + "/" + r_.segments[0] + "/" + r_.segments[1];
    std::string json = R"({"resourceType":"Bundle","type":"history","total":)" +
                       std::to_string(versions.size()) + R"(,"link":[{"relation":"self","url":)" +
                       json_string(self + "/_history") + R"(}],"entry":[)";
    for (std::size_t i = 0; i < versions.size(); ++i) {
      const ResourceVersion& v = versions[i];
      if (i) json += ',';
      json += R"({"fullUrl":)" + json_string(self);
      if (!v.deleted) json += R"(,"resource":)" + v.json;
      const std::string method = v.deleted ? "DELETE" : v.version == 1 ? "POST" : "PUT";
      json += R"(,"request":{"method":")" + method + R"(","url":)" +
              json_string(method == "POST" ? r_.segments[0] : r_.segments[0] + "/" + v.id) +
              R"(},"response":{"status":")" +
              std::string(v.deleted        ? "204"
                          : v.version == 1 ? "201"
                                           : "200") +
              R"(","etag":)" + json_string(etag(v.version)) + R"(,"lastModified":)" +
              json_string(store::iso_time(v.last_updated)) + "}}";
    }
    json += "]}";
    done_(bundle_response(std::move(json), r_.answer_format));
  }

  void search(const std::vector<std::pair<std::string, std::string>>& params) {
    ParsedSearch parsed = parse_search(r_.segments[0], params);
    if (parsed.error) return fail(400, "invalid", *parsed.error);
    const bool strict = preference(r_.prefer, "handling") == "strict";
    if (strict && !parsed.unknown.empty())
      return fail(400, "not-supported", parsed.unknown.front().first + " " + parsed.unknown.front().second);
    int count = kDefaultCount, offset = 0;
    for (const auto& [key, value] : params) {
      int n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      const bool number = ec == std::errc() && end == value.data() + value.size() && n >= 0;
      if ((key == "_count" || key == "_offset") && !number)
        return fail(400, "invalid", key + " must be a whole number, not '" + value + "'");
      if (key == "_count") count = std::min(n, kMaxCount);
      if (key == "_offset") offset = n;
    }
    parsed.query.count = count;
    parsed.query.offset = offset;
    const SearchResult result = store_.search(parsed.query);

    // The links repeat only what was used, so a lenient search shows what it ignored.
    const auto link = [&](int at) {
      std::string url = r_.base_url + "/" + r_.segments[0] + "?";
      for (const auto& [key, value] : parsed.used)
        url += percent_encode(key) + "=" + percent_encode(value) + "&";
      return url + "_count=" + std::to_string(count) + "&_offset=" + std::to_string(at);
    };
    std::string json = R"({"resourceType":"Bundle","type":"searchset","total":)" +
                       std::to_string(result.total) + R"(,"link":[{"relation":"self","url":)" +
                       json_string(link(offset)) + "}";
    if (offset + count < result.total && count > 0)
      json += R"(,{"relation":"next","url":)" + json_string(link(offset + count)) + "}";
    json += "]";
    if (!result.page.empty()) {
      json += R"(,"entry":[)";
      for (std::size_t i = 0; i < result.page.size(); ++i) {
        const ResourceVersion& v = result.page[i];
        json += (i ? "," : "") + std::string(R"({"fullUrl":)") +
                json_string(r_.base_url + "/" + v.type + "/" + v.id) + R"(,"resource":)" + v.json +
                R"(,"search":{"mode":"match"}})";
      }
      json += "]";
    }
    json += "}";
    done_(bundle_response(std::move(json), r_.answer_format));
  }

  ResourceStore& store_;
  const fhir::ParseLimits& limits_;
  RestRequest r_;
  std::function<void(RestResponse)> done_;
};

}  // namespace

void add_rest_capabilities(fhir::Element& cs) {
  fhir::Element& rest = cs.add("rest");
  rest.add_value("mode", "server");
  rest.add_value("documentation",
                 "courier's embedded FHIR store (the queue server): versioned, with conditional create and "
                 "update; batch, transaction and subscriptions are not served yet.");
  for (const fhir::TypeInfo* type : fhir::TypeRegistry::r4().resource_types()) {
    fhir::Element& resource = rest.add("resource");
    resource.add_value("type", type->name);
    for (const char* code : {"read", "vread", "update", "delete", "history-instance", "create", "search-type"})
      resource.add("interaction").add_value("code", code);
    resource.add_value("versioning", "versioned");
    resource.add_value("readHistory", "true");
    resource.add_value("updateCreate", "true");
    resource.add_value("conditionalCreate", "true");
    resource.add_value("conditionalUpdate", "true");
    resource.add_value("conditionalDelete", "not-supported");
    const auto add_param = [&](std::string_view name, std::string_view kind) {
      fhir::Element& p = resource.add("searchParam");
      p.add_value("name", std::string(name));
      p.add_value("type", std::string(kind));
    };
    add_param("_id", "token");
    add_param("_lastUpdated", "date");
    add_param("_tag", "token");
    for (const SearchParamInfo* param : search_params(type->name)) add_param(param->name, type_name(param->type));
    resource.sort_children();
  }
}

void RestApi::handle(RestRequest request, std::function<void(RestResponse)> done) {
  Interaction(store_, limits_, std::move(request), std::move(done)).run();
}

}  // namespace courier::rest
