#include "adapters/http/http_support.h"

#include "engine/util/text.h"

#include <algorithm>
#include <cctype>

namespace courier::adapters {

std::string Url::host_header() const {
  const bool default_port = (tls && port == "443") || (!tls && port == "80");
  return default_port ? host : host + ":" + port;
}

std::optional<Url> parse_url(std::string_view text) {
  Url url;
  if (text.starts_with("http://")) {
    text.remove_prefix(7);
  } else if (text.starts_with("https://")) {
    text.remove_prefix(8);
    url.tls = true;
  } else {
    return std::nullopt;
  }
  const std::size_t slash = text.find_first_of("/?");
  std::string_view authority = text.substr(0, slash);
  url.target = slash == std::string_view::npos ? "/" : std::string(text.substr(slash));
  if (url.target.front() == '?') url.target = "/" + url.target;
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);
  std::size_t colon = authority.rfind(':');
  if (authority.starts_with('[')) {  // IPv6 literal
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    url.host = std::string(authority.substr(1, close - 1));
    colon = authority.size() > close + 1 && authority[close + 1] == ':' ? close + 1 : std::string_view::npos;
  } else {
    url.host = std::string(authority.substr(0, colon));
  }
  url.port =
      colon == std::string_view::npos ? (url.tls ? "443" : "80") : std::string(authority.substr(colon + 1));
  if (url.host.empty() || url.port.empty() ||
      !std::all_of(url.port.begin(), url.port.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  return url;
}

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  for (auto& [key, value] : util::parse_form(query)) out[std::move(key)] = std::move(value);
  return out;
}

std::string_view content_type(fhir::Format format) {
  return format == fhir::Format::xml ? "application/fhir+xml; charset=utf-8"
                                     : "application/fhir+json; charset=utf-8";
}

std::optional<fhir::Format> format_of(std::string_view header, std::string_view body) {
  const std::string type = lower(header.substr(0, header.find(';')));
  if (type.empty()) return fhir::detect_format(body);
  if (type.find("json") != std::string::npos) return fhir::Format::json;
  if (type.find("xml") != std::string::npos) return fhir::Format::xml;
  return std::nullopt;
}

std::optional<fhir::Format> accepted_format(std::string_view accept) {
  const std::string text = lower(accept);
  const std::size_t json = text.find("json");
  const std::size_t xml = text.find("xml");
  if (json == std::string::npos && xml == std::string::npos) return std::nullopt;
  // The one named first wins: "application/fhir+xml, application/json;q=0.5".
  return xml < json ? fhir::Format::xml : fhir::Format::json;
}

std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const std::size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (pair.starts_with(' ')) pair.remove_prefix(1);
    const std::size_t equals = pair.find('=');
    if (equals != std::string_view::npos && pair.substr(0, equals) == name) return pair.substr(equals + 1);
  }
  return {};
}

}  // namespace courier::adapters
