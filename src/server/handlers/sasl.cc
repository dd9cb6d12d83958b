// SaslHandshake / SaslAuthenticate outside a SASL exchange: on a PLAINTEXT
// listener, or on a SASL listener's connection that has already
// authenticated (no re-authentication, KIP-368: session_lifetime_ms is 0).
// Kafka answers ILLEGAL_SASL_STATE. The exchange itself is served by the
// connection before authentication (server/security/).
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"

namespace holdfast::server {

Awaitable<Response> handle_sasl_handshake(RequestContext& ctx) {
  auto request = decode_request<protocol::SaslHandshakeRequest>(ctx);
  if (!request) co_return close_connection();
  protocol::SaslHandshakeResponse response;
  response.error_code = code(KafkaError::illegal_sasl_state);
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_sasl_authenticate(RequestContext& ctx) {
  auto request = decode_request<protocol::SaslAuthenticateRequest>(ctx);
  if (!request) co_return close_connection();
  protocol::SaslAuthenticateResponse response;
  response.error_code = code(KafkaError::illegal_sasl_state);
  response.error_message = "no SASL exchange on this connection (not a SASL listener, or already authenticated)";
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
