// The Kafka side of SASL on a connection: SaslHandshake and SaslAuthenticate
// requests (and, after a v0 handshake, raw token frames) answered from the
// connection's SaslAuthenticator. Kafka error codes are made here, the one
// boundary between the authenticator's outcomes and the wire.
#pragma once

#include <string>

#include "server/request.h"
#include "server/security/sasl_authenticator.h"

namespace holdfast::server::security {

struct SaslAnswer {
  Response response;
  // A failed authentication: the connection logs `reason` (never a secret),
  // waits a little (slowing down password guessing), then sends `response`
  // and closes.
  bool authentication_failed = false;
  std::string reason;
};

SaslAnswer answer_sasl_handshake(const RequestContext& ctx, SaslAuthenticator& sasl);
SaslAnswer answer_sasl_authenticate(const RequestContext& ctx, SaslAuthenticator& sasl);
// A raw token frame after SaslHandshake v0: the reply is a size-prefixed token
// (empty on PLAIN's success), no Kafka header.
SaslAnswer answer_raw_token(const Bytes& frame, SaslAuthenticator& sasl);

// The message a client sees when authentication fails (Kafka's wording; it
// names the mechanism, never the user's secret).
std::string authentication_failed_message(const std::string& mechanism);

}  // namespace holdfast::server::security
