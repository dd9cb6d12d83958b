// The log of one partition: a sequence of segments, the newest active.
//
// Offsets: log start <= high watermark <= log end. Under FlushMode::always the
// high watermark is the durable offset (every byte below it covered by a
// completed fdatasync and every segment file's directory entry synced), so a
// consumer never reads what a power loss could take away. Under interval and
// never it is the log end. It never moves backwards.
//
// Thread safety: every public method may be called from any thread. State is
// guarded by one short mutex; file reads happen outside it on segments held
// by shared_ptr, so reads are safe concurrent with appends, rolls and
// retention deletes. No fsync happens inline: the LogManager's flusher thread
// does them (group commit).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/file_system.h"
#include "record/batch.h"
#include "storage/leader_epoch_cache.h"
#include "storage/producer_state.h"
#include "storage/segment.h"
#include "storage/types.h"

namespace holdfast::storage {

class PartitionLog;

// What a log needs from its manager. Implemented by LogManager.
class LogServices {
 public:
  virtual ~LogServices() = default;
  virtual io::FileSystem& fs() = 0;
  virtual int64_t now_ms() = 0;
  // Queue the log for the flusher thread (deduplicated).
  virtual void request_flush(const std::shared_ptr<PartitionLog>& log) = 0;
  // Tell the server's listener; called without any lock held.
  virtual void high_watermark_advanced(PartitionLog* log) = 0;
  // Persist every log's start offset (log-start-offset-checkpoint).
  virtual StorageResult<void> checkpoint_log_start_offsets() = 0;
  // Persist every log's durable offset (recovery-point-offset-checkpoint).
  // Called by flush() when a rolled segment is synced whole, before the
  // offsets after it are acknowledged.
  virtual StorageResult<void> checkpoint_recovery_points() = 0;
};

class PartitionLog : public std::enable_shared_from_this<PartitionLog> {
 public:
  using DurableCallback = std::function<void(Result<void, Errc>)>;

  const std::string& topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  const std::string& dir() const { return dir_; }

  // Appends one batch already validated by record::validate_produced_batch
  // (`header` is its parsed header, batch.size() == header.size_in_bytes()).
  // Stamps base offset = log end and the log's current leader epoch
  // (set_leader_epoch; outside the CRC-covered bytes) (and LogAppendTime if
  // the config says so) into the log's own copy, records the epoch's start
  // in the leader epoch cache if it is the first batch of that epoch, writes it to the active segment
  // (page cache only), updates the indexes and rolls the segment first if it
  // is full (segment.bytes) or old (segment.ms). Fails with io_error once the
  // log has failed (a write or fsync error: fsyncgate), closed after remove().
  // A batch with a producer id is first checked against the producer state
  // under the same lock (producer_state.h): a retry of one of the producer's
  // last five batches writes nothing and returns the ORIGINAL offsets with
  // `duplicate` set (the caller waits for last_offset + 1 to be durable before
  // acknowledging it); a sequence gap fails with out_of_order_sequence, an old
  // epoch with invalid_producer_epoch.
  StorageResult<AppendResult> append(std::span<const uint8_t> batch,
                                     const record::BatchHeader& header);
  // Append as the leader of `leader_epoch`: raises the log's leader epoch to
  // it first if it is higher; a lower one (a stale leader) fails with
  // invalid_argument and appends nothing. Kept for callers written before
  // set_leader_epoch existed (produce, the group store pass 0).
  StorageResult<AppendResult> append(std::span<const uint8_t> batch,
                                     const record::BatchHeader& header, int32_t leader_epoch);

  // ---- Follower side of replication (partition_log_replica.cc) ----
  // A follower's log is byte-identical to its leader's: it appends batches as
  // the leader stored them and truncates what diverged (KIP-101/279).
  // Appends and truncations of one log come from one thread (the replica
  // fetcher); an append racing a truncation fails with invalid_argument.

  // Appends one complete batch exactly as the leader stored it: no byte is
  // changed (base offset, leader epoch, LogAppendTime kept). Requires a batch
  // whose framing and CRC are valid and whose header matches `header`, a base
  // offset >= the log end (equal except across a hole the leader's cleaner
  // left, as Kafka allows), and a leader epoch >= the epoch of the log's last
  // batch (an epoch entry with no batch yet, at the log end, gives way to a
  // lower epoch: the replica led that epoch without writing). Anything else:
  // invalid_argument, nothing appended. A new epoch is recorded in the leader
  // epoch cache (written by the flusher before the batch counts as durable,
  // as for append) and raises leader_epoch() if higher. Producer state is
  // updated without checks (the leader decided), so after this replica
  // becomes leader a client's retry is recognised as a duplicate. Durability,
  // waiters and the high watermark as for append.
  StorageResult<AppendResult> append_replicated(std::span<const uint8_t> batch,
                                                const record::BatchHeader& header);
  // Removes every record at and after `offset`: the batch containing it
  // goes whole, so the log end becomes that batch's base offset (less only
  // across a compaction hole). offset >= log end: no-op; below the log
  // start: invalid_argument. On return the truncation is durable: the cut
  // segment is truncated and fsynced, later segments deleted and the
  // directory synced, the cut segment's index files removed (rewritten at
  // roll or shutdown), leader-epoch-checkpoint rewritten with
  // truncate_from_end(new end), producer state rebuilt for the remaining log
  // (snapshots past the end removed), durable offset and high watermark
  // clamped to the new end, the recovery point checkpointed. Crash safety: a
  // truncation-in-progress file (format.h) is written durably first and
  // removed last; load() finishes a truncation it finds, so a crash at any
  // point leaves a log that never contains the removed records again.
  // Durability waiters past the new end are failed with Errc::truncated
  // (their records are gone: they must never be acknowledged); waiters at or
  // below it complete when the remaining bytes are durable, as before.
  // Waits for a cleaning pass in progress. An I/O error after the first file
  // change fails the log (io_error; the restart finishes the truncation).
  StorageResult<void> truncate_to(int64_t offset);
  // Empties the log and starts it at `offset` (a follower whose fetch offset
  // fell below the leader's log start): every segment, producer snapshot and
  // the leader-epoch-checkpoint are deleted, one empty segment at `offset`
  // created, log start = log end = durable = high watermark = offset, the
  // epoch cache and producer state cleared, the log start and recovery point
  // checkpointed, durably on return and crash-safe as truncate_to. Every
  // pending durability waiter fails with Errc::truncated. offset < 0:
  // invalid_argument.
  StorageResult<void> truncate_fully_and_start_at(int64_t offset);
  // A truncation-in-progress file was finished by load() and is still on disk
  // (LogManager::open checkpoints the recovery points, then calls
  // finish_loaded_truncation, which removes it).
  bool loaded_truncation_pending() const;
  StorageResult<void> finish_loaded_truncation();

  // ---- Leader epochs (KIP-101/279; leader_epoch_cache.h) ----
  // The epoch stamped on appended batches: 0 on a new log, after load the
  // latest epoch of the cache (never lower than what the log holds). The
  // replication layer raises it when this replica becomes leader.
  int32_t leader_epoch() const;
  // Raises the leader epoch. A higher epoch starts at the current log end
  // in the cache (as Kafka records it when a leader takes over), persisted
  // by the next flush. Same epoch: no-op. Lower or negative: invalid_argument.
  // Offline log: io_error.
  StorageResult<void> set_leader_epoch(int32_t epoch);
  // OffsetForLeaderEpoch: LeaderEpochCache::end_offset_for against the log
  // end offset. io_error if offline.
  StorageResult<EpochEndOffset> end_offset_for_epoch(int32_t epoch) const;
  // The cache's entries, oldest first (tests, introspection).
  std::vector<EpochEntry> leader_epoch_entries() const;

  // Whole stored batches starting with the batch that contains `offset`, at
  // most max_bytes, except that with min_one_batch the first batch is returned
  // whole even if larger (KIP-74). Never returns batches whose base offset is
  // at or beyond min(upper_bound, log end). offset < log start or > log end →
  // offset_out_of_range; offset >= upper_bound → empty records.
  StorageResult<ReadResult> read(int64_t offset, size_t max_bytes, bool min_one_batch,
                                 int64_t upper_bound) const;

  int64_t log_start_offset() const;
  int64_t log_end_offset() const;
  // End offset covered by a completed fdatasync (and directory sync).
  int64_t durable_offset() const;
  int64_t high_watermark() const;

  // ListOffsets by timestamp: the offset of the first record whose timestamp
  // >= ts (and that record's timestamp, which ListOffsets returns), found via
  // the time index and the first batch whose max timestamp >= ts; only
  // batches below the high watermark count. nullopt if none.
  std::optional<TimestampAndOffset> offset_for_timestamp(int64_t ts) const;

  // DeleteRecords: advances the log start to `offset` (-1 = high watermark),
  // deletes segments wholly below it and persists log-start-offset-checkpoint.
  // offset > high watermark → offset_out_of_range. Returns the new log start
  // (unchanged if offset is below it).
  StorageResult<int64_t> delete_records_before(int64_t offset);

  // ---- Transactions (txn_index.h, producer_state.h) ----
  // The smallest first offset of a transaction still ongoing, or completed
  // with its marker at or above `high_watermark` (the partition's); nullopt
  // if none. The partition's last stable offset is min(this, its HW).
  std::optional<int64_t> first_unstable_offset(int64_t high_watermark);
  // Aborted transactions that overlap [from, upper): last offset >= from and
  // first offset < upper (Fetch read_committed), from the segments'
  // aborted-transaction indexes, oldest marker first.
  std::vector<AbortedTxn> aborted_txns(int64_t from, int64_t upper) const;

  int64_t size_bytes() const;
  LogConfig config() const;
  void update_config(const LogConfig& config);
  // True after a write or fsync error: nothing more is appended or acknowledged.
  bool failed() const;
  // True when load() found damage it may not repair (partition_log_recovery.cc):
  // every operation fails with io_error (KAFKA_STORAGE_ERROR) naming it, and
  // nothing in the directory is changed. Fixed by `holdfast log repair`.
  bool offline() const { return offline_; }
  // io_error naming the damage if offline(), else ok: for handlers that
  // answer from the offsets alone (Fetch before it reads, ListOffsets).
  StorageResult<void> check_online() const;
  size_t segment_count() const;
  // The idempotence state of one producer id (tests, introspection).
  std::optional<ProducerEntry> producer_state(int64_t producer_id) const;
  size_t producer_count() const;
  // Every producer's idempotence state, by producer id (DescribeProducers).
  std::vector<ProducerEntry> producer_states() const;

  // ---- For LogManager ----

  static StorageResult<std::shared_ptr<PartitionLog>> create(LogServices& services, std::string dir,
                                                             std::string topic, int32_t partition,
                                                             const LogConfig& config);
  // Loads a partition directory (partition_log_recovery.cc). Segments that
  // may hold offsets at or beyond `recovery_point` are walked with CRC checks
  // unless `clean`, the others trusted. Only a torn tail (bad bytes past the
  // recovery point with no good batch after them) is cut; any other damage
  // returns an offline() log and changes nothing on disk. Recovered bytes are
  // fdatasynced before they count as durable. The leader epoch cache comes
  // from leader-epoch-checkpoint plus the epochs of the batches past the
  // recovery point, trimmed to [log start, log end); a missing or unreadable
  // checkpoint is rebuilt from every batch (never takes the log offline).
  // Errors: io_error if the directory cannot be read.
  static StorageResult<std::shared_ptr<PartitionLog>> load(LogServices& services, std::string dir,
                                                           std::string topic, int32_t partition,
                                                           const LogConfig& config,
                                                           std::optional<int64_t> recovery_point,
                                                           std::optional<int64_t> log_start,
                                                           bool clean);

  // Registers a callback for when every byte up to end_offset is durable (per
  // the flush mode; under interval/never as soon as it is in the log). Called
  // by flush() on the flusher thread (with an error if the log failed), or at
  // once on the calling thread with `closed` if the log is closed.
  void add_waiter(int64_t end_offset, DurableCallback on_durable);
  // The flusher's work: fdatasync every segment with unsynced bytes and the
  // directory if a segment was created (under FlushMode::always, or when
  // force_sync or a sync was requested), write leader-epoch-checkpoint if
  // the cache changed (so every epoch below the durable offset, and so below
  // any recovery point, is in the file), advance the durable offset, write
  // the index files of rolled segments, then complete the waiters. A sync
  // error fails the log for good.
  void flush(bool force_sync);
  // Writes index files not yet on disk (shutdown).
  StorageResult<void> write_index_files();

  // ---- Recovery marks (partition_log.cc; docs/storage-format.md) ----
  // So that recovery after a crash walks only what was written since the
  // last mark, not the whole active segment. The LogManager's timer asks for
  // a mark (request_recovery_mark) when recovery_mark_due; the next flush that
  // syncs takes it: under the log mutex, with the sync target T (the log
  // end), the active segment's size and the producer state as of T. Once the
  // fdatasync covering T succeeds the mark is ready (a failed sync drops
  // it); write_recovery_mark (timer thread, not the flusher) then writes the
  // active segment's index files for the batches below T and <T>.snapshot,
  // each atomically, and the LogManager checkpoints the recovery points.
  // Due once interval_ms passed since the last mark and either min_bytes
  // were appended since (counted from when the last mark was asked for) or
  // max_interval_ms passed; never while nothing new is durable.
  bool recovery_mark_due(int64_t now_ms, int64_t interval_ms, int64_t min_bytes = 0,
                         int64_t max_interval_ms = 0) const;
  void request_recovery_mark();
  // Writes the ready mark, if any; true if it wrote one. Nothing is written
  // once the log is closed or failed, while a truncation runs, or for a
  // mark a truncation discarded.
  StorageResult<bool> write_recovery_mark();

  // What load() walked: bytes checked with CRCs (recovery) and bytes of
  // batch headers walked (trusted segments' tails, producer-state replay).
  struct LoadStats {
    uint64_t crc_checked_bytes = 0;
    uint64_t header_walked_bytes = 0;
  };
  LoadStats load_stats() const { return load_stats_; }
  // Writes the producer state as of the log end as <log end>.snapshot, so the
  // next start replays nothing (clean shutdown; the log must be flushed).
  StorageResult<void> write_producer_snapshot();
  // Forgets producers idle for expiration_ms (producer.id.expiration.ms),
  // except the producer of the log's latest batch. Returns how many.
  size_t expire_producers(int64_t now_ms, int64_t expiration_ms);
  // Deletes whole non-active segments past retention.ms / retention.bytes
  // that lie below the high watermark and wholly below the first batch of
  // any ongoing transaction (the log start never passes the LSO). Returns
  // how many were deleted.
  StorageResult<int> apply_retention(int64_t now_ms);
  // Interval mode: asks the flusher for a sync if flush_interval_ms passed.
  bool needs_interval_flush(int64_t now_ms) const;
  void request_sync() { sync_requested_.store(true); }
  // Stops the log: later appends fail with closed, waiters get closed.
  void close();
  // LogManager::remove keeps this log's directory as a stray
  // (`<dir>.<id>-stray`) instead of deleting it: set by the partition
  // lifecycle for a partition whose topic the metadata never knew.
  void keep_as_stray() { keep_as_stray_.store(true); }
  bool kept_as_stray() const { return keep_as_stray_.load(); }

  // Owned by the LogManager's flusher queue (under its flush_mu_): in the
  // queue; being flushed by a flusher thread; asked for again meanwhile.
  bool flush_queued = false;
  bool flush_running = false;
  bool flush_again = false;

  // ---- For the log cleaner (log_cleaner.h) ----
  // A cleaning pass reads and rewrites segment files without any lock that
  // retention, DeleteRecords or close() take; it holds cleaner_mu_ only for
  // creating a cleaned file and for the swap itself (renames and directory
  // syncs), so those never wait for a whole pass.

  struct CleanableRange {
    LogConfig config;
    std::vector<std::shared_ptr<Segment>> segments;  // the cleanable prefix, oldest first
    int64_t first_dirty_offset = 0;                  // cleaned below this in this process
  };
  // Serialises cleaning passes over this log (held for a whole pass). Nothing
  // on a request path takes it.
  [[nodiscard]] std::unique_lock<std::mutex> begin_cleaning_pass();
  // The cleanable prefix (see log_cleaner.h) as of now; nullopt if the log is
  // closed, failed or not compacted, or the prefix is not dirty enough
  // (min.cleanable.dirty.ratio). Requires the pass lock.
  std::optional<CleanableRange> cleanable_range(int64_t now_ms);
  // Everything below `offset` is cleaned (in this process). Requires the pass lock.
  void set_first_dirty_offset(int64_t offset);
  // Creates an empty <base>.log.cleaned (replacing a leftover) for the
  // cleaned copy of `segment`; fails with `closed` once close() ran (so no
  // file appears in a directory that is being removed) and with not_found if
  // the segment was deleted meanwhile.
  StorageResult<std::unique_ptr<io::File>> create_cleaned_file(
      const std::shared_ptr<Segment>& segment);
  // Removes <base>.log.cleaned (a cleaned copy that changed nothing).
  StorageResult<void> discard_cleaned_file(int64_t base_offset);
  // True once close() ran: the cleaner stops early.
  bool closed() const;
  enum class SwapOutcome { swapped, segment_gone };
  // Replaces the non-active segment `old_segment` by its cleaned copy.
  // Before: <base>.log.cleaned is complete and fsynced, holds whole batches
  // ending at old_segment->next_offset, and is cleaned_size bytes long.
  // After `swapped`: <base>.log is the cleaned file (durably: the renames
  // .cleaned -> .swap -> .log are each followed by a directory sync, the old
  // index files removed before), the log serves the new segment, and its
  // index files are written. If retention, DeleteRecords or close() removed
  // the segment first (before the swap or while the new file loaded),
  // returns segment_gone: no file is brought back and the .cleaned file is
  // removed. cleaner_mu_ is held only across the renames and syncs and the
  // index-file writes; the reload of the new file happens without it. `step`
  // (tests) is called after each step, as LogCleaner::StepHook.
  StorageResult<SwapOutcome> swap_segments(const std::shared_ptr<Segment>& old_segment,
                                           uint64_t cleaned_size, int64_t now_ms,
                                           const std::function<void(std::string_view)>& step);

  PartitionLog(LogServices& services, std::string dir, std::string topic, int32_t partition,
               const LogConfig& config);

 private:
  struct Waiter {
    int64_t end_offset;
    DurableCallback callback;
  };

  // An offline log that keeps the checkpoints' offsets (so they are written
  // back unchanged); logs the damage.
  static std::shared_ptr<PartitionLog> make_offline(LogServices& services, std::string dir,
                                                    std::string topic, int32_t partition,
                                                    const LogConfig& config, std::string reason,
                                                    std::optional<int64_t> recovery_point,
                                                    std::optional<int64_t> log_start);
  StorageResult<void> roll_locked(int64_t now_ms);
  // The one append step of append (leader) and append_replicated (follower).
  // check_writable_locked: what every append requires under mu_ (not closed,
  // not failed, no truncation running). write_at_end_locked: under mu_,
  // writes `bytes`, whose header `stamped` is final (base offset >= log end,
  // leader epoch set; the caller stamped or checked them), at the end of the
  // log: rolls first if needed (needs_roll_locked), appends to the active
  // segment and its indexes (a write error fails the log), records a new
  // epoch's start in the cache, advances the log end, the producer state
  // (unchecked: a leader checked it before stamping), the byte count and,
  // outside FlushMode::always, the high watermark. Returns whether it rolled.
  // after_write, without the lock: queues the flush and tells the listener.
  StorageResult<void> check_writable_locked() const;
  StorageResult<bool> write_at_end_locked(std::span<const uint8_t> bytes,
                                          const record::BatchHeader& stamped, int64_t now);
  void after_write(FlushMode mode, bool rolled);
  // Whether a batch of `batch_size` bytes ending at `last_offset` must go to
  // a new segment (segment.bytes, segment.ms, relative offsets exhausted).
  bool needs_roll_locked(size_t batch_size, int64_t last_offset, int64_t now_ms) const;
  // The file and memory part of a truncation (partition_log_replica.cc):
  // removes the index files of `cut` and the segments in `dead` (newest
  // first), syncs the directory, cuts `cut` at `point`, makes it active and
  // fsyncs it. Used by truncate_to and by load().
  StorageResult<void> cut_segments(const std::shared_ptr<Segment>& cut,
                                   const Segment::TruncationPoint& point,
                                   const std::vector<std::shared_ptr<Segment>>& dead);
  // Plans a cut at `offset` (< log end, >= the first segment's base).
  StorageResult<void> plan_cut_locked(int64_t offset, std::shared_ptr<Segment>& cut,
                                      Segment::TruncationPoint& point,
                                      std::vector<std::shared_ptr<Segment>>& dead) const;
  int64_t high_watermark_locked() const { return high_watermark_; }
  void fail_locked(std::string reason);
  std::vector<DurableCallback> take_ready_waiters_locked(std::optional<Errc>& error,
                                                         std::string& message);
  StorageResult<void> remove_segments(const std::vector<std::shared_ptr<Segment>>& dead,
                                      int64_t first_base);
  // Load: producer state from the newest valid snapshot plus a replay of the
  // batch headers after it (or of the whole log without one).
  StorageResult<void> load_producer_state(const std::vector<std::string>& names, bool& dir_changed);
  void remove_snapshots_below(int64_t offset);
  // Load: the leader epoch cache (partition_log_recovery.cc). `replay_from`
  // is the first offset whose batches' epochs may be missing from the file.
  void load_leader_epochs(int64_t replay_from);
  StorageResult<void> replay_leader_epochs(int64_t from);

  // The cache's state to write, if it changed since the last write.
  struct EpochSnapshot {
    uint64_t version;
    std::vector<EpochEntry> entries;
  };
  std::optional<EpochSnapshot> epochs_to_persist_locked() const;
  // Writes the snapshot unless a newer one is already on disk.
  StorageResult<void> persist_leader_epochs(const EpochSnapshot& snapshot);

  struct RecoveryMark {
    std::shared_ptr<Segment> segment;  // the active segment when it was taken
    uint64_t size;                     // its size then (whole batches, all below offset)
    int64_t offset;                    // the log end then: the sync target
    std::vector<uint8_t> snapshot;     // producer state as of offset
  };
  RecoveryMark take_recovery_mark_locked() const;

  struct PendingSnapshot {
    std::shared_ptr<Segment> rolled;  // written once this segment is synced
    int64_t offset;
    std::vector<uint8_t> bytes;
  };

  LogServices& services_;
  const std::string dir_;
  const std::string topic_;
  const int32_t partition_;

  mutable std::mutex mu_;
  LogConfig config_;
  std::map<int64_t, std::shared_ptr<Segment>> segments_;  // by base offset
  std::shared_ptr<Segment> active_;
  std::vector<std::shared_ptr<Segment>> rolled_unsynced_;  // rolled, not yet synced + indexed
  uint64_t dir_generation_ = 0;                            // bumped when a segment file is created
  uint64_t synced_dir_generation_ = 0;  // the generation a directory sync covered
  int64_t log_start_offset_ = 0;
  int64_t log_end_offset_ = 0;
  int64_t durable_offset_ = 0;
  int64_t high_watermark_ = 0;
  int64_t total_bytes_ = 0;
  int64_t last_sync_ms_ = 0;
  bool failed_ = false;
  bool offline_ = false;  // set before the log is published, never changed
  std::string failure_;
  bool closed_ = false;
  std::vector<uint8_t> scratch_;  // the stamped copy of the batch being appended
  std::vector<Waiter> waiters_;
  std::atomic<bool> sync_requested_{false};
  std::atomic<bool> keep_as_stray_{false};
  ProducerStateTable producers_;
  int64_t last_batch_producer_id_ = -1;  // of the latest batch in the log; never expired
  int32_t leader_epoch_ = 0;             // stamped on appends
  LeaderEpochCache epochs_;
  uint64_t epochs_version_ = 0;            // bumped on every change of epochs_
  uint64_t epochs_persisted_version_ = 0;  // the version leader-epoch-checkpoint holds
  std::vector<PendingSnapshot> pending_snapshots_;
  bool truncating_ = false;             // truncate_to / truncate_fully_and_start_at running
  bool loaded_truncation_ = false;      // load() finished a truncation; its file is still there
  bool mark_wanted_ = false;                // request_recovery_mark(): the next syncing flush takes one
  std::optional<RecoveryMark> ready_mark_;  // synced, waiting for write_recovery_mark()
  int64_t last_mark_ms_ = 0;                // when the last mark was asked for
  int64_t bytes_since_mark_ = 0;            // appended since then (recovery_mark_due)
  int64_t last_mark_offset_ = 0;            // the offset it covered (or the end at load)
  LoadStats load_stats_;                    // set by load()

  std::mutex flush_mu_;  // one flush at a time
  // Held while a recovery mark writes its files and by whatever else writes
  // or removes the active segment's index files or changes bytes below the
  // durable offset: the flusher writing a rolled segment's index files,
  // truncate_to / truncate_fully_and_start_at, close(). So a mark's prefix
  // index never lands after (over) a rolled segment's full one, nor in a
  // truncated or removed log. Lock order: flush_mu_ before mark_file_mu_
  // before mu_.
  std::mutex mark_file_mu_;
  // Serialises writes of leader-epoch-checkpoint, so an older snapshot never
  // overwrites a newer one. Taken after flush_mu_/cleaner_mu_, before mu_.
  std::mutex epoch_file_mu_;

  // Serialises every change of the segment files other than appends and the
  // cleaner's reads and writes of its own .cleaned file: the creation of a
  // cleaned file and a segment swap (swap_segments), retention, DeleteRecords
  // and close(). Each holds it briefly, never for a whole cleaning pass.
  // Lock order: cleaning_pass_mu_ before cleaner_mu_ before flush_mu_ before mu_.
  std::mutex cleaner_mu_;
  // Held by a cleaning pass for its whole length (begin_cleaning_pass).
  std::mutex cleaning_pass_mu_;
  // Cleaned up to here in this process (the cleaner's in-memory checkpoint;
  // after a restart everything counts as dirty again). Guarded by
  // cleaning_pass_mu_.
  int64_t first_dirty_offset_ = 0;
};

}  // namespace holdfast::storage
