// ElectLeaders (43), AlterPartitionReassignments (45) and
// ListPartitionReassignments (46) need the cluster, which Holdfast does not
// have yet: it runs one node, every partition has one replica and this broker
// leads it. They are answered — never with an unknown-API close — with
// INVALID_REQUEST and a message naming the limitation, so that admin tools
// and UIs show why.
#include "server/broker.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"
#include "server/kafka_error.h"

namespace holdfast::server {
namespace {

constexpr const char* kSingleNode =
    "Holdfast runs a single node: every partition has one replica, led by this broker; "
    "leader election and partition reassignment need the cluster, which is not implemented yet";

}  // namespace

Awaitable<Response> handle_elect_leaders(RequestContext& ctx) {
  using protocol::ElectLeadersRequest;
  using protocol::ElectLeadersResponse;
  auto request = decode_request<ElectLeadersRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<ElectLeadersResponse>(ctx, Access::elect_leaders)) co_return std::move(*denied);
  ElectLeadersResponse response;
  // v1+ has a top-level code; v0 clients read the per-partition results only.
  response.error_code = code(KafkaError::invalid_request);
  auto answer = [&](const std::string& topic, const std::vector<int32_t>& partitions) {
    auto& out = response.replica_election_results.emplace_back();
    out.topic = topic;
    for (int32_t p : partitions) {
      auto& r = out.partition_result.emplace_back();
      r.partition_id = p;
      r.error_code = code(KafkaError::invalid_request);
      r.error_message = kSingleNode;
    }
  };
  if (request->topic_partitions) {
    for (const auto& tp : *request->topic_partitions) answer(tp.topic, tp.partitions);
  } else {
    auto image = ctx.broker.topics().image();
    for (const auto& [name, info] : image->topics) {
      std::vector<int32_t> all;
      for (int32_t p = 0; p < info.partition_count; ++p) all.push_back(p);
      answer(name, all);
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_alter_partition_reassignments(RequestContext& ctx) {
  using protocol::AlterPartitionReassignmentsRequest;
  using protocol::AlterPartitionReassignmentsResponse;
  auto request = decode_request<AlterPartitionReassignmentsRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<AlterPartitionReassignmentsResponse>(ctx, Access::alter_partition_reassignments)) co_return std::move(*denied);
  AlterPartitionReassignmentsResponse response;
  response.error_code = code(KafkaError::invalid_request);
  response.error_message = kSingleNode;
  for (const auto& topic : request->topics) {
    auto& out = response.responses.emplace_back();
    out.name = topic.name;
    for (const auto& partition : topic.partitions) {
      auto& r = out.partitions.emplace_back();
      r.partition_index = partition.partition_index;
      r.error_code = code(KafkaError::invalid_request);
      r.error_message = kSingleNode;
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_list_partition_reassignments(RequestContext& ctx) {
  using protocol::ListPartitionReassignmentsRequest;
  using protocol::ListPartitionReassignmentsResponse;
  auto request = decode_request<ListPartitionReassignmentsRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<ListPartitionReassignmentsResponse>(ctx, Access::list_partition_reassignments)) co_return std::move(*denied);
  ListPartitionReassignmentsResponse response;
  response.error_code = code(KafkaError::invalid_request);
  response.error_message = kSingleNode;
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
