// The log cleaner: cleanup.policy=compact (docs/storage-format.md, "Compaction").
//
// A pass over one partition log keeps, in the cleanable prefix of the log, only
// the latest record of each key (plus tombstones until their delete horizon),
// rewriting one segment at a time. Contracts:
//  - Cleanable prefix: the non-active segments from the first one up to the
//    first that is not wholly below min(high watermark, durable offset), is
//    still being synced/indexed by the flusher, or is younger than
//    min.compaction.lag.ms. Nothing at or above the high watermark and nothing
//    in the active segment is ever touched.
//  - Bounded key map: the map of key -> latest offset is built from the first
//    dirty offset onwards and holds at most dedupe_buffer_bytes (Kafka's
//    log.cleaner.dedupe.buffer.size; each entry costs its key's bytes plus
//    kKeyMapEntryOverhead). When it fills up at offset M, the round rewrites
//    the segments holding offsets below M, judging only records below M
//    (later ones are copied as they are), and the next round maps from M: a
//    pass is as many rounds as the dirty part needs. A record is dropped only
//    if the map holds a later offset for its key.
//  - Tombstones (KIP-534): a tombstone that is the latest of its key is kept
//    until the batch's delete horizon. The first pass that keeps it rewrites
//    its batch with the delete-horizon attribute bit set and the base
//    timestamp = now + delete.retention.ms (record timestamps unchanged: their
//    deltas are relative to the base); a later pass past that time drops it.
//    The horizon is part of the batch, so it is made durable by the same
//    segment swap; a crash before it only restarts the clock. A tombstone is
//    never dropped while an older record of its key survives in a batch that
//    is kept whole (below), which would come back to life.
//  - Offsets never change: kept records keep their offsets (gaps appear inside
//    segments). The last batch of every segment is kept whole, so every
//    segment still ends exactly where the next one starts and recovery's
//    contiguity rule (a gap between segments = a lost unsynced tail) holds
//    unchanged.
//  - Batches with a producer id (idempotent/transactional) and control batches
//    are never split: kept whole if any record is needed, and the last batch of
//    each producer id in the prefix is always kept whole (Kafka's rule), so the
//    producer state replayed at load still knows every producer's last
//    sequence. Batches without a producer id are rebuilt with only the needed
//    records (uncompressed, original offsets/timestamps/attributes otherwise).
//  - Records with a null key are always kept.
//  - Locking: the pass reads segments and writes <base>.log.cleaned without
//    any lock a request path takes; PartitionLog::swap_segments holds the
//    log's cleaner mutex only for the swap. Retention, DeleteRecords and close
//    may remove a segment mid-pass; the swap then drops the cleaned copy.
//  - Crash safety: <base>.log.cleaned is written and fsynced; the segment's
//    index files are removed and .cleaned renamed to <base>.log.swap, then the
//    directory is fsynced (commit point); .swap is renamed over <base>.log and
//    the directory fsynced; new index files are written. recover_swaps() (run
//    by PartitionLog::load before listing segments) deletes a .cleaned and
//    completes a .swap. Segments of one pass are swapped oldest first, so a
//    crash between two swaps never drops a record (or tombstone) whose
//    justification is only in an older, not yet swapped segment.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "io/file_system.h"
#include "storage/types.h"

namespace holdfast::storage {

class PartitionLog;

class LogCleaner {
 public:
  struct Stats {
    int segments_rewritten = 0;
    int64_t bytes_before = 0;  // of the rewritten segments
    int64_t bytes_after = 0;
    int64_t records_removed = 0;
    int rounds = 0;  // key-map fillings (more than one when the map was full)
  };
  // Tests: called at each step of a segment swap ("cleaned_written",
  // "cleaned_synced", "swap_renamed", "swap_synced", "log_renamed",
  // "log_synced", "indexes_written").
  using StepHook = std::function<void(std::string_view step)>;

  // Kafka's log.cleaner.dedupe.buffer.size default: 128 MiB.
  static constexpr int64_t kDefaultDedupeBufferBytes = 128LL << 20;
  // What one key-map entry costs besides its key bytes (offset, hash node).
  static constexpr int64_t kKeyMapEntryOverhead = 64;

  struct Options {
    int64_t dedupe_buffer_bytes = kDefaultDedupeBufferBytes;
    StepHook hook;
  };

  // One cleaning pass over `log` if its config has compact and the dirty ratio
  // of the cleanable prefix is >= min.cleanable.dirty.ratio. Passes over one
  // log are serialised; retention, DeleteRecords and close do not wait for
  // one (see the locking contract above). On an error the log keeps serving
  // its old segments (a crash or restart finishes or rolls back a half-done
  // swap).
  static StorageResult<Stats> clean(PartitionLog& log, int64_t now_ms, const Options& options);
  static StorageResult<Stats> clean(PartitionLog& log, int64_t now_ms,
                                    const StepHook& hook = nullptr) {
    Options options;
    options.hook = hook;
    return clean(log, now_ms, options);
  }

  // Start-up, before the segments of `dir` are listed: deletes every
  // <base>.log.cleaned and completes every <base>.log.swap (removes the
  // segment's index files, renames it over <base>.log). Sets dir_changed if
  // anything changed; the caller syncs the directory.
  static StorageResult<void> recover_swaps(io::FileSystem& fs, const std::string& dir,
                                           bool& dir_changed);
};

}  // namespace holdfast::storage
