// One handler per API. Each decodes its request, does the work through the
// broker, and maps module errors to Kafka error codes at this boundary only.
#pragma once

#include "server/request.h"

namespace holdfast::server {

Awaitable<Response> handle_api_versions(RequestContext& ctx);
Awaitable<Response> handle_metadata(RequestContext& ctx);
Awaitable<Response> handle_produce(RequestContext& ctx);
Awaitable<Response> handle_fetch(RequestContext& ctx);
Awaitable<Response> handle_list_offsets(RequestContext& ctx);
Awaitable<Response> handle_create_topics(RequestContext& ctx);
Awaitable<Response> handle_delete_topics(RequestContext& ctx);
Awaitable<Response> handle_create_partitions(RequestContext& ctx);
Awaitable<Response> handle_describe_configs(RequestContext& ctx);
Awaitable<Response> handle_alter_configs(RequestContext& ctx);
Awaitable<Response> handle_incremental_alter_configs(RequestContext& ctx);
Awaitable<Response> handle_delete_records(RequestContext& ctx);
Awaitable<Response> handle_find_coordinator(RequestContext& ctx);
Awaitable<Response> handle_join_group(RequestContext& ctx);
Awaitable<Response> handle_sync_group(RequestContext& ctx);
Awaitable<Response> handle_heartbeat(RequestContext& ctx);
Awaitable<Response> handle_leave_group(RequestContext& ctx);
Awaitable<Response> handle_offset_commit(RequestContext& ctx);
Awaitable<Response> handle_offset_fetch(RequestContext& ctx);
Awaitable<Response> handle_offset_delete(RequestContext& ctx);
Awaitable<Response> handle_list_groups(RequestContext& ctx);
Awaitable<Response> handle_describe_groups(RequestContext& ctx);
Awaitable<Response> handle_delete_groups(RequestContext& ctx);
Awaitable<Response> handle_init_producer_id(RequestContext& ctx);
Awaitable<Response> handle_add_partitions_to_txn(RequestContext& ctx);
Awaitable<Response> handle_add_offsets_to_txn(RequestContext& ctx);
Awaitable<Response> handle_end_txn(RequestContext& ctx);
Awaitable<Response> handle_txn_offset_commit(RequestContext& ctx);
Awaitable<Response> handle_describe_transactions(RequestContext& ctx);
Awaitable<Response> handle_list_transactions(RequestContext& ctx);
Awaitable<Response> handle_describe_log_dirs(RequestContext& ctx);
Awaitable<Response> handle_describe_producers(RequestContext& ctx);
Awaitable<Response> handle_offset_for_leader_epoch(RequestContext& ctx);
Awaitable<Response> handle_write_txn_markers(RequestContext& ctx);  // inter-broker, key 27
// ACLs (acls.cc).
Awaitable<Response> handle_describe_acls(RequestContext& ctx);
Awaitable<Response> handle_create_acls(RequestContext& ctx);
Awaitable<Response> handle_delete_acls(RequestContext& ctx);
// The controller's inter-broker APIs (cluster_controller.cc).
Awaitable<Response> handle_broker_registration(RequestContext& ctx);
Awaitable<Response> handle_broker_heartbeat(RequestContext& ctx);
Awaitable<Response> handle_alter_partition(RequestContext& ctx);
Awaitable<Response> handle_describe_cluster(RequestContext& ctx);
// The metadata quorum (describe_quorum.h); cluster mode only.
Awaitable<Response> handle_describe_quorum(RequestContext& ctx);
// Need the cluster: answered with INVALID_REQUEST naming the limitation.
Awaitable<Response> handle_elect_leaders(RequestContext& ctx);
Awaitable<Response> handle_alter_partition_reassignments(RequestContext& ctx);
Awaitable<Response> handle_list_partition_reassignments(RequestContext& ctx);
// SASL outside an exchange (sasl.cc); user SCRAM credentials (user_scram.cc).
Awaitable<Response> handle_sasl_handshake(RequestContext& ctx);
Awaitable<Response> handle_sasl_authenticate(RequestContext& ctx);
Awaitable<Response> handle_describe_user_scram_credentials(RequestContext& ctx);
Awaitable<Response> handle_alter_user_scram_credentials(RequestContext& ctx);
// Client quotas (client_quotas.cc).
Awaitable<Response> handle_describe_client_quotas(RequestContext& ctx);
Awaitable<Response> handle_alter_client_quotas(RequestContext& ctx);

}  // namespace holdfast::server
