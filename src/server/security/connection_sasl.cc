// Connection's SASL path (connection.h): before a SASL listener's connection
// has authenticated, only ApiVersions, SaslHandshake and SaslAuthenticate
// (or, after SaslHandshake v0, raw token frames) are served; anything else
// closes the connection.
#include "base/log.h"
#include "server/broker.h"
#include "server/connection.h"
#include "server/security/sasl_connection.h"

namespace holdfast::server {

namespace security {

std::unique_ptr<SaslAuthenticator> make_sasl_authenticator(Broker& broker,
                                                           std::vector<std::string> mechanisms) {
  return std::make_unique<SaslAuthenticator>(
      mechanisms.empty() ? broker.config().sasl_enabled_mechanisms : std::move(mechanisms),
      [&broker](const std::string& user,
                ScramMechanism mechanism) -> std::optional<metadata::ScramCredentialInfo> {
        auto image = broker.metadata_log().current();
        auto it = image->scram_credentials.find({user, static_cast<int8_t>(mechanism)});
        if (it == image->scram_credentials.end()) return std::nullopt;
        return it->second;
      },
      broker.config().connections_max_reauth_ms);
}

}  // namespace security

bool Connection::authenticated() const {
  return !sasl_ || sasl_->state() == security::SaslAuthenticator::State::authenticated;
}

asio::awaitable<bool> Connection::handle_sasl_in_line(const Bytes& frame, bool reauthentication) {
  auto slot = std::make_shared<Slot>();
  slots_.push_back(slot);
  in_flight_.fetch_add(1);
  Response response;
  try {
    // if/else, not ?: — GCC 12 miscompiled a co_await inside a conditional
    // expression here (the broker died on SASL connections).
    if (reauthentication) {
      response = co_await reauthenticate(frame);
    } else {
      response = co_await handle_unauthenticated(frame);
    }
  } catch (const std::exception& e) {
    HF_ERROR("closing connection from {}: SASL handling failed: {}", peer_, e.what());
    response = close_connection();
  }
  const bool closing = response.close_connection;
  complete(*slot, std::move(response));
  co_return closing;
}

asio::awaitable<Response> Connection::handle_unauthenticated(const Bytes& frame) {
  using State = security::SaslAuthenticator::State;
  if (sasl_->state() == State::raw_tokens) {
    co_return co_await finish_sasl(security::answer_raw_token(frame, *sasl_));
  }
  const int16_t api_key = static_cast<int16_t>(load_be16(frame.data()));
  const int16_t api_version = static_cast<int16_t>(load_be16(frame.data() + 2));
  const int32_t correlation_id = static_cast<int32_t>(load_be32(frame.data() + 4));
  const bool sasl_request = api_key == protocol::SaslHandshakeRequest::kApiKey ||
                            api_key == protocol::SaslAuthenticateRequest::kApiKey;
  const bool allowed = sasl_request || (api_key == protocol::ApiVersionsRequest::kApiKey &&
                                        sasl_->state() == State::handshake);
  if (!allowed) {
    HF_WARN("closing connection from {}: {} before SASL authentication completed", peer_,
            protocol::api_name(api_key));
    co_return close_connection();
  }
  if (!sasl_request) co_return co_await dispatch(frame);

  const ApiHandler* handler = find_api_handler(api_key);
  if (!handler || api_version < handler->min_version || api_version > handler->max_version) {
    HF_WARN("closing connection from {}: {} v{} is not supported", peer_,
            protocol::api_name(api_key), api_version);
    co_return close_connection();
  }
  RequestContext ctx{broker_, api_key, api_version, correlation_id, std::nullopt, {}, peer_,
                     principal_, client_gone_, listener_};
  protocol::Reader reader(frame);
  protocol::RequestHeader header;
  auto parsed = header.decode(reader, protocol::request_header_version(api_key, api_version));
  if (!parsed) {
    HF_WARN("closing connection from {}: malformed request header: {}", peer_,
            parsed.error().message);
    co_return close_connection();
  }
  ctx.client_id = header.client_id;
  ctx.body = frame.slice(reader.position());
  if (api_key == protocol::SaslHandshakeRequest::kApiKey) {
    co_return co_await finish_sasl(security::answer_sasl_handshake(ctx, *sasl_));
  }
  co_return co_await finish_sasl(security::answer_sasl_authenticate(ctx, *sasl_));
}

asio::awaitable<Response> Connection::finish_sasl(security::SaslAnswer answer) {
  if (answer.authentication_failed) {
    HF_WARN("SASL authentication failed from {}: user '{}', mechanism {}: {}; closing the "
            "connection",
            peer_, sasl_->user(), sasl_->mechanism(), answer.reason);
    // Slow down guessing, without holding the network thread.
    asio::steady_timer delay(socket_.get_executor());
    delay.expires_after(security::kFailedAuthenticationDelay);
    asio::error_code ec;
    co_await delay.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    answer.response.close_connection = true;
    co_return std::move(answer.response);
  }
  if (authenticated()) {
    const std::string principal = "User:" + sasl_->user();
    if (!reauth_principal_.empty()) {
      // Kafka's rule: a connection keeps its principal for its whole life.
      if (principal != reauth_principal_) {
        HF_WARN("closing connection from {}: re-authenticated as {}, but it is {}'s connection "
                "(a connection cannot change its principal)",
                peer_, principal, reauth_principal_);
        reauth_principal_.clear();
        co_return close_connection();
      }
      reauth_principal_.clear();
      broker_.metrics().record_reauthentication();
      HF_DEBUG("connection from {} re-authenticated as {}", peer_, principal);
    }
    principal_ = principal;
    const int64_t lifetime = sasl_->session_lifetime_ms();
    session_ends_.reset();
    if (lifetime > 0) session_ends_ = Clock::now() + std::chrono::milliseconds(lifetime);
    HF_DEBUG("connection from {} authenticated as {} ({})", peer_, principal_, sasl_->mechanism());
  }
  co_return std::move(answer.response);
}

asio::awaitable<Response> Connection::reauthenticate(const Bytes& frame) {
  const int16_t api_version = static_cast<int16_t>(load_be16(frame.data() + 2));
  if (api_version < 1) {
    // v0 goes on with raw token frames, which cannot follow other requests.
    HF_WARN("closing connection from {}: re-authentication needs SaslHandshake v1 or later", peer_);
    co_return close_connection();
  }
  reauth_principal_ = principal_;
  sasl_ = security::make_sasl_authenticator(broker_, {sasl_->mechanism()});
  co_return co_await handle_unauthenticated(frame);
}

}  // namespace holdfast::server
