// DescribeQuorum (55): see describe_quorum.h for what each field means.
#include "server/handlers/describe_quorum.h"

#include <chrono>

#include "server/broker.h"
#include "server/cluster/controller_service.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"
#include "server/security/access.h"

namespace holdfast::server {
namespace {

using protocol::DescribeQuorumRequest;
using protocol::DescribeQuorumResponse;
using ReplicaState = DescribeQuorumResponse::ReplicaState;

ReplicaState replica_state(const QuorumView& view, int32_t id) {
  ReplicaState out;
  out.replica_id = id;
  if (id == view.node_id) {
    // The leader itself: its own applied index, caught up by definition.
    out.log_end_offset = view.applied_record_index;
    out.last_fetch_timestamp = -1;
    out.last_caught_up_timestamp = view.now_wall_ms;
    return out;
  }
  out.log_end_offset = -1;
  if (auto it = view.progress.find(id); it != view.progress.end()) {
    out.log_end_offset = it->second.applied_index;
    out.last_fetch_timestamp = it->second.last_heartbeat_wall_ms;
    out.last_caught_up_timestamp = it->second.last_caught_up_wall_ms;
  }
  return out;
}

void describe_partition(const QuorumView& view, DescribeQuorumResponse::PartitionData& out) {
  out.leader_id = view.status.leader_id;
  out.leader_epoch = static_cast<int32_t>(view.status.term);
  if (!view.active_controller) {
    out.error_code = code(KafkaError::not_leader_or_follower);
    return;
  }
  out.error_code = code(KafkaError::none);
  out.leader_id = view.node_id;
  out.high_watermark = view.applied_record_index;
  for (const auto& member : view.status.members) {
    auto& list = member.role == metadata::MemberRole::voter ? out.current_voters : out.observers;
    list.push_back(replica_state(view, member.id));
  }
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

DescribeQuorumResponse describe_quorum(const DescribeQuorumRequest& request,
                                       const QuorumView& view) {
  DescribeQuorumResponse response;
  if (!view.cluster_mode) {
    response.error_code = code(KafkaError::unsupported_version);
    return response;
  }
  response.error_code = code(KafkaError::none);
  for (const auto& topic : request.topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.topic_name = topic.topic_name;
    for (const auto& p : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = p.partition_index;
      out.leader_id = -1;
      if (topic.topic_name != kMetadataTopic || p.partition_index != 0) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      describe_partition(view, out);
    }
  }
  return response;
}

Awaitable<Response> handle_describe_quorum(RequestContext& ctx) {
  auto request = decode_request<DescribeQuorumRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<DescribeQuorumResponse>(ctx, Access::describe_quorum)) {
    co_return std::move(*denied);
  }
  Broker& broker = ctx.broker;
  QuorumView view;
  view.cluster_mode = broker.cluster_mode() && broker.raft() != nullptr;
  view.node_id = broker.node_id();
  view.now_wall_ms = wall_ms();
  if (view.cluster_mode) {
    auto* service = broker.controller_service();
    view.status = broker.raft()->status();
    view.active_controller = service != nullptr && service->active();
    // Empty when this node is not (or no longer) the active controller.
    if (view.active_controller) view.progress = service->broker_progress();
    view.applied_record_index = broker.metadata_log().current()->last_record_index;
  }
  DescribeQuorumResponse response = describe_quorum(*request, view);
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
