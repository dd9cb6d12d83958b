#include "server/security/tls_context.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>

namespace holdfast::server::security {
namespace {

Error<TlsErrc> bad(const std::string& setting, const std::string& path, const std::string& why) {
  return make_error(TlsErrc::invalid_setting,
                    setting + " (" + (path.empty() ? "unset" : path) + "): " + why);
}

// The file can be opened for reading (a clearer error than OpenSSL's).
bool readable(const std::string& path) {
  std::ifstream in(path);
  return in.good();
}

// OpenSSL's queued errors, or asio's text for `ec`.
std::string openssl_reason(const asio::error_code& ec) {
  std::string text = ec.message();
  ERR_clear_error();
  return text;
}

// RFC 2253 escaping of an attribute value as Java prints it (which also
// escapes '=' and '#' anywhere).
std::string escape_value(const std::string& value) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    const bool special = c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' ||
                         c == ';' || c == '=' || c == '#';
    const bool leading = i == 0 && c == ' ';
    const bool trailing = i + 1 == value.size() && c == ' ';
    if (special || leading || trailing) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// The keyword Java uses for an attribute type, or nullptr for "dotted OID".
const char* java_keyword(int nid) {
  switch (nid) {
    case NID_commonName: return "CN";
    case NID_countryName: return "C";
    case NID_localityName: return "L";
    case NID_stateOrProvinceName: return "ST";
    case NID_organizationName: return "O";
    case NID_organizationalUnitName: return "OU";
    case NID_streetAddress: return "STREET";
    case NID_domainComponent: return "DC";
    case NID_userId: return "UID";
    default: return nullptr;
  }
}

std::string attribute_text(const X509_NAME_ENTRY* entry) {
  const ASN1_OBJECT* object = X509_NAME_ENTRY_get_object(entry);
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
  if (const char* keyword = java_keyword(OBJ_obj2nid(object))) {
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, data);
    std::string value = length < 0 ? std::string() : std::string(reinterpret_cast<char*>(utf8), size_t(length));
    OPENSSL_free(utf8);
    return std::string(keyword) + "=" + escape_value(value);
  }
  char oid[128];
  OBJ_obj2txt(oid, sizeof(oid), object, /*no_name=*/1);
  // The value's DER (tag, length, contents) in hex.
  std::string hex = "#";
  ASN1_TYPE* type = ASN1_TYPE_new();
  unsigned char* der = nullptr;
  int length = -1;
  if (type && ASN1_TYPE_set1(type, ASN1_STRING_type(data), data)) length = i2d_ASN1_TYPE(type, &der);
  for (int i = 0; i < length; ++i) {
    char byte[3];
    std::snprintf(byte, sizeof(byte), "%02x", der[i]);
    hex += byte;
  }
  OPENSSL_free(der);
  ASN1_TYPE_free(type);
  return std::string(oid) + "=" + hex;
}

}  // namespace

std::optional<ClientAuth> parse_client_auth(const std::string& text) {
  if (text == "none") return ClientAuth::none;
  if (text == "requested") return ClientAuth::requested;
  if (text == "required") return ClientAuth::required;
  return std::nullopt;
}

TlsSettings tls_settings(const BrokerConfig& config) {
  TlsSettings settings;
  settings.certificate_location = config.ssl_certificate_location;
  settings.key_location = config.ssl_key_location;
  settings.key_password = config.ssl_key_password;
  settings.ca_location = config.ssl_ca_location;
  settings.client_auth = parse_client_auth(config.ssl_client_auth).value_or(ClientAuth::none);
  return settings;
}

Result<std::shared_ptr<asio::ssl::context>, TlsErrc> make_tls_context(const TlsSettings& settings) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);

  asio::error_code ec;
  if (settings.certificate_location.empty() || !readable(settings.certificate_location)) {
    return bad("ssl.certificate.location", settings.certificate_location,
               settings.certificate_location.empty() ? "an SSL or SASL_SSL listener needs it"
                                                     : "cannot be read");
  }
  context->use_certificate_chain_file(settings.certificate_location, ec);
  if (ec) {
    return bad("ssl.certificate.location", settings.certificate_location,
               "not a PEM certificate chain: " + openssl_reason(ec));
  }
  if (settings.key_location.empty() || !readable(settings.key_location)) {
    return bad("ssl.key.location", settings.key_location,
               settings.key_location.empty() ? "an SSL or SASL_SSL listener needs it"
                                             : "cannot be read");
  }
  const std::string password = settings.key_password;
  context->set_password_callback(
      [password](size_t, asio::ssl::context::password_purpose) { return password; }, ec);
  context->use_private_key_file(settings.key_location, asio::ssl::context::pem, ec);
  if (ec && ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    ERR_clear_error();
    return bad("ssl.key.location", settings.key_location,
               "does not match the certificate in ssl.certificate.location");
  }
  if (ec) {
    return bad("ssl.key.location", settings.key_location,
               "not a PEM private key, or ssl.key.password does not decrypt it: " +
                   openssl_reason(ec));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return bad("ssl.key.location", settings.key_location,
               "does not match the certificate in ssl.certificate.location");
  }
  if (settings.client_auth != ClientAuth::none || !settings.ca_location.empty()) {
    if (settings.ca_location.empty() || !readable(settings.ca_location)) {
      return bad("ssl.ca.location", settings.ca_location,
                 settings.ca_location.empty()
                     ? "ssl.client.auth=requested or required needs the CA bundle that "
                       "client certificates are verified against"
                     : "cannot be read");
    }
    context->load_verify_file(settings.ca_location, ec);
    if (ec) {
      return bad("ssl.ca.location", settings.ca_location,
                 "not a PEM CA bundle: " + openssl_reason(ec));
    }
  }
  switch (settings.client_auth) {
    case ClientAuth::none:
      context->set_verify_mode(asio::ssl::verify_none);
      break;
    case ClientAuth::requested:
      context->set_verify_mode(asio::ssl::verify_peer);
      break;
    case ClientAuth::required:
      context->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
      break;
  }
  return context;
}

Result<std::shared_ptr<asio::ssl::context>, TlsErrc> make_tls_client_context(
    const TlsSettings& settings) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  asio::error_code ec;
  if (settings.ca_location.empty() || !readable(settings.ca_location)) {
    return bad("ssl.ca.location", settings.ca_location,
               settings.ca_location.empty()
                   ? "TLS between brokers verifies the other brokers' certificates against this "
                     "CA bundle; set it"
                   : "cannot be read");
  }
  context->load_verify_file(settings.ca_location, ec);
  if (ec) {
    return bad("ssl.ca.location", settings.ca_location,
               "not a PEM CA bundle: " + openssl_reason(ec));
  }
  context->set_verify_mode(asio::ssl::verify_peer);
  if (settings.certificate_location.empty() && settings.key_location.empty()) return context;
  if (settings.certificate_location.empty() || settings.key_location.empty()) {
    return bad(settings.certificate_location.empty() ? "ssl.certificate.location"
                                                     : "ssl.key.location",
               "", "the broker's client certificate needs both the certificate and its key");
  }
  context->use_certificate_chain_file(settings.certificate_location, ec);
  if (ec) {
    return bad("ssl.certificate.location", settings.certificate_location,
               "not a PEM certificate chain: " + openssl_reason(ec));
  }
  const std::string password = settings.key_password;
  context->set_password_callback(
      [password](size_t, asio::ssl::context::password_purpose) { return password; }, ec);
  context->use_private_key_file(settings.key_location, asio::ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return bad("ssl.key.location", settings.key_location,
               "not a PEM private key matching ssl.certificate.location (or ssl.key.password "
               "does not decrypt it)");
  }
  return context;
}

Result<MutualTlsContexts, TlsErrc> make_mutual_tls_contexts(TlsSettings settings,
                                                            const std::string& needed_by) {
  std::string missing;
  for (const auto& [setting, value] : {std::pair{"ssl.certificate.location", &settings.certificate_location},
                                       std::pair{"ssl.key.location", &settings.key_location},
                                       std::pair{"ssl.ca.location", &settings.ca_location}}) {
    if (value->empty()) missing += std::string(missing.empty() ? "" : ", ") + setting;
  }
  if (!missing.empty()) {
    return make_error(TlsErrc::invalid_setting,
                      needed_by + " needs " + missing +
                          " (this broker's certificate and key, and the CA that signs its peers')");
  }
  settings.client_auth = ClientAuth::required;
  auto server = make_tls_context(settings);
  if (!server) return make_error(TlsErrc::invalid_setting, needed_by + ": " + server.error().message);
  auto client = make_tls_client_context(settings);
  if (!client) return make_error(TlsErrc::invalid_setting, needed_by + ": " + client.error().message);
  return MutualTlsContexts{std::move(*server), std::move(*client)};
}

std::string rfc2253_name(const X509_NAME* name) {
  // The last RDN first; the attributes of one multi-valued RDN in their own
  // order, joined by '+'.
  std::string out;
  int end = X509_NAME_entry_count(name);
  while (end > 0) {
    const int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, end - 1));
    int begin = end - 1;
    while (begin > 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(name, begin - 1)) == set) --begin;
    if (!out.empty()) out += ",";
    for (int i = begin; i < end; ++i) {
      if (i != begin) out += "+";
      out += attribute_text(X509_NAME_get_entry(name, i));
    }
    end = begin;
  }
  return out;
}

std::optional<std::string> peer_certificate_principal(TlsStream& tls) {
  X509* certificate = SSL_get1_peer_certificate(tls.stream.native_handle());
  if (!certificate) return std::nullopt;
  std::string principal = "User:" + rfc2253_name(X509_get_subject_name(certificate));
  X509_free(certificate);
  return principal;
}

}  // namespace holdfast::server::security
