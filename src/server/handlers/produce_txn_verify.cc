#include "server/handlers/produce_txn_verify.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "base/log.h"
#include "net/kafka_client.h"
#include "record/batch.h"
#include "replication/replica_manager.h"
#include "server/broker.h"
#include "server/cluster/cluster_view.h"

namespace holdfast::server {
namespace {

using coordinator::TxnErrc;
using coordinator::TxnPartition;

// The coordinator's per-partition answer as the produce response gives it.
// Its own unavailability (moved, loading, unreachable) is retriable for every
// client version, as the local check answers it (produce_append.cc).
RemoteTxnVerdict verdict_for(int16_t error_code) {
  RemoteTxnVerdict v;
  switch (static_cast<KafkaError>(error_code)) {
    case KafkaError::none:
      return v;
    case KafkaError::not_coordinator:
    case KafkaError::coordinator_load_in_progress:
    case KafkaError::coordinator_not_available:
      v.error = KafkaError::not_enough_replicas;
      v.why = "the transaction coordinator is not available to verify the partition; retry";
      return v;
    case KafkaError::producer_fenced:
    case KafkaError::invalid_producer_epoch:
      v.error = KafkaError::invalid_producer_epoch;
      v.why = "the producer epoch is not the transaction's";
      return v;
    default:
      v.error = KafkaError::invalid_txn_state;
      v.why = "the partition is not part of the producer's ongoing transaction "
              "(AddPartitionsToTxn first)";
      return v;
  }
}

void refuse_all(RemoteTxnVerdicts& verdicts, const std::string& why) {
  for (auto& [tp, v] : verdicts) {
    v.error = KafkaError::not_enough_replicas;
    v.why = why;
  }
}

}  // namespace

RemoteTxnVerdicts partitions_to_verify_remotely(Broker& broker,
                                                const protocol::ProduceRequest& request) {
  RemoteTxnVerdicts verdicts;
  if (!request.transactional_id || request.transactional_id->empty()) return verdicts;
  const std::string& id = *request.transactional_id;
  for (const auto& topic : request.topic_data) {
    for (const auto& partition : topic.partition_data) {
      if (!partition.records || partition.records->span().empty()) continue;
      auto header = record::parse_batch_header(partition.records->span());
      if (!header || !header->is_transactional()) continue;
      auto replica = broker.replicas().get(topic.name, partition.index);
      if (!replica) continue;  // append_produced_batch answers it
      auto entry = replica->producer_state(header->producer_id);
      if (entry && entry->current_txn_first_offset >= 0 && entry->epoch == header->producer_epoch) {
        continue;  // already in a transaction here: no question
      }
      const TxnPartition tp{topic.name, partition.index};
      // Only where this broker's coordinator cannot say (another broker's id).
      if (broker.transactions().verify_partition(id, header->producer_id, header->producer_epoch,
                                                 tp) != TxnErrc::not_coordinator) {
        continue;
      }
      RemoteTxnVerdict& v = verdicts[tp];
      v.error = KafkaError::not_enough_replicas;
      v.why = "the transaction coordinator was not asked to verify the partition; retry";
      v.producer_id = header->producer_id;
      v.producer_epoch = header->producer_epoch;
      v.asked_with = std::move(entry);
    }
  }
  return verdicts;
}

Awaitable<void> ask_remote_coordinator(Broker& broker, const protocol::ProduceRequest& request,
                                       RemoteTxnVerdicts& verdicts) {
  if (verdicts.empty() || !request.transactional_id) co_return;
  const std::string& id = *request.transactional_id;
  // (producer id, epoch) -> the partitions to ask about. One producer sends a
  // request, so this has one entry unless the batches disagree (each is then
  // asked about as it is; the coordinator refuses the wrong ones).
  std::map<std::pair<int64_t, int16_t>, std::vector<TxnPartition>> questions;
  for (const auto& [tp, v] : verdicts) questions[{v.producer_id, v.producer_epoch}].push_back(tp);
  net::KafkaClient* client = broker.client();
  auto image = broker.metadata_log().current();
  const auto* state_topic = image->find_topic(coordinator::kTransactionStateTopic);
  const int32_t index = broker.transactions().partition_for(id);
  int32_t coordinator_node = -1;
  if (state_topic != nullptr && index >= 0 && index < state_topic->partition_count) {
    coordinator_node = state_topic->partitions[index].leader;
  }
  std::optional<cluster::BrokerAddress> address;
  if (coordinator_node >= 0 && coordinator_node != broker.node_id()) {
    address = cluster::broker_address(broker, *image, coordinator_node);
  }
  if (client == nullptr || !address) {
    refuse_all(verdicts, "the transaction coordinator is not known yet to verify the partition; "
                         "retry");
    co_return;
  }

  protocol::AddPartitionsToTxnRequest ask;
  for (const auto& [producer, partitions] : questions) {
    auto& txn = ask.transactions.emplace_back();
    txn.transactional_id = id;
    txn.producer_id = producer.first;
    txn.producer_epoch = producer.second;
    txn.verify_only = true;
    for (const auto& tp : partitions) {
      if (txn.topics.empty() || txn.topics.back().name != tp.topic) {
        txn.topics.emplace_back().name = tp.topic;
      }
      txn.topics.back().partitions.push_back(tp.partition);
    }
  }
  const net::Endpoint to{address->host, static_cast<uint16_t>(address->port)};
  // Within the produce request's own timeout, bounded both ways.
  const auto timeout = std::optional<std::chrono::milliseconds>(
      std::chrono::milliseconds(std::clamp(request.timeout_ms, 1000, 30000)));
  const int16_t version = 4;
  auto answer =
      co_await client->async_call<protocol::AddPartitionsToTxnResponse>(to, ask, version, timeout);
  if (!answer) {
    HF_DEBUG("KIP-890 verification of {} with the coordinator at {}: {}", id, to.to_string(),
             answer.error().message);
    refuse_all(verdicts, "the transaction coordinator could not be asked to verify the "
                         "partition; retry");
    co_return;
  }
  if (answer->error_code != 0) {
    HF_WARN("KIP-890 verification of {}: the coordinator at {} answered error {} "
            "(AddPartitionsToTxn v4 needs ClusterAction on the cluster)",
            id, to.to_string(), answer->error_code);
    refuse_all(verdicts, "the transaction coordinator refused to verify the partition (error " +
                             std::to_string(answer->error_code) + ")");
    co_return;
  }
  // A partition the answer does not mention keeps a retriable refusal.
  std::map<TxnPartition, bool> answered;
  for (const auto& txn : answer->results_by_transaction) {
    for (const auto& t : txn.topic_results) {
      for (const auto& r : t.results) {
        auto it = verdicts.find({t.name, r.partition_index});
        if (it == verdicts.end()) continue;
        const RemoteTxnVerdict given = verdict_for(r.error_code);
        it->second.error = given.error;
        it->second.why = given.why;
        answered[it->first] = true;
      }
    }
  }
  for (auto& [tp, v] : verdicts) {
    if (answered.count(tp)) continue;
    v.error = KafkaError::not_enough_replicas;
    v.why = "the transaction coordinator did not answer for the partition; retry";
  }
}

}  // namespace holdfast::server
