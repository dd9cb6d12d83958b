// Idempotent producer state of one partition (KIP-98, with KIP-360's rules).
//
// Per producer id the partition remembers the epoch and the metadata of the
// producer's last five batches (first/last sequence, base/last offset, max
// timestamp). That is what lets a retried batch be answered with its original
// offsets instead of being written twice, and what orders pipelined batches:
// a client keeps at most five requests in flight per partition, so any batch
// it can still retry is one of the last five.
//
// The rules (Kafka's ProducerAppendInfo.checkSequence / checkProducerEpoch and
// the duplicate check in UnifiedLog.analyzeAndValidateProducerState, 2.5+):
//  1. same epoch and the exact (first, last) sequence range of one of the
//     last five batches → duplicate: answered with the original offsets;
//  2. epoch older than the stored one → invalid_producer_epoch;
//  3. epoch newer than the stored one → first sequence must be 0, else
//     out_of_order_sequence;
//  4. same epoch → first sequence must be last sequence + 1 (2^31-1 wraps to
//     0), else out_of_order_sequence (this includes a retry of a batch older
//     than the last five: Kafka cannot tell it from a gap);
//  5. no state for the producer id (new, or expired) → any epoch and any
//     sequence is accepted (KIP-360; before Kafka 2.5 a non-zero sequence got
//     UNKNOWN_PRODUCER_ID).
// State is kept when retention or DeleteRecords removes the producer's
// batches (KAFKA-7190) and goes only by expiration (producer.id.expiration.ms).
//
// Transactions (KIP-98): a transactional batch starts the producer's ongoing
// transaction in this partition (current_txn_first_offset, the offset of its
// first batch since the last marker) or extends it; a control batch (commit
// or abort marker, txn_index.h) ends it. A marker is checked as Kafka's
// appendEndTxnMarker: its producer epoch may not be older than the stored
// one (invalid_producer_epoch), nor its coordinator epoch older than the last
// marker's (coordinator_fenced); a marker for a producer with no ongoing
// transaction is fine (written anyway, as Kafka does). A completed
// transaction stays "unstable" until the high watermark passes its marker,
// so the last stable offset never exposes a decision that could still be
// truncated away.
//
// Not thread safe: the owning PartitionLog guards it with its mutex, so the
// check and the append that follows it are one atomic step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "record/batch.h"
#include "storage/txn_index.h"
#include "storage/types.h"

namespace holdfast::storage {

// Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN.
constexpr size_t kProducerBatchesToRetain = 5;

// Sequence arithmetic with Kafka's wrap: after 2^31-1 comes 0.
int32_t increment_sequence(int32_t sequence, int32_t increment);

struct ProducerBatch {
  int32_t first_sequence = 0;
  int32_t last_sequence = 0;
  int64_t base_offset = 0;
  int64_t last_offset = 0;
  int64_t max_timestamp = -1;  // the batch's MaxTimestamp as stored
  friend bool operator==(const ProducerBatch&, const ProducerBatch&) = default;
};

struct ProducerEntry {
  int64_t producer_id = -1;
  int16_t epoch = -1;
  std::deque<ProducerBatch> batches;  // oldest first, at most kProducerBatchesToRetain
  int64_t last_update_ms = 0;         // broker clock at the last append (expiration)
  int64_t current_txn_first_offset = -1;  // first offset of the ongoing transaction, -1: none
  int32_t coordinator_epoch = -1;         // of the last marker written for this producer

  int32_t last_sequence() const { return batches.empty() ? -1 : batches.back().last_sequence; }
  int64_t last_offset() const { return batches.empty() ? -1 : batches.back().last_offset; }
  friend bool operator==(const ProducerEntry&, const ProducerEntry&) = default;
};

class ProducerStateTable {
 public:
  // Checks a client batch with producer_id >= 0 against the rules above.
  // Returns the original batch if it is a duplicate, nullopt if it may be
  // appended, or out_of_order_sequence / invalid_producer_epoch.
  StorageResult<std::optional<ProducerBatch>> check(const record::BatchHeader& batch) const;

  // Records a batch that is now in the log (header stamped with its base
  // offset). No validation: also used to replay the log at load. An epoch
  // change forgets the old epoch's batches.
  void record(const record::BatchHeader& stamped, int64_t now_ms);

  // Checks a control batch (a marker for `batch.producer_id`) against the
  // rules above: invalid_producer_epoch or coordinator_fenced.
  StorageResult<void> check_marker(const record::BatchHeader& batch,
                                   const ControlMarker& marker) const;
  // Records a marker now in the log (no validation: also the load replay
  // and a follower's append): ends the producer's ongoing transaction. For
  // an ABORT returns the index entry of the aborted transaction (first
  // offset = the marker's offset if none was ongoing, as Kafka).
  std::optional<AbortedTxn> record_marker(const record::BatchHeader& stamped,
                                          const ControlMarker& marker, int64_t now_ms);
  // The smallest first offset of a transaction that is ongoing, or
  // completed with its marker at or above `high_watermark` (completed ones
  // below it are forgotten); nullopt if none. The LSO is
  // min(this, high watermark).
  std::optional<int64_t> first_unstable_offset(int64_t high_watermark);
  // The smallest first offset of an ongoing transaction (retention bound).
  std::optional<int64_t> first_ongoing_offset() const {
    if (ongoing_.empty()) return std::nullopt;
    return ongoing_.begin()->first;
  }
  size_t ongoing_count() const { return ongoing_.size(); }

  // Drops producers idle for at least expiration_ms (by the broker clock),
  // except `keep_producer_id` (the producer of the log's latest batch) and
  // producers with an ongoing transaction.
  // Returns how many were dropped.
  size_t expire(int64_t now_ms, int64_t expiration_ms, int64_t keep_producer_id);

  const ProducerEntry* find(int64_t producer_id) const;
  size_t size() const { return entries_.size(); }
  // Every producer's entry, by producer id (DescribeProducers).
  std::vector<ProducerEntry> all() const {
    std::vector<ProducerEntry> out;
    out.reserve(entries_.size());
    for (const auto& [id, e] : entries_) out.push_back(e);
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.producer_id < b.producer_id; });
    return out;
  }
  void clear() {
    entries_.clear();
    ongoing_.clear();
    completed_.clear();
  }

  // ---- Snapshot files (docs/storage-format.md, "Producer state snapshot") ----

  // The table as of `offset` (every batch below it is included).
  std::vector<uint8_t> encode_snapshot(int64_t offset) const;
  struct Decoded;
  // Checks version (1 or 2), length and CRC; corrupt on any mismatch.
  static StorageResult<Decoded> decode_snapshot(std::span<const uint8_t> data);

 private:
  std::unordered_map<int64_t, ProducerEntry> entries_;
  // Ongoing transactions: first offset -> producer id (mirrors the entries).
  std::map<int64_t, int64_t> ongoing_;
  // Completed transactions whose marker the high watermark has not passed:
  // (first offset, marker offset).
  std::vector<std::pair<int64_t, int64_t>> completed_;
};

struct ProducerStateTable::Decoded {
  int64_t offset = 0;
  uint16_t version = 0;
  ProducerStateTable table;
};

}  // namespace holdfast::storage
