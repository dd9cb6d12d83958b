#include "server/security/inter_broker.h"

#include <algorithm>
#include <cctype>

#include "net/jaas.h"
#include "server/security/sasl_client.h"
#include "server/security/tls_context.h"

namespace holdfast::server::security {
namespace {

Error<ConfigErrc> refuse(const std::string& message) {
  return make_error(ConfigErrc::invalid_value, message);
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool uses_sasl(SecurityProtocol p) {
  return p == SecurityProtocol::sasl_plaintext || p == SecurityProtocol::sasl_ssl;
}
bool uses_tls(SecurityProtocol p) {
  return p == SecurityProtocol::ssl || p == SecurityProtocol::sasl_ssl;
}

}  // namespace

Result<InterBrokerSecurity, ConfigErrc> inter_broker_security(const BrokerConfig& config) {
  auto listeners = client_listeners(config);
  if (!listeners) return listeners.error();
  if (!config.inter_broker_listener_name.empty() && !config.security_inter_broker_protocol.empty()) {
    return refuse("inter.broker.listener.name and security.inter.broker.protocol are both set; "
                  "set at most one of them (as Kafka requires)");
  }
  auto named = [&](const std::string& name) -> const ClientListener* {
    for (const ClientListener& l : *listeners) {
      if (l.address.name == name) return &l;
    }
    return nullptr;
  };
  // The first client listener unless a setting names another.
  const ClientListener* chosen = &listeners->front();
  if (!config.inter_broker_listener_name.empty()) {
    chosen = named(config.inter_broker_listener_name);
    if (chosen == nullptr) {
      return refuse("inter.broker.listener.name=" + config.inter_broker_listener_name +
                    ": listeners has no client listener of that name");
    }
  } else if (!config.security_inter_broker_protocol.empty()) {
    // Kafka's meaning: the listener named as the protocol. Holdfast also
    // takes the first listener that uses it, when none has that name.
    auto protocol = parse_security_protocol(config.security_inter_broker_protocol);
    chosen = named(config.security_inter_broker_protocol);
    for (size_t i = 0; chosen == nullptr && protocol && i < listeners->size(); ++i) {
      if ((*listeners)[i].protocol == *protocol) chosen = &(*listeners)[i];
    }
    if (chosen == nullptr) {
      return refuse("security.inter.broker.protocol=" + config.security_inter_broker_protocol +
                    ": no client listener in listeners uses that protocol");
    }
  }
  InterBrokerSecurity out;
  out.listener = chosen->address.name;
  out.protocol = chosen->protocol;
  if (uses_tls(out.protocol) && config.ssl_ca_location.empty()) {
    return refuse("ssl.ca.location is not set, but the inter-broker listener " + out.listener +
                  " uses " + to_string(out.protocol) +
                  ": each broker verifies the others' certificates against that CA bundle");
  }
  if (!uses_sasl(out.protocol)) return out;
  const std::string& mechanism = config.sasl_mechanism_inter_broker_protocol;
  if (mechanism.empty()) {
    return refuse("sasl.mechanism.inter.broker.protocol is not set, but the inter-broker "
                  "listener " + out.listener + " uses " + to_string(out.protocol) +
                  " (set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; Kafka's default GSSAPI is not "
                  "built)");
  }
  const auto& enabled = config.sasl_enabled_mechanisms;
  if (std::find(enabled.begin(), enabled.end(), mechanism) == enabled.end()) {
    return refuse("sasl.mechanism.inter.broker.protocol=" + mechanism +
                  " is not in sasl.enabled.mechanisms: the other brokers would refuse it");
  }
  const std::string jaas_key =
      "listener.name." + lower(out.listener) + "." + lower(mechanism) + ".sasl.jaas.config";
  auto jaas = config.listener_sasl_jaas_configs.find(lower(out.listener) + "." + lower(mechanism));
  if (jaas == config.listener_sasl_jaas_configs.end()) {
    return refuse(jaas_key + " is not set: the credentials this broker authenticates with to "
                  "the other brokers (username=\"...\" password=\"...\")");
  }
  auto credentials = net::jaas_credentials(jaas->second);
  if (!credentials) {
    return refuse(jaas_key + " needs username=\"...\" and password=\"...\"");
  }
  out.mechanism = mechanism;
  out.username = credentials->username;
  out.password = credentials->password;
  return out;
}

Result<void, ConfigErrc> apply_inter_broker_security(const InterBrokerSecurity& security,
                                                     const BrokerConfig& config,
                                                     net::KafkaClientOptions& options) {
  if (uses_tls(security.protocol)) {
    auto context = make_tls_client_context(tls_settings(config));
    if (!context) {
      return refuse("TLS between brokers (" + security.listener + "): " + context.error().message);
    }
    options.tls = std::move(*context);
  }
  if (uses_sasl(security.protocol)) {
    options.sasl = [mechanism = security.mechanism, user = security.username,
                    password = security.password] {
      return make_sasl_client(mechanism, user, password);
    };
  }
  return {};
}

}  // namespace holdfast::server::security
