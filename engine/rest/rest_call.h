// What a message becomes at a destination that speaks plain FHIR REST
// (route patterns rest, request and queue): one HTTP request on a FHIR
// base, built from the message's focus resources and the resources of the
// message they refer to (so that a ServiceRequest's subject names a Patient
// the server has, not a urn:uuid: of the message). One request per message,
// so that a retry can never half-apply it: several resources go as one
// transaction Bundle, the focus first.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "engine/fhir/codec.h"
#include "engine/fhir/element.h"
#include "engine/route/route.h"

namespace courier::rest {

// The tag that marks a request as one to act on (FHIR workflow, Option B/C).
inline constexpr std::string_view actionable_system = "http://terminology.hl7.org/CodeSystem/common-tags";
inline constexpr std::string_view actionable_code = "actionable";

// True when the resource carries the actionable tag.
bool is_actionable(const fhir::Element& resource);

struct RestCall {
  std::string method;  // POST or PUT
  std::string path;    // relative to the FHIR base, with its query: "ServiceRequest?identifier=…"
  std::vector<std::pair<std::string, std::string>> headers;  // If-None-Exist
  std::string body;
};

// The call `destination` makes for the message `bundle`, or why there is
// none (a focus resource with neither identifier nor id to upsert by, …).
// `cancelling`: `bundle` withdraws a request sent before, whose copy at the
// receiver is to be updated, never created: by identifier (the only name a
// filler's copy of a request shares with the placer's), or for `rest`
// update and upsert destinations as they wrote it.
// Each resource written gets `source` (courier's FHIR base) as meta.source:
// courier's REST triggers know their own writes by it.
std::variant<RestCall, std::string> rest_call_for(const fhir::Element& bundle,
                                                  const route::Destination& destination, fhir::Format format,
                                                  const std::string& source, bool cancelling = false);

// Sets meta.source to `source` (courier's FHIR base): courier wrote this version.
void mark_written_by(fhir::Element& resource, const std::string& source);
// True when meta.source names `source`: a resource courier wrote itself.
bool written_by(const fhir::Element& resource, std::string_view source);

// Where the call wrote its (first) focus resource: the Location header, or
// for a transaction the location of its first entry in the server's
// transaction-response (the focus comes first); "" when neither says.
std::string written_location(const std::string& location, const std::string& body, fhir::Format format);

// "Type/id" from a Location header or a reference URL (without
// "/_history/n"); "" when it names no resource.
std::string resource_of_location(std::string_view location);

}  // namespace courier::rest
