// TLS for every transport: server contexts for the listeners (optionally
// asking for client certificates), one client context for the senders,
// both reloadable on SIGHUP, and what a peer's certificate says about it.
// Only adapter sources include this (it brings in Asio's SSL headers).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <boost/asio/ssl/context.hpp>

#include "engine/config/yaml_reader.h"

namespace courier::adapters {

enum class ClientCertificates { none, optional, required };

struct TlsSettings {
  std::string cert_file;  // PEM, the certificate chain this side presents
  std::string key_file;   // PEM, its private key
  std::string ca_file;    // PEM bundle to verify the other side; "" = the system's
  ClientCertificates client_certificates = ClientCertificates::none;  // servers only
  bool tls13_only = false;
};

// A context that SIGHUP can replace. Connections keep the context they
// started with; new ones get the current one.
class ReloadableTls {
 public:
  enum class Role { server, client };
  // Throws std::runtime_error with a readable reason when the files cannot
  // be used (missing, unreadable, a key that does not match the certificate).
  ReloadableTls(Role role, TlsSettings settings);

  std::shared_ptr<boost::asio::ssl::context> context() const;
  // Reads the files again; on failure the old context stays and the reason
  // is thrown.
  void reload();
  const TlsSettings& settings() const { return settings_; }

 private:
  Role role_;
  TlsSettings settings_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> current_;
};

// Reads a `tls:` block (cert, key, ca, client-certificates, min-version);
// for a listener `server` is true. The files are loaded once here so that
// `courier check` reports a bad key or certificate. Null on error.
std::shared_ptr<ReloadableTls> parse_tls(const YAML::Node& node, config::YamlReader& reader,
                                         const std::string& where, bool server);

// A client's connection to `host` (a DNS name or an IP address): sends it
// as SNI (names only) and makes the handshake fail unless the server's
// certificate names it.
void expect_server_name(SSL* ssl, const std::string& host);

// What a verified client certificate names: its subject (RFC 2253) and
// every name a peer can be known by (the subject's CN, DNS, URI and email
// SANs).
struct CertificateNames {
  std::string subject;
  std::vector<std::string> names;
};
std::optional<CertificateNames> peer_certificate_names(SSL* ssl);

}  // namespace courier::adapters
