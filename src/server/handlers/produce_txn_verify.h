// KIP-890 part 1 when the transaction coordinator is another broker.
//
// A transactional batch that would open a transaction in a partition (its
// producer has none open there) is appended only if the coordinator has the
// partition in the producer's ongoing transaction (produce_append.h). When
// this broker leads the id's __transaction_state partition it asks its own
// coordinator; otherwise the Produce handler, before appending, asks the
// coordinator's broker once for all such partitions of the request with
// AddPartitionsToTxn v4 `verify_only` (what Kafka's partition leaders send),
// and passes the answers to append_produced_batch.
//
// The guard: each partition's producer entry is recorded when the question
// is asked; a partition whose entry changed before the append (a marker
// ended a transaction there meanwhile) is refused with a retriable error
// instead of trusting an answer that may be stale. The local check has the
// same window between check and append; see docs/transactions.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "coordinator/txn_records.h"
#include "protocol/messages.h"
#include "server/async.h"
#include "server/kafka_error.h"
#include "storage/producer_state.h"

namespace holdfast::server {

class Broker;

struct RemoteTxnVerdict {
  KafkaError error = KafkaError::none;  // none: the partition is in the transaction
  std::string why;                      // for the produce response when refused
  int64_t producer_id = -1;             // the batch's
  int16_t producer_epoch = -1;
  std::optional<storage::ProducerEntry> asked_with;  // the guard (see above)
};

// Per partition of the request that needed the remote coordinator's word.
using RemoteTxnVerdicts = std::map<coordinator::TxnPartition, RemoteTxnVerdict>;

// The partitions of `request` whose batch needs the remote coordinator's
// word: a transactional batch that would open a transaction in a partition
// this broker leads, whose id's coordinator is another broker. Each verdict
// is a retriable refusal until ask_remote_coordinator fills it in; its
// `asked_with` is the producer's entry now. Empty for non-transactional
// requests, on a single node, and when the coordinator is this broker.
RemoteTxnVerdicts partitions_to_verify_remotely(Broker& broker,
                                                const protocol::ProduceRequest& request);

// Asks the coordinator's broker about `verdicts` (one AddPartitionsToTxn v4
// verify_only request) and records each answer. A lost answer or an unknown
// coordinator leaves each partition a retriable NOT_ENOUGH_REPLICAS.
Awaitable<void> ask_remote_coordinator(Broker& broker, const protocol::ProduceRequest& request,
                                       RemoteTxnVerdicts& verdicts);

}  // namespace holdfast::server
