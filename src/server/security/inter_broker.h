// Security between the brokers of a cluster (docs/security.md, "Between
// brokers"): which listener and protocol the brokers use to reach each
// other, the credentials they present, and the net::KafkaClient options
// that carry them.
//
// Brokers reach each other (follower fetches, registration and heartbeats,
// forwarded admin requests, KIP-890 verify questions, transaction markers)
// on one client listener: the first, or the one inter.broker.listener.name
// names (or security.inter.broker.protocol: the listener named as the
// protocol, else the first that uses it), with its protocol. A broker
// registers that listener's endpoint first (cluster_view.h), so the others
// dial it; clients are told the endpoints of the listener they came through.
#pragma once

#include <string>

#include "base/result.h"
#include "net/kafka_client.h"
#include "server/broker_config.h"

namespace holdfast::server::security {

struct InterBrokerSecurity {
  std::string listener;  // its name, e.g. "SASL_SSL" or "INTERNAL"
  SecurityProtocol protocol = SecurityProtocol::plaintext;
  // SASL only: sasl.mechanism.inter.broker.protocol and the JAAS line's
  // credentials (the password: never logged, never in an error).
  std::string mechanism;
  std::string username;
  std::string password;
};

// The inter-broker listener and credentials of a cluster node, checked. An
// error names the setting at fault: inter.broker.listener.name naming no
// client listener, security.inter.broker.protocol matching none (or both
// given); on SASL, no sasl.mechanism.inter.broker.protocol, one missing from
// sasl.enabled.mechanisms, no listener.name.<l>.<m>.sasl.jaas.config or one
// without username="..." password="..."; on SSL or SASL_SSL, no
// ssl.ca.location (the other brokers' certificates are verified against it).
Result<InterBrokerSecurity, ConfigErrc> inter_broker_security(const BrokerConfig& config);

// Adds TLS (a client context: make_tls_client_context) and SASL (a
// mechanism per connection) to `options` as `security` asks; an error names
// the ssl.* setting whose file does not load.
Result<void, ConfigErrc> apply_inter_broker_security(const InterBrokerSecurity& security,
                                                     const BrokerConfig& config,
                                                     net::KafkaClientOptions& options);

}  // namespace holdfast::server::security
