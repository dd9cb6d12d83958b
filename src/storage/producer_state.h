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
// Not thread safe: the owning PartitionLog guards it with its mutex, so the
// check and the append that follows it are one atomic step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "record/batch.h"
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

  // Drops producers idle for at least expiration_ms (by the broker clock),
  // except `keep_producer_id` (the producer of the log's latest batch).
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
  void clear() { entries_.clear(); }

  // ---- Snapshot files (docs/storage-format.md, "Producer state snapshot") ----

  // The table as of `offset` (every batch below it is included).
  std::vector<uint8_t> encode_snapshot(int64_t offset) const;
  struct Decoded;
  // Checks version, length and CRC; corrupt on any mismatch.
  static StorageResult<Decoded> decode_snapshot(std::span<const uint8_t> data);

 private:
  std::unordered_map<int64_t, ProducerEntry> entries_;
};

struct ProducerStateTable::Decoded {
  int64_t offset = 0;
  ProducerStateTable table;
};

}  // namespace holdfast::storage
