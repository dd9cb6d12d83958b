// The client side of PLAIN and SCRAM-SHA-256/512 (net::SaslClient), which a
// broker uses to authenticate to the other brokers of its cluster
// (docs/security.md, "Between brokers").
//
// SCRAM follows RFC 5802 without channel binding (gs2 header "n,,", as
// Kafka): the client nonce comes from the CSPRNG, the server's nonce must
// extend it, the iteration count must be within Kafka's bounds
// (kMinScramIterations..kMaxScramIterations), and the server's signature in
// server-final is checked (constant-time) before the exchange counts as
// done: a server that does not hold the credential cannot pass for one that
// does. Failure reasons never contain the password.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "net/sasl_client.h"
#include "server/security/scram_credentials.h"

namespace holdfast::server::security {

// PLAIN (RFC 4616): one message, NUL user NUL password; done on the broker's
// (empty) success.
std::unique_ptr<net::SaslClient> make_plain_client(std::string user, std::string password);

// SCRAM over `hash` ("SCRAM-SHA-256" / "SCRAM-SHA-512" as `mechanism`).
// `client_nonce` (tests only) replaces the random nonce.
std::unique_ptr<net::SaslClient> make_scram_client(ScramHash hash, std::string mechanism,
                                                   std::string user, std::string password,
                                                   std::string client_nonce = "");

// By mechanism name (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); nullptr for any other.
std::unique_ptr<net::SaslClient> make_sasl_client(const std::string& mechanism, std::string user,
                                                  std::string password);

}  // namespace holdfast::server::security
