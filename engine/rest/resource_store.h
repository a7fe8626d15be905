// The embedded FHIR REST store (the "queue server" of Option C): versioned
// resources and their search index, kept in the same database as the
// conversations. An interface, like store::Store, so that nothing outside
// the implementation knows SQL.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/fhir/element.h"
#include "engine/store/store.h"

namespace courier::rest {

using store::Millis;

// One version of a resource as stored: the JSON carries meta.versionId and
// meta.lastUpdated already.
struct ResourceVersion {
  std::string type;
  std::string id;
  std::int64_t version = 0;
  Millis last_updated = 0;
  bool deleted = false;
  std::string json;  // empty for a deletion
};

using store::IndexEntry;

// One search parameter's condition: any of `values` matches (FHIR's comma
// means OR). A token value with has_system matches the system exactly (an
// empty system means "no system", as in "|code").
struct TokenValue {
  bool has_system = false;
  std::string system;
  std::string value;
};
struct Criterion {
  enum class Kind { index, id, last_updated };
  Kind kind = Kind::index;
  std::string param;               // index: the parameter's name
  std::vector<TokenValue> values;  // index and id (id: value only)
  std::string comparator;          // last_updated: gt, lt, ge, le, eq
  Millis instant = 0;              // last_updated
};

struct SearchQuery {
  std::string type;
  std::vector<Criterion> criteria;  // all must hold
  int count = 50;
  int offset = 0;
  // FHIR's _total: counting every match costs far more than a page of
  // them, so by default (automatic) the total is given only when it is
  // cheap: the page is the last one, the search has one criterion with at
  // most a couple of thousand matches, or the type holds few resources; and
  // when a page of 0 is asked for (_count=0, a count-only search). accurate
  // always counts; none never.
  enum class Total { automatic, accurate, none };
  Total total = Total::automatic;
};

struct SearchResult {
  std::optional<std::int64_t> total;  // the number of matches, when counted
  std::vector<ResourceVersion> page;
  bool more = false;  // matches after this page
};

// What a write is to do; the store assigns the version and the time.
struct Write {
  enum class Kind { create, update, remove };
  Kind kind = Kind::create;
  std::string type;
  std::string id;  // create: the new id; update and remove: the target
  // update and remove: fail with a conflict unless the current version is
  // this one (If-Match).
  std::optional<std::int64_t> expected_version;
  // create: when set, a conditional create (If-None-Exist): one match is
  // returned instead of creating; more than one is an error. update: the
  // condition of a conditional update that matched nothing when searched,
  // and so creates; a match that appeared since is returned as for a create
  // (the writes are serial, so two such updates never both create), or
  // with `update_match`, updated instead.
  std::optional<SearchQuery> unless_exists;
  bool update_match = false;
  // The resource, with its id set; the store sets meta.versionId and
  // meta.lastUpdated and serialises it. Empty for remove.
  std::optional<fhir::Element> resource;
  std::vector<IndexEntry> index;
};

struct WriteResult {
  enum class Outcome {
    created,    // a new resource (or a new version of a deleted one)
    updated,    // a new version
    unchanged,  // an update with the current version's content: no new version
    deleted,    // a deletion recorded (or nothing there to delete: version 0)
    exists,     // conditional create: the one match, unchanged
    conflict,   // expected_version is not the current one
    ambiguous,  // conditional create: more than one match
    failed,     // the store could not write it (error says why); nothing changed
    refused,    // a resource courier keeps itself, which takes no such write (error says why)
  };
  Outcome outcome = Outcome::created;
  ResourceVersion resource;  // what is current now (or the match)
  std::string error;
};

// One entry of the audit trail as the store keeps it: a compact row, not a
// resource, because courier writes a few for every message. It is read and
// searched as an AuditEvent (audit_event.h builds it), whose id is the
// entry's number.
struct AuditEntry {
  enum class Kind {  // stored as its number: add new kinds at the end
    rest,            // an interaction with the FHIR REST facade
    message,         // a message received, refused, routed or delivered
    operator_        // /admin/, /metrics
  };
  std::int64_t id = 0;  // set by the store
  Millis at = 0;
  Kind kind = Kind::message;
  std::string subtype;  // received, delivered, parked, refused, read, search, create, unauthenticated, ...
  char action = 'E';    // C R U D E, as AuditEvent.action
  int outcome = 0;      // 0 success, 4 minor failure (refused), 8 serious failure
  std::string outcome_text;      // why, for failures: no patient data
  std::string agent;             // the peer's name, "anonymous", or "courier" acting on its own
  bool by_courier = false;       // courier acting on its own (a delivery, a relay)
  std::string authenticated_by;  // how the peer proved who it is ("certificate", ...), when it did
  std::string address;           // the peer's IP address, when known
  std::string listener;
  std::vector<std::string> entities;  // references: "Task/conversation-7", "Patient/123"
  std::string message_id;             // the message's Bundle.id, when there is one
};

class ResourceStore;

// True when the current version of resource `id` matches `query` (the
// search a poller would run, narrowed to that one resource).
bool current_matches(ResourceStore& store, SearchQuery query, const std::string& id);

class ResourceStore {
 public:
  virtual ~ResourceStore() = default;
  // Durable when `done` runs.
  virtual void write(Write write, std::function<void(WriteResult)> done) = 0;
  // A transaction: every write, or (when one is a conflict, ambiguous, a
  // conditional create that found a match, or failed) none; the results
  // say which one stopped it. Durable when `done` runs.
  virtual void write_all(std::vector<Write> writes, std::function<void(std::vector<WriteResult>)> done) = 0;
  // The current version (also a deletion), or a given one.
  virtual std::optional<ResourceVersion> read(const std::string& type, const std::string& id,
                                              std::optional<std::int64_t> version = std::nullopt) = 0;
  // Every version, newest first.
  virtual std::vector<ResourceVersion> history(const std::string& type, const std::string& id) = 0;
  virtual SearchResult search(const SearchQuery& query) = 0;
  // Appends to the audit trail, in order. The entries may wait behind
  // acknowledgments, and are committed unsynced (durable with the next
  // synced commit); `done` runs once they are committed. Entries are
  // read and searched as the type AuditEvent, which nothing else writes.
  virtual void append_audit(std::vector<AuditEntry> entries, std::function<void()> done) = 0;
};

inline bool current_matches(ResourceStore& store, SearchQuery query, const std::string& id) {
  query.criteria.push_back(Criterion{Criterion::Kind::id, "_id", {TokenValue{false, {}, id}}, {}, 0});
  query.count = 1;
  query.offset = 0;
  query.total = SearchQuery::Total::none;
  return !store.search(query).page.empty();
}

}  // namespace courier::rest
