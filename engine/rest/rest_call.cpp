#include "engine/rest/rest_call.h"

#include "engine/fhir/bundle_index.h"
#include "engine/rest/merging_sender.h"
#include "engine/rest/search.h"
#include "engine/util/text.h"

namespace courier::rest {

namespace {

struct Target {
  const fhir::Element* resource;
  std::string full_url;
  bool referenced = false;  // not a focus: a resource a focus refers to
};

// How one resource is written: the request of a transaction entry, or the
// whole call when it is the only one.
struct EntryRequest {
  std::string method;
  std::string url;
  std::string if_none_exist;
};

std::string full_url_of(const fhir::BundleIndex& index, const fhir::Element* resource) {
  for (const auto& entry : index.entries())
    if (entry.resource == resource) return std::string(entry.full_url);
  return {};
}

// The message's focus resources that are in the Bundle, in focus order.
std::vector<Target> focus_resources(const fhir::Element& bundle) {
  const fhir::BundleIndex index(bundle);
  const fhir::Element* first = bundle.child("entry");
  const fhir::Element* header = first != nullptr ? first->child("resource") : nullptr;
  std::vector<Target> targets;
  if (header == nullptr) return targets;
  const std::string_view from = first->child_value("fullUrl");
  for (const fhir::Element* focus : header->children_named("focus")) {
    if (const fhir::Element* resource = index.resolve(focus->child_value("reference"), from))
      targets.push_back(Target{resource, full_url_of(index, resource)});
  }
  return targets;
}

void collect_references(const fhir::Element& e, std::vector<std::string_view>& out) {
  if (e.type().name == "Reference")
    if (const fhir::Element* reference = e.child("reference"); reference != nullptr && reference->has_value())
      out.push_back(reference->value());
  for (const fhir::Element& child : e.children()) collect_references(child, out);
}

// The resources of the message that the targets refer to, and those they
// refer to in turn, appended as referenced targets: written with the
// focus, they give its references something to point at on the server,
// where a reference to a urn:uuid: would name nothing.
void add_referenced(const fhir::Element& bundle, std::vector<Target>& targets) {
  const fhir::BundleIndex index(bundle);
  const fhir::Element* header =
      bundle.child("entry") != nullptr ? bundle.child("entry")->child("resource") : nullptr;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    std::vector<std::string_view> references;
    collect_references(*targets[i].resource, references);
    for (const std::string_view reference : references) {
      const fhir::Element* resource = index.resolve(reference, targets[i].full_url);
      if (resource == nullptr || resource == header) continue;
      if (std::any_of(targets.begin(), targets.end(),
                      [&](const Target& t) { return t.resource == resource; }))
        continue;
      targets.push_back(Target{resource, full_url_of(index, resource), true});
    }
  }
}

// Every resource of the message but its MessageHeader.
std::vector<Target> message_resources(const fhir::Element& bundle) {
  std::vector<Target> targets;
  bool header = true;
  for (const fhir::Element* entry : bundle.children_named("entry")) {
    const fhir::Element* resource = entry->child("resource");
    if (std::exchange(header, false) || resource == nullptr) continue;
    targets.push_back(Target{resource, std::string(entry->child_value("fullUrl"))});
  }
  return targets;
}

// "identifier=system|value" for the resource's first identifier with a value.
std::string identifier_search(const fhir::Element& resource) {
  for (const fhir::Element* identifier : resource.children_named("identifier")) {
    const std::string_view value = identifier->child_value("value");
    if (value.empty()) continue;
    const std::string_view system = identifier->child_value("system");
    return "identifier=" + util::percent_encode(system.empty()
                                                    ? search_escaped(value)
                                                    : search_escaped(system) + "|" + search_escaped(value));
  }
  return {};
}

std::variant<EntryRequest, std::string> entry_request(const fhir::Element& resource,
                                                      route::Interaction interaction) {
  const std::string& type = resource.type().name;
  const std::string_view id = resource.child_value("id");
  const std::string by_identifier = identifier_search(resource);
  switch (interaction) {
    case route::Interaction::create:
      // Conditional when it can be: a retry after a lost answer finds the
      // first copy instead of creating a second.
      return EntryRequest{"POST", type, by_identifier};
    case route::Interaction::update:
      if (id.empty()) return "the focus " + type + " has no id to update it by";
      return EntryRequest{"PUT", type + "/" + std::string(id), {}};
    case route::Interaction::upsert:
    case route::Interaction::merge:
      if (!by_identifier.empty()) return EntryRequest{"PUT", type + "?" + by_identifier, {}};
      if (id.empty()) return "the focus " + type + " has neither an identifier nor an id to upsert it by";
      return EntryRequest{"PUT", type + "/" + std::string(id), {}};
    case route::Interaction::transaction:
      // Whatever identifies the resource, else a new one.
      if (!by_identifier.empty()) return EntryRequest{"PUT", type + "?" + by_identifier, {}};
      if (!id.empty()) return EntryRequest{"PUT", type + "/" + std::string(id), {}};
      return EntryRequest{"POST", type, {}};
  }
  return "unknown interaction";
}

// Adds meta.tag actionable, unless the resource has it already.
void tag_actionable(fhir::Element& resource) {
  if (is_actionable(resource)) return;
  fhir::Element& meta = resource.child_or_add("meta");
  fhir::Element& tag = meta.add("tag");
  tag.add_value("system", std::string(actionable_system));
  tag.add_value("code", std::string(actionable_code));
  meta.sort_children();
}

}  // namespace

void mark_written_by(fhir::Element& resource, const std::string& source) {
  resource.child_or_add("meta").child_or_add("source").set_value(source);
}

bool written_by(const fhir::Element& resource, std::string_view source) {
  const fhir::Element* meta = resource.child("meta");
  return meta != nullptr && meta->child_value("source") == source;
}

bool is_actionable(const fhir::Element& resource) {
  const fhir::Element* meta = resource.child("meta");
  if (meta == nullptr) return false;
  for (const fhir::Element* tag : meta->children_named("tag")) {
    if (tag->child_value("system") == actionable_system && tag->child_value("code") == actionable_code)
      return true;
  }
  return false;
}

namespace {

// An operation's input: the focus itself when it is a Parameters resource
// (FHIR's rule for operations invoked by message), otherwise Parameters
// with each focus resource as a "resource" parameter.
std::variant<RestCall, std::string> operation_call(const fhir::Element& bundle,
                                                   const route::Destination& destination,
                                                   fhir::Format format) {
  const std::vector<Target> focus = focus_resources(bundle);
  if (focus.empty()) return std::string("the message's focus names no resource inside the Bundle");
  RestCall call;
  call.method = "POST";
  call.path =
      destination.target.empty() ? destination.operation : destination.target + "/" + destination.operation;
  if (focus.size() == 1 && focus.front().resource->type().name == "Parameters") {
    call.body = fhir::write(*focus.front().resource, format);
    return call;
  }
  fhir::Element parameters = fhir::Element::resource("Parameters");
  for (const Target& target : focus) {
    fhir::Element& parameter = parameters.add("parameter");
    parameter.add_value("name", "resource");
    parameter.add("resource", target.resource->type().name).children() = target.resource->children();
  }
  call.body = fhir::write(parameters, format);
  return call;
}

}  // namespace

std::variant<RestCall, std::string> rest_call_for(const fhir::Element& bundle,
                                                  const route::Destination& destination, fhir::Format format,
                                                  const std::string& source, bool cancelling) {
  if (destination.pattern == route::Pattern::operation) return operation_call(bundle, destination, format);
  if (cancelling && route::awaits_events(destination.pattern)) {
    // Filler-owned cancellation: the filler owns its copy of the request;
    // it gets the Task asking to cancel it, named by its URL at courier
    // (where the filler answers by updating it).
    const std::vector<Target> focus = focus_resources(bundle);
    for (const Target& target : focus) {
      if (target.resource->type().name != "Task") continue;
      fhir::Element task = *target.resource;
      std::erase_if(task.children(),
                    [](const fhir::Element& e) { return e.name() == "id" || e.name() == "meta"; });
      // Its focus named the request as the placer knows it (or the
      // conversation's Task at courier), which the filler does not: it
      // names it by the identifier they share.
      for (const Target& request : focus) {
        const fhir::Element* identifier = request.resource->child("identifier");
        if (request.resource == target.resource || identifier == nullptr) continue;
        fhir::Element& reference = task.child_or_add("focus");
        reference.children().clear();
        reference.add_value("type", request.resource->type().name);
        reference.add("identifier").children() = identifier->children();
        reference.sort_children();
        break;
      }
      fhir::Element& identifier = task.add("identifier");
      identifier.add_value("system", "urn:ietf:rfc:3986");
      identifier.add_value("value", target.full_url);
      task.sort_children();
      mark_written_by(task, source);
      RestCall call{
          "POST",
          "Task",
          {{"If-None-Exist",
            "identifier=" + util::percent_encode("urn:ietf:rfc:3986|" + search_escaped(target.full_url))}},
          fhir::write(task, format)};
      return call;
    }
  }
  const bool whole_message = destination.pattern == route::Pattern::rest &&
                             destination.interaction == route::Interaction::transaction;
  // A request for a filler (Option B, C) is created, conditionally, as
  // FHIR's workflow patterns describe.
  route::Interaction interaction =
      route::awaits_events(destination.pattern) ? route::Interaction::create : destination.interaction;
  if (cancelling && interaction == route::Interaction::create) interaction = route::Interaction::upsert;
  std::vector<Target> targets = whole_message ? message_resources(bundle) : focus_resources(bundle);
  if (targets.empty()) {
    return whole_message ? std::string("the message carries no resources besides its MessageHeader")
                         : std::string("the message's focus names no resource inside the Bundle");
  }
  if (!whole_message && !cancelling) add_referenced(bundle, targets);

  std::vector<std::pair<fhir::Element, EntryRequest>> writes;
  for (const Target& target : targets) {
    if (cancelling && route::awaits_events(destination.pattern) &&
        identifier_search(*target.resource).empty())
      return "the " + target.resource->type().name + " has no identifier to find the filler's copy by";
    // What a focus refers to is written as a transaction writes it: found
    // by identifier or id when the server may have it, else created (and
    // under `merge`, merged like the focus).
    auto request =
        entry_request(*target.resource, target.referenced ? route::Interaction::transaction : interaction);
    if (auto* why = std::get_if<std::string>(&request)) return *why;
    fhir::Element resource = *target.resource;
    // Only a merge clears what v2 nulled; any other write leaves it out anyway.
    if (interaction != route::Interaction::merge) take_v2_nulls(resource);
    const EntryRequest& r = std::get<EntryRequest>(request);
    if (r.method == "POST" || r.url.find('?') != std::string::npos) {
      // The server chooses the id (create), or has one already (a
      // conditional update refuses a different id): the message's is not theirs.
      std::erase_if(resource.children(), [](const fhir::Element& e) { return e.name() == "id"; });
    }
    if (route::awaits_events(destination.pattern) && !target.referenced) tag_actionable(resource);
    mark_written_by(resource, source);
    writes.emplace_back(std::move(resource), std::get<EntryRequest>(std::move(request)));
  }

  RestCall call;
  // A merge is always a transaction: the merging sender rewrites its entries.
  if (writes.size() == 1 && !whole_message && interaction != route::Interaction::merge) {
    auto& [resource, request] = writes.front();
    call.method = request.method;
    call.path = request.url;
    if (!request.if_none_exist.empty()) call.headers.emplace_back("If-None-Exist", request.if_none_exist);
    call.body = fhir::write(resource, format);
    return call;
  }
  fhir::Element transaction = fhir::Element::resource("Bundle");
  transaction.add_value("type", "transaction");
  for (std::size_t i = 0; i < writes.size(); ++i) {
    auto& [resource, request] = writes[i];
    fhir::Element& entry = transaction.add("entry");
    if (!targets[i].full_url.empty()) entry.add_value("fullUrl", targets[i].full_url);
    entry.add("resource", resource.type().name).children() = std::move(resource.children());
    fhir::Element& r = entry.add("request");
    r.add_value("method", request.method);
    r.add_value("url", request.url);
    if (!request.if_none_exist.empty()) r.add_value("ifNoneExist", request.if_none_exist);
  }
  call.method = "POST";
  call.path = "";
  call.body = fhir::write(transaction, format);
  return call;
}

std::string written_location(const std::string& location, const std::string& body, fhir::Format format) {
  if (!location.empty() || body.empty()) return location;
  const fhir::ParseResult parsed = fhir::parse_as(body, format);
  if (!parsed.resource || parsed.resource->type().name != "Bundle") return {};
  const fhir::Element* first = parsed.resource->child("entry");
  const fhir::Element* response = first != nullptr ? first->child("response") : nullptr;
  return response != nullptr ? std::string(response->child_value("location")) : std::string();
}

std::string resource_of_location(std::string_view location) {
  if (const std::size_t history = location.find("/_history/"); history != std::string_view::npos)
    location = location.substr(0, history);
  const auto [type, id] = fhir::reference_type_and_id(location);
  if (type.empty() || id.empty()) return {};
  return std::string(type) + "/" + std::string(id);
}

}  // namespace courier::rest
