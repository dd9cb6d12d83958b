// net::SaslClient: the client side of one SASL mechanism for one
// connection's authentication (KafkaClient drives it through SaslHandshake v1
// and SaslAuthenticate before any other request on the connection).
//
// The exchange: step("") gives the first message; each server message is
// passed to step(), which answers with the next message to send, `done`
// (authenticated, the server's final message checked), or `failure`. A
// failure reason is for the log and never contains the secret.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace holdfast::net {

struct SaslClientStep {
  enum class Outcome { send, done, failure };
  Outcome outcome = Outcome::failure;
  std::string message;  // send: the next client message
  std::string reason;   // failure: why (no secret)
};

class SaslClient {
 public:
  virtual ~SaslClient() = default;
  // The mechanism's name as SaslHandshake carries it ("PLAIN", "SCRAM-SHA-512").
  virtual const std::string& mechanism() const = 0;
  // The user name (for the log).
  virtual const std::string& user() const = 0;
  virtual SaslClientStep step(std::string_view server_message) = 0;
};

}  // namespace holdfast::net
