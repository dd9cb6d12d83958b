// Wiring SASL into a broker connection: the authenticator a SASL listener's
// connection starts with (credentials read from the broker's current
// metadata image at each lookup, so a user created or deleted takes effect
// for the next authentication).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/security/sasl_authenticator.h"

namespace holdfast::server {
class Broker;
}

namespace holdfast::server::security {

// `mechanisms`: the ones this exchange may use; empty = sasl.enabled.mechanisms
// (a re-authentication names the connection's first mechanism only).
std::unique_ptr<SaslAuthenticator> make_sasl_authenticator(Broker& broker,
                                                           std::vector<std::string> mechanisms = {});

// How long a failed authentication waits before its answer (and the close):
// bounded, and on a timer, never blocking the network thread.
constexpr auto kFailedAuthenticationDelay = std::chrono::milliseconds(500);

}  // namespace holdfast::server::security
