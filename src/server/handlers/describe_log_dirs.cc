// DescribeLogDirs (key 35): the broker's one log directory and, per partition,
// its size on disk (what kafka-log-dirs and kafka-ui show). A single node has
// no future logs (is_future_key false) and so no lag (offset_lag 0).
#include <filesystem>
#include <set>

#include "server/broker.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"
#include "server/kafka_error.h"

namespace holdfast::server {

Awaitable<Response> handle_describe_log_dirs(RequestContext& ctx) {
  using protocol::DescribeLogDirsRequest;
  using protocol::DescribeLogDirsResponse;
  auto request = decode_request<DescribeLogDirsRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<DescribeLogDirsResponse>(ctx, Access::describe_log_dirs)) co_return std::move(*denied);
  Broker& broker = ctx.broker;

  DescribeLogDirsResponse response;
  response.error_code = code(KafkaError::none);
  auto& dir = response.results.emplace_back();
  dir.error_code = code(KafkaError::none);
  std::error_code ec;
  auto absolute = std::filesystem::absolute(broker.replicas().data_dir(), ec);
  dir.log_dir = ec ? broker.replicas().data_dir() : absolute.lexically_normal().string();

  auto image = broker.topics().image();
  auto describe = [&](const std::string& topic, const std::vector<int32_t>& partitions) {
    DescribeLogDirsResponse::DescribeLogDirsTopic out;
    out.name = topic;
    for (int32_t p : partitions) {
      auto replica = broker.replicas().get(topic, p);
      if (!replica) continue;  // Kafka leaves out what this broker does not host
      auto& part = out.partitions.emplace_back();
      part.partition_index = p;
      part.partition_size = replica->size_bytes();
      part.offset_lag = 0;  // Kafka reports lag only for future (moving) logs
      part.is_future_key = false;
    }
    if (!out.partitions.empty()) dir.topics.push_back(std::move(out));
  };
  if (!request->topics) {
    for (const auto& [name, info] : image->topics) {
      std::vector<int32_t> all(size_t(info.partition_count));
      for (int32_t p = 0; p < info.partition_count; ++p) all[size_t(p)] = p;
      describe(name, all);
    }
  } else {
    for (const auto& topic : *request->topics) {
      std::set<int32_t> unique(topic.partitions.begin(), topic.partitions.end());
      describe(topic.topic, std::vector<int32_t>(unique.begin(), unique.end()));
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
