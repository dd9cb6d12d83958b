// The server side of one SASL mechanism for one authentication: it takes the
// client's messages one at a time and answers each with a challenge, success
// (with the final server message, possibly empty) or failure. Failure reasons
// are for the broker's log and never contain the client's secret.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "metadata/metadata_image.h"
#include "server/security/scram_credentials.h"

namespace holdfast::server::security {

struct SaslStep {
  enum class Outcome { challenge, success, failure };
  Outcome outcome = Outcome::failure;
  std::string response;  // to the client (challenge, or server-final on success)
  std::string reason;    // on failure: why, for the log (no secret)
};

// The stored credential of `user` for `mechanism`, if there is one. Called on
// the connection's thread; must not block.
using CredentialLookup = std::function<std::optional<metadata::ScramCredentialInfo>(
    const std::string& user, ScramMechanism mechanism)>;

class SaslMechanism {
 public:
  virtual ~SaslMechanism() = default;
  virtual SaslStep step(std::string_view client_message) = 0;
  // The authenticated (or claimed, for the log) user name; empty before it is known.
  virtual const std::string& user() const = 0;
};

// PLAIN (RFC 4616): one message "authzid NUL authcid NUL passwd", checked
// against the user's SCRAM credential (SHA-512 first, then SHA-256) by
// deriving with its salt and iteration count.
std::unique_ptr<SaslMechanism> make_plain_mechanism(CredentialLookup lookup);

// SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677): client-first,
// server-first, client-final, server-final. `server_nonce` (tests only)
// replaces the random nonce part.
std::unique_ptr<SaslMechanism> make_scram_mechanism(ScramMechanism mechanism,
                                                    CredentialLookup lookup,
                                                    std::string server_nonce = "");
// As above over any of the hashes, including SHA-1 (RFC 5802's test vector).
std::unique_ptr<SaslMechanism> make_scram_mechanism_for_hash(
    ScramHash hash, std::function<std::optional<metadata::ScramCredentialInfo>(const std::string&)> lookup,
    std::string server_nonce = "");

}  // namespace holdfast::server::security
