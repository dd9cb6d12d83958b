#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"

namespace holdfast::server {
namespace {

using protocol::ListOffsetsRequest;
using protocol::ListOffsetsResponse;

constexpr int64_t kLatest = -1;
constexpr int64_t kEarliest = -2;

}  // namespace

Awaitable<Response> handle_list_offsets(RequestContext& ctx) {
  auto request = decode_request<ListOffsetsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  ListOffsetsResponse response;
  for (const auto& topic : request->topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    for (const auto& partition : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = partition.partition_index;
      out.timestamp = -1;
      out.offset = -1;
      auto replica = broker.replicas().get(topic.name, partition.partition_index);
      if (!replica) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      if (auto online = replica->check_online(); !online) {  // a corrupt segment: KAFKA_STORAGE_ERROR
        out.error_code = code(to_kafka_error(online.code()));
        continue;
      }
      out.error_code = code(KafkaError::none);
      // Consumers see up to the high watermark (= the last stable offset while
      // there are no transactions), so "latest" is the high watermark.
      const int64_t latest = replica->high_watermark();
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
      if (partition.timestamp == kEarliest) {
        out.offset = earliest;
      } else if (partition.timestamp == kLatest) {
        out.offset = latest;
      } else if (partition.timestamp < 0) {
        out.error_code = code(KafkaError::invalid_request);
      } else if (auto found = replica->offset_for_timestamp(partition.timestamp);
                 found && found->offset < latest) {
        // Kafka answers with the found record's own timestamp.
        out.offset = found->offset;
        out.timestamp = found->timestamp;
      }
      // Not found: offset -1, timestamp -1, as Kafka answers.
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
