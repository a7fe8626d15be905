// FHIR's RESTful API over the embedded resource store, in FHIR's terms and
// free of HTTP plumbing: the listener turns a request into a RestRequest and
// writes the RestResponse back. Interactions: create (also conditional, by
// If-None-Exist), read, vread, update (If-Match; conditional by search),
// delete, history of a resource, and search (GET, or POST to _search) with
// paging and FHIR's `handling` preference.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/fhir/codec.h"
#include "engine/rest/resource_store.h"
#include "engine/security/peer.h"

namespace courier::rest {

struct RestRequest {
  std::string method;                                      // GET, POST, PUT, DELETE
  std::vector<std::string> segments;                       // the path after the FHIR base
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::string body;
  std::optional<fhir::Format> body_format;          // from Content-Type
  fhir::Format answer_format = fhir::Format::json;  // from Accept or _format
  std::string if_match;                             // W/"3"
  std::string if_none_exist;                        // identifier=sys|val
  std::string prefer;                               // return=minimal, handling=strict
  std::string base_url;                             // http://host:port/fhir
  // The authenticated peer, whose scopes limit what it may do; null for
  // courier itself and listeners that do not authenticate.
  std::shared_ptr<const security::Peer> peer;

  // Sets segments and query from the part of a URL after the FHIR base:
  // "Patient/1", "Patient?identifier=a%7Cb".
  void set_target(std::string_view target);
};

struct RestResponse {
  int status = 200;
  std::string body;  // a resource or OperationOutcome, or empty
  fhir::Format format = fhir::Format::json;
  std::vector<std::pair<std::string, std::string>> headers;  // ETag, Location, Last-Modified
};

// Adds CapabilityStatement.rest: what the embedded store serves (every R4
// resource type, its interactions and search parameters).
void add_rest_capabilities(fhir::Element& capability_statement);

class RestApi {
 public:
  RestApi(ResourceStore& store, fhir::ParseLimits limits) : store_(store), limits_(limits) {}

  // `done` runs once, on the store's thread for writes (after the durable
  // commit) and on the caller's for reads.
  void handle(RestRequest request, std::function<void(RestResponse)> done);

 private:
  ResourceStore& store_;
  fhir::ParseLimits limits_;
};

}  // namespace courier::rest
