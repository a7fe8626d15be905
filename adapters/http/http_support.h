// Small HTTP helpers shared by the listener and the sender: URLs, query
// strings and FHIR's content types. No Beast here.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "engine/fhir/codec.h"

namespace courier::adapters {

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  // path and query, "/" at least

  std::string host_port() const { return host + ":" + port; }
  std::string host_header() const;
};

std::optional<Url> parse_url(std::string_view text);

// "a=1&b=x%20y" → {a: 1, b: "x y"}; a key without '=' maps to "".
std::map<std::string, std::string> parse_query(std::string_view query);

std::string_view content_type(fhir::Format format);

// The format a Content-Type names (application/fhir+json, application/json,
// application/fhir+xml, application/xml, text/xml); the body's first byte
// when there is none; nullopt for a type that is neither.
std::optional<fhir::Format> format_of(std::string_view content_type, std::string_view body);

// The value of cookie `name` in a Cookie header; "" when absent.
std::string_view cookie_value(std::string_view header, std::string_view name);

// The format an Accept header (or _format) asks for, if any.
std::optional<fhir::Format> accepted_format(std::string_view accept);

}  // namespace courier::adapters
