// AddPartitionsToTxn (v0-3 from clients; v4 between brokers, KIP-890),
// AddOffsetsToTxn (v0-3), EndTxn (v0-3),
// DescribeTransactions (v0) and ListTransactions (v0): the transaction
// coordinator's APIs (coordinator/txn_coordinator.h). Each is answered once
// the state change is replicated in __transaction_state; EndTxn once the
// PrepareCommit/PrepareAbort decision is (the markers follow).
#include "base/log.h"
#include "coordinator/group_records.h"
#include "server/broker.h"
#include "server/handlers/handlers.h"
#include "server/handlers/txn_errors.h"
#include "server/kafka_error.h"
#include "server/security/access.h"

namespace holdfast::server {
namespace {

bool partition_exists(Broker& broker, const std::string& topic, int32_t partition) {
  const auto* info = broker.topics().image()->find_topic(topic);
  return info && partition >= 0 && partition < info->partition_count;
}

Awaitable<coordinator::TxnErrc> add_partitions(Broker& broker, const std::string& id,
                                               int64_t producer_id, int16_t epoch,
                                               std::vector<coordinator::TxnPartition> partitions) {
  auto& txns = broker.transactions();
  co_return co_await await_callback<coordinator::TxnErrc>(
      [&](std::function<void(coordinator::TxnErrc)> done) {
        txns.add_partitions(id, producer_id, epoch, std::move(partitions), std::move(done));
      });
}

// AddPartitionsToTxn v4, broker to broker (KIP-890 part 1): a partition
// leader asks, before it appends the first transactional batch of a
// producer, whether the coordinator has that partition in the producer's
// ongoing transaction (`verify_only`). Each partition gets NONE or the
// coordinator's reason (INVALID_TXN_STATE, PRODUCER_FENCED,
// INVALID_PRODUCER_ID_MAPPING, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS).
// Without verify_only the partitions are added, as the v0-3 path does.
// ClusterAction on the cluster, as Kafka checks for v4.
Awaitable<Response> add_partitions_between_brokers(RequestContext& ctx,
                                                   protocol::AddPartitionsToTxnRequest& request) {
  Broker& broker = ctx.broker;
  protocol::AddPartitionsToTxnResponse response;
  const KafkaError denied = check_access(ctx, Access::add_partitions_to_txn_verify, "");
  if (denied != KafkaError::none) {
    response.error_code = code(denied);
    co_return make_response(ctx, response);
  }
  for (auto& txn : request.transactions) {
    auto& result = response.results_by_transaction.emplace_back();
    result.transactional_id = txn.transactional_id;
    std::vector<coordinator::TxnPartition> partitions;
    for (const auto& t : txn.topics) {
      for (int32_t p : t.partitions) partitions.push_back({t.name, p});
    }
    int16_t added = 0;
    if (!txn.verify_only) {
      auto e = co_await add_partitions(broker, txn.transactional_id, txn.producer_id,
                                       txn.producer_epoch, partitions);
      added = txn_error_code(e, true);
    }
    for (const auto& t : txn.topics) {
      auto& out = result.topic_results.emplace_back();
      out.name = t.name;
      for (int32_t p : t.partitions) {
        auto& r = out.results.emplace_back();
        r.partition_index = p;
        r.error_code = txn.verify_only
                           ? txn_error_code(broker.transactions().verify_partition(
                                                txn.transactional_id, txn.producer_id,
                                                txn.producer_epoch, {t.name, p}),
                                            true)
                           : added;
      }
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace

Awaitable<Response> handle_add_partitions_to_txn(RequestContext& ctx) {
  auto request = decode_request<protocol::AddPartitionsToTxnRequest>(ctx);
  if (!request) co_return close_connection();
  if (ctx.api_version >= 4) co_return co_await add_partitions_between_brokers(ctx, *request);
  Broker& broker = ctx.broker;
  protocol::AddPartitionsToTxnResponse response;
  std::vector<coordinator::TxnPartition> partitions;
  bool unknown = false;
  for (const auto& t : request->topics) {
    for (int32_t p : t.partitions) {
      partitions.push_back({t.name, p});
      if (!partition_exists(broker, t.name, p)) unknown = true;
    }
  }
  // Authorisation (access_rules.h): Write on the transactional id, else
  // every partition gets that error; Write on each topic, else nothing is
  // added and the refused topics say why (the others OPERATION_NOT_ATTEMPTED).
  const KafkaError id_denied =
      check_access(ctx, Access::add_partitions_to_txn_id, request->transactional_id);
  std::set<std::string> topics_denied;
  for (const auto& t : request->topics) {
    if (check_access(ctx, Access::add_partitions_to_txn_topic, t.name) != KafkaError::none) {
      topics_denied.insert(t.name);
    }
  }
  const bool refused = id_denied != KafkaError::none || !topics_denied.empty();
  int16_t error = 0;
  if (!unknown && !refused) {
    auto e = co_await add_partitions(broker, request->transactional_id, request->producer_id,
                                     request->producer_epoch, partitions);
    error = txn_error_code(e, ctx.api_version >= 2);
  }
  for (const auto& t : request->topics) {
    auto& out = response.results.emplace_back();
    out.name = t.name;
    for (int32_t p : t.partitions) {
      auto& r = out.results.emplace_back();
      r.partition_index = p;
      if (id_denied != KafkaError::none) {
        r.error_code = code(id_denied);
      } else if (refused) {
        r.error_code = topics_denied.count(t.name) ? code(KafkaError::topic_authorization_failed)
                                                   : code(KafkaError::operation_not_attempted);
      } else if (!unknown) {
        r.error_code = error;
      } else {
        // As Kafka: nothing is added when one partition is unknown.
        r.error_code = partition_exists(broker, t.name, p)
                           ? code(KafkaError::operation_not_attempted)
                           : code(KafkaError::unknown_topic_or_partition);
      }
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_add_offsets_to_txn(RequestContext& ctx) {
  auto request = decode_request<protocol::AddOffsetsToTxnRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  protocol::AddOffsetsToTxnResponse response;
  if (auto refused = refuse<protocol::AddOffsetsToTxnResponse>(ctx, Access::add_offsets_to_txn_id,
                                                               request->transactional_id)) {
    co_return std::move(*refused);
  }
  if (auto refused = refuse<protocol::AddOffsetsToTxnResponse>(ctx, Access::add_offsets_to_txn_group,
                                                               request->group_id)) {
    co_return std::move(*refused);
  }
  if (request->group_id.empty()) {
    response.error_code = code(KafkaError::invalid_group_id);
    co_return make_response(ctx, response);
  }
  // The group's __consumer_offsets partition joins the transaction: its
  // marker makes the TxnOffsetCommit offsets visible (or drops them).
  const int32_t p = broker.groups().partition_for(request->group_id);
  std::vector<coordinator::TxnPartition> partitions{{coordinator::kOffsetsTopic, p}};
  auto e = co_await add_partitions(broker, request->transactional_id, request->producer_id,
                                   request->producer_epoch, std::move(partitions));
  response.error_code = txn_error_code(e, ctx.api_version >= 2);
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_end_txn(RequestContext& ctx) {
  auto request = decode_request<protocol::EndTxnRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto refused = refuse<protocol::EndTxnResponse>(ctx, Access::end_txn, request->transactional_id)) {
    co_return std::move(*refused);
  }
  auto& txns = ctx.broker.transactions();
  auto e = co_await await_callback<coordinator::TxnErrc>(
      [&](std::function<void(coordinator::TxnErrc)> done) {
        txns.end_txn(request->transactional_id, request->producer_id, request->producer_epoch,
                     request->committed, std::move(done));
      });
  protocol::EndTxnResponse response;
  response.error_code = txn_error_code(e, ctx.api_version >= 2);
  HF_DEBUG("EndTxn from {} for '{}' ({}): {}", ctx.client(), request->transactional_id,
           request->committed ? "commit" : "abort", coordinator::to_string(e));
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_describe_transactions(RequestContext& ctx) {
  auto request = decode_request<protocol::DescribeTransactionsRequest>(ctx);
  if (!request) co_return close_connection();
  protocol::DescribeTransactionsResponse response;
  for (const auto& id : request->transactional_ids) {
    if (KafkaError denied = check_access(ctx, Access::describe_transactions, id);
        denied != KafkaError::none) {
      auto& out = response.transaction_states.emplace_back();
      out.transactional_id = id;
      out.error_code = code(denied);
      continue;
    }
    auto d = ctx.broker.transactions().describe(id);
    auto& out = response.transaction_states.emplace_back();
    out.transactional_id = id;
    out.error_code = txn_error_code(d.error, true);
    out.transaction_state = d.error == coordinator::TxnErrc::none ? coordinator::to_string(d.state)
                                                                  : "";
    out.transaction_timeout_ms = d.timeout_ms;
    out.transaction_start_time_ms = d.start_ms;
    out.producer_id = d.producer_id;
    out.producer_epoch = d.producer_epoch;
    for (const auto& tp : d.partitions) {
      if (out.topics.empty() || out.topics.back().topic != tp.topic) {
        out.topics.emplace_back().topic = tp.topic;
      }
      out.topics.back().partitions.push_back(tp.partition);
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_list_transactions(RequestContext& ctx) {
  auto request = decode_request<protocol::ListTransactionsRequest>(ctx);
  if (!request) co_return close_connection();
  protocol::ListTransactionsResponse response;
  std::set<coordinator::TxnState> states;
  for (const auto& name : request->state_filters) {
    if (auto s = coordinator::txn_state_from_string(name)) {
      states.insert(*s);
    } else {
      response.unknown_state_filters.push_back(name);
    }
  }
  // Only unknown states asked for: nothing can match.
  if (!request->state_filters.empty() && states.empty()) co_return make_response(ctx, response);
  std::set<int64_t> pids(request->producer_id_filters.begin(), request->producer_id_filters.end());
  auto listed = ctx.broker.transactions().list(states, pids);
  if (!listed) {
    response.error_code = txn_error_code(listed.code(), true);
  } else {
    for (const auto& l : *listed) {
      if (check_access(ctx, Access::list_transactions, l.transactional_id) != KafkaError::none) {
        continue;  // ids the principal may not describe are left out, as Kafka does
      }
      auto& out = response.transaction_states.emplace_back();
      out.transactional_id = l.transactional_id;
      out.producer_id = l.producer_id;
      out.transaction_state = coordinator::to_string(l.state);
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
