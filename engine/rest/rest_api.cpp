#include "engine/rest/rest_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <map>
#include <mutex>

#include "engine/fhir/operation_outcome.h"
#include "engine/fhir/type_registry.h"
#include "engine/fhir/validator.h"
#include "engine/rest/search.h"
#include "engine/rest/subscriptions.h"
#include "engine/util/text.h"
#include "engine/util/uuid.h"

namespace courier::rest {

namespace {

constexpr int kDefaultCount = 50;
constexpr int kMaxCount = 1000;

// What a request on a type or resource does, for scope checks.
security::Interaction interaction_of(std::string_view method, const std::vector<std::string>& s) {
  using I = security::Interaction;
  if (method == "GET") return s.size() == 1 ? I::search : I::read;
  if (method == "POST") return s.size() == 2 && s[1] == "_search" ? I::search : I::create;
  if (method == "PUT") return I::update;
  return I::remove;
}

// Null when the peer's scopes allow the request; else why not. The audit
// trail is courier's alone to write, whoever asks.
std::optional<std::string> scope_refusal(const RestRequest& r, const std::string& method,
                                         const std::vector<std::string>& segments) {
  if (segments.empty()) return std::nullopt;
  const security::Interaction interaction = interaction_of(method, segments);
  const bool reads =
      interaction == security::Interaction::read || interaction == security::Interaction::search;
  if (segments[0] == "AuditEvent" && !reads) return std::string("AuditEvents are written by courier alone");
  if (!r.peer || r.peer->scopes.allows(segments[0], interaction)) return std::nullopt;
  return "peer '" + r.peer->name + "' has no scope that allows " + method + " on " + segments[0];
}

// A Subscription sends what matches its criteria to its endpoint: a peer
// may only subscribe to what it may read.
std::optional<std::string> subscription_refusal(const RestRequest& r, const fhir::Element& subscription) {
  if (!r.peer) return std::nullopt;
  const std::string_view criteria = subscription.child_value("criteria");
  const std::string type(criteria.substr(0, criteria.find('?')));
  if (r.peer->scopes.allows(type, security::Interaction::read) &&
      r.peer->scopes.allows(type, security::Interaction::search))
    return std::nullopt;
  return "peer '" + r.peer->name + "' may not read " + (type.empty() ? "what the criteria name" : type) +
         ", so it may not subscribe to it";
}

RestResponse outcome(int status, const std::string& code, const std::string& diagnostics,
                     fhir::Format format) {
  return RestResponse{status, fhir::outcome_text(code, diagnostics, format), format, {}};
}

RestResponse issues_outcome(int status, fhir::Issues issues, fhir::Format format) {
  return RestResponse{status, fhir::error_outcome_text(std::move(issues), format), format, {}};
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
  return util::parse_integer(text);
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

// The search an If-None-Exist (or a transaction's ifNoneExist) names,
// written with or without its "Type?".
std::vector<std::pair<std::string, std::string>> condition_params(std::string_view if_none_exist) {
  if (const std::size_t q = if_none_exist.find('?'); q != std::string_view::npos)
    if_none_exist.remove_prefix(q + 1);
  return util::parse_form(if_none_exist);
}

// Gives a resource the id the store will keep it under.
void set_id(fhir::Element& resource, const std::string& id) {
  if (fhir::Element* existing = resource.child("id")) {
    existing->set_value(id);
    return;
  }
  resource.add_value("id", id);
  resource.sort_children();
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
    out.body = fhir::write(fhir::to_operation_outcome({}), r.answer_format);  // one "information" issue
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

void process_bundle(ResourceStore& store, const fhir::ParseLimits& limits, RestRequest r,
                    std::function<void(RestResponse)> done);

class Interaction {
 public:
  Interaction(ResourceStore& store, const fhir::ParseLimits& limits, RestRequest request,
              std::function<void(RestResponse)> done)
      : store_(store), limits_(limits), r_(std::move(request)), done_(std::move(done)) {}

  void run() {
    const auto& s = r_.segments;
    if (s.empty() || s[0].empty()) {
      if (r_.method != "POST")
        return fail(405, "not-supported", "the FHIR base takes batch and transaction Bundles by POST");
      return process_bundle(store_, limits_, std::move(r_), std::move(done_));
    }
    if (fhir::TypeRegistry::r4().find_resource(s[0]) == nullptr)
      return fail(404, "not-supported", "'" + s[0] + "' is not a FHIR R4 resource type");
    if (std::optional<std::string> why = scope_refusal(r_, r_.method, s)) return fail(403, "forbidden", *why);
    const std::string& m = r_.method;
    if (s.size() == 1 && m == "GET") return search(r_.query);
    if (s.size() == 2 && s[1] == "_search" && m == "POST") {
      if (r_.body_format && !r_.body.empty())  // a resource, not search parameters
        return fail(415, "not-supported",
                    "send _search's parameters as application/x-www-form-urlencoded, such as status=active");
      return search(form_parameters());
    }
    if (s.size() == 1 && m == "POST") return create();
    if (s.size() == 1 && m == "PUT") return conditional_update();
    if (s.size() == 2 && s[1] == "_history")
      return fail(405, "not-supported",
                  "the history of a whole type is not kept for reading; ask for one resource's, " + s[0] +
                      "/id/_history");
    if (s.size() == 2 && m == "GET") return read(std::nullopt);
    if (s.size() == 2 && m == "PUT") return update(s[1], etag_version(r_.if_match));
    if (s.size() == 2 && m == "DELETE") return remove();
    if (s.size() == 3 && s[2] == "_history" && m == "GET") return history();
    if (s.size() == 4 && s[2] == "_history" && m == "GET") {
      const std::optional<std::int64_t> v = util::parse_integer(s[3]);
      if (!v) return fail(404, "not-found", "'" + s[3] + "' is not a version number");
      return read(*v);
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
    if (r_.body.empty()) {
      fail(400, "required", "the request has no body: send the " + r_.segments[0] + " to write");
      return std::nullopt;
    }
    if (!r_.body_format) {
      fail(415, "not-supported", "send the resource as application/fhir+json or application/fhir+xml");
      return std::nullopt;
    }
    fhir::ParseResult parsed = fhir::parse_valid(r_.body, *r_.body_format, limits_);
    if (!parsed.ok()) {
      done_(issues_outcome(400, std::move(parsed.issues), r_.answer_format));
      return std::nullopt;
    }
    if (parsed.resource->type().name != r_.segments[0]) {
      fail(400, "invalid",
           "the body is a " + parsed.resource->type().name + ", but the URL names " + r_.segments[0]);
      return std::nullopt;
    }
    if (parsed.resource->type().name == "Subscription") {
      if (const std::optional<std::string> problem = subscription_problem(*parsed.resource)) {
        fail(422, "not-supported", *problem);
        return std::nullopt;
      }
      if (const std::optional<std::string> why = subscription_refusal(r_, *parsed.resource)) {
        fail(403, "forbidden", *why);
        return std::nullopt;
      }
      const fhir::Element* channel = parsed.resource->child("channel");
      if (!r_.base_url.empty() && channel != nullptr &&
          channel->child_value("endpoint").starts_with(r_.base_url)) {
        // Each notification would be a new version, notified again.
        fail(422, "not-supported", "a Subscription cannot notify courier's own FHIR base: it would loop");
        return std::nullopt;
      }
    }
    return std::move(parsed.resource);
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
    w.id = util::time_ordered_uuid();  // the server assigns the id of a create
    if (!r_.if_none_exist.empty()) {
      w.unless_exists = condition(condition_params(r_.if_none_exist));
      if (!w.unless_exists) return;
    }
    set_id(*resource, w.id);
    w.index = index_entries(*resource);
    w.resource = std::move(resource);
    submit(std::move(w));
  }

  // `by_search`: a conditional update, where the body may leave the id out.
  void update(const std::string& id, std::optional<std::int64_t> expected, bool by_search = false) {
    if (!r_.if_match.empty() && !expected)
      return fail(400, "invalid", "If-Match must be a version ETag such as W/\"3\"");
    std::optional<fhir::Element> resource = body_resource();
    if (!resource) return;
    if (by_search && resource->child_value("id").empty()) set_id(*resource, id);
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
    if (found.page.size() > 1)
      return fail(412, "multiple-matches", "the search matches more than one resource; make it select one");
    if (found.page.size() == 1) return update(found.page.front().id, std::nullopt, true);
    // No match: a create, with the body's id if it has one (update as create).
    std::optional<fhir::Element> resource = body_resource();
    if (!resource) return;
    Write w;
    w.kind = Write::Kind::update;
    w.unless_exists = *query;  // a match written meanwhile is updated, not doubled
    w.update_match = true;
    w.type = r_.segments[0];
    w.id = std::string(resource->child_value("id"));
    if (w.id.empty()) w.id = util::time_ordered_uuid();
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
        case Outcome::updated:
        case Outcome::unchanged: return done(resource_response(200, v, r, true));
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
        case Outcome::refused: return done(outcome(422, "business-rule", result.error, r.answer_format));
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
        url += util::percent_encode(key) + "=" + util::percent_encode(value) + "&";
      return url + "_count=" + std::to_string(count) + "&_offset=" + std::to_string(at);
    };
    std::string json = R"({"resourceType":"Bundle","type":"searchset",)";
    if (result.total) json += R"("total":)" + std::to_string(*result.total) + ",";
    json += R"("link":[{"relation":"self","url":)" + json_string(link(offset)) + "}";
    if (result.more && count > 0)
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

// ---- batch and transaction ----------------------------------------------

std::string status_line(int status) {
  switch (status) {
    case 200: return "200 OK";
    case 201: return "201 Created";
    case 204: return "204 No Content";
    case 400: return "400 Bad Request";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 409: return "409 Conflict";
    case 410: return "410 Gone";
    case 412: return "412 Precondition Failed";
    case 415: return "415 Unsupported Media Type";
    default: return std::to_string(status);
  }
}

std::string header(const RestResponse& r, std::string_view name) {
  for (const auto& [key, value] : r.headers)
    if (key == name) return value;
  return {};
}

// One entry of a transaction or batch, read from the Bundle.
struct BundleEntry {
  std::size_t index = 0;
  std::string method;
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> query;
  std::string full_url;
  std::string if_none_exist;
  std::string if_match;
  std::optional<fhir::Element> resource;
  // The ifNoneExist or conditional-update search, once read, while it
  // matched nothing (the entry creates).
  std::optional<SearchQuery> condition;
};

// request.url ("Patient", "Patient/1", "Patient?identifier=x", or absolute
// under our base) split like a request path.
void split_url(std::string_view url, const std::string& base_url, BundleEntry& e) {
  if (url.starts_with(base_url + "/")) url.remove_prefix(base_url.size() + 1);
  const std::size_t question = url.find('?');
  const std::string_view path = url.substr(0, question);
  for (std::size_t at = 0;;) {
    const std::size_t slash = path.find('/', at);
    e.segments.emplace_back(util::percent_decode(path.substr(at, slash - at)));
    if (slash == std::string_view::npos) break;
    at = slash + 1;
  }
  if (question != std::string_view::npos) e.query = util::parse_form(url.substr(question + 1));
}

// Sets every Reference.reference that names a fullUrl of the transaction to
// the id that entry got; returns a urn: reference that names no entry.
std::optional<std::string> rewrite_references(fhir::Element& e,
                                              const std::map<std::string, std::string>& ids) {
  if (e.type().name == "Reference")
    if (fhir::Element* reference = e.child("reference"); reference != nullptr && reference->has_value()) {
      if (auto it = ids.find(reference->value()); it != ids.end())
        reference->set_value(it->second);
      else if (reference->value().starts_with("urn:uuid:") || reference->value().starts_with("urn:oid:"))
        return reference->value();
    }
  for (fhir::Element& child : e.children())
    if (auto dangling = rewrite_references(child, ids)) return dangling;
  return std::nullopt;
}

RestResponse bundle_failure(int status, const std::string& code, std::size_t index, const std::string& why,
                            fhir::Format format) {
  return outcome(status, code, "entry " + std::to_string(index) + ": " + why + "; nothing was written",
                 format);
}

// A batch: each entry on its own, as if sent alone; the answers gathered in
// a batch-response in entry order.
void run_batch(ResourceStore& store, const fhir::ParseLimits& limits, const RestRequest& r,
               std::vector<BundleEntry> entries, std::function<void(RestResponse)> done) {
  struct Gathered {
    std::mutex mutex;
    std::vector<RestResponse> answers;
    std::size_t left;
    std::function<void(RestResponse)> done;
    fhir::Format format;
  };
  auto gathered = std::make_shared<Gathered>();
  gathered->answers.resize(entries.size());
  gathered->left = entries.size();
  gathered->done = std::move(done);
  gathered->format = r.answer_format;
  const auto finish = [gathered]() {
    std::string json = R"({"resourceType":"Bundle","type":"batch-response","entry":[)";
    for (std::size_t i = 0; i < gathered->answers.size(); ++i) {
      const RestResponse& a = gathered->answers[i];
      json += (i ? "," : "") + std::string(R"({"response":{"status":)") + json_string(status_line(a.status));
      if (const std::string location = header(a, "Location"); !location.empty())
        json += R"(,"location":)" + json_string(location);
      if (const std::string tag = header(a, "ETag"); !tag.empty()) json += R"(,"etag":)" + json_string(tag);
      if (a.status >= 400 && !a.body.empty()) json += R"(,"outcome":)" + a.body;
      json += "}";
      if (a.status < 300 && !a.body.empty() && a.body.front() == '{') json += R"(,"resource":)" + a.body;
      json += "}";
    }
    json += "]}";
    gathered->done(bundle_response(std::move(json), gathered->format));
  };
  if (entries.empty()) return finish();
  for (BundleEntry& e : entries) {
    RestRequest one;
    one.method = e.method;
    one.segments = std::move(e.segments);
    one.query = std::move(e.query);
    if (e.resource) {
      one.body = fhir::write_json(*e.resource);
      one.body_format = fhir::Format::json;
    }
    one.answer_format = fhir::Format::json;  // gathered as JSON, converted at the end
    one.if_match = e.if_match;
    one.if_none_exist = e.if_none_exist;
    one.base_url = r.base_url;
    one.peer = r.peer;
    const std::size_t index = e.index;
    Interaction(store, limits, std::move(one), [gathered, index, finish](RestResponse answer) {
      bool last = false;
      {
        std::lock_guard lock(gathered->mutex);
        gathered->answers[index] = std::move(answer);
        last = --gathered->left == 0;
      }
      if (last) finish();
    }).run();
  }
}

// A transaction: ids resolved and references rewritten first, then every
// write in one database transaction; any failure leaves nothing written.
void run_transaction(ResourceStore& store, const RestRequest& r, std::vector<BundleEntry> entries,
                     std::function<void(RestResponse)> done) {
  const fhir::Format format = r.answer_format;
  std::map<std::string, std::string> ids;  // fullUrl → Type/id
  std::vector<std::optional<ResourceVersion>> matched(entries.size());
  for (BundleEntry& e : entries) {
    const std::string& type = e.segments[0];
    const auto search_one = [&](const std::vector<std::pair<std::string, std::string>>& params,
                                std::string& found) -> std::optional<RestResponse> {
      ParsedSearch parsed = parse_search(type, params);
      if (parsed.error || !parsed.unknown.empty() || parsed.query.criteria.empty())
        return bundle_failure(400, "invalid", e.index, "its condition is not a search courier can run",
                              format);
      e.condition = parsed.query;
      parsed.query.count = 2;
      const SearchResult result = store.search(parsed.query);
      if (result.page.size() > 1)
        return bundle_failure(412, "multiple-matches", e.index, "its condition matches more than one",
                              format);
      if (result.page.size() == 1) {
        found = result.page.front().id;
        matched[e.index] = result.page.front();
      }
      return std::nullopt;
    };
    std::string id;
    if (e.method == "POST") {
      if (!e.if_none_exist.empty())
        if (auto failure = search_one(condition_params(e.if_none_exist), id))
          return done(std::move(*failure));
      if (id.empty())
        id = util::time_ordered_uuid();
      else
        e.method = "MATCHED";  // the existing one stands; nothing to write
    } else if (e.method == "PUT") {
      if (e.segments.size() == 2) {
        id = e.segments[1];
      } else {
        if (auto failure = search_one(e.query, id)) return done(std::move(*failure));
        if (!id.empty()) e.condition.reset();  // an update of the match
        if (id.empty()) id = std::string(e.resource->child_value("id"));
        if (id.empty()) id = util::time_ordered_uuid();
        matched[e.index].reset();
      }
    } else if (e.method == "DELETE") {
      if (e.segments.size() != 2)
        return done(
            bundle_failure(400, "not-supported", e.index, "conditional delete is not supported", format));
      id = e.segments[1];
    }
    if (!id.empty() && !e.full_url.empty()) ids[e.full_url] = type + "/" + id;
    if (!id.empty()) e.segments.resize(1), e.segments.push_back(id);
  }
  // FHIR: a transaction that writes one resource twice fails.
  std::map<std::string, std::size_t> written;  // Type/id → the entry writing it
  for (const BundleEntry& e : entries) {
    if (e.method != "POST" && e.method != "PUT" && e.method != "DELETE") continue;
    const auto [at, fresh] = written.emplace(e.segments[0] + "/" + e.segments[1], e.index);
    if (!fresh)
      return done(bundle_failure(400, "processing", e.index,
                                 "it writes " + at->first + ", as entry " + std::to_string(at->second) +
                                     " does; a transaction writes each resource once",
                                 format));
  }
  // FHIR's order: deletes, then creates, then updates; reads after them all.
  std::vector<Write> writes;
  std::vector<std::size_t> write_entry;
  for (const char* method : {"DELETE", "POST", "PUT"}) {
    for (BundleEntry& e : entries) {
      if (e.method != method) continue;
      Write w;
      w.type = e.segments[0];
      w.id = e.segments[1];
      if (e.method == "DELETE") {
        w.kind = Write::Kind::remove;
      } else {
        if (auto dangling = rewrite_references(*e.resource, ids))
          return done(bundle_failure(400, "not-found", e.index,
                                     "the reference " + *dangling + " names no entry of the transaction",
                                     format));
        fhir::Element& resource = *e.resource;
        if (const std::string_view body_id = resource.child_value("id");
            e.method == std::string("PUT") && !body_id.empty() && body_id != w.id)
          return done(bundle_failure(400, "invalid", e.index,
                                     "its resource's id '" + std::string(body_id) + "' is not its url's",
                                     format));
        set_id(resource, w.id);
        w.kind = e.method == std::string("POST") ? Write::Kind::create : Write::Kind::update;
        if (!e.if_match.empty()) {
          w.expected_version = etag_version(e.if_match);
          if (!w.expected_version)
            return done(bundle_failure(400, "invalid", e.index, "its ifMatch is not a version ETag", format));
        }
        // Searched above and found nothing: a match now means it changed
        // meanwhile, and the transaction fails (409) rather than doubling it.
        w.unless_exists = e.condition;
        w.index = index_entries(resource);
        w.resource = std::move(e.resource);
      }
      writes.push_back(std::move(w));
      write_entry.push_back(e.index);
    }
  }
  store.write_all(std::move(writes), [&store, entries = std::move(entries), write_entry, matched, r,
                                      done = std::move(done)](std::vector<WriteResult> results) mutable {
    using Outcome = WriteResult::Outcome;
    const fhir::Format format = r.answer_format;
    std::vector<std::string> responses(entries.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      const WriteResult& w = results[i];
      const std::size_t index = write_entry[i];
      switch (w.outcome) {
        case Outcome::conflict:
          return done(bundle_failure(412, "conflict", index, "version conflict", format));
        case Outcome::ambiguous:
          return done(
              bundle_failure(412, "multiple-matches", index, "its condition matches more than one", format));
        case Outcome::exists:
          return done(bundle_failure(
              409, "conflict", index,
              "a match for its condition was written meanwhile; send the transaction again", format));
        case Outcome::failed:
          return done(bundle_failure(500, "exception", index, "the store could not write it", format));
        case Outcome::refused: return done(bundle_failure(422, "business-rule", index, w.error, format));
        default: break;
      }
      const ResourceVersion& v = w.resource;
      std::string json = R"({"status":)" + json_string(status_line(w.outcome == Outcome::created   ? 201
                                                                   : w.outcome == Outcome::deleted ? 204
                                                                                                   : 200));
      if (w.outcome != Outcome::deleted)
        json += R"(,"location":)" + json_string(r.base_url + "/" + v.type + "/" + v.id + "/_history/" +
                                                std::to_string(v.version));
      if (v.version > 0) json += R"(,"etag":)" + json_string(etag(v.version));
      if (v.last_updated > 0) json += R"(,"lastModified":)" + json_string(store::iso_time(v.last_updated));
      responses[index] = json + "}";
    }
    std::string json = R"({"resourceType":"Bundle","type":"transaction-response","entry":[)";
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const BundleEntry& e = entries[i];
      std::string entry = "{";
      if (e.method == "MATCHED") {
        const ResourceVersion& v = *matched[i];
        responses[i] =
            R"({"status":"200 OK","location":)" +
            json_string(r.base_url + "/" + v.type + "/" + v.id + "/_history/" + std::to_string(v.version)) +
            R"(,"etag":)" + json_string(etag(v.version)) + "}";
      } else if (e.method == "GET") {
        const std::optional<ResourceVersion> v =
            e.segments.size() == 2 ? store.read(e.segments[0], e.segments[1]) : std::nullopt;
        if (v && !v->deleted) {
          entry += R"("resource":)" + v->json + ",";
          responses[i] = R"({"status":"200 OK","etag":)" + json_string(etag(v->version)) + "}";
        } else {
          responses[i] = R"({"status":"404 Not Found"})";
        }
      }
      json += (i ? "," : "") + entry + R"("response":)" + responses[i] + "}";
    }
    json += "]}";
    done(bundle_response(std::move(json), format));
  });
}

void process_bundle(ResourceStore& store, const fhir::ParseLimits& limits, RestRequest r,
                    std::function<void(RestResponse)> done) {
  const fhir::Format format = r.answer_format;
  if (!r.body_format)
    return done(outcome(415, "not-supported",
                        "send the Bundle as application/fhir+json or application/fhir+xml", format));
  fhir::ParseResult parsed = fhir::parse_valid(r.body, *r.body_format, limits);
  if (!parsed.ok()) return done(issues_outcome(400, std::move(parsed.issues), format));
  const fhir::Element& bundle = *parsed.resource;
  const std::string_view kind =
      bundle.type().name == "Bundle" ? bundle.child_value("type") : std::string_view();
  if (kind != "transaction" && kind != "batch")
    return done(outcome(400, "invalid", "the FHIR base takes a Bundle of type transaction or batch", format));
  std::vector<BundleEntry> entries;
  for (const fhir::Element* entry : bundle.children_named("entry")) {
    BundleEntry e;
    e.index = entries.size();
    e.full_url = std::string(entry->child_value("fullUrl"));
    const fhir::Element* request = entry->child("request");
    if (request == nullptr)
      return done(bundle_failure(400, "required", e.index, "it has no request", format));
    e.method = std::string(request->child_value("method"));
    e.if_none_exist = std::string(request->child_value("ifNoneExist"));
    e.if_match = std::string(request->child_value("ifMatch"));
    split_url(request->child_value("url"), r.base_url, e);
    if (const fhir::Element* resource = entry->child("resource")) e.resource = *resource;
    const std::string& type = e.segments[0];
    const bool writes_body = e.method == "POST" || e.method == "PUT";
    std::string problem;
    if (fhir::TypeRegistry::r4().find_resource(type) == nullptr)
      problem = "'" + type + "' is not a resource type";
    else if (e.method != "GET" && e.method != "POST" && e.method != "PUT" && e.method != "DELETE")
      problem = "the method " + e.method + " is not supported";
    else if (writes_body && !e.resource)
      problem = "a " + e.method + " needs a resource";
    else if (writes_body && e.resource->type().name != type)
      problem = "its resource is a " + e.resource->type().name + ", but its url names " + type;
    else if ((e.method == "GET" || e.method == "DELETE") && e.segments.size() != 2 && kind == "transaction")
      problem = "only reads and deletes by id are supported in a transaction";
    else if (e.method == "POST" && e.segments.size() != 1)
      problem = "a create is POSTed to the type";
    if (!problem.empty() && kind == "transaction")
      return done(bundle_failure(400, "invalid", e.index, problem, format));
    std::optional<std::string> why = scope_refusal(r, e.method, e.segments);
    if (!why && e.resource && e.resource->type().name == "Subscription")
      why = subscription_refusal(r, *e.resource);
    if (why && kind == "transaction") return done(bundle_failure(403, "forbidden", e.index, *why, format));
    entries.push_back(std::move(e));
  }
  if (kind == "batch") return run_batch(store, limits, r, std::move(entries), std::move(done));
  run_transaction(store, r, std::move(entries), std::move(done));
}

}  // namespace

void add_rest_capabilities(fhir::Element& cs) {
  fhir::Element& rest = cs.add("rest");
  rest.add_value("mode", "server");
  rest.add_value("documentation",
                 "courier's embedded FHIR store (the queue server): versioned, with conditional create and "
                 "update, batch and transaction; subscriptions are not served yet.");
  for (const fhir::TypeInfo* type : fhir::TypeRegistry::r4().resource_types()) {
    fhir::Element& resource = rest.add("resource");
    resource.add_value("type", type->name);
    for (const char* code :
         {"read", "vread", "update", "delete", "history-instance", "create", "search-type"})
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
    for (const SearchParamInfo* param : search_params(type->name))
      add_param(param->name, type_name(param->type));
    resource.sort_children();
  }
  for (const char* code : {"transaction", "batch"}) rest.add("interaction").add_value("code", code);
  rest.sort_children();
}

void RestRequest::set_target(std::string_view target) {
  const std::size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  segments.clear();
  for (std::size_t at = 0;;) {
    const std::size_t slash = path.find('/', at);
    segments.emplace_back(util::percent_decode(path.substr(at, slash - at)));
    if (slash == std::string_view::npos) break;
    at = slash + 1;
  }
  query =
      question == std::string_view::npos ? decltype(query)() : util::parse_form(target.substr(question + 1));
}

void RestApi::handle(RestRequest request, std::function<void(RestResponse)> done) {
  Interaction(store_, limits_, std::move(request), std::move(done)).run();
}

}  // namespace courier::rest
