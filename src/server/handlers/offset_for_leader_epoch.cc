// OffsetForLeaderEpoch (key 23, KIP-101/279/320): for each partition, the
// largest leader epoch <= the requested one this log knows and the offset
// where it ended (storage::LeaderEpochCache::end_offset_for; the latest epoch
// ends at the log end offset). Consumers use it to detect a truncated log
// after a leader change (KIP-320), followers to truncate by epoch.
// current_leader_epoch is checked first (leader_epoch_check.h). replica_id
// (v3+) needs no special case on a single node: this broker leads every
// partition.
#include "replication/replica_manager.h"
#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"
#include "server/handlers/leader_epoch_check.h"
#include "server/kafka_error.h"
#include "server/topic_manager.h"

namespace holdfast::server {

Awaitable<Response> handle_offset_for_leader_epoch(RequestContext& ctx) {
  using protocol::OffsetForLeaderEpochRequest;
  using protocol::OffsetForLeaderEpochResponse;
  auto request = decode_request<OffsetForLeaderEpochRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  OffsetForLeaderEpochResponse response;
  for (const auto& topic : request->topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.topic = topic.topic;
    const KafkaError denied =
        request->replica_id >= 0 ? check_access(ctx, Access::offset_for_leader_epoch_follower)
                                 : check_access(ctx, Access::offset_for_leader_epoch_topic, topic.topic);
    for (const auto& partition : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition = partition.partition;
      out.leader_epoch = storage::kUndefinedEpoch;
      out.end_offset = storage::kUndefinedEpochOffset;
      if (denied != KafkaError::none) {
        out.error_code = code(denied);
        continue;
      }
      auto replica = broker.replicas().get(topic.topic, partition.partition);
      storage::PartitionLog* log = replica ? &replica->log() : nullptr;
      if (!log) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      if (auto online = log->check_online(); !online) {  // a corrupt segment: KAFKA_STORAGE_ERROR
        out.error_code = code(to_kafka_error(online.code()));
        continue;
      }
      KafkaError fenced =
          check_current_leader_epoch(partition.current_leader_epoch, log->leader_epoch());
      if (fenced != KafkaError::none) {
        out.error_code = code(fenced);
        continue;
      }
      auto found = log->end_offset_for_epoch(partition.leader_epoch);
      if (!found) {
        out.error_code = code(to_kafka_error(found.code()));
        continue;
      }
      out.error_code = code(KafkaError::none);
      out.leader_epoch = found->epoch;
      out.end_offset = found->end_offset;
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
