// In-memory state of the transaction coordinator (txn_coordinator.h): one
// TxnMeta per transactional id, grouped by __transaction_state partition.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "coordinator/txn_records.h"
#include "replication/partition.h"

namespace holdfast::coordinator {

struct TxnMeta {
  TxnValue value;  // what the log holds for the id (the latest replicated record)
  // The epoch before the coordinator bumped it to abort (timeout or re-init):
  // InitProducerId v3+ from that producer is not fenced (KIP-360).
  int16_t last_producer_epoch = -1;
  bool writing = false;  // a transition is being replicated: concurrent_transactions
  // Prepare*: partitions whose marker is not acknowledged yet.
  std::set<TxnPartition> markers_pending;
  bool markers_in_flight = false;
  int64_t next_marker_attempt_ms = 0;
  int marker_failures = 0;  // sends in a row that left partitions unacknowledged
};

struct TxnPartitionState {
  enum class Status { loading, active, failed, unloaded };
  int32_t index = 0;
  std::mutex mu;
  Status status = Status::unloaded;
  std::shared_ptr<replication::Partition> replica;
  int32_t leader_epoch = -1;  // also the coordinator epoch the markers carry
  uint64_t generation = 0;    // bumped by every load and unload
  std::map<std::string, TxnMeta> txns;
};

inline bool is_prepare(TxnState s) {
  return s == TxnState::prepare_commit || s == TxnState::prepare_abort;
}

}  // namespace holdfast::coordinator
