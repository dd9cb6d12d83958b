// Security between brokers (security/inter_broker.h): the start-up checks,
// each naming its setting, and what a valid configuration resolves to.
#include "server/security/inter_broker.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace holdfast::server::security {
namespace {

constexpr const char* kJaas =
    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" "
    "password=\"hunter2-secret\";";

BrokerConfig with(std::vector<std::pair<std::string, std::string>> settings) {
  BrokerConfig c;
  for (const auto& [key, value] : settings) {
    auto applied = apply_setting(c, key, value);
    EXPECT_TRUE(applied) << key << ": " << applied.error().message;
  }
  return c;
}

BrokerConfig sasl_ssl_cluster() {
  return with({{"listeners", "SASL_SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9193"},
               {"ssl.ca.location", "/tmp/ca.pem"},
               {"sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"},
               {"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config", kJaas}});
}

// The error's message, which must name `setting` and never the password.
void expect_refused(const BrokerConfig& c, const std::string& setting) {
  auto resolved = inter_broker_security(c);
  ASSERT_FALSE(resolved) << "expected a refusal naming " << setting;
  EXPECT_NE(resolved.error().message.find(setting), std::string::npos) << resolved.error().message;
  EXPECT_EQ(resolved.error().message.find("hunter2"), std::string::npos) << resolved.error().message;
}

TEST(InterBroker, SaslSslWithScramResolvesToTheFirstListenerAndTheJaasCredentials) {
  auto resolved = inter_broker_security(sasl_ssl_cluster());
  ASSERT_TRUE(resolved) << resolved.error().message;
  EXPECT_EQ(resolved->listener, "SASL_SSL");
  EXPECT_EQ(resolved->protocol, SecurityProtocol::sasl_ssl);
  EXPECT_EQ(resolved->mechanism, "SCRAM-SHA-512");
  EXPECT_EQ(resolved->username, "broker");
  EXPECT_EQ(resolved->password, "hunter2-secret");
}

TEST(InterBroker, PlaintextNeedsNothing) {
  auto resolved = inter_broker_security(with({{"listeners", "PLAINTEXT://127.0.0.1:9092"}}));
  ASSERT_TRUE(resolved);
  EXPECT_EQ(resolved->protocol, SecurityProtocol::plaintext);
}

TEST(InterBroker, SaslWithoutCredentialsOrMechanismIsRefusedNamingTheSetting) {
  auto no_jaas = with({{"listeners", "SASL_PLAINTEXT://127.0.0.1:9092"},
                       {"sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256"}});
  expect_refused(no_jaas, "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config");
  auto no_mechanism = with({{"listeners", "SASL_PLAINTEXT://127.0.0.1:9092"},
                            {"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config", kJaas}});
  expect_refused(no_mechanism, "sasl.mechanism.inter.broker.protocol");
  // The JAAS line of another mechanism does not count.
  auto other_mechanism = sasl_ssl_cluster();
  other_mechanism.sasl_mechanism_inter_broker_protocol = "SCRAM-SHA-256";
  expect_refused(other_mechanism, "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config");
  auto no_password = sasl_ssl_cluster();
  no_password.listener_sasl_jaas_configs["sasl_ssl.scram-sha-512"] =
      "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\";";
  expect_refused(no_password, "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config");
  auto not_enabled = sasl_ssl_cluster();
  not_enabled.sasl_mechanism_inter_broker_protocol = "PLAIN";
  not_enabled.listener_sasl_jaas_configs["sasl_ssl.plain"] = kJaas;
  expect_refused(not_enabled, "sasl.enabled.mechanisms");
}

TEST(InterBroker, SslWithoutACaIsRefusedNamingTheSetting) {
  expect_refused(with({{"listeners", "SSL://127.0.0.1:9093"}}), "ssl.ca.location");
  auto sasl_ssl = sasl_ssl_cluster();
  sasl_ssl.ssl_ca_location.clear();
  expect_refused(sasl_ssl, "ssl.ca.location");
}

TEST(InterBroker, AnyClientListenerCanBeTheInterBrokerListenerByNameOrProtocol) {
  // Per-listener advertising: the brokers may use another listener than the
  // first, of another protocol than the clients' listeners.
  auto named_other = with({{"listeners", "SSL://127.0.0.1:9093,INTERNAL://127.0.0.1:9094"},
                           {"listener.security.protocol.map", "INTERNAL:PLAINTEXT"},
                           {"ssl.ca.location", "/tmp/ca.pem"},
                           {"inter.broker.listener.name", "INTERNAL"}});
  auto internal = inter_broker_security(named_other);
  ASSERT_TRUE(internal) << internal.error().message;
  EXPECT_EQ(internal->listener, "INTERNAL");
  EXPECT_EQ(internal->protocol, SecurityProtocol::plaintext);
  auto named_missing = with({{"listeners", "PLAINTEXT://127.0.0.1:9092"},
                             {"inter.broker.listener.name", "NOPE"}});
  expect_refused(named_missing, "inter.broker.listener.name=NOPE");
  auto named_first = with({{"listeners", "PLAINTEXT://127.0.0.1:9092"},
                           {"inter.broker.listener.name", "PLAINTEXT"}});
  EXPECT_TRUE(inter_broker_security(named_first));
  auto other_protocol = with({{"listeners", "PLAINTEXT://127.0.0.1:9092"},
                              {"security.inter.broker.protocol", "SSL"}});
  expect_refused(other_protocol, "security.inter.broker.protocol=SSL");
  // security.inter.broker.protocol: the listener so named (Kafka), else the
  // first that uses the protocol.
  auto by_protocol = with({{"listeners", "SSL://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092"},
                           {"ssl.ca.location", "/tmp/ca.pem"},
                           {"security.inter.broker.protocol", "PLAINTEXT"}});
  auto plaintext = inter_broker_security(by_protocol);
  ASSERT_TRUE(plaintext) << plaintext.error().message;
  EXPECT_EQ(plaintext->listener, "PLAINTEXT");
  auto by_mapped_protocol = with({{"listeners", "EXTERNAL://127.0.0.1:9093,INTERNAL://127.0.0.1:9092"},
                                  {"listener.security.protocol.map", "EXTERNAL:SSL,INTERNAL:PLAINTEXT"},
                                  {"security.inter.broker.protocol", "PLAINTEXT"}});
  auto mapped = inter_broker_security(by_mapped_protocol);
  ASSERT_TRUE(mapped) << mapped.error().message;
  EXPECT_EQ(mapped->listener, "INTERNAL");
  auto same_protocol = sasl_ssl_cluster();
  same_protocol.security_inter_broker_protocol = "SASL_SSL";
  EXPECT_TRUE(inter_broker_security(same_protocol));
  auto both = sasl_ssl_cluster();
  both.security_inter_broker_protocol = "SASL_SSL";
  both.inter_broker_listener_name = "SASL_SSL";
  expect_refused(both, "security.inter.broker.protocol");
  // Listeners of mixed protocols are fine now: the first is the brokers'.
  auto mixed = with({{"listeners", "SSL://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092"},
                     {"ssl.ca.location", "/tmp/ca.pem"}});
  auto first = inter_broker_security(mixed);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->listener, "SSL");
}

TEST(InterBroker, JaasKeysAreListenerScopedAndErrorsDoNotEchoTheValue) {
  BrokerConfig c;
  ASSERT_TRUE(apply_setting(c, "listener.name.SASL_SSL.SCRAM-SHA-512.sasl.jaas.config", kJaas));
  EXPECT_EQ(c.listener_sasl_jaas_configs.count("sasl_ssl.scram-sha-512"), 1u);
  auto bad = apply_setting(c, "listener.name.sasl_ssl.gssapi.sasl.jaas.config", kJaas);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.find("hunter2"), std::string::npos);
  EXPECT_FALSE(apply_setting(c, "sasl.mechanism.inter.broker.protocol", "GSSAPI"));
  EXPECT_FALSE(apply_setting(c, "security.inter.broker.protocol", "TLS"));
  EXPECT_FALSE(is_inapplicable_kafka_key("security.inter.broker.protocol"));
}

TEST(InterBroker, ClientOptionsGetTlsAndASaslMechanism) {
  auto config = sasl_ssl_cluster();
  auto resolved = inter_broker_security(config);
  ASSERT_TRUE(resolved);
  net::KafkaClientOptions options;
  // The CA file does not exist: refused naming ssl.ca.location.
  auto applied = apply_inter_broker_security(*resolved, config, options);
  ASSERT_FALSE(applied);
  EXPECT_NE(applied.error().message.find("ssl.ca.location"), std::string::npos);
  auto sasl_only = with({{"listeners", "SASL_PLAINTEXT://127.0.0.1:9092"},
                         {"sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"},
                         {"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config", kJaas}});
  auto plain_resolved = inter_broker_security(sasl_only);
  ASSERT_TRUE(plain_resolved);
  net::KafkaClientOptions plain_options;
  ASSERT_TRUE(apply_inter_broker_security(*plain_resolved, sasl_only, plain_options));
  EXPECT_EQ(plain_options.tls, nullptr);
  ASSERT_TRUE(plain_options.sasl);
  auto mechanism = plain_options.sasl();
  EXPECT_EQ(mechanism->mechanism(), "SCRAM-SHA-512");
  EXPECT_EQ(mechanism->user(), "broker");
}

}  // namespace
}  // namespace holdfast::server::security
