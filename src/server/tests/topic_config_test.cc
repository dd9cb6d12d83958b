#include "server/topic_config.h"

#include <gtest/gtest.h>

namespace holdfast::server {
namespace {

TEST(TopicConfig, ValidatesKeysAndValues) {
  EXPECT_TRUE(validate_topic_configs({{"retention.ms", "-1"}, {"cleanup.policy", "compact"}}));
  auto unknown = validate_topic_configs({{"retention.mss", "1"}});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("retention.mss"), std::string::npos);
  EXPECT_FALSE(validate_topic_configs({{"retention.ms", "soon"}}));
  EXPECT_FALSE(validate_topic_configs({{"max.message.bytes", "99999999999"}}));
  EXPECT_FALSE(validate_topic_configs({{"message.timestamp.type", "Whenever"}}));
  // Kafka's compression.type values (the broker recompresses on append); others refused.
  EXPECT_TRUE(validate_topic_configs({{"compression.type", "gzip"}}));
  EXPECT_TRUE(validate_topic_configs({{"compression.type", "producer"}}));
  EXPECT_FALSE(validate_topic_configs({{"compression.type", "brotli"}}));
}

// A topic without its own min.insync.replicas or unclean.leader.election.enable
// is held to the broker's (2 and false in a cluster unless set), and
// DescribeConfigs must say so, not Kafka's single-broker defaults.
TEST(TopicConfig, DescribeShowsTheBrokersReplicationDefaults) {
  auto value = [](const BrokerConfig& broker, const std::string& name) {
    for (const auto& e : describe_topic_configs(broker, {}))
      if (e.name == name) return e.value;
    return std::string("(missing)");
  };
  BrokerConfig single;
  EXPECT_EQ(value(single, "min.insync.replicas"), "1");
  EXPECT_EQ(value(single, "unclean.leader.election.enable"), "false");
  BrokerConfig cluster;
  cluster.node_id = 1;
  cluster.controller_quorum_voters = {{1, "10.0.0.1:9093"}, {2, "10.0.0.2:9093"}, {3, "10.0.0.3:9093"}};
  ASSERT_TRUE(cluster.cluster_mode());
  EXPECT_EQ(value(cluster, "min.insync.replicas"), "2");
  cluster.min_insync_replicas = 3;
  cluster.unclean_leader_election_enable = true;
  EXPECT_EQ(value(cluster, "min.insync.replicas"), "3");
  EXPECT_EQ(value(cluster, "unclean.leader.election.enable"), "true");
}

TEST(TopicConfig, DescribeShowsDefaultsFromBrokerAndOverrides) {
  BrokerConfig broker;
  broker.log_retention_ms = 1234;
  auto entries = describe_topic_configs(broker, {{"segment.bytes", "2048"}});
  bool saw_retention = false, saw_segment = false;
  for (const auto& e : entries) {
    if (e.name == "retention.ms") {
      saw_retention = true;
      EXPECT_EQ(e.value, "1234");
      EXPECT_TRUE(e.is_default);
    }
    if (e.name == "segment.bytes") {
      saw_segment = true;
      EXPECT_EQ(e.value, "2048");
      EXPECT_FALSE(e.is_default);
    }
  }
  EXPECT_TRUE(saw_retention && saw_segment);
}

TEST(TopicConfig, LogConfigMapping) {
  BrokerConfig broker;
  auto c = log_config_for(broker, {{"retention.ms", "5000"}, {"segment.bytes", "4096"},
                                   {"message.timestamp.type", "LogAppendTime"}});
  EXPECT_EQ(c.retention_ms, 5000);
  EXPECT_EQ(c.segment_bytes, 4096);
  EXPECT_TRUE(c.log_append_time);
  EXPECT_EQ(c.flush_mode, storage::FlushMode::always);

  // A compacted topic is cleaned, not trimmed by retention (unless compact,delete).
  auto compacted = log_config_for(broker, {{"cleanup.policy", "compact"}, {"retention.ms", "1"},
                                           {"delete.retention.ms", "7"},
                                           {"min.cleanable.dirty.ratio", "0.25"},
                                           {"min.compaction.lag.ms", "9"}});
  EXPECT_EQ(compacted.retention_ms, -1);
  EXPECT_TRUE(compacted.compact);
  EXPECT_EQ(compacted.delete_retention_ms, 7);
  EXPECT_DOUBLE_EQ(compacted.min_cleanable_dirty_ratio, 0.25);
  EXPECT_EQ(compacted.min_compaction_lag_ms, 9);
  auto both = log_config_for(broker, {{"cleanup.policy", "compact,delete"}, {"retention.ms", "1"}});
  EXPECT_TRUE(both.compact);
  EXPECT_EQ(both.retention_ms, 1);
  EXPECT_FALSE(c.compact);
  EXPECT_DOUBLE_EQ(c.min_cleanable_dirty_ratio, 0.5);

  auto interval = log_config_for(broker, {{"flush.ms", "200"}});
  EXPECT_EQ(interval.flush_mode, storage::FlushMode::interval);
  EXPECT_EQ(interval.flush_interval_ms, 200);
  broker.flush_policy = FlushPolicy{FlushPolicyKind::never, 0};
  broker.flush_policy_explicit = true;
  EXPECT_EQ(log_config_for(broker, {}).flush_mode, storage::FlushMode::never);
  EXPECT_EQ(log_config_for(broker, {{"flush.messages", "1"}}).flush_mode,
            storage::FlushMode::always);
}

TEST(TopicConfig, TopicNames) {
  EXPECT_TRUE(is_valid_topic_name("orders.v1_EU-2"));
  EXPECT_FALSE(is_valid_topic_name(""));
  EXPECT_FALSE(is_valid_topic_name("."));
  EXPECT_FALSE(is_valid_topic_name(".."));
  EXPECT_FALSE(is_valid_topic_name("has space"));
  EXPECT_FALSE(is_valid_topic_name(std::string(250, 'a')));
  EXPECT_TRUE(is_valid_topic_name(std::string(249, 'a')));
}

}  // namespace
}  // namespace holdfast::server
