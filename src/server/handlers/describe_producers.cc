// DescribeProducers (key 61, KIP-664): the producers each partition
// remembers (storage/producer_state.h), with the first offset of a
// producer's open transaction there (-1: none) and the coordinator epoch of
// the last marker written for it (-1: none). `holdfast txn abort` reads them.
#include "server/broker.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"
#include "server/security/access.h"

namespace holdfast::server {

Awaitable<Response> handle_describe_producers(RequestContext& ctx) {
  using protocol::DescribeProducersRequest;
  using protocol::DescribeProducersResponse;
  auto request = decode_request<DescribeProducersRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  DescribeProducersResponse response;
  for (const auto& topic : request->topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    const KafkaError denied = check_access(ctx, Access::describe_producers, topic.name);
    for (int32_t index : topic.partition_indexes) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = index;
      if (denied != KafkaError::none) {
        out.error_code = code(denied);
        continue;
      }
      auto replica = broker.replicas().get(topic.name, index);
      if (!replica) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      out.error_code = code(KafkaError::none);
      for (const auto& entry : replica->producer_states()) {
        auto& p = out.active_producers.emplace_back();
        p.producer_id = entry.producer_id;
        p.producer_epoch = entry.epoch;
        p.last_sequence = entry.last_sequence();
        p.last_timestamp = entry.batches.empty() ? -1 : entry.batches.back().max_timestamp;
        p.coordinator_epoch = entry.coordinator_epoch;
        p.current_txn_start_offset = entry.current_txn_first_offset;
      }
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
