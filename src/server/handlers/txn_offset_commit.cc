// TxnOffsetCommit (v0-3): offsets committed as part of a transaction (the
// group coordinator keeps them pending until the transaction's marker; see
// coordinator/group_txn_offsets.cc). v3 carries the consumer's generation and
// member (KIP-447), checked against the group.
#include "server/broker.h"
#include "server/handlers/group_errors.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"

namespace holdfast::server {

Awaitable<Response> handle_txn_offset_commit(RequestContext& ctx) {
  auto request = decode_request<protocol::TxnOffsetCommitRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  protocol::TxnOffsetCommitResponse response;
  coordinator::TxnCommitParams params;
  params.group_id = request->group_id;
  params.producer_id = request->producer_id;
  params.producer_epoch = request->producer_epoch;
  if (ctx.api_version >= 3) {
    params.generation = request->generation_id;
    params.member_id = request->member_id;
    params.group_instance_id = request->group_instance_id;
  }
  // Authorisation (access_rules.h): Write on the transactional id and Read
  // on the group, else every partition gets the error; Read on each topic.
  KafkaError denied = check_access(ctx, Access::txn_offset_commit_id, request->transactional_id);
  if (denied == KafkaError::none) {
    denied = check_access(ctx, Access::txn_offset_commit_group, request->group_id);
  }
  std::vector<std::pair<size_t, size_t>> slots;
  for (const auto& topic : request->topics) {
    auto& out_topic = response.topics.emplace_back();
    out_topic.name = topic.name;
    const auto* info = broker.topics().image()->find_topic(topic.name);
    const KafkaError topic_denied =
        denied != KafkaError::none ? denied
                                   : check_access(ctx, Access::txn_offset_commit_topic, topic.name);
    for (const auto& p : topic.partitions) {
      auto& out = out_topic.partitions.emplace_back();
      out.partition_index = p.partition_index;
      if (topic_denied != KafkaError::none) {
        out.error_code = code(topic_denied);
        continue;
      }
      if (!info || p.partition_index < 0 || p.partition_index >= info->partition_count) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      coordinator::OffsetCommitEntry entry;
      entry.tp = {topic.name, p.partition_index};
      entry.offset = p.committed_offset;
      entry.leader_epoch = ctx.api_version >= 2 ? p.committed_leader_epoch : -1;
      entry.metadata = p.committed_metadata;
      params.offsets.push_back(std::move(entry));
      slots.emplace_back(response.topics.size() - 1, out_topic.partitions.size() - 1);
    }
  }
  if (!params.offsets.empty()) {
    auto& groups = broker.groups();
    auto result = co_await await_callback<coordinator::CommitResult>(
        [&groups, &params](std::function<void(coordinator::CommitResult)> done) {
          groups.txn_commit(std::move(params), std::move(done));
        });
    for (size_t i = 0; i < slots.size() && i < result.errors.size(); ++i) {
      int16_t error = group_error_code(result.errors[i]);
      // PRODUCER_FENCED only from v3 (KIP-588); before, INVALID_PRODUCER_EPOCH.
      if (ctx.api_version >= 3 && error == code(KafkaError::invalid_producer_epoch)) {
        error = code(KafkaError::producer_fenced);
      }
      response.topics[slots[i].first].partitions[slots[i].second].error_code = error;
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
