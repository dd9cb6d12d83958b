// OffsetCommit, OffsetFetch and OffsetDelete. A commit is answered once its
// record in __consumer_offsets is durable.
#include "base/clock.h"
#include "server/broker.h"
#include "server/handlers/group_errors.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"

namespace holdfast::server {
namespace {

bool partition_exists(Broker& broker, const std::string& topic, int32_t partition) {
  const auto* info = broker.topics().image()->find_topic(topic);
  return info && partition >= 0 && partition < info->partition_count;
}

// What the commit handler awaits. Not coroutines: the lambda lives in the
// awaitable's initiation, not in the handler's frame (async.h).
auto commit(coordinator::GroupCoordinator& groups, coordinator::CommitParams& params) {
  return await_callback<coordinator::CommitResult>(
      [&groups, &params](std::function<void(coordinator::CommitResult)> done) {
        groups.commit(std::move(params), std::move(done));
      });
}
// The commit's outcome, or nullopt once `timeout` passed first.
auto commit_within(coordinator::GroupCoordinator& groups, coordinator::CommitParams& params,
                   std::chrono::milliseconds timeout) {
  return await_callback_for<coordinator::CommitResult>(
      [&groups, &params](std::function<void(coordinator::CommitResult)> done) {
        groups.commit(std::move(params), std::move(done));
      },
      timeout);
}

}  // namespace

Awaitable<Response> handle_offset_commit(RequestContext& ctx) {
  using protocol::OffsetCommitRequest;
  using protocol::OffsetCommitResponse;
  auto request = decode_request<OffsetCommitRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  OffsetCommitResponse response;
  coordinator::CommitParams params;
  params.group_id = request->group_id;
  params.generation = ctx.api_version >= 1 ? request->generation_id : -1;
  params.member_id = request->member_id;
  params.group_instance_id = request->group_instance_id;
  // Which response slot each committed entry answers.
  std::vector<std::pair<size_t, size_t>> slots;
  int64_t now = wall_clock_ms();
  const KafkaError group_denied = check_access(ctx, Access::offset_commit_group, request->group_id);
  for (const auto& topic : request->topics) {
    auto& out_topic = response.topics.emplace_back();
    out_topic.name = topic.name;
    const KafkaError denied = group_denied != KafkaError::none
                                  ? group_denied
                                  : check_access(ctx, Access::offset_commit_topic, topic.name);
    for (const auto& p : topic.partitions) {
      auto& out = out_topic.partitions.emplace_back();
      out.partition_index = p.partition_index;
      if (denied != KafkaError::none) {
        out.error_code = code(denied);
        continue;
      }
      if (!partition_exists(broker, topic.name, p.partition_index)) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      coordinator::OffsetCommitEntry entry;
      entry.tp = {topic.name, p.partition_index};
      entry.offset = p.committed_offset;
      entry.leader_epoch = p.committed_leader_epoch;
      entry.metadata = p.committed_metadata;
      if (ctx.api_version >= 2 && ctx.api_version <= 4 && request->retention_time_ms >= 0) {
        entry.expire_timestamp_ms = now + request->retention_time_ms;
      }
      params.offsets.push_back(std::move(entry));
      slots.emplace_back(response.topics.size() - 1, out_topic.partitions.size() - 1);
    }
  }
  if (!params.offsets.empty()) {
    // In a cluster a commit is answered once the high watermark of its
    // __consumer_offsets partition passes it, or REQUEST_TIMED_OUT after
    // offsets.commit.timeout.ms (Kafka's), which clients retry, rather than
    // at their socket timeout. The record stays in the log and takes effect
    // if it replicates later. A single node waits for its own fsync only.
    std::optional<coordinator::CommitResult> result;
    if (broker.cluster_mode()) {
      const std::chrono::milliseconds timeout(broker.config().offsets_commit_timeout_ms);
      result = co_await commit_within(broker.groups(), params, timeout);
    } else {
      result = co_await commit(broker.groups(), params);
    }
    for (size_t i = 0; i < slots.size(); ++i) {
      auto& out = response.topics[slots[i].first].partitions[slots[i].second];
      if (!result) {
        out.error_code = code(KafkaError::request_timed_out);
      } else if (i < result->errors.size()) {
        out.error_code = group_error_code(result->errors[i]);
      }
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_offset_fetch(RequestContext& ctx) {
  using protocol::OffsetFetchRequest;
  using protocol::OffsetFetchResponse;
  auto request = decode_request<OffsetFetchRequest>(ctx);
  if (!request) co_return close_connection();

  std::optional<std::vector<coordinator::TopicPartitionKey>> wanted;
  if (request->topics) {
    wanted.emplace();
    for (const auto& t : *request->topics) {
      for (int32_t p : t.partition_indexes) wanted->push_back({t.name, p});
    }
  }
  auto result = ctx.broker.groups().fetch_offsets(request->group_id, wanted,
                                                  ctx.api_version >= 7 && request->require_stable);
  const KafkaError group_denied = check_access(ctx, Access::offset_fetch_group, request->group_id);
  OffsetFetchResponse response;
  const int16_t group_error =
      group_denied != KafkaError::none ? code(group_denied) : group_error_code(result.error);
  if (ctx.api_version >= 2) response.error_code = group_error;

  auto add = [&](const coordinator::TopicPartitionKey& tp, int64_t offset, int32_t epoch,
                 const std::optional<std::string>& metadata, int16_t error) {
    if (response.topics.empty() || response.topics.back().name != tp.topic) {
      response.topics.emplace_back().name = tp.topic;
    }
    auto& out = response.topics.back().partitions.emplace_back();
    out.partition_index = tp.partition;
    out.committed_offset = offset;
    out.committed_leader_epoch = epoch;
    // Kafka stores a null commit metadata as "" and answers "" when nothing
    // was committed.
    out.metadata = metadata.value_or("");
    out.error_code = error;
  };
  if (result.error != coordinator::GroupErrc::none || group_denied != KafkaError::none) {
    // v0-1 have no top-level error: every partition carries it.
    if (ctx.api_version < 2 && wanted) {
      for (const auto& tp : *wanted) add(tp, -1, -1, std::nullopt, group_error);
    }
  } else {
    for (const auto& f : result.offsets) {
      // Topics the principal may not describe: refused when asked for, left
      // out of "all topics" (Kafka's rule).
      if (KafkaError denied = check_access(ctx, Access::offset_fetch_topic, f.tp.topic);
          denied != KafkaError::none) {
        if (wanted) add(f.tp, -1, -1, std::nullopt, code(denied));
        continue;
      }
      add(f.tp, f.offset, f.leader_epoch, f.metadata, group_error_code(f.error));
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_offset_delete(RequestContext& ctx) {
  using protocol::OffsetDeleteRequest;
  using protocol::OffsetDeleteResponse;
  auto request = decode_request<OffsetDeleteRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  if (auto denied = refuse<OffsetDeleteResponse>(ctx, Access::offset_delete_group, request->group_id)) {
    co_return std::move(*denied);
  }
  OffsetDeleteResponse response;
  std::vector<coordinator::TopicPartitionKey> partitions;
  std::vector<std::pair<size_t, size_t>> slots;
  for (const auto& topic : request->topics) {
    auto& out_topic = response.topics.emplace_back();
    out_topic.name = topic.name;
    for (const auto& p : topic.partitions) {
      auto& out = out_topic.partitions.emplace_back();
      out.partition_index = p.partition_index;
      if (KafkaError denied = check_access(ctx, Access::offset_delete_topic, topic.name);
          denied != KafkaError::none) {
        out.error_code = code(denied);
        continue;
      }
      if (!partition_exists(broker, topic.name, p.partition_index)) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      partitions.push_back({topic.name, p.partition_index});
      slots.emplace_back(response.topics.size() - 1, out_topic.partitions.size() - 1);
    }
  }
  auto& groups = broker.groups();
  auto result = co_await await_callback<coordinator::OffsetDeleteResult>(
      [&groups, &request, &partitions](std::function<void(coordinator::OffsetDeleteResult)> done) {
        groups.delete_offsets(request->group_id, std::move(partitions), std::move(done));
      });
  response.error_code = group_error_code(result.error);
  if (result.error == coordinator::GroupErrc::none) {
    for (size_t i = 0; i < slots.size() && i < result.partitions.size(); ++i) {
      response.topics[slots[i].first].partitions[slots[i].second].error_code =
          group_error_code(result.partitions[i]);
    }
  } else {
    response.topics.clear();
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
