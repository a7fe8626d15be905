#include "engine/rest/merging_sender.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "engine/fhir/codec.h"
#include "engine/hl7v2/to_fhir.h"

namespace courier::rest {

namespace {

bool same_identifier(const fhir::Element& a, const fhir::Element& b) {
  return a.child_value("system") == b.child_value("system") &&
         a.child_value("value") == b.child_value("value");
}

bool is_identity(const fhir::Element& e) {
  return e.name() == "id" || e.name() == "meta";
}

}  // namespace

std::vector<std::string> take_v2_nulls(fhir::Element& resource) {
  std::vector<std::string> nulled;
  std::erase_if(resource.children(), [&](const fhir::Element& e) {
    if (e.name() != "extension" || e.child_value("url") != hl7v2::v2_null_extension) return false;
    nulled.emplace_back(e.child_value("value"));  // valueString
    return true;
  });
  return nulled;
}

fhir::Element merged_resource(const fhir::Element& stored, const fhir::Element& message_copy) {
  fhir::Element incoming = message_copy;
  const std::vector<std::string> nulled = take_v2_nulls(incoming);
  fhir::Element result = stored;
  std::vector<const fhir::ElementInfo*> replaced;
  for (const fhir::Element& e : incoming.children())
    if (!is_identity(e) && e.name() != "identifier") replaced.push_back(e.info());
  // A nulled choice ("deceasedDateTime") clears whichever type is stored.
  const auto is_nulled = [&](const fhir::Element& e) {
    return std::any_of(nulled.begin(), nulled.end(), [&](const std::string& name) {
      return name == e.name() || (e.info() != nullptr && e.info()->choice && name.starts_with(e.name()));
    });
  };
  const std::vector<const fhir::Element*> identifiers = incoming.children_named("identifier");
  auto& children = result.children();
  std::erase_if(children, [&](const fhir::Element& e) {
    if (e.name() == "identifier")  // kept, unless the message repeats it
      return std::any_of(identifiers.begin(), identifiers.end(),
                         [&](const fhir::Element* mine) { return same_identifier(*mine, e); });
    return std::find(replaced.begin(), replaced.end(), e.info()) != replaced.end() || is_nulled(e);
  });
  // The message's own identifiers go first: the first is the one it is found by.
  std::vector<fhir::Element> merged;
  for (const fhir::Element& e : incoming.children())
    if (!is_identity(e)) merged.push_back(e);
  for (fhir::Element& e : children) merged.push_back(std::move(e));
  children = std::move(merged);
  if (const fhir::Element* meta = incoming.child("meta"); meta != nullptr && meta->child("source") != nullptr)
    result.child_or_add("meta").child_or_add("source").set_value(meta->child("source")->value());
  result.sort_children();
  return result;
}

namespace {

class MergingSender final : public delivery::Sender, public std::enable_shared_from_this<MergingSender> {
 public:
  explicit MergingSender(std::shared_ptr<delivery::Sender> inner) : inner_(std::move(inner)) {}

  void send(delivery::Outbound message, std::function<void(delivery::SendOutcome)> done) override {
    attempt(std::move(message), std::move(done), 1);
  }

 private:
  // Someone wrote in between: a 412 after every update was pinned to the
  // version read, or a 409 (a resource read as missing was created since).
  // Read and merge again, a few times, before the delivery's own retries
  // take over.
  static constexpr int kRounds = 3;

  void attempt(delivery::Outbound message, std::function<void(delivery::SendOutcome)> done, int round) {
    fhir::ParseResult parsed = fhir::parse_as(message.body, message.format);
    if (!parsed.resource) return inner_->send(std::move(message), std::move(done));
    auto transaction = std::make_shared<fhir::Element>(std::move(*parsed.resource));
    std::vector<fhir::Element*> updates;  // the transaction's entries that update
    fhir::Element batch = fhir::Element::resource("Bundle");
    batch.add_value("type", "batch");
    for (fhir::Element& entry : transaction->children()) {
      if (entry.name() != "entry") continue;
      const fhir::Element* request = entry.child("request");
      if (request == nullptr || request->child_value("method") != "PUT" || entry.child("resource") == nullptr)
        continue;
      updates.push_back(&entry);
      fhir::Element& read = batch.add("entry").add("request");
      read.add_value("method", "GET");
      read.add_value("url", std::string(request->child_value("url")));
    }
    if (updates.empty()) return inner_->send(std::move(message), std::move(done));

    delivery::Outbound reads = message;
    reads.body = fhir::write(batch, message.format);
    inner_->send(std::move(reads), [self = shared_from_this(), message = std::move(message), transaction,
                                    updates = std::move(updates), done = std::move(done),
                                    round](delivery::SendOutcome outcome) mutable {
      if (outcome.kind != delivery::SendOutcome::Kind::done) return done(std::move(outcome));
      const std::vector<std::optional<fhir::Element>> found = read_answers(outcome, updates.size());
      bool all_pinned = true;
      for (std::size_t i = 0; i < updates.size(); ++i) {
        if (found[i]) {
          pin(*updates[i], *found[i]);
        } else {
          take_v2_nulls(*updates[i]->child("resource"));  // nothing stored to clear
          all_pinned = false;
        }
      }
      delivery::Outbound write = message;
      write.body = fhir::write(*transaction, message.format);
      self->inner_->send(std::move(write), [self, message = std::move(message), done = std::move(done), round,
                                            all_pinned](delivery::SendOutcome outcome) mutable {
        const bool raced = (outcome.status == 412 && all_pinned) || outcome.status == 409;
        if (raced && round < kRounds) return self->attempt(std::move(message), std::move(done), round + 1);
        done(std::move(outcome));
      });
    });
  }

  // What the batch of reads found for each update: the one current
  // resource, or nothing (not found, several matches, a read that failed).
  static std::vector<std::optional<fhir::Element>> read_answers(const delivery::SendOutcome& outcome,
                                                                std::size_t count) {
    std::vector<std::optional<fhir::Element>> found(count);
    const fhir::ParseResult parsed = fhir::parse_as(outcome.body, outcome.format);
    if (!parsed.resource) return found;
    const auto entries = parsed.resource->children_named("entry");
    for (std::size_t i = 0; i < count && i < entries.size(); ++i) {
      const fhir::Element* response = entries[i]->child("response");
      const fhir::Element* resource = entries[i]->child("resource");
      if (response == nullptr || !response->child_value("status").starts_with("200") || resource == nullptr)
        continue;
      if (resource->type().name != "Bundle") {
        found[i] = *resource;  // a read by id
        continue;
      }
      std::vector<const fhir::Element*> matches;
      for (const fhir::Element* hit : resource->children_named("entry")) {
        const fhir::Element* search = hit->child("search");
        const bool match = search == nullptr || search->child_value("mode").empty() ||
                           search->child_value("mode") == "match";
        if (match && hit->child("resource") != nullptr) matches.push_back(hit->child("resource"));
      }
      if (matches.size() == 1) found[i] = *matches.front();
    }
    return found;
  }

  // The update becomes a write of the merged resource by its id, on the
  // condition that it is still the version read.
  static void pin(fhir::Element& entry, const fhir::Element& stored) {
    fhir::Element& resource = *entry.child("resource");
    fhir::Element merged = merged_resource(stored, resource);
    resource.children() = std::move(merged.children());
    fhir::Element& request = *entry.child("request");
    const std::string id(stored.child_value("id"));
    request.child("url")->set_value(stored.type().name + "/" + id);
    const fhir::Element* meta = stored.child("meta");
    const std::string_view version = meta != nullptr ? meta->child_value("versionId") : std::string_view();
    if (!version.empty()) request.child_or_add("ifMatch").set_value("W/\"" + std::string(version) + "\"");
  }

  std::shared_ptr<delivery::Sender> inner_;
};

}  // namespace

std::shared_ptr<delivery::Sender> make_merging_sender(std::shared_ptr<delivery::Sender> inner) {
  return std::make_shared<MergingSender>(std::move(inner));
}

}  // namespace courier::rest
