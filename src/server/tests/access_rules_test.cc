// The access table, one test per row: each row says what Kafka checks for
// its API (the expectation below is written independently of the table), and
// the decision for the row allows a principal granted exactly that operation
// on exactly that resource, and refuses with the row's error a principal
// without it.
#include <gtest/gtest.h>

#include <map>

#include "server/security/access_rules.h"

namespace holdfast::server::security {
namespace {

using R = AclResourceType;
using Op = AclOperation;
using E = KafkaError;

struct Expected {
  int16_t api_key;
  R resource;
  Op operation;
  E error;
};

const std::map<Access, Expected>& expectations() {
  static const std::map<Access, Expected> table = {
      {Access::produce_topic, {0, R::topic, Op::write, E::topic_authorization_failed}},
      {Access::produce_transactional_id, {0, R::transactional_id, Op::write, E::transactional_id_authorization_failed}},
      {Access::fetch_consumer_topic, {1, R::topic, Op::read, E::topic_authorization_failed}},
      {Access::fetch_follower, {1, R::cluster, Op::cluster_action, E::topic_authorization_failed}},
      {Access::list_offsets_topic, {2, R::topic, Op::describe, E::topic_authorization_failed}},
      {Access::metadata_topic, {3, R::topic, Op::describe, E::topic_authorization_failed}},
      {Access::metadata_auto_create, {3, R::topic, Op::create, E::topic_authorization_failed}},
      {Access::offset_commit_group, {8, R::group, Op::read, E::group_authorization_failed}},
      {Access::offset_commit_topic, {8, R::topic, Op::read, E::topic_authorization_failed}},
      {Access::offset_fetch_group, {9, R::group, Op::describe, E::group_authorization_failed}},
      {Access::offset_fetch_topic, {9, R::topic, Op::describe, E::topic_authorization_failed}},
      {Access::find_coordinator_group, {10, R::group, Op::describe, E::group_authorization_failed}},
      {Access::find_coordinator_transaction, {10, R::transactional_id, Op::describe, E::transactional_id_authorization_failed}},
      {Access::join_group, {11, R::group, Op::read, E::group_authorization_failed}},
      {Access::heartbeat, {12, R::group, Op::read, E::group_authorization_failed}},
      {Access::leave_group, {13, R::group, Op::read, E::group_authorization_failed}},
      {Access::sync_group, {14, R::group, Op::read, E::group_authorization_failed}},
      {Access::describe_groups, {15, R::group, Op::describe, E::group_authorization_failed}},
      {Access::list_groups_all, {16, R::cluster, Op::describe, E::cluster_authorization_failed}},
      {Access::list_groups_each, {16, R::group, Op::describe, E::group_authorization_failed}},
      {Access::create_topics, {19, R::topic, Op::create, E::topic_authorization_failed}},
      {Access::delete_topics, {20, R::topic, Op::remove, E::topic_authorization_failed}},
      {Access::delete_records, {21, R::topic, Op::remove, E::topic_authorization_failed}},
      {Access::init_producer_id_transactional, {22, R::transactional_id, Op::write, E::transactional_id_authorization_failed}},
      {Access::init_producer_id_idempotent, {22, R::topic, Op::write, E::cluster_authorization_failed}},
      {Access::offset_for_leader_epoch_topic, {23, R::topic, Op::describe, E::topic_authorization_failed}},
      {Access::offset_for_leader_epoch_follower, {23, R::cluster, Op::cluster_action, E::topic_authorization_failed}},
      {Access::add_partitions_to_txn_id, {24, R::transactional_id, Op::write, E::transactional_id_authorization_failed}},
      {Access::add_partitions_to_txn_topic, {24, R::topic, Op::write, E::topic_authorization_failed}},
      {Access::add_partitions_to_txn_verify, {24, R::cluster, Op::cluster_action, E::cluster_authorization_failed}},
      {Access::add_offsets_to_txn_id, {25, R::transactional_id, Op::write, E::transactional_id_authorization_failed}},
      {Access::add_offsets_to_txn_group, {25, R::group, Op::read, E::group_authorization_failed}},
      {Access::end_txn, {26, R::transactional_id, Op::write, E::transactional_id_authorization_failed}},
      {Access::write_txn_markers, {27, R::cluster, Op::cluster_action, E::cluster_authorization_failed}},
      {Access::txn_offset_commit_id, {28, R::transactional_id, Op::write, E::transactional_id_authorization_failed}},
      {Access::txn_offset_commit_group, {28, R::group, Op::read, E::group_authorization_failed}},
      {Access::txn_offset_commit_topic, {28, R::topic, Op::read, E::topic_authorization_failed}},
      {Access::describe_acls, {29, R::cluster, Op::describe, E::cluster_authorization_failed}},
      {Access::create_acls, {30, R::cluster, Op::alter, E::cluster_authorization_failed}},
      {Access::delete_acls, {31, R::cluster, Op::alter, E::cluster_authorization_failed}},
      {Access::describe_configs_topic, {32, R::topic, Op::describe_configs, E::topic_authorization_failed}},
      {Access::describe_configs_broker, {32, R::cluster, Op::describe_configs, E::cluster_authorization_failed}},
      {Access::alter_configs_topic, {33, R::topic, Op::alter_configs, E::topic_authorization_failed}},
      {Access::alter_configs_broker, {33, R::cluster, Op::alter_configs, E::cluster_authorization_failed}},
      {Access::describe_log_dirs, {35, R::cluster, Op::describe, E::cluster_authorization_failed}},
      {Access::create_partitions, {37, R::topic, Op::alter, E::topic_authorization_failed}},
      {Access::delete_groups, {42, R::group, Op::remove, E::group_authorization_failed}},
      {Access::elect_leaders, {43, R::cluster, Op::alter, E::cluster_authorization_failed}},
      {Access::alter_partition_reassignments, {45, R::cluster, Op::alter, E::cluster_authorization_failed}},
      {Access::list_partition_reassignments, {46, R::cluster, Op::describe, E::cluster_authorization_failed}},
      {Access::offset_delete_group, {47, R::group, Op::remove, E::group_authorization_failed}},
      {Access::offset_delete_topic, {47, R::topic, Op::read, E::topic_authorization_failed}},
      {Access::describe_user_scram_credentials, {50, R::cluster, Op::describe, E::cluster_authorization_failed}},
      {Access::alter_user_scram_credentials, {51, R::cluster, Op::alter, E::cluster_authorization_failed}},
      {Access::alter_partition, {56, R::cluster, Op::cluster_action, E::cluster_authorization_failed}},
      {Access::broker_registration, {62, R::cluster, Op::cluster_action, E::cluster_authorization_failed}},
      {Access::broker_heartbeat, {63, R::cluster, Op::cluster_action, E::cluster_authorization_failed}},
      {Access::describe_producers, {61, R::topic, Op::read, E::topic_authorization_failed}},
      {Access::describe_transactions, {65, R::transactional_id, Op::describe, E::transactional_id_authorization_failed}},
      {Access::list_transactions, {66, R::transactional_id, Op::describe, E::transactional_id_authorization_failed}},
      {Access::describe_quorum, {55, R::cluster, Op::describe, E::cluster_authorization_failed}},
      {Access::describe_client_quotas, {48, R::cluster, Op::describe_configs, E::cluster_authorization_failed}},
      {Access::alter_client_quotas, {49, R::cluster, Op::alter_configs, E::cluster_authorization_failed}},
  };
  return table;
}

const AuthorizerConfig kOn{true, false, {}};
constexpr std::string_view kName = "res-1";

AclBinding grant(R type, Op op, AclPermission permission = AclPermission::allow,
                 std::string principal = "User:alice") {
  return AclBinding{type, type == R::cluster ? std::string(kClusterName) : std::string(kName),
                    AclPatternType::literal, std::move(principal), "*", op, permission};
}

class AccessRow : public testing::TestWithParam<AccessRule> {};

TEST_P(AccessRow, ChecksWhatKafkaChecks) {
  const AccessRule& row = GetParam();
  EXPECT_EQ(rule(row.access).access, row.access);  // rows are in Access order
  auto it = expectations().find(row.access);
  ASSERT_NE(it, expectations().end()) << row.api << ": a row without an expectation";
  EXPECT_EQ(row.api_key, it->second.api_key) << row.api;
  EXPECT_EQ(row.resource, it->second.resource) << row.api;
  EXPECT_EQ(row.operation, it->second.operation) << row.api;
  EXPECT_EQ(row.error, it->second.error) << row.api;
}

TEST_P(AccessRow, AllowsTheGrantRefusesWithoutIt) {
  const AccessRule& row = GetParam();
  // Granted exactly the row's operation on the resource.
  AclSet granted{grant(row.resource, row.operation)};
  EXPECT_EQ(decide(row, kOn, granted, "User:alice", "10.0.0.1", kName), E::none) << row.api;
  // Nothing granted: the row's error.
  EXPECT_EQ(decide(row, kOn, {}, "User:alice", "10.0.0.1", kName), row.error) << row.api;
  // Granted to someone else only.
  AclSet others{grant(row.resource, row.operation, AclPermission::allow, "User:bob")};
  EXPECT_EQ(decide(row, kOn, others, "User:alice", "10.0.0.1", kName), row.error) << row.api;
  // Granted and denied: denied.
  AclSet both{grant(row.resource, row.operation), grant(row.resource, row.operation, AclPermission::deny)};
  EXPECT_EQ(decide(row, kOn, both, "User:alice", "10.0.0.1", kName), row.error) << row.api;
  // Authoriser off: allowed.
  EXPECT_EQ(decide(row, AuthorizerConfig{}, {}, "User:alice", "10.0.0.1", kName), E::none) << row.api;
  // The cluster-wide alternative, where the row has one.
  if (row.or_cluster) {
    AclSet cluster{grant(R::cluster, *row.or_cluster)};
    EXPECT_EQ(decide(row, kOn, cluster, "User:alice", "10.0.0.1", kName), E::none) << row.api;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, AccessRow, testing::ValuesIn(access_rules().begin(), access_rules().end()),
                         [](const testing::TestParamInfo<AccessRule>& info) {
                           return std::string(info.param.api) + "_" + std::to_string(info.index);
                         });

TEST(AccessTable, EveryExpectationHasARow) {
  EXPECT_EQ(access_rules().size(), expectations().size());
}

TEST(AccessTable, CreateTopicsAcceptsCreateOnTheCluster) {
  const auto& row = rule(Access::create_topics);
  ASSERT_TRUE(row.or_cluster);
  EXPECT_EQ(*row.or_cluster, Op::create);
}

TEST(AccessTable, IdempotentProducerNeedsWriteOnSomeTopicOrIdempotentWrite) {
  const auto& row = rule(Access::init_producer_id_idempotent);
  AclSet write_elsewhere{AclBinding{R::topic, "other", AclPatternType::prefixed, "User:alice", "*",
                                    Op::write, AclPermission::allow}};
  EXPECT_EQ(decide(row, kOn, write_elsewhere, "User:alice", "h", ""), E::none);
  AclSet idempotent{grant(R::cluster, Op::idempotent_write)};
  EXPECT_EQ(decide(row, kOn, idempotent, "User:alice", "h", ""), E::none);
  EXPECT_EQ(decide(row, kOn, {grant(R::topic, Op::read)}, "User:alice", "h", ""),
            E::cluster_authorization_failed);
}

}  // namespace
}  // namespace holdfast::server::security
