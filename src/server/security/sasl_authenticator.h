// The SASL state of one connection on a SASL listener (KIP-43, KIP-152):
//
//   handshake ──SaslHandshake v1──▶ authenticate ──SaslAuthenticate…──▶ authenticated
//            └─SaslHandshake v0──▶ raw_tokens   ──raw token frames…───▶ authenticated
//   any failure ──▶ failed (the connection closes)
//
// Before `authenticated` only ApiVersions and the SASL requests are allowed
// (the connection enforces that). This class decides; sasl_frames.cc turns
// its outcomes into Kafka responses.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/security/sasl_mechanism.h"

namespace holdfast::server::security {

class SaslAuthenticator {
 public:
  enum class State { handshake, authenticate, raw_tokens, authenticated, failed };
  enum class HandshakeOutcome { ok, unsupported_mechanism, illegal_state };

  // `session_lifetime_ms` > 0: SaslAuthenticate v1+ answers a success with it
  // (KIP-368), telling the client when to authenticate again.
  SaslAuthenticator(std::vector<std::string> enabled_mechanisms, CredentialLookup lookup,
                    int64_t session_lifetime_ms = 0);

  // SaslHandshake of `version` naming `mechanism`.
  HandshakeOutcome handshake(const std::string& mechanism, int16_t version);
  // One client message (a SaslAuthenticate's auth_bytes or a raw token).
  // Requires state() == authenticate or raw_tokens.
  SaslStep step(std::string_view client_message);

  State state() const { return state_; }
  const std::vector<std::string>& enabled_mechanisms() const { return enabled_; }
  const std::string& mechanism() const { return mechanism_name_; }
  int64_t session_lifetime_ms() const { return session_lifetime_ms_; }
  // The user name the client gave (empty before it gave one).
  std::string user() const { return mechanism_ ? mechanism_->user() : ""; }

 private:
  std::vector<std::string> enabled_;
  CredentialLookup lookup_;
  int64_t session_lifetime_ms_ = 0;
  State state_ = State::handshake;
  std::string mechanism_name_;
  std::unique_ptr<SaslMechanism> mechanism_;
};

// The mechanisms Holdfast can serve, in sasl.enabled.mechanisms spelling.
bool is_supported_mechanism(const std::string& name);

}  // namespace holdfast::server::security
