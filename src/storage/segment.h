// One log segment: <base>.log holding record batches back to back, and its
// sparse offset and time indexes. The indexes live in memory while the broker
// runs and are written to <base>.index / <base>.timeindex when the segment
// stops being active (roll) and at clean shutdown; on load they are validated
// and the tail after their last entry is rescanned (docs/storage-format.md).
//
// Thread safety: the mutable bookkeeping (size, next_offset, indexes) is
// guarded by the owning PartitionLog's mutex; the read helpers only touch the
// file and may run without it, given an end position captured under it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/file_system.h"
#include "record/batch.h"
#include "storage/batch_walker.h"
#include "storage/txn_index.h"
#include "storage/types.h"

namespace holdfast::storage {

struct IndexEntry {
  uint32_t relative_offset;  // batch base offset - segment base offset
  uint32_t position;         // byte position of that batch in the .log file
};

struct TimeIndexEntry {
  int64_t timestamp;         // largest batch max timestamp so far in the segment
  uint32_t relative_offset;  // first batch that reached it
};

class Segment {
 public:
  // Creates an empty segment file (fails if it exists). The caller syncs the
  // directory before counting anything in it as durable.
  static StorageResult<std::shared_ptr<Segment>> create(io::FileSystem& fs, const std::string& dir,
                                                        int64_t base_offset, int64_t now_ms);
  // Opens an existing segment; bookkeeping is empty until load() runs.
  static StorageResult<std::shared_ptr<Segment>> open_existing(io::FileSystem& fs,
                                                               const std::string& dir,
                                                               int64_t base_offset, int64_t now_ms);

  // Rebuilds the bookkeeping from the file, which it never changes. With
  // `check_crc`, every batch from position 0 is walked with framing, CRC and
  // offset checks; otherwise the index files are trusted if they validate and
  // only the tail after their last entry is walked (framing only), with a
  // full walk if they are missing or invalid. Stops at the first bad batch:
  // the bookkeeping then covers the batches before it (size = its position)
  // and the damage is returned; nullopt when the whole file is good.
  // With `check_crc` and `trusted_below` past the base offset (the recovery
  // point lies inside this segment), the index files' entries below
  // `trusted_below` are used if they validate, and the CRC walk starts at the
  // last of them: the bytes before it were fsynced (docs/storage-format.md,
  // "Recovery marks"). `scanned_at_load` says how many bytes were walked.
  StorageResult<std::optional<BatchDamage>> load_batches(io::FileSystem& fs, bool check_crc,
                                                         int32_t index_interval_bytes,
                                                         int64_t trusted_below = 0);
  // load_batches(fs, recover, ...) for callers that only need to know whether
  // the file is whole: true if a bad batch was found (logged; the file is not
  // changed).
  StorageResult<bool> load(io::FileSystem& fs, bool recover, int32_t index_interval_bytes);
  // Cuts the file at `position`: a torn tail at recovery, or `holdfast log
  // repair` on an operator's request. (A replica's truncation uses
  // truncation_point/truncate_at, which keep the bookkeeping right.)
  StorageResult<void> truncate_to(uint64_t position);

  // Where truncating this segment so that no record at or after `offset`
  // remains would cut it: the position of the first batch whose last offset
  // is >= offset (the whole batch goes), the segment's next offset after the
  // cut (that batch's base offset, or less across a hole compaction left),
  // and the index entry the bookkeeping is rebuilt from. Reads headers only;
  // changes nothing. Requires base_offset <= offset < next_offset.
  struct TruncationPoint {
    uint64_t position = 0;
    int64_t end_offset = 0;
    uint64_t rescan_from = 0;  // an indexed batch's position at or before `position`, or 0
  };
  StorageResult<TruncationPoint> truncation_point(int64_t offset) const;
  // Cuts the file at point.position (not synced: the caller syncs) and
  // rebuilds the bookkeeping: index entries from point.rescan_from on are
  // dropped and the batches between it and the cut walked again (framing
  // only), so index_lookup, time_index_lookup and largest_timestamp describe
  // the remaining batches. The index files no longer match (callers remove
  // them before cutting: remove_index_files).
  StorageResult<void> truncate_at(const TruncationPoint& point, int32_t index_interval_bytes);
  // Removes <base>.index and <base>.timeindex (missing is fine).
  StorageResult<void> remove_index_files(io::FileSystem& fs) const;

  // Appends one stamped batch to the file and the indexes. On a write error
  // the file is cut back to its previous size (io_error either way).
  StorageResult<void> append(std::span<const uint8_t> batch, const record::BatchHeader& stamped,
                             int32_t index_interval_bytes);

  // Writes the in-memory indexes to <base>.index/.timeindex (atomically, synced).
  StorageResult<void> write_index_files(io::FileSystem& fs) const;
  // The index files' bytes for a prefix of the segment: the entries of the
  // batches that start below byte `below_size` (and, in the time index,
  // below offset `below_offset`), without the final largest-timestamp entry.
  // For recovery marks of the active segment (PartitionLog::write_recovery_mark):
  // with `below_size` a synced size, every entry points at durable bytes.
  struct EncodedIndexes {
    std::vector<uint8_t> index;
    std::vector<uint8_t> time_index;
  };
  EncodedIndexes encode_index_prefix(uint64_t below_size, int64_t below_offset) const;
  StorageResult<void> write_index_bytes(io::FileSystem& fs, const EncodedIndexes& bytes) const;
  // ---- Aborted-transaction index (<base>.txnindex, txn_index.h) ----
  // Under the partition mutex. Appends the entry of an ABORT marker stored
  // in this segment, in memory and to the file (created on the first entry:
  // `created` is set, the caller syncs the directory before the marker
  // counts as durable). Not synced: txn_index_to_sync() gives the file to
  // fsync with the segment.
  StorageResult<void> append_aborted_txn(io::FileSystem& fs, const AbortedTxn& txn, bool& created);
  // The open .txnindex file if it has bytes no fsync covered yet (and marks
  // them as covered: the caller syncs it before the durable offset moves).
  std::shared_ptr<io::File> txn_index_to_sync();
  // The entries of the .txnindex file on disk (none if it does not exist).
  StorageResult<std::vector<AbortedTxn>> read_txn_index_file(io::FileSystem& fs) const;
  // Makes the file hold exactly `aborted_txns` (atomically; removed when
  // empty) and reopens it for appends. Load and truncation.
  StorageResult<void> rewrite_txn_index(io::FileSystem& fs);
  // The entries of ABORT markers in this segment, by marker offset.
  std::vector<AbortedTxn> aborted_txns;

  // Removes the segment's files (log first, so a crash leaves at most orphan indexes).
  StorageResult<void> remove_files(io::FileSystem& fs) const;

  // ---- Lookups (under the partition mutex) ----
  // A file position at or before the batch containing `offset`.
  uint64_t index_lookup(int64_t offset) const;
  // The position to start a timestamp search from: at or before the first
  // batch whose max timestamp >= ts.
  uint64_t time_index_lookup(int64_t ts) const;

  // ---- File reads (no lock needed; `end` captured under the mutex) ----
  StorageResult<record::BatchHeader> read_header(uint64_t position, uint64_t end) const;
  // Position of the first batch at or after `from` whose last offset >= offset, or `end`.
  StorageResult<uint64_t> scan_to_offset(int64_t offset, uint64_t from, uint64_t end) const;
  StorageResult<void> read_exact(uint64_t position, std::span<uint8_t> out) const;

  io::File& file() { return *log_; }
  const std::string& log_path() const { return log_path_; }

  // ---- Bookkeeping (guarded by the partition mutex) ----
  const int64_t base_offset;
  uint64_t size = 0;    // bytes of whole batches
  int64_t next_offset;  // last offset + 1, or base_offset when empty
  int64_t largest_timestamp = -1;
  int64_t offset_of_largest_timestamp = -1;
  int64_t created_ms;                // wall time the segment was created or loaded (segment.ms)
  uint64_t synced_size = 0;          // bytes covered by a successful fdatasync (flusher)
  bool index_files_current = false;  // the .index/.timeindex files match memory
  size_t batch_count = 0;
  uint64_t scanned_at_load = 0;      // bytes load_batches walked (framing, or framing + CRC)

  // Retention age: the largest timestamp, or the creation time if none.
  int64_t retention_timestamp() const {
    return largest_timestamp >= 0 ? largest_timestamp : created_ms;
  }

 private:
  Segment(std::string dir, int64_t base_offset, std::unique_ptr<io::File> log, int64_t now_ms);
  void note_batch(uint64_t position, uint64_t size, int64_t base, int64_t max_timestamp,
                  int64_t last, int32_t index_interval_bytes);
  // Entries at or past `below_offset` are ignored (a recovery mark's
  // index files may run past the recovery point).
  bool load_index_files(io::FileSystem& fs, int64_t below_offset);
  StorageResult<std::optional<BatchDamage>> scan(uint64_t from, bool check_crc,
                                                 int32_t index_interval_bytes);

  std::string dir_;
  std::string log_path_;
  std::unique_ptr<io::File> log_;
  std::vector<IndexEntry> index_;
  std::vector<TimeIndexEntry> time_index_;
  uint64_t bytes_since_index_ = 0;
  std::shared_ptr<io::File> txn_file_;  // open once the segment has an entry
  bool txn_unsynced_ = false;
};

// Maps an io error to storage::Errc::io_error with its message.
Error<Errc> io_failure(const Error<io::Errc>& error);

}  // namespace holdfast::storage
