#include "server/security/sasl_frames.h"

#include "server/kafka_error.h"

namespace holdfast::server::security {
namespace {

Response with_close(Response r) {
  r.close_connection = true;
  return r;
}

}  // namespace

std::string authentication_failed_message(const std::string& mechanism) {
  return "Authentication failed during authentication due to invalid credentials with SASL "
         "mechanism " + mechanism;
}

SaslAnswer answer_sasl_handshake(const RequestContext& ctx, SaslAuthenticator& sasl) {
  auto request = decode_request<protocol::SaslHandshakeRequest>(ctx);
  if (!request) return SaslAnswer{close_connection(), false, ""};
  protocol::SaslHandshakeResponse response;
  response.mechanisms = sasl.enabled_mechanisms();
  switch (sasl.handshake(request->mechanism, ctx.api_version)) {
    case SaslAuthenticator::HandshakeOutcome::ok:
      response.error_code = code(KafkaError::none);
      return SaslAnswer{make_response(ctx, response), false, ""};
    case SaslAuthenticator::HandshakeOutcome::unsupported_mechanism:
      // Answered, then closed (as Kafka does): the client reports the list.
      response.error_code = code(KafkaError::unsupported_sasl_mechanism);
      HF_WARN("closing connection from {}: SASL mechanism '{}' is not enabled "
              "(sasl.enabled.mechanisms: {})",
              ctx.client(), request->mechanism, [&] {
                std::string list;
                for (const auto& m : response.mechanisms) list += (list.empty() ? "" : ",") + m;
                return list;
              }());
      return SaslAnswer{with_close(make_response(ctx, response)), false, ""};
    case SaslAuthenticator::HandshakeOutcome::illegal_state:
      break;
  }
  response.error_code = code(KafkaError::illegal_sasl_state);
  HF_WARN("closing connection from {}: SaslHandshake in the middle of an authentication",
          ctx.client());
  return SaslAnswer{with_close(make_response(ctx, response)), false, ""};
}

SaslAnswer answer_sasl_authenticate(const RequestContext& ctx, SaslAuthenticator& sasl) {
  protocol::SaslAuthenticateResponse response;
  if (sasl.state() != SaslAuthenticator::State::authenticate) {
    // Before a v1 handshake (or after a v0 one, which uses raw frames).
    response.error_code = code(KafkaError::illegal_sasl_state);
    response.error_message = "SaslAuthenticate without a preceding SaslHandshake v1";
    HF_WARN("closing connection from {}: SaslAuthenticate without a SaslHandshake v1",
            ctx.client());
    return SaslAnswer{with_close(make_response(ctx, response)), false, ""};
  }
  auto request = decode_request<protocol::SaslAuthenticateRequest>(ctx);
  if (!request) return SaslAnswer{close_connection(), false, ""};
  const auto& bytes = request->auth_bytes;
  SaslStep step = sasl.step(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (step.outcome == SaslStep::Outcome::failure) {
    response.error_code = code(KafkaError::sasl_authentication_failed);
    response.error_message = authentication_failed_message(sasl.mechanism());
    return SaslAnswer{with_close(make_response(ctx, response)), true, step.reason};
  }
  response.error_code = code(KafkaError::none);
  response.auth_bytes = Bytes::copy_of(std::string_view(step.response));
  // KIP-368: 0 = the session never ends; else the client authenticates again
  // on this connection before this many ms have passed (sent in v1+ only).
  response.session_lifetime_ms = sasl.session_lifetime_ms();
  return SaslAnswer{make_response(ctx, response), false, ""};
}

SaslAnswer answer_raw_token(const Bytes& frame, SaslAuthenticator& sasl) {
  SaslStep step = sasl.step(std::string_view(reinterpret_cast<const char*>(frame.data()), frame.size()));
  if (step.outcome == SaslStep::Outcome::failure) {
    // SaslHandshake v0 has no way to say why: the connection just closes.
    return SaslAnswer{close_connection(), true, step.reason};
  }
  protocol::Writer w;
  w.put_int32(static_cast<int32_t>(step.response.size()));
  w.put_raw(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(step.response.data()),
                                     step.response.size()));
  return SaslAnswer{Response{w.release(), true, false}, false, ""};
}

}  // namespace holdfast::server::security
