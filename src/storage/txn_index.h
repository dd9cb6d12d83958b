// Transactions on the partition side (KIP-98): control batches (commit and
// abort markers) and the aborted-transaction index (<base>.txnindex).
//
// A control batch has the control bit (0x20) and the transactional bit
// (0x10) set, no compression, and exactly one record whose key is
// version (int16, 0) + type (int16: 0 = ABORT, 1 = COMMIT) and whose value
// is version (int16, 0) + coordinator epoch (int32).
//
// The aborted-transaction index of a segment lists, for every ABORT marker
// stored in that segment, the aborted transaction: Kafka's 34-byte entry,
// big-endian: version (int16, 0), producer id (int64), first offset (int64,
// the transaction's first batch in this partition), last offset (int64, the
// marker's offset), last stable offset (int64, the partition's first unstable
// offset once this transaction completed, or last offset + 1 if none).
// docs/storage-format.md, "Transactions".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/bytes.h"
#include "record/batch.h"
#include "storage/types.h"

namespace holdfast::storage {

enum class ControlType : int16_t { abort = 0, commit = 1 };

struct ControlMarker {
  ControlType type = ControlType::abort;
  int32_t coordinator_epoch = -1;
};

// The marker in a control batch (the whole stored batch). corrupt if the
// batch is not a well-formed control batch.
StorageResult<ControlMarker> parse_control_batch(std::span<const uint8_t> batch);

// A control batch for `producer_id`/`producer_epoch` with base offset 0 and
// a valid CRC, ready for PartitionLog::append (WriteTxnMarkers).
Bytes make_control_batch(int64_t producer_id, int16_t producer_epoch, ControlMarker marker,
                         int64_t timestamp_ms);

struct AbortedTxn {
  int64_t producer_id = -1;
  int64_t first_offset = 0;
  int64_t last_offset = 0;
  int64_t last_stable_offset = 0;
  friend bool operator==(const AbortedTxn&, const AbortedTxn&) = default;
};

constexpr int16_t kTxnIndexVersion = 0;
constexpr size_t kTxnIndexEntrySize = 2 + 8 + 8 + 8 + 8;

void encode_aborted_txn(const AbortedTxn& txn, std::vector<uint8_t>& out);
// Whole entries of a .txnindex file; a torn last entry (a crash mid-append)
// is ignored. corrupt on an unknown version.
StorageResult<std::vector<AbortedTxn>> decode_txn_index(std::span<const uint8_t> data);

}  // namespace holdfast::storage
