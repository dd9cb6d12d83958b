#include "server/security/access_rules.h"

#include <array>
#include <cstdlib>

#include "base/log.h"

namespace holdfast::server::security {
namespace {

using T = AclResourceType;
using Op = AclOperation;
using E = KafkaError;

constexpr auto kTopic = E::topic_authorization_failed;
constexpr auto kGroup = E::group_authorization_failed;
constexpr auto kCluster = E::cluster_authorization_failed;
constexpr auto kTxn = E::transactional_id_authorization_failed;

// The table. Kafka's KafkaApis checks, one per row; comments note where
// Holdfast chose between Kafka's variants.
const AccessRule kRules[] = {
    {Access::produce_topic, 0, "Produce", T::topic, Op::write, kTopic},
    {Access::produce_transactional_id, 0, "Produce", T::transactional_id, Op::write, kTxn},
    {Access::fetch_consumer_topic, 1, "Fetch", T::topic, Op::read, kTopic},
    // Kafka answers a refused follower per partition with TOPIC_AUTHORIZATION_FAILED.
    {Access::fetch_follower, 1, "Fetch", T::cluster, Op::cluster_action, kTopic},
    {Access::list_offsets_topic, 2, "ListOffsets", T::topic, Op::describe, kTopic},
    {Access::metadata_topic, 3, "Metadata", T::topic, Op::describe, kTopic},
    {Access::metadata_auto_create, 3, "Metadata", T::topic, Op::create, kTopic, Op::create},
    {Access::offset_commit_group, 8, "OffsetCommit", T::group, Op::read, kGroup},
    {Access::offset_commit_topic, 8, "OffsetCommit", T::topic, Op::read, kTopic},
    // Kafka checks Describe here (Read implies it).
    {Access::offset_fetch_group, 9, "OffsetFetch", T::group, Op::describe, kGroup},
    {Access::offset_fetch_topic, 9, "OffsetFetch", T::topic, Op::describe, kTopic},
    {Access::find_coordinator_group, 10, "FindCoordinator", T::group, Op::describe, kGroup},
    {Access::find_coordinator_transaction, 10, "FindCoordinator", T::transactional_id, Op::describe, kTxn},
    {Access::join_group, 11, "JoinGroup", T::group, Op::read, kGroup},
    {Access::heartbeat, 12, "Heartbeat", T::group, Op::read, kGroup},
    {Access::leave_group, 13, "LeaveGroup", T::group, Op::read, kGroup},
    {Access::sync_group, 14, "SyncGroup", T::group, Op::read, kGroup},
    {Access::describe_groups, 15, "DescribeGroups", T::group, Op::describe, kGroup},
    {Access::list_groups_all, 16, "ListGroups", T::cluster, Op::describe, kCluster},
    {Access::list_groups_each, 16, "ListGroups", T::group, Op::describe, kGroup},
    {Access::create_topics, 19, "CreateTopics", T::topic, Op::create, kTopic, Op::create},
    {Access::delete_topics, 20, "DeleteTopics", T::topic, Op::remove, kTopic},
    {Access::delete_records, 21, "DeleteRecords", T::topic, Op::remove, kTopic},
    {Access::init_producer_id_transactional, 22, "InitProducerId", T::transactional_id, Op::write, kTxn},
    // KIP-679 (Kafka 2.8+): IdempotentWrite on the cluster, or Write on any topic.
    {Access::init_producer_id_idempotent, 22, "InitProducerId", T::topic, Op::write, kCluster,
     Op::idempotent_write, true},
    {Access::offset_for_leader_epoch_topic, 23, "OffsetForLeaderEpoch", T::topic, Op::describe, kTopic},
    {Access::offset_for_leader_epoch_follower, 23, "OffsetForLeaderEpoch", T::cluster, Op::cluster_action, kTopic},
    {Access::add_partitions_to_txn_id, 24, "AddPartitionsToTxn", T::transactional_id, Op::write, kTxn},
    {Access::add_partitions_to_txn_topic, 24, "AddPartitionsToTxn", T::topic, Op::write, kTopic},
    {Access::add_partitions_to_txn_verify, 24, "AddPartitionsToTxn", T::cluster, Op::cluster_action, kCluster},
    {Access::add_offsets_to_txn_id, 25, "AddOffsetsToTxn", T::transactional_id, Op::write, kTxn},
    {Access::add_offsets_to_txn_group, 25, "AddOffsetsToTxn", T::group, Op::read, kGroup},
    {Access::end_txn, 26, "EndTxn", T::transactional_id, Op::write, kTxn},
    {Access::write_txn_markers, 27, "WriteTxnMarkers", T::cluster, Op::cluster_action, kCluster},
    {Access::txn_offset_commit_id, 28, "TxnOffsetCommit", T::transactional_id, Op::write, kTxn},
    {Access::txn_offset_commit_group, 28, "TxnOffsetCommit", T::group, Op::read, kGroup},
    {Access::txn_offset_commit_topic, 28, "TxnOffsetCommit", T::topic, Op::read, kTopic},
    {Access::describe_acls, 29, "DescribeAcls", T::cluster, Op::describe, kCluster},
    {Access::create_acls, 30, "CreateAcls", T::cluster, Op::alter, kCluster},
    {Access::delete_acls, 31, "DeleteAcls", T::cluster, Op::alter, kCluster},
    {Access::describe_configs_topic, 32, "DescribeConfigs", T::topic, Op::describe_configs, kTopic},
    {Access::describe_configs_broker, 32, "DescribeConfigs", T::cluster, Op::describe_configs, kCluster},
    {Access::alter_configs_topic, 33, "AlterConfigs", T::topic, Op::alter_configs, kTopic},
    {Access::alter_configs_broker, 33, "AlterConfigs", T::cluster, Op::alter_configs, kCluster},
    {Access::describe_log_dirs, 35, "DescribeLogDirs", T::cluster, Op::describe, kCluster},
    {Access::create_partitions, 37, "CreatePartitions", T::topic, Op::alter, kTopic},
    {Access::delete_groups, 42, "DeleteGroups", T::group, Op::remove, kGroup},
    {Access::elect_leaders, 43, "ElectLeaders", T::cluster, Op::alter, kCluster},
    {Access::alter_partition_reassignments, 45, "AlterPartitionReassignments", T::cluster, Op::alter, kCluster},
    {Access::list_partition_reassignments, 46, "ListPartitionReassignments", T::cluster, Op::describe, kCluster},
    {Access::offset_delete_group, 47, "OffsetDelete", T::group, Op::remove, kGroup},
    {Access::offset_delete_topic, 47, "OffsetDelete", T::topic, Op::read, kTopic},
    {Access::describe_user_scram_credentials, 50, "DescribeUserScramCredentials", T::cluster, Op::describe, kCluster},
    {Access::alter_user_scram_credentials, 51, "AlterUserScramCredentials", T::cluster, Op::alter, kCluster},
    {Access::alter_partition, 56, "AlterPartition", T::cluster, Op::cluster_action, kCluster},
    {Access::broker_registration, 62, "BrokerRegistration", T::cluster, Op::cluster_action, kCluster},
    {Access::broker_heartbeat, 63, "BrokerHeartbeat", T::cluster, Op::cluster_action, kCluster},
    {Access::describe_producers, 61, "DescribeProducers", T::topic, Op::read, kTopic},
    {Access::describe_transactions, 65, "DescribeTransactions", T::transactional_id, Op::describe, kTxn},
    {Access::list_transactions, 66, "ListTransactions", T::transactional_id, Op::describe, kTxn},
    {Access::describe_quorum, 55, "DescribeQuorum", T::cluster, Op::describe, kCluster},
    {Access::describe_client_quotas, 48, "DescribeClientQuotas", T::cluster, Op::describe_configs, kCluster},
    {Access::alter_client_quotas, 49, "AlterClientQuotas", T::cluster, Op::alter_configs, kCluster},
};

constexpr size_t kRuleCount = sizeof(kRules) / sizeof(kRules[0]);
static_assert(kRuleCount == size_t(Access::alter_client_quotas) + 1, "one row per Access");

}  // namespace

std::span<const AccessRule> access_rules() { return {kRules, kRuleCount}; }

const AccessRule& rule(Access access) {
  const AccessRule& r = kRules[size_t(access)];
  if (r.access != access) {
    HF_ERROR("access table out of order at row {}", int(access));
    std::abort();
  }
  return r;
}

KafkaError decide(const AccessRule& r, const AuthorizerConfig& config, const AclSet& acls,
                  std::string_view principal, std::string_view host, std::string_view name) {
  if (!config.enabled) return KafkaError::none;
  const std::string_view resource_name = r.resource == T::cluster ? kClusterName : name;
  bool allowed = r.any_resource
                     ? authorize_any(config, acls, principal, host, r.resource, r.operation)
                     : authorize(config, acls, principal, host, r.resource, resource_name, r.operation);
  if (!allowed && r.or_cluster) {
    allowed = authorize(config, acls, principal, host, T::cluster, kClusterName, *r.or_cluster);
  }
  return allowed ? KafkaError::none : r.error;
}

}  // namespace holdfast::server::security
