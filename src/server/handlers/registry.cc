#include <algorithm>

#include "server/handlers/handlers.h"

namespace holdfast::server {
namespace {

// Registers a handler for `Request`, checking at compile time that the
// advertised range lies inside what the schema (and so the codec) covers.
template <typename Request, int16_t Min, int16_t Max>
ApiHandler entry(HandlerFn fn) {
  static_assert(Min >= Request::kMinVersion && Max <= Request::kMaxVersion,
                "advertised versions must be covered by the schema");
  return ApiHandler{Request::kApiKey, Min, Max, fn};
}

// An inter-broker API: served, not advertised in ApiVersions.
template <typename Request, int16_t Min, int16_t Max>
ApiHandler inter_broker(HandlerFn fn) {
  ApiHandler h = entry<Request, Min, Max>(fn);
  h.advertised = false;
  return h;
}

// An API that needs the cluster: advertised only by a cluster node.
template <typename Request, int16_t Min, int16_t Max>
ApiHandler cluster_only(HandlerFn fn) {
  ApiHandler h = entry<Request, Min, Max>(fn);
  h.cluster_only = true;
  return h;
}

std::vector<ApiHandler> build() {
  using namespace protocol;
  std::vector<ApiHandler> table = {
      entry<ProduceRequest, 3, 7>(handle_produce),
      entry<FetchRequest, 4, 11>(handle_fetch),
      entry<ListOffsetsRequest, 0, 5>(handle_list_offsets),
      entry<MetadataRequest, 0, 9>(handle_metadata),
      entry<ApiVersionsRequest, 0, 3>(handle_api_versions),
      entry<CreateTopicsRequest, 0, 4>(handle_create_topics),
      entry<DeleteTopicsRequest, 0, 1>(handle_delete_topics),
      entry<DeleteRecordsRequest, 0, 1>(handle_delete_records),
      entry<DescribeConfigsRequest, 0, 1>(handle_describe_configs),
      entry<AlterConfigsRequest, 0, 1>(handle_alter_configs),
      entry<IncrementalAlterConfigsRequest, 0, 1>(handle_incremental_alter_configs),
      entry<CreatePartitionsRequest, 0, 1>(handle_create_partitions),
      entry<FindCoordinatorRequest, 0, 2>(handle_find_coordinator),
      entry<JoinGroupRequest, 0, 5>(handle_join_group),
      entry<SyncGroupRequest, 0, 3>(handle_sync_group),
      entry<HeartbeatRequest, 0, 3>(handle_heartbeat),
      entry<LeaveGroupRequest, 0, 3>(handle_leave_group),
      entry<OffsetCommitRequest, 0, 7>(handle_offset_commit),
      entry<OffsetFetchRequest, 0, 7>(handle_offset_fetch),
      entry<OffsetDeleteRequest, 0, 0>(handle_offset_delete),
      entry<ListGroupsRequest, 0, 4>(handle_list_groups),
      entry<DescribeGroupsRequest, 0, 4>(handle_describe_groups),
      entry<DeleteGroupsRequest, 0, 1>(handle_delete_groups),
      entry<InitProducerIdRequest, 0, 4>(handle_init_producer_id),
      entry<AddPartitionsToTxnRequest, 0, 4>(handle_add_partitions_to_txn),
      entry<AddOffsetsToTxnRequest, 0, 3>(handle_add_offsets_to_txn),
      entry<EndTxnRequest, 0, 3>(handle_end_txn),
      entry<TxnOffsetCommitRequest, 0, 3>(handle_txn_offset_commit),
      entry<DescribeTransactionsRequest, 0, 0>(handle_describe_transactions),
      entry<ListTransactionsRequest, 0, 0>(handle_list_transactions),
      entry<DescribeLogDirsRequest, 0, 3>(handle_describe_log_dirs),
      entry<DescribeProducersRequest, 0, 0>(handle_describe_producers),
      entry<OffsetForLeaderEpochRequest, 0, 4>(handle_offset_for_leader_epoch),
      entry<ElectLeadersRequest, 0, 2>(handle_elect_leaders),
      entry<AlterPartitionReassignmentsRequest, 0, 0>(handle_alter_partition_reassignments),
      entry<ListPartitionReassignmentsRequest, 0, 0>(handle_list_partition_reassignments),
      entry<DescribeClusterRequest, 0, 1>(handle_describe_cluster),
      cluster_only<DescribeQuorumRequest, 0, 1>(handle_describe_quorum),
      entry<SaslHandshakeRequest, 0, 1>(handle_sasl_handshake),
      entry<SaslAuthenticateRequest, 0, 2>(handle_sasl_authenticate),
      entry<DescribeUserScramCredentialsRequest, 0, 0>(handle_describe_user_scram_credentials),
      entry<AlterUserScramCredentialsRequest, 0, 0>(handle_alter_user_scram_credentials),
      entry<DescribeAclsRequest, 0, 3>(handle_describe_acls),
      entry<CreateAclsRequest, 0, 3>(handle_create_acls),
      entry<DeleteAclsRequest, 0, 3>(handle_delete_acls),
      entry<DescribeClientQuotasRequest, 0, 1>(handle_describe_client_quotas),
      entry<AlterClientQuotasRequest, 0, 1>(handle_alter_client_quotas),
      inter_broker<AlterPartitionRequest, 0, 1>(handle_alter_partition),
      inter_broker<BrokerRegistrationRequest, 0, 0>(handle_broker_registration),
      inter_broker<BrokerHeartbeatRequest, 0, 0>(handle_broker_heartbeat),
      inter_broker<WriteTxnMarkersRequest, 0, 1>(handle_write_txn_markers),
  };
  std::sort(table.begin(), table.end(),
            [](const ApiHandler& a, const ApiHandler& b) { return a.api_key < b.api_key; });
  return table;
}

}  // namespace

const std::vector<ApiHandler>& api_handlers() {
  static const std::vector<ApiHandler> table = build();
  return table;
}

const ApiHandler* find_api_handler(int16_t api_key) {
  for (const auto& h : api_handlers()) {
    if (h.api_key == api_key) return &h;
  }
  return nullptr;
}

}  // namespace holdfast::server
