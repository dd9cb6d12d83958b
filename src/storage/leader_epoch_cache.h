// The leader epochs of one partition (KIP-101, KIP-279): for each epoch in
// which the partition had a leader that wrote (or was about to write) to this
// log, the offset of its first batch. Persisted per partition directory as
// `leader-epoch-checkpoint` (docs/storage-format.md) in Kafka's text format:
//
//   0                      version (format::kCheckpointVersion)
//   2                      number of entries
//   0 0                    epoch start_offset, oldest first
//   3 1200
//
// Invariant: epochs strictly increase and so do start offsets; every epoch
// and offset is >= 0. The cache is derived data: the batches carry their
// epochs (partitionLeaderEpoch), so a lost or damaged file is rebuilt from
// the log (PartitionLog::load).
//
// Thread safety: none; PartitionLog guards its cache with its own mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/file_system.h"
#include "storage/types.h"

namespace holdfast::storage {

// Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET.
constexpr int32_t kUndefinedEpoch = -1;
constexpr int64_t kUndefinedEpochOffset = -1;

struct EpochEntry {
  int32_t epoch;
  int64_t start_offset;
  friend bool operator==(const EpochEntry&, const EpochEntry&) = default;
};

// An OffsetForLeaderEpoch answer: the largest epoch <= the requested one
// this log knows, and the offset where it ended.
struct EpochEndOffset {
  int32_t epoch = kUndefinedEpoch;
  int64_t end_offset = kUndefinedEpochOffset;
  bool undefined() const { return end_offset == kUndefinedEpochOffset; }
  friend bool operator==(const EpochEndOffset&, const EpochEndOffset&) = default;
};

class LeaderEpochCache {
 public:
  LeaderEpochCache() = default;
  // `entries` must satisfy the invariant (decode_leader_epoch_checkpoint
  // checks it); anything else is a programming error.
  explicit LeaderEpochCache(std::vector<EpochEntry> entries);

  // Records that `epoch` starts at `start_offset` (the first batch appended
  // in a new epoch, or the log end when a leader takes over). Returns whether
  // the cache changed.
  //  - epoch < latest epoch, or a negative epoch or offset: stale, ignored.
  //  - epoch == latest epoch: only moves its start earlier (never later).
  //  - epoch > latest epoch: appended; trailing entries starting at or after
  //    start_offset are dropped first (they cover no batch any more), so
  //    start offsets stay strictly increasing.
  bool assign(int32_t epoch, int64_t start_offset);

  // KIP-101/279, as Kafka's LeaderEpochFileCache answers:
  //  - requested epoch negative, empty cache, or an epoch above the latest:
  //    undefined (-1, -1);
  //  - the latest epoch: (latest, log_end_offset);
  //  - an epoch below the first entry: (requested epoch, first start offset)
  //    (its batches were deleted from the front; a follower truncates to
  //    where this log's history starts rather than to its high watermark);
  //  - otherwise: (largest epoch <= requested, start offset of the first
  //    epoch above the requested one).
  EpochEndOffset end_offset_for(int32_t requested_epoch, int64_t log_end_offset) const;

  // The log was cut to end at `end_offset`: drops the entries starting at or
  // after it. Returns whether the cache changed. Negative: no-op.
  bool truncate_from_end(int64_t end_offset);
  // The log now starts at `start_offset` (DeleteRecords, retention): drops
  // the entries wholly before it and moves the start of the epoch that
  // contains it up to `start_offset`. Returns whether the cache changed.
  bool truncate_from_start(int64_t start_offset);

  std::optional<int32_t> latest_epoch() const;
  std::optional<EpochEntry> latest_entry() const;
  const std::vector<EpochEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<EpochEntry> entries_;  // oldest first
};

std::string encode_leader_epoch_checkpoint(const std::vector<EpochEntry>& entries);
// corrupt (naming the line at fault) unless `text` is exactly a valid
// checkpoint whose entries satisfy the invariant.
StorageResult<std::vector<EpochEntry>> decode_leader_epoch_checkpoint(std::string_view text);
// Write temp, fsync, rename, fsync the directory.
StorageResult<void> write_leader_epoch_checkpoint(io::FileSystem& fs, const std::string& path,
                                                  const std::vector<EpochEntry>& entries);
// not_found if the file does not exist; corrupt if it does not parse.
StorageResult<std::vector<EpochEntry>> read_leader_epoch_checkpoint(io::FileSystem& fs,
                                                                    const std::string& path);

}  // namespace holdfast::storage
