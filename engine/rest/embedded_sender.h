// Delivers the REST calls of rest, request and queue destinations to
// courier's own FHIR store, in process: the same API and the same answers
// as over HTTP, without the socket.
#pragma once

#include <memory>
#include <string>

#include "engine/delivery/sender.h"
#include "engine/rest/rest_api.h"

namespace courier::rest {

// `base_url` (courier's public FHIR base, for Location headers) is read at
// each send; `api` and `base_url` must outlive the sender.
std::shared_ptr<delivery::Sender> make_embedded_sender(RestApi& api, const std::string& base_url);

}  // namespace courier::rest
