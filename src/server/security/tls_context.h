// TLS for SSL and SASL_SSL listeners (docs/security.md): the broker's one
// server context, built at start-up from PEM files, and the principal a
// client certificate gives (mTLS).
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "server/broker_config.h"


namespace holdfast::server::security {

// ssl.client.auth, with Kafka's values.
enum class ClientAuth { none, requested, required };
std::optional<ClientAuth> parse_client_auth(const std::string& text);

struct TlsSettings {
  std::string certificate_location;  // ssl.certificate.location: PEM, the chain
  std::string key_location;          // ssl.key.location: PEM private key
  std::string key_password;          // ssl.key.password: empty = not encrypted
  std::string ca_location;           // ssl.ca.location: PEM bundle for client certificates
  ClientAuth client_auth = ClientAuth::none;
};

// The ssl.* settings of `config` (ssl.client.auth already validated).
TlsSettings tls_settings(const BrokerConfig& config);

enum class TlsErrc { invalid_setting };

// A TLS server context: TLS 1.2 at least, OpenSSL's default ciphers, the
// certificate and key checked against each other, client certificates
// verified against the CA bundle when ssl.client.auth asks for them. An
// error names the setting at fault.
Result<std::shared_ptr<asio::ssl::context>, TlsErrc> make_tls_context(const TlsSettings& settings);

// The TLS client context of this broker's connections to the other brokers
// (net::KafkaClient): TLS 1.2 at least, the peer's chain verified against
// ssl.ca.location (required: an error names it), and the broker's own
// certificate and key presented when they are set (so ssl.client.auth=required
// on the other brokers works: the certificate's subject is this broker's
// principal there). The peer's name is checked per connection by the client.
Result<std::shared_ptr<asio::ssl::context>, TlsErrc> make_tls_client_context(
    const TlsSettings& settings);

// The two contexts of a link where both ends prove who they are (the Raft
// traffic between metadata quorum members, CONTROLLER:SSL): `server` requires
// and verifies the peer's certificate against ssl.ca.location (as
// ssl.client.auth=required), `client` verifies the peer's chain against it
// and presents this broker's certificate; TLS 1.2 at least for both.
// ssl.certificate.location, ssl.key.location and ssl.ca.location are all
// required: an error names each one missing, prefixed with `needed_by`.
struct MutualTlsContexts {
  std::shared_ptr<asio::ssl::context> server;
  std::shared_ptr<asio::ssl::context> client;
};
Result<MutualTlsContexts, TlsErrc> make_mutual_tls_contexts(TlsSettings settings,
                                                            const std::string& needed_by);

// A TLS connection's stream over the connection's socket (which it does not own).
struct TlsStream {
  TlsStream(asio::ip::tcp::socket& socket, asio::ssl::context& context)
      : stream(socket, context) {}
  asio::ssl::stream<asio::ip::tcp::socket&> stream;
};

// A distinguished name as Java's X500Principal.getName() prints it (RFC 2253:
// the last RDN first, comma-separated, special characters escaped; attribute
// types other than CN, C, L, ST, O, OU, STREET, DC and UID as a dotted OID
// with the value's DER in hex), which is Kafka's default principal of a
// client certificate (ssl.principal.mapping.rules=DEFAULT).
std::string rfc2253_name(const X509_NAME* name);

// "User:" + the subject of the certificate the peer presented on `stream`,
// after a successful handshake; nullopt when it presented none.
std::optional<std::string> peer_certificate_principal(TlsStream& stream);

}  // namespace holdfast::server::security
