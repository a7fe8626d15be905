#include "adapters/tls/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

#include <fstream>
#include <stdexcept>

namespace courier::adapters {

namespace ssl = boost::asio::ssl;

namespace {

void require_readable(const std::string& file, const char* what) {
  if (!std::ifstream(file)) throw std::runtime_error("cannot read the " + std::string(what) + " " + file);
}

// OpenSSL's reason for the last failure, for the message we throw.
std::string openssl_reason() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown reason";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

std::shared_ptr<ssl::context> make_context(ReloadableTls::Role role, const TlsSettings& s) {
  const bool server = role == ReloadableTls::Role::server;
  auto context = std::make_shared<ssl::context>(server ? ssl::context::tls_server : ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, s.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression);

  if (!s.cert_file.empty()) {
    require_readable(s.cert_file, "certificate");
    require_readable(s.key_file, "private key");
    if (SSL_CTX_use_certificate_chain_file(native, s.cert_file.c_str()) != 1)
      throw std::runtime_error("the certificate " + s.cert_file +
                               " is not a PEM certificate: " + openssl_reason());
    EVP_PKEY* key = nullptr;
    if (BIO* file = BIO_new_file(s.key_file.c_str(), "r")) {
      key = PEM_read_bio_PrivateKey(file, nullptr, nullptr, nullptr);
      BIO_free(file);
    }
    if (key == nullptr)
      throw std::runtime_error("the private key " + s.key_file +
                               " is not an unencrypted PEM key: " + openssl_reason());
    const bool matches = SSL_CTX_use_PrivateKey(native, key) == 1 && SSL_CTX_check_private_key(native) == 1;
    EVP_PKEY_free(key);
    if (!matches) {
      ERR_clear_error();
      throw std::runtime_error("the private key " + s.key_file + " does not match the certificate " +
                               s.cert_file);
    }
  }

  if (!s.ca_file.empty()) {
    require_readable(s.ca_file, "CA bundle");
    if (SSL_CTX_load_verify_locations(native, s.ca_file.c_str(), nullptr) != 1)
      throw std::runtime_error("the CA bundle " + s.ca_file +
                               " holds no PEM certificate: " + openssl_reason());
  }

  if (server) {
    if (s.client_certificates != ClientCertificates::none) {
      // Tell clients which CAs we accept, so they pick the right certificate.
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.ca_file.c_str());
      if (names != nullptr) SSL_CTX_set_client_CA_list(native, names);
      int mode = SSL_VERIFY_PEER;
      if (s.client_certificates == ClientCertificates::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      SSL_CTX_set_verify(native, mode, nullptr);
      // Resumed sessions must keep their verified identity.
      static const unsigned char session_context[] = "courier";
      SSL_CTX_set_session_id_context(native, session_context, sizeof session_context - 1);
    }
  } else {
    if (s.ca_file.empty() && SSL_CTX_set_default_verify_paths(native) != 1)
      throw std::runtime_error("cannot load the system's CA certificates: " + openssl_reason());
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  }
  return context;
}

std::string ia5_text(const ASN1_IA5STRING* text) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                     static_cast<std::size_t>(ASN1_STRING_length(text)));
}

}  // namespace

ReloadableTls::ReloadableTls(Role role, TlsSettings settings)
    : role_(role), settings_(std::move(settings)), current_(make_context(role_, settings_)) {}

std::shared_ptr<ssl::context> ReloadableTls::context() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void ReloadableTls::reload() {
  std::shared_ptr<ssl::context> fresh = make_context(role_, settings_);
  std::lock_guard lock(mutex_);
  current_ = std::move(fresh);
}

std::shared_ptr<ReloadableTls> parse_tls(const YAML::Node& node, config::YamlReader& reader,
                                         const std::string& where, bool server) {
  const std::size_t errors_before = reader.errors().size();  // this block's own, not the file's
  const bool keys_ok =
      server ? reader.check_keys(node, {"cert", "key", "ca", "client-certificates", "min-version"}, where)
             : reader.check_keys(node, {"cert", "key", "ca", "min-version"}, where);
  if (!keys_ok) return nullptr;
  TlsSettings s;
  auto file = [&](const char* key) {
    return node[key] ? reader.scalar(node[key], where + "." + key).value_or("") : std::string();
  };
  s.cert_file = file("cert");
  s.key_file = file("key");
  s.ca_file = file("ca");
  if (server && (s.cert_file.empty() || s.key_file.empty()))
    return reader.fail(node, where + " needs cert and key"), nullptr;
  if (s.cert_file.empty() != s.key_file.empty())
    return reader.fail(node, where + " needs both cert and key, or neither"), nullptr;
  if (node["client-certificates"]) {
    const auto mode = reader.choice(node["client-certificates"], where + ".client-certificates",
                                    {"none", "optional", "required"});
    if (mode == "optional") s.client_certificates = ClientCertificates::optional;
    if (mode == "required") s.client_certificates = ClientCertificates::required;
    if (s.client_certificates != ClientCertificates::none && s.ca_file.empty())
      return reader.fail(node, where + ": client certificates are verified against ca, which is missing"),
             nullptr;
  }
  if (node["min-version"])
    s.tls13_only = reader.choice(node["min-version"], where + ".min-version", {"1.2", "1.3"}) == "1.3";
  if (reader.errors().size() != errors_before) return nullptr;
  try {
    return std::make_shared<ReloadableTls>(server ? ReloadableTls::Role::server : ReloadableTls::Role::client,
                                           std::move(s));
  } catch (const std::exception& e) {
    reader.fail(node, where + ": " + e.what());
    return nullptr;
  }
}

void expect_server_name(SSL* ssl, const std::string& host) {
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  if (not_ip) {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  }
}

std::optional<CertificateNames> peer_certificate_names(SSL* ssl) {
  X509* certificate = SSL_get1_peer_certificate(ssl);
  if (certificate == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) {
    X509_free(certificate);
    return std::nullopt;
  }
  CertificateNames result;
  const X509_NAME* subject = X509_get_subject_name(certificate);
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, subject, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    result.subject.assign(data, static_cast<std::size_t>(size));
    BIO_free(bio);
  }
  const int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (cn >= 0) {
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, value);
    if (length >= 0)
      result.names.emplace_back(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
  }
  auto* alternatives =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; alternatives != nullptr && i < sk_GENERAL_NAME_num(alternatives); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(alternatives, i);
    if (name->type == GEN_DNS) result.names.push_back(ia5_text(name->d.dNSName));
    if (name->type == GEN_URI) result.names.push_back(ia5_text(name->d.uniformResourceIdentifier));
    if (name->type == GEN_EMAIL) result.names.push_back(ia5_text(name->d.rfc822Name));
  }
  GENERAL_NAMES_free(alternatives);
  X509_free(certificate);
  return result;
}

}  // namespace courier::adapters
