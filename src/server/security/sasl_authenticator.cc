#include "server/security/sasl_authenticator.h"

#include <algorithm>

namespace holdfast::server::security {

bool is_supported_mechanism(const std::string& name) {
  return name == "PLAIN" || mechanism_from_name(name).has_value();
}

SaslAuthenticator::SaslAuthenticator(std::vector<std::string> enabled_mechanisms,
                                     CredentialLookup lookup, int64_t session_lifetime_ms)
    : enabled_(std::move(enabled_mechanisms)),
      lookup_(std::move(lookup)),
      session_lifetime_ms_(session_lifetime_ms) {}

SaslAuthenticator::HandshakeOutcome SaslAuthenticator::handshake(const std::string& mechanism,
                                                                 int16_t version) {
  if (state_ != State::handshake) {
    state_ = State::failed;
    return HandshakeOutcome::illegal_state;
  }
  if (std::find(enabled_.begin(), enabled_.end(), mechanism) == enabled_.end()) {
    state_ = State::failed;
    return HandshakeOutcome::unsupported_mechanism;
  }
  mechanism_name_ = mechanism;
  if (mechanism == "PLAIN") {
    mechanism_ = make_plain_mechanism(lookup_);
  } else {
    mechanism_ = make_scram_mechanism(*mechanism_from_name(mechanism), lookup_);
  }
  state_ = version >= 1 ? State::authenticate : State::raw_tokens;
  return HandshakeOutcome::ok;
}

SaslStep SaslAuthenticator::step(std::string_view client_message) {
  if (state_ != State::authenticate && state_ != State::raw_tokens) {
    state_ = State::failed;
    return SaslStep{SaslStep::Outcome::failure, "", "no SASL exchange in progress"};
  }
  SaslStep result = mechanism_->step(client_message);
  if (result.outcome == SaslStep::Outcome::success) state_ = State::authenticated;
  if (result.outcome == SaslStep::Outcome::failure) state_ = State::failed;
  return result;
}

}  // namespace holdfast::server::security
