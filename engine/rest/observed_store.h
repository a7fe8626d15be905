// A ResourceStore that reports every resource created, updated or deleted
// through it, once the write is durable: how the engine hears of what peers write
// to its FHIR base (reports on requests it carried, subscriptions).
#pragma once

#include <algorithm>
#include <functional>
#include <utility>

#include "engine/rest/resource_store.h"

namespace courier::rest {

class ObservedResourceStore final : public ResourceStore {
 public:
  using Observer = std::function<void(const ResourceVersion&)>;

  ObservedResourceStore(ResourceStore& inner, Observer observer)
      : inner_(inner), observer_(std::move(observer)) {}

  void write(Write write, std::function<void(WriteResult)> done) override {
    inner_.write(std::move(write), [this, done = std::move(done)](WriteResult result) {
      tell(result);
      done(std::move(result));
    });
  }
  void write_all(std::vector<Write> writes, std::function<void(std::vector<WriteResult>)> done) override {
    const std::size_t count = writes.size();
    inner_.write_all(
        std::move(writes), [this, count, done = std::move(done)](std::vector<WriteResult> results) {
          // A transaction that stopped wrote nothing, whatever its first results say.
          const bool committed = results.size() == count &&
                                 std::all_of(results.begin(), results.end(), [](const WriteResult& r) {
                                   using Outcome = WriteResult::Outcome;
                                   return r.outcome == Outcome::created || r.outcome == Outcome::updated ||
                                          r.outcome == Outcome::unchanged || r.outcome == Outcome::deleted;
                                 });
          if (committed)
            for (const WriteResult& result : results) tell(result);
          done(std::move(results));
        });
  }
  std::optional<ResourceVersion> read(const std::string& type, const std::string& id,
                                      std::optional<std::int64_t> version) override {
    return inner_.read(type, id, version);
  }
  std::vector<ResourceVersion> history(const std::string& type, const std::string& id) override {
    return inner_.history(type, id);
  }
  SearchResult search(const SearchQuery& query) override { return inner_.search(query); }
  void append_audit(std::vector<AuditEntry> entries, std::function<void()> done) override {
    inner_.append_audit(std::move(entries), std::move(done));
  }

 private:
  void tell(const WriteResult& result) {
    using Outcome = WriteResult::Outcome;
    const bool changed =
        result.outcome == Outcome::created || result.outcome == Outcome::updated ||
        (result.outcome == Outcome::deleted && result.resource.version > 0 && result.resource.deleted);
    if (changed) observer_(result.resource);
  }

  ResourceStore& inner_;
  Observer observer_;
};

}  // namespace courier::rest
