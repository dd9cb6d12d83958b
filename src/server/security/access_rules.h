// What each API checks, in one table (issue 11): a row per check Kafka's
// KafkaApis makes, naming the API, the resource type, the operation and the
// error a refusal returns. Handlers never spell a (resource, operation) pair
// themselves: they call check_access (access.h) with the row's Access.
//
// Where a request names several resources (the topics of a Produce, Fetch or
// Metadata), the handler checks each one and answers the refused ones with
// the row's error in their own entries; the others proceed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "server/kafka_error.h"
#include "server/security/authorizer.h"

namespace holdfast::server::security {

enum class Access {
  produce_topic,               // Produce: each topic
  produce_transactional_id,    // Produce with transactional records
  fetch_consumer_topic,        // Fetch from a consumer: each topic
  fetch_follower,              // Fetch with replica_id >= 0 (a follower broker)
  list_offsets_topic,
  metadata_topic,              // Metadata: each topic (unauthorised ones hidden from "all")
  metadata_auto_create,        // Metadata creating a missing topic
  offset_commit_group,
  offset_commit_topic,
  offset_fetch_group,
  offset_fetch_topic,
  find_coordinator_group,
  find_coordinator_transaction,
  join_group,
  heartbeat,
  leave_group,
  sync_group,
  describe_groups,             // each group
  list_groups_all,             // Cluster Describe: every group ...
  list_groups_each,            // ... otherwise only those the principal may describe
  create_topics,               // each topic (or Create on the cluster)
  delete_topics,
  delete_records,
  init_producer_id_transactional,
  init_producer_id_idempotent, // IdempotentWrite on the cluster, or Write on any topic (KIP-679)
  offset_for_leader_epoch_topic,
  offset_for_leader_epoch_follower,
  add_partitions_to_txn_id,
  add_partitions_to_txn_topic,
  add_partitions_to_txn_verify, // v4+, broker to broker (KIP-890 verify_only)
  add_offsets_to_txn_id,
  add_offsets_to_txn_group,
  end_txn,
  write_txn_markers,
  txn_offset_commit_id,
  txn_offset_commit_group,
  txn_offset_commit_topic,
  describe_acls,
  create_acls,
  delete_acls,
  describe_configs_topic,
  describe_configs_broker,
  alter_configs_topic,
  alter_configs_broker,
  describe_log_dirs,
  create_partitions,
  delete_groups,
  elect_leaders,
  alter_partition_reassignments,
  list_partition_reassignments,
  offset_delete_group,
  offset_delete_topic,
  describe_user_scram_credentials,
  alter_user_scram_credentials,
  alter_partition,             // inter-broker
  broker_registration,         // inter-broker
  broker_heartbeat,            // inter-broker
  describe_producers,
  describe_transactions,
  list_transactions,           // each transactional id
  describe_quorum,
  describe_client_quotas,      // DescribeConfigs on the cluster (KIP-546)
  alter_client_quotas,         // AlterConfigs on the cluster
};

struct AccessRule {
  Access access;
  int16_t api_key;
  const char* api;
  AclResourceType resource;  // the resource checked (cluster: named kafka-cluster)
  AclOperation operation;
  KafkaError error;          // the answer when refused
  // Also allowed by this operation on the cluster (CreateTopics: Create on
  // the cluster or on the topic).
  std::optional<AclOperation> or_cluster = std::nullopt;
  // Allowed when the operation is allowed on SOME resource of the type
  // (KIP-679's authorizeByResourceType; InitProducerId without transactions).
  bool any_resource = false;
};

// Every row, in Access order (rule(a).access == a).
std::span<const AccessRule> access_rules();
const AccessRule& rule(Access access);

// The decision for one row: `name` is the resource's (ignored for cluster
// rows). KafkaError::none when allowed, else the row's error.
KafkaError decide(const AccessRule& rule, const AuthorizerConfig& config, const AclSet& acls,
                  std::string_view principal, std::string_view host, std::string_view name);

}  // namespace holdfast::server::security
