#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"

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
    const KafkaError denied = check_access(ctx, Access::delete_records, topic.name);
    for (const auto& partition : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = partition.partition_index;
      out.low_watermark = -1;
      if (denied != KafkaError::none) {
        out.error_code = code(denied);
        continue;
      }
      auto replica = broker.replicas().get(topic.name, partition.partition_index);
      if (!replica) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      // -1 means "up to the high watermark"; beyond it (or negative) is
      // offset_out_of_range, decided by the partition.
      auto deleted = replica->delete_records_before(partition.offset);
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
