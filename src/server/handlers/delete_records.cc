#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"

namespace holdfast::server {

Awaitable<Response> handle_delete_records(RequestContext& ctx) {
  using protocol::DeleteRecordsRequest;
  using protocol::DeleteRecordsResponse;
  auto request = decode_request<DeleteRecordsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  DeleteRecordsResponse response;
  for (const auto& topic : request->topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.name = topic.name;
    for (const auto& partition : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = partition.partition_index;
      out.low_watermark = -1;
      storage::PartitionLog* log = broker.topics().log(topic.name, partition.partition_index);
      if (!log) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      // -1 means "up to the high watermark"; beyond it is out of range.
      int64_t target = partition.offset;
      if (target == -1) target = log->high_watermark();
      if (target < 0 || target > log->high_watermark()) {
        out.error_code = code(KafkaError::offset_out_of_range);
        continue;
      }
      auto deleted = log->delete_records_before(target);
      if (!deleted) {
        out.error_code = code(to_kafka_error(deleted.code()));
        continue;
      }
      out.error_code = code(KafkaError::none);
      out.low_watermark = *deleted;
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
