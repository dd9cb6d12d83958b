// The one mapping from group coordinator errors to Kafka error codes.
#include <gtest/gtest.h>

#include "server/broker_config.h"
#include "server/handlers/group_errors.h"

namespace holdfast::server {
namespace {

using coordinator::GroupErrc;

TEST(GroupErrorMapping, EveryCoordinatorErrorHasItsKafkaCode) {
  const std::pair<GroupErrc, int16_t> expected[] = {
      {GroupErrc::none, 0},
      {GroupErrc::coordinator_load_in_progress, 14},
      {GroupErrc::coordinator_not_available, 15},
      {GroupErrc::not_coordinator, 16},
      {GroupErrc::invalid_group_id, 24},
      {GroupErrc::unknown_member_id, 25},
      {GroupErrc::illegal_generation, 22},
      {GroupErrc::inconsistent_group_protocol, 23},
      {GroupErrc::invalid_session_timeout, 26},
      {GroupErrc::rebalance_in_progress, 27},
      {GroupErrc::member_id_required, 79},
      {GroupErrc::fenced_instance_id, 82},
      {GroupErrc::group_id_not_found, 69},
      {GroupErrc::non_empty_group, 68},
      {GroupErrc::unstable_offset_commit, 88},
      {GroupErrc::offset_metadata_too_large, 12},
      {GroupErrc::group_subscribed_to_topic, 86},
      // Not durable, not acknowledged: retriable, clients look up the coordinator again.
      {GroupErrc::storage_error, 15},
  };
  for (const auto& [errc, kafka] : expected) {
    EXPECT_EQ(group_error_code(errc), kafka) << coordinator::to_string(errc);
  }
}

TEST(GroupErrorMapping, GroupSettingsHaveKafkaNamesAndDefaults) {
  BrokerConfig config;
  EXPECT_EQ(config.offsets_topic_num_partitions, 50);
  EXPECT_EQ(config.offsets_retention_ms, 10080LL * 60 * 1000);
  EXPECT_EQ(config.group_initial_rebalance_delay_ms, 3000);
  EXPECT_EQ(config.group_min_session_timeout_ms, 6000);
  EXPECT_EQ(config.group_max_session_timeout_ms, 1800000);
  ASSERT_TRUE(apply_setting(config, "offsets.topic.num.partitions", "3"));
  ASSERT_TRUE(apply_setting(config, "offsets.retention.minutes", "2"));
  ASSERT_TRUE(apply_setting(config, "group.initial.rebalance.delay.ms", "0"));
  ASSERT_TRUE(apply_setting(config, "group.min.session.timeout.ms", "100"));
  ASSERT_TRUE(apply_setting(config, "group.max.session.timeout.ms", "60000"));
  EXPECT_EQ(config.offsets_topic_num_partitions, 3);
  EXPECT_EQ(config.offsets_retention_ms, 120000);
  EXPECT_EQ(config.group_initial_rebalance_delay_ms, 0);
  EXPECT_FALSE(apply_setting(config, "offsets.topic.num.partitions", "0"));
}

}  // namespace
}  // namespace holdfast::server
