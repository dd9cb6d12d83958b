#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"
#include "server/handlers/leader_epoch_check.h"
#include "server/kafka_error.h"
#include "storage/leader_epoch_cache.h"

namespace holdfast::server {
namespace {

using protocol::ListOffsetsRequest;
using protocol::ListOffsetsResponse;

constexpr int64_t kLatest = -1;
constexpr int64_t kEarliest = -2;
constexpr int8_t kReadCommitted = 1;

// The leader epoch of the batch holding `offset` (the epoch whose range
// starts at or below it), -1 when the cache has none that old.
int32_t epoch_of_offset(const std::vector<storage::EpochEntry>& entries, int64_t offset) {
  int32_t epoch = kNoLeaderEpoch;
  for (const auto& entry : entries) {  // oldest first
    if (entry.start_offset > offset) break;
    epoch = entry.epoch;
  }
  return epoch;
}

}  // namespace

Awaitable<Response> handle_list_offsets(RequestContext& ctx) {
  auto request = decode_request<ListOffsetsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  ListOffsetsResponse response;
  for (const auto& topic : request->topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    const KafkaError denied = check_access(ctx, Access::list_offsets_topic, topic.name);
    for (const auto& partition : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = partition.partition_index;
      out.timestamp = -1;
      out.offset = -1;
      if (denied != KafkaError::none) {
        out.error_code = code(denied);
        continue;
      }
      auto replica = broker.replicas().get(topic.name, partition.partition_index);
      if (!replica) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      // Online, leading (a follower's high watermark lags: clients re-route
      // on NOT_LEADER_OR_FOLLOWER), KIP-320 current_leader_epoch (v4+).
      if (KafkaError refused = check_serving_leader(*replica, partition.current_leader_epoch);
          refused != KafkaError::none) {
        out.error_code = code(refused);
        continue;
      }
      out.error_code = code(KafkaError::none);
      // Consumers see up to the high watermark, read_committed ones (v2+)
      // up to the last stable offset: that is their "latest".
      const int64_t latest = request->isolation_level == kReadCommitted
                                 ? replica->last_stable_offset()
                                 : replica->high_watermark();
      const int64_t earliest = replica->log_start_offset();
      if (ctx.api_version == 0) {
        // v0: a list of offsets, newest first, at most max_num_offsets.
        if (partition.max_num_offsets > 0) {
          if (partition.timestamp == kEarliest) {
            out.old_style_offsets.push_back(earliest);
          } else if (partition.timestamp == kLatest) {
            out.old_style_offsets.push_back(latest);
          } else {
            // Segment-granular in Kafka; we answer with the first offset at or
            // after the timestamp, which is what clients use it for.
            auto found = replica->offset_for_timestamp(partition.timestamp);
            out.old_style_offsets.push_back(found ? std::min(found->offset, latest) : latest);
          }
        }
        continue;
      }
      // v4+: the leader epoch of the answer (KIP-320), as Kafka gives it:
      // the epoch of the batch at the offset (earliest, by timestamp), and
      // the latest epoch for "latest" (the offset past the last record).
      const auto epochs = ctx.api_version >= 4 ? replica->log().leader_epoch_entries()
                                               : std::vector<storage::EpochEntry>{};
      if (partition.timestamp == kEarliest) {
        out.offset = earliest;
        out.leader_epoch = epoch_of_offset(epochs, earliest);
      } else if (partition.timestamp == kLatest) {
        out.offset = latest;
        out.leader_epoch = epochs.empty() ? kNoLeaderEpoch : epochs.back().epoch;
      } else if (partition.timestamp < 0) {
        out.error_code = code(KafkaError::invalid_request);
      } else if (auto found = replica->offset_for_timestamp(partition.timestamp);
                 found && found->offset < latest) {
        // Kafka answers with the found record's own timestamp.
        out.offset = found->offset;
        out.timestamp = found->timestamp;
        out.leader_epoch = epoch_of_offset(epochs, found->offset);
      }
      // Not found: offset -1, timestamp -1, as Kafka answers.
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
