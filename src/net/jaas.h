// The options of a JAAS login-module line as Kafka clients and brokers write
// `sasl.jaas.config`:
//   org.apache.kafka.common.security.scram.ScramLoginModule required
//     username="alice" password="secret";
// Shared by the CLI's --command-config and the broker's inter-broker
// credentials (listener.name.<listener>.<mechanism>.sasl.jaas.config).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace holdfast::net {

// The value of `name="value"` in `jaas` (the name starting a word); nullopt
// when absent or not quoted. No escapes inside the quotes (Kafka's parser
// has none that a password needs here).
std::optional<std::string> jaas_value(std::string_view jaas, std::string_view name);

struct JaasCredentials {
  std::string username;
  std::string password;
};
// username and password, both present; nullopt otherwise.
std::optional<JaasCredentials> jaas_credentials(std::string_view jaas);

}  // namespace holdfast::net
