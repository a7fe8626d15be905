#include "engine/fhir/validator.h"

#include <algorithm>
#include <set>

#include "engine/fhir/bundle_index.h"
#include "engine/fhir/path.h"
#include "engine/fhir/primitive.h"

namespace courier::fhir {

namespace {

// The elements of a MessageHeader that name other parts of the message, and
// whether one that is not in the Bundle is an error or a warning.
struct MessageReference {
  std::string_view element;
  std::string_view child;  // "" when the Reference is the element itself
  bool required_in_bundle;
};
constexpr MessageReference kMessageReferences[] = {
    {"focus", "", true},   {"sender", "", false},      {"enterer", "", false},
    {"author", "", false}, {"responsible", "", false}, {"destination", "receiver", false},
};

class Validator {
 public:
  explicit Validator(Issues& issues) : issues_(issues), path_("") {}

  void resource(const Element& r) {
    path_ = PathBuilder(r.type().name);
    walk_resource(r);
  }

 private:
  Issues& issues_;
  PathBuilder path_;

  void add(Severity severity, std::string code, std::string message) {
    issues_.push_back(Issue{severity, std::move(code), std::move(message), path_.str(), std::nullopt});
  }
  void error(std::string code, std::string message) {
    add(Severity::error, std::move(code), std::move(message));
  }
  void warning(std::string code, std::string message) {
    add(Severity::warning, std::move(code), std::move(message));
  }

  // Runs `check` with the path at the index-th `name` child of the current
  // element, as reported in the issues.
  template <typename F>
  void at(std::string_view name, std::int32_t index, F&& check) {
    path_.push(name, index);
    check();
    path_.pop();
  }

  void walk_resource(const Element& r) {
    walk(r);
    if (r.type().name == "Bundle") bundle(r);
  }

  void walk(const Element& e) {
    if (e.has_value()) {
      if (auto problem = check_primitive(e.type(), e.value())) error("value", *problem);
    } else if (!e.is_resource() && std::all_of(e.children().begin(), e.children().end(),
                                               [](const Element& c) { return c.name() == "id"; })) {
      // ele-1: hasValue() or (children().count() > id.count())
      error("required", "ele-1: the element has neither a value nor children other than an id");
    }
    cardinality(e);
    std::string_view previous;
    std::int32_t index = 0;
    for (const Element& c : e.children()) {
      index = c.name() == previous ? index + 1 : 0;
      previous = c.name();
      path_.push(c, index);
      if (c.is_resource())
        walk_resource(c);
      else
        walk(c);
      path_.pop();
    }
  }

  void cardinality(const Element& e) {
    const auto& children = e.children();
    std::size_t k = 0;
    for (const ElementInfo& info : e.type().elements) {
      std::size_t count = 0;
      while (k < children.size() && children[k].info() == &info) {
        ++count;
        ++k;
      }
      if (count >= info.min && (info.max < 0 || count <= static_cast<std::size_t>(info.max))) continue;
      const std::string name = info.choice ? info.name + "[x]" : info.name;
      if (count < info.min) {
        error("required", e.type().name + "." + name + ": minimum required = " + std::to_string(info.min) +
                              ", but only found " + std::to_string(count));
      } else if (info.max >= 0 && count > static_cast<std::size_t>(info.max)) {
        error("structure", e.type().name + "." + name + ": maximum allowed = " + std::to_string(info.max) +
                               ", but found " + std::to_string(count));
      }
    }
  }

  // ---- Bundle invariants and messaging ---------------------------------------

  void bundle(const Element& b) {
    const std::string_view type = b.child_value("type");
    const auto entries = b.children_named("entry");
    if (b.child("total") != nullptr && type != "searchset" && type != "history")
      error("invariant", "bdl-1: total only when a search or history");
    const bool requests = type == "batch" || type == "transaction" || type == "history";
    const bool responses = type == "batch-response" || type == "transaction-response" || type == "history";
    std::set<std::pair<std::string_view, std::string_view>> full_urls;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const Element& entry = *entries[i];
      at("entry", static_cast<std::int32_t>(i), [&] {
        if (entry.child("search") != nullptr && type != "searchset")
          error("invariant", "bdl-2: entry.search only when a search");
        if ((entry.child("request") != nullptr) != requests)
          error("invariant", requests ? "bdl-3: entry.request mandatory for batch/transaction/history"
                                      : "bdl-3: entry.request allowed only for batch/transaction/history");
        if ((entry.child("response") != nullptr) != responses)
          error("invariant",
                responses
                    ? "bdl-4: entry.response mandatory for batch-response/transaction-response/history"
                    : "bdl-4: entry.response allowed only for batch-response/transaction-response/history");
        if (entry.child("resource") == nullptr && entry.child("request") == nullptr &&
            entry.child("response") == nullptr)
          error("invariant", "bdl-5: must be a resource unless there's a request or response");
        const std::string_view full_url = entry.child_value("fullUrl");
        if (full_url.find("/_history/") != std::string_view::npos)
          error("invariant", "bdl-8: fullUrl cannot be a version specific reference");
        if (!full_url.empty() && type != "history") {
          const Element* resource = entry.child("resource");
          std::string_view version;
          if (resource != nullptr)
            if (const Element* meta = resource->child("meta")) version = meta->child_value("versionId");
          if (!full_urls.emplace(full_url, version).second)
            error("invariant",
                  "bdl-7: fullUrl must be unique in a bundle, or else entries with the same "
                  "fullUrl must have different meta.versionId; '" +
                      std::string(full_url) + "' is repeated");
        }
        full_url_agreement(entry);
      });
    }
    if (type == "document") {
      const Element* identifier = b.child("identifier");
      if (identifier == nullptr || identifier->child("system") == nullptr ||
          identifier->child("value") == nullptr)
        error("invariant", "bdl-9: a document must have an identifier with a system and a value");
      if (b.child_value("timestamp").empty()) error("invariant", "bdl-10: a document must have a date");
      if (entries.empty() || entries[0]->child("resource") == nullptr ||
          entries[0]->child("resource")->type().name != "Composition")
        error("invariant", "bdl-11: a document must have a Composition as the first resource");
    }
    if (type == "message") message(b, entries);
  }

  void full_url_agreement(const Element& entry) {
    const std::string_view full_url = entry.child_value("fullUrl");
    const Element* resource = entry.child("resource");
    if (full_url.empty() || resource == nullptr || full_url.starts_with("urn:")) return;
    const auto [type, id] = reference_type_and_id(full_url);
    const std::string_view resource_id = resource->child_value("id");
    if (type.empty()) {
      error("invalid", "fullUrl '" + std::string(full_url) +
                           "' is neither a urn: nor a RESTful URL ending in [type]/[id]");
    } else if (type != resource->type().name) {
      error("invalid", "fullUrl '" + std::string(full_url) + "' names a " + std::string(type) +
                           " but the entry holds a " + resource->type().name);
    } else if (resource_id.empty()) {
      warning("invalid", "fullUrl '" + std::string(full_url) + "' names id '" + std::string(id) +
                             "' but the resource has no id");
    } else if (resource_id != id) {
      error("invalid", "fullUrl '" + std::string(full_url) + "' disagrees with the resource id '" +
                           std::string(resource_id) + "'");
    }
  }

  void message(const Element& b, const std::vector<const Element*>& entries) {
    const Element* header = entries.empty() ? nullptr : entries[0]->child("resource");
    if (header == nullptr || header->type().name != "MessageHeader") {
      error("invariant", "bdl-12: a message must have a MessageHeader as the first resource");
      return;
    }
    const BundleIndex index(b);
    const std::string_view header_url = entries[0]->child_value("fullUrl");
    at("entry", 0, [&] { at("resource", -1, [&] { message_header(*header, index, header_url); }); });
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const Element& entry = *entries[i];
      at("entry", static_cast<std::int32_t>(i), [&] {
        if (entry.child("fullUrl") == nullptr && i > 0)
          warning("invalid", "an entry of a message without a fullUrl cannot be referenced");
        if (const Element* resource = entry.child("resource"); resource != nullptr && i > 0)
          at("resource", -1, [&] { references_in_message(*resource, index, entry.child_value("fullUrl")); });
      });
    }
  }

  void message_header(const Element& header, const BundleIndex& index, std::string_view header_url) {
    for (const MessageReference& m : kMessageReferences) {
      std::int32_t i = 0;
      for (const Element* e : header.children_named(m.element)) {
        const std::int32_t position = e->info()->repeats() ? i++ : -1;
        at(m.element, position, [&] {
          const Element* reference = m.child.empty() ? e : e->child(m.child);
          if (reference == nullptr) return;
          auto check = [&] {
            const std::string_view target = reference->child_value("reference");
            if (target.empty() || target[0] == '#' || index.resolve(target, header_url) != nullptr) return;
            const std::string message = "MessageHeader." + std::string(m.element) +
                                        (m.child.empty() ? "" : "." + std::string(m.child)) + " '" +
                                        std::string(target) + "' does not resolve to an entry in the Bundle";
            if (m.required_in_bundle || !is_absolute_reference(target) || target.starts_with("urn:"))
              error("not-found", message);
            else
              warning("not-found", message);
          };
          if (m.child.empty())
            check();
          else
            at(m.child, -1, check);
        });
      }
    }
    const Element* response = header.child("response");
    if (response == nullptr) return;
    at("response", -1, [&] {
      const std::string_view code = response->child_value("code");
      if (!code.empty() && code != "ok" && code != "transient-error" && code != "fatal-error")
        at("code", -1, [&] {
          error("code-invalid",
                "response.code '" + std::string(code) + "' is not one of ok, transient-error, fatal-error");
        });
      const Element* details = response->child("details");
      if (details == nullptr) return;
      at("details", -1, [&] {
        const std::string_view target = details->child_value("reference");
        const Element* outcome = target.empty() ? nullptr : index.resolve(target, header_url);
        if (outcome == nullptr) {
          error("not-found",
                "response.details must reference an OperationOutcome in the Bundle" +
                    (target.empty() ? std::string() : "; '" + std::string(target) + "' is not there"));
          return;
        }
        if (outcome->type().name != "OperationOutcome") {
          error("invalid", "response.details must be an OperationOutcome, not a " + outcome->type().name);
          return;
        }
        bool outcome_has_errors = false;
        for (const Element* issue : outcome->children_named("issue")) {
          const std::string_view severity = issue->child_value("severity");
          outcome_has_errors |= severity == "error" || severity == "fatal";
        }
        if (outcome_has_errors && code == "ok")
          error("business-rule", "response.code is 'ok' but response.details reports errors");
        else if (!outcome_has_errors && (code == "transient-error" || code == "fatal-error"))
          warning("business-rule",
                  "response.code is '" + std::string(code) + "' but response.details reports no error");
      });
    });
  }

  // References between the resources of a message that cannot resolve: a
  // urn: or relative reference that is not in the Bundle. Warnings, as the
  // FHIR validator has them: the message is still processable.
  void references_in_message(const Element& e, const BundleIndex& index, std::string_view full_url) {
    std::string_view previous;
    std::int32_t i = 0;
    for (const Element& c : e.children()) {
      i = c.name() == previous ? i + 1 : 0;
      previous = c.name();
      if (c.is_resource()) continue;  // contained resources resolve within their container
      path_.push(c, i);
      if (c.type().name == "Reference") {
        const std::string_view target = c.child_value("reference");
        if (!target.empty() && target[0] != '#' && index.resolve(target, full_url) == nullptr) {
          if (!is_absolute_reference(target) || target.starts_with("urn:"))
            warning("not-found",
                    "reference '" + std::string(target) + "' does not resolve to an entry in the Bundle");
        }
      }
      references_in_message(c, index, full_url);
      path_.pop();
    }
  }
};

}  // namespace

Issues validate(const Element& resource) {
  Issues issues;
  Validator(issues).resource(resource);
  return issues;
}

ParseResult parse_valid(std::string_view text, Format format, const ParseLimits& limits) {
  ParseResult parsed = parse_as(text, format, limits);
  if (parsed.resource && !has_errors(parsed.issues)) parsed.issues = validate(*parsed.resource);
  return parsed;
}

}  // namespace courier::fhir
