#include "server/broker_config.h"

#include <gtest/gtest.h>

namespace holdfast::server {
namespace {

TEST(BrokerConfig, DefaultsAreDurableAndKafkaLike) {
  BrokerConfig c;
  EXPECT_EQ(c.num_partitions, 4);
  EXPECT_TRUE(c.auto_create_topics);
  EXPECT_EQ(c.effective_flush_policy().kind, FlushPolicyKind::always);
  EXPECT_EQ(c.listen_port, 9092);
}

TEST(BrokerConfig, ParsesPropertiesWithCommentsAndBothSeparators) {
  auto parsed = parse_properties("# comment\n! also\n\nnum.partitions = 7\nlog.dirs: /tmp/x\n");
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].first, "num.partitions");
  EXPECT_EQ((*parsed)[0].second, "7");
  EXPECT_EQ((*parsed)[1].second, "/tmp/x");
}

TEST(BrokerConfig, UnknownKeyIsAnErrorNamingTheKey) {
  BrokerConfig c;
  auto r = apply_setting(c, "num.partitionz", "3");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), ConfigErrc::unknown_key);
  EXPECT_NE(r.error().message.find("num.partitionz"), std::string::npos);
}

TEST(BrokerConfig, InvalidValuesAreErrorsNamingTheKey) {
  BrokerConfig c;
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"num.partitions", "zero"},
           {"num.partitions", "0"},
           {"auto.create.topics.enable", "yes"},
           {"flush.policy", "sometimes"},
           {"flush.policy", "interval:"},
           {"flush.policy", "interval:-5"},
           {"listeners", "nohost"},
           {"log.segment.bytes", "12"},
           {"socket.request.max.bytes", "99999999999"},
       }) {
    auto r = apply_setting(c, key, value);
    ASSERT_FALSE(r) << key << "=" << value;
    EXPECT_EQ(r.code(), ConfigErrc::invalid_value);
    EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error().message;
  }
}

TEST(BrokerConfig, FlushPolicies) {
  BrokerConfig c;
  ASSERT_TRUE(apply_setting(c, "flush.policy", "interval:250"));
  EXPECT_EQ(c.effective_flush_policy().kind, FlushPolicyKind::interval);
  EXPECT_EQ(c.effective_flush_policy().interval_ms, 250);
  EXPECT_EQ(c.effective_flush_policy().to_string(), "interval:250");
  ASSERT_TRUE(apply_setting(c, "flush.policy", "never"));
  EXPECT_EQ(c.effective_flush_policy().kind, FlushPolicyKind::never);

  // Kafka's log.flush.interval.ms selects the interval policy unless
  // flush.policy is given explicitly.
  BrokerConfig k;
  ASSERT_TRUE(apply_setting(k, "log.flush.interval.ms", "100"));
  EXPECT_EQ(k.effective_flush_policy().kind, FlushPolicyKind::interval);
  ASSERT_TRUE(apply_setting(k, "flush.policy", "always"));
  EXPECT_EQ(k.effective_flush_policy().kind, FlushPolicyKind::always);
}

TEST(BrokerConfig, ListenersAndRetentionUnits) {
  BrokerConfig c;
  ASSERT_TRUE(apply_setting(c, "listeners", "PLAINTEXT://127.0.0.1:19092"));
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 19092);
  EXPECT_FALSE(apply_setting(c, "listeners", "SSL://127.0.0.1:1"));
  ASSERT_TRUE(apply_setting(c, "advertised.listeners", "broker.example:9000"));
  EXPECT_EQ(c.effective_advertise_host(), "broker.example");
  EXPECT_EQ(c.effective_advertise_port(), 9000);
  ASSERT_TRUE(apply_setting(c, "log.retention.hours", "2"));
  EXPECT_EQ(c.log_retention_ms, 2 * 3600 * 1000);
  auto v6 = parse_host_port("[::1]:9092");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->first, "::1");
}

}  // namespace
}  // namespace holdfast::server
