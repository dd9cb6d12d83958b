// One produced record batch appended to one partition: the checks, the
// topic's compression.type and the append that Produce does per partition,
// shared by the Produce handler and the admin API's POST .../messages. The
// caller waits (needs_sync) and answers: acks=all for the high watermark
// (Partition::wait_for_high_watermark with min_insync), acks=1 for this
// replica alone (Partition::wait_for_local).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <memory>
#include <optional>

#include "base/result.h"
#include "replication/partition.h"
#include "server/handlers/produce_txn_verify.h"
#include "server/kafka_error.h"

namespace holdfast::server {

class Broker;

struct ProducedAppend {
  std::shared_ptr<replication::Partition> partition;
  int64_t base_offset = -1;
  int64_t last_offset = -1;
  int64_t log_append_time_ms = -1;
  int64_t log_start_offset = -1;
  bool duplicate = false;
  // acks=all: the topic's min.insync.replicas, checked against the ISR
  // before the append and again when the high watermark passes the batch.
  int32_t min_insync = 0;
  // Not yet acknowledgeable: acks=all, the high watermark has not passed the
  // batch (its fsync is pending, or followers have not fetched it); acks=1,
  // this replica's own fsync is pending.
  bool needs_sync = false;
};

// `allow_zstd`: the produce request version is 7 or later (zstd batches are
// allowed); `client` names the producer in log lines; `acks` is the
// request's (-1 = all, 1 = leader; 0 is answered like 1 here). Errors before
// anything is appended: NOT_LEADER_OR_FOLLOWER on a replica that does not
// lead, NOT_ENOUGH_REPLICAS for acks=all with an ISR smaller than the
// topic's min.insync.replicas.
//
// `transactional_id`: the Produce request's. A transactional batch from a
// producer with no ongoing transaction in this partition is first verified
// with the transaction coordinator (KIP-890 part 1): refused with
// INVALID_TXN_STATE unless the coordinator has the partition in the
// producer's ongoing transaction, so a late batch of an ended transaction
// cannot open a transaction nobody will end. When this broker is the id's
// coordinator it is asked directly; otherwise `remote` holds what the
// coordinator's broker answered for this partition
// (ask_remote_coordinator, produce_txn_verify.h), and a partition
// it lacks is refused with the retriable NOT_ENOUGH_REPLICAS.
Result<ProducedAppend, KafkaError> append_produced_batch(
    Broker& broker, const std::string& topic, int32_t partition, std::span<const uint8_t> records,
    bool allow_zstd, const std::string& client, int16_t acks = -1,
    const std::optional<std::string>& transactional_id = std::nullopt,
    const RemoteTxnVerdicts* remote = nullptr);

// The topic's min.insync.replicas: its override, else the broker's
// (effective_min_insync_replicas: 1 on a single node, 2 in a cluster).
int32_t min_insync_replicas(Broker& broker, const std::string& topic);

}  // namespace holdfast::server
