#include "storage/partition_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "base/log.h"
#include "storage/format.h"
#include "storage/log_cleaner.h"
#include "storage/txn_index.h"

namespace holdfast::storage {

using record::BatchHeader;

PartitionLog::PartitionLog(LogServices& services, std::string dir, std::string topic,
                           int32_t partition, const LogConfig& config)
    : services_(services),
      dir_(std::move(dir)),
      topic_(std::move(topic)),
      partition_(partition),
      config_(config) {}

// ---------------------------------------------------------------- creation

StorageResult<std::shared_ptr<PartitionLog>> PartitionLog::create(LogServices& services,
                                                                  std::string dir,
                                                                  std::string topic,
                                                                  int32_t partition,
                                                                  const LogConfig& config) {
  io::FileSystem& fs = services.fs();
  if (fs.exists(dir)) {
    return make_error(Errc::already_exists, fmt::format("partition directory {} exists", dir));
  }
  if (auto r = io::create_dirs(fs, dir); !r) return io_failure(r.error());
  auto segment = Segment::create(fs, dir, 0, services.now_ms());
  if (!segment) return segment.error();
  // The first segment's entry is durable before anything is acknowledged.
  if (auto r = fs.sync_dir(dir); !r) return io_failure(r.error());
  auto log = std::make_shared<PartitionLog>(services, dir, std::move(topic), partition, config);
  log->segments_[0] = *segment;
  log->active_ = *segment;
  log->last_sync_ms_ = services.now_ms();
  log->last_mark_ms_ = log->last_sync_ms_;
  return log;
}

// ---------------------------------------------------------------- append

StorageResult<void> PartitionLog::roll_locked(int64_t now_ms) {
  auto segment = Segment::create(services_.fs(), dir_, log_end_offset_, now_ms);
  if (!segment) return segment.error();
  // The producer state as of the roll point, written once the rolled segment
  // is synced (a snapshot never covers bytes that are not durable).
  pending_snapshots_.push_back({active_, log_end_offset_, producers_.encode_snapshot(log_end_offset_)});
  rolled_unsynced_.push_back(active_);
  active_ = *segment;
  segments_[log_end_offset_] = active_;
  ++dir_generation_;
  // Even without FlushMode::always the old segment gets synced and indexed now.
  sync_requested_.store(true);
  return {};
}

bool PartitionLog::needs_roll_locked(size_t batch_size, int64_t last_offset,
                                     int64_t now_ms) const {
  int64_t segment_bytes = std::min(config_.segment_bytes, format::kMaxSegmentBytes);
  bool full = int64_t(active_->size + batch_size) > segment_bytes;
  bool old = now_ms - active_->created_ms >= config_.segment_ms;
  bool offsets_exhausted = last_offset - active_->base_offset > format::kMaxRelativeOffset;
  return active_->size > 0 && (full || old || offsets_exhausted);
}

StorageResult<AppendResult> PartitionLog::append(std::span<const uint8_t> batch,
                                                 const BatchHeader& header, int32_t leader_epoch) {
  {
    std::lock_guard lock(mu_);
    if (leader_epoch < leader_epoch_) {
      return make_error(Errc::invalid_argument,
                        fmt::format("append to {}-{} in leader epoch {}, but the log is in epoch {}",
                                    topic_, partition_, leader_epoch, leader_epoch_));
    }
    // The epoch's entry in the cache is made by the append (at its base offset).
    leader_epoch_ = leader_epoch;
  }
  return append(batch, header);
}

StorageResult<void> PartitionLog::check_writable_locked() const {
  if (closed_)
    return make_error(Errc::closed, fmt::format("log {}-{} is closed", topic_, partition_));
  if (failed_) return make_error(Errc::io_error, failure_);
  if (truncating_) {
    return make_error(Errc::invalid_argument,
                      fmt::format("append to {}-{} during a truncation", topic_, partition_));
  }
  return {};
}

StorageResult<bool> PartitionLog::write_at_end_locked(std::span<const uint8_t> bytes,
                                                      const BatchHeader& stamped, int64_t now) {
  bool rolled = false;
  if (needs_roll_locked(bytes.size(), stamped.last_offset(), now)) {
    if (auto r = roll_locked(now); !r) return r.error();
    rolled = true;
  }
  if (auto r = active_->append(bytes, stamped, config_.index_interval_bytes); !r) {
    fail_locked(r.error().message);
    return r.error();
  }
  // The first batch of an epoch starts it (flush() persists the cache before
  // this batch can count as durable). A lower epoch than the cache's latest
  // only comes from a leader (append_replicated): the entries above it had
  // no batch and give way.
  const int32_t epoch = stamped.partition_leader_epoch;
  if (epochs_.latest_epoch() != epoch) {
    bool changed = false;
    if (epochs_.latest_epoch() > epoch) changed = epochs_.truncate_from_end(stamped.base_offset);
    if (epochs_.assign(epoch, stamped.base_offset)) changed = true;
    if (changed) ++epochs_version_;
  }
  leader_epoch_ = std::max(leader_epoch_, epoch);
  log_end_offset_ = stamped.last_offset() + 1;
  // A leader checked the producer state before stamping; a follower's batch
  // is recorded without checks (the leader decided), as the load replay does.
  if (stamped.producer_id >= 0 && !stamped.is_control()) producers_.record(stamped, now);
  if (stamped.is_control() && stamped.producer_id >= 0) {
    // A marker ends the producer's transaction; an ABORT goes to the
    // segment's aborted-transaction index (synced with the segment).
    if (auto marker = parse_control_batch(bytes)) {
      if (auto aborted = producers_.record_marker(stamped, *marker, now)) {
        bool created = false;
        if (auto r = active_->append_aborted_txn(services_.fs(), *aborted, created); !r) {
          fail_locked("appending to the aborted-transaction index: " + r.error().message);
          return r.error();
        }
        if (created) ++dir_generation_;
      }
    } else {
      HF_WARN("{}-{}: control batch at offset {} has no marker: {}", topic_, partition_,
              stamped.base_offset, marker.error().message);
    }
  }
  last_batch_producer_id_ = stamped.producer_id;
  total_bytes_ += int64_t(bytes.size());
  bytes_since_mark_ += int64_t(bytes.size());
  if (config_.flush_mode != FlushMode::always) high_watermark_ = log_end_offset_;
  return rolled;
}

void PartitionLog::after_write(FlushMode mode, bool rolled) {
  if (mode == FlushMode::always || rolled) services_.request_flush(shared_from_this());
  if (mode != FlushMode::always) services_.high_watermark_advanced(this);
}

StorageResult<AppendResult> PartitionLog::append(std::span<const uint8_t> batch,
                                                 const BatchHeader& header) {
  if (batch.size() != header.size_in_bytes() || batch.size() < record::kBatchHeaderSize ||
      header.records_count <= 0) {
    return make_error(Errc::invalid_argument,
                      fmt::format("append to {}-{}: batch of {} bytes does not match its header",
                                  topic_, partition_, batch.size()));
  }
  AppendResult result;
  FlushMode mode;
  bool rolled = false;
  {
    std::lock_guard lock(mu_);
    if (auto r = check_writable_locked(); !r) return r.error();
    // Transaction markers (WriteTxnMarkers): Kafka's control-batch checks.
    if (header.is_control()) {
      auto marker = parse_control_batch(batch);
      if (!marker) return marker.error();
      if (header.producer_id < 0) {
        return make_error(Errc::invalid_argument, std::string("a marker needs a producer id"));
      }
      if (auto r = producers_.check_marker(header, *marker); !r) {
        return make_error(r.code(), fmt::format("{}-{}: {}", topic_, partition_, r.error().message));
      }
    }
    // Idempotence: checked under the lock, atomically with the append below.
    if (header.producer_id >= 0 && !header.is_control()) {
      auto checked = producers_.check(header);
      if (!checked) {
        return make_error(checked.code(), fmt::format("{}-{}: {}", topic_, partition_,
                                                      checked.error().message));
      }
      if (checked->has_value()) {
        const ProducerBatch& original = **checked;
        result.base_offset = original.base_offset;
        result.last_offset = original.last_offset;
        result.log_append_time_ms = config_.log_append_time ? original.max_timestamp : -1;
        result.duplicate = true;
        return result;
      }
    }
    int64_t now = services_.now_ms();
    scratch_.assign(batch.begin(), batch.end());
    BatchHeader stamped = header;
    stamped.base_offset = log_end_offset_;
    stamped.partition_leader_epoch = leader_epoch_;
    record::stamp_batch(scratch_.data(), log_end_offset_, leader_epoch_);
    result.log_append_time_ms = -1;
    if (config_.log_append_time) {
      record::set_log_append_time(scratch_.data(), scratch_.size(), now);
      stamped.attributes |= record::kTimestampTypeBit;
      stamped.max_timestamp = now;
      result.log_append_time_ms = now;
    }
    auto written = write_at_end_locked(scratch_, stamped, now);
    if (!written) return written.error();
    rolled = *written;
    result.base_offset = stamped.base_offset;
    result.last_offset = stamped.last_offset();
    mode = config_.flush_mode;
  }
  after_write(mode, rolled);
  return result;
}

void PartitionLog::fail_locked(std::string reason) {
  if (failed_) return;
  failed_ = true;
  failure_ = fmt::format("log {}-{} failed and accepts no more writes until restart: {}", topic_,
                         partition_, reason);
  HF_ERROR("{}", failure_);
}

// ---------------------------------------------------------------- durability

void PartitionLog::add_waiter(int64_t end_offset, DurableCallback on_durable) {
  {
    std::unique_lock lock(mu_);
    if (closed_) {
      // The flusher may be gone: answer here.
      lock.unlock();
      on_durable(make_error(Errc::closed, fmt::format("log {}-{} is closed", topic_, partition_)));
      return;
    }
    // Completed (or failed, if the log failed) by the flusher thread.
    waiters_.push_back({end_offset, std::move(on_durable)});
  }
  services_.request_flush(shared_from_this());
}

std::vector<PartitionLog::DurableCallback> PartitionLog::take_ready_waiters_locked(
    std::optional<Errc>& error, std::string& message) {
  std::vector<DurableCallback> ready;
  if (closed_ || failed_) {
    error = closed_ ? Errc::closed : Errc::io_error;
    message = closed_ ? fmt::format("log {}-{} is closed", topic_, partition_) : failure_;
    for (auto& w : waiters_) ready.push_back(std::move(w.callback));
    waiters_.clear();
    return ready;
  }
  int64_t done = config_.flush_mode == FlushMode::always ? durable_offset_ : log_end_offset_;
  std::erase_if(waiters_, [&](Waiter& w) {
    if (w.end_offset > done) return false;
    ready.push_back(std::move(w.callback));
    return true;
  });
  return ready;
}

void PartitionLog::flush(bool force_sync) {
  std::lock_guard flush_lock(flush_mu_);
  struct Pending {
    std::shared_ptr<Segment> segment;
    uint64_t size;
  };
  std::vector<Pending> to_sync;
  bool sync_dir = false;
  uint64_t dir_generation = 0;
  int64_t target = 0;
  bool do_sync = false;
  std::optional<EpochSnapshot> epochs;
  std::optional<RecoveryMark> mark;
  std::vector<std::shared_ptr<io::File>> txn_files;  // aborted-transaction indexes to sync
  {
    std::lock_guard lock(mu_);
    if (!closed_ && !failed_) epochs = epochs_to_persist_locked();
    do_sync =
        !closed_ && !failed_ &&
        (config_.flush_mode == FlushMode::always || force_sync || sync_requested_.exchange(false));
    if (do_sync) {
      target = log_end_offset_;
      for (const auto& s : rolled_unsynced_) to_sync.push_back({s, s->size});
      if (active_->synced_size < active_->size) to_sync.push_back({active_, active_->size});
      for (const auto& p : to_sync) {
        if (auto file = p.segment->txn_index_to_sync()) txn_files.push_back(std::move(file));
      }
      dir_generation = dir_generation_;
      sync_dir = dir_generation_ != synced_dir_generation_;
      do_sync = !to_sync.empty() || sync_dir;
    }
    // A recovery mark is taken with the sync target, in this critical
    // section, so its producer state is exactly as of `target`; it becomes
    // ready only once the sync below covering `target` succeeded.
    if (mark_wanted_ && !closed_ && !failed_ && !truncating_) {
      if (do_sync) {
        mark = take_recovery_mark_locked();
        mark_wanted_ = false;
      } else if (durable_offset_ == log_end_offset_ && rolled_unsynced_.empty() &&
                 active_->synced_size == active_->size) {
        ready_mark_ = take_recovery_mark_locked();  // everything is durable already
        mark_wanted_ = false;
      }
    }
  }
  bool advanced = false;
  std::vector<std::shared_ptr<Segment>> finished;  // rolled segments now fully synced
  if (epochs && !do_sync) {
    // Only the cache changed (a new epoch with no batch yet): no offset
    // depends on it, but it must not stay unwritten.
    if (auto r = persist_leader_epochs(*epochs); !r) {
      std::lock_guard lock(mu_);
      fail_locked("writing leader-epoch-checkpoint: " + r.error().message);
    }
  }
  if (do_sync) {
    std::optional<std::string> error;
    for (const auto& p : to_sync) {
      if (p.segment->synced_size >= p.size) continue;
      if (auto r = p.segment->file().sync_data(); !r) {
        error = r.error().message;
        break;
      }
    }
    for (const auto& file : txn_files) {
      if (error) break;
      if (auto r = file->sync_data(); !r) error = r.error().message;
    }
    if (!error && sync_dir) {
      if (auto r = services_.fs().sync_dir(dir_); !r) error = r.error().message;
    }
    // Every epoch starting below `target` is in the file before `target`
    // counts as durable: recovery trusts the file below the recovery point.
    if (!error && epochs) {
      if (auto r = persist_leader_epochs(*epochs); !r) {
        error = "writing leader-epoch-checkpoint: " + r.error().message;
      }
    }
    {
      std::lock_guard lock(mu_);
      if (error) {
        fail_locked(*error);
      } else {
        for (const auto& p : to_sync)
          p.segment->synced_size = std::max(p.segment->synced_size, p.size);
        synced_dir_generation_ = std::max(synced_dir_generation_, dir_generation);
        std::erase_if(rolled_unsynced_, [&](const std::shared_ptr<Segment>& s) {
          if (s->synced_size < s->size) return false;
          finished.push_back(s);
          return true;
        });
        if (target > durable_offset_) durable_offset_ = target;
        last_sync_ms_ = services_.now_ms();
        if (mark) ready_mark_ = std::move(*mark);
      }
    }
    // A rolled segment is synced whole: the recovery point moves past it
    // before anything after it is acknowledged or served. So recovery walks
    // only the segment holding the recovery point and those after it, and a
    // bad stretch past the recovery point can have nothing acknowledged in
    // later segments (partition_log_recovery.cc relies on this).
    if (!error && !finished.empty()) {
      if (auto r = services_.checkpoint_recovery_points(); !r) {
        std::lock_guard lock(mu_);
        fail_locked("recording the recovery point after a segment roll: " + r.error().message);
      }
    }
    std::lock_guard lock(mu_);
    if (!failed_ && config_.flush_mode == FlushMode::always && durable_offset_ > high_watermark_) {
      high_watermark_ = durable_offset_;
      advanced = true;
    }
  }
  // Wake fetchers first, then acknowledge producers.
  if (advanced) services_.high_watermark_advanced(this);
  std::optional<Errc> error;
  std::string message;
  std::vector<DurableCallback> ready;
  {
    std::lock_guard lock(mu_);
    ready = take_ready_waiters_locked(error, message);
  }
  for (auto& callback : ready) {
    if (error) {
      callback(make_error(*error, message));
    } else {
      callback(Result<void, Errc>());
    }
  }
  // Rolled segments are immutable: persist their indexes, after the acks so
  // they add no latency (a failure only costs a rebuild at the next start).
  std::unique_lock mark_lock(mark_file_mu_, std::defer_lock);
  if (!finished.empty()) mark_lock.lock();  // not while a mark writes its prefix
  for (const auto& s : finished) {
    if (auto r = s->write_index_files(services_.fs()); !r) {
      HF_WARN("writing the indexes of {}: {}", s->log_path(), r.error().message);
    } else {
      std::lock_guard lock(mu_);
      s->index_files_current = true;
    }
  }
  // Producer state snapshots of rolled segments that are now durable. A
  // failure costs only a longer replay at the next start.
  std::vector<PendingSnapshot> snapshots;
  if (!finished.empty()) {
    std::lock_guard lock(mu_);
    std::erase_if(pending_snapshots_, [&](PendingSnapshot& p) {
      if (std::find(finished.begin(), finished.end(), p.rolled) == finished.end()) return false;
      snapshots.push_back(std::move(p));
      return true;
    });
  }
  for (const auto& p : snapshots) {
    std::string path = io::join_path(dir_, format::segment_file_name(p.offset, format::kSnapshotSuffix));
    if (auto r = io::write_file_atomically(services_.fs(), path, p.bytes); !r) {
      HF_WARN("writing producer snapshot {}: {}", path, r.error().message);
    }
  }
}

StorageResult<void> PartitionLog::write_producer_snapshot() {
  int64_t offset;
  std::vector<uint8_t> bytes;
  {
    std::lock_guard lock(mu_);
    if (failed_ || closed_ || durable_offset_ != log_end_offset_) {
      return make_error(Errc::io_error,
                        fmt::format("{}-{}: producer snapshot needs a flushed log", topic_, partition_));
    }
    offset = log_end_offset_;
    bytes = producers_.encode_snapshot(offset);
  }
  std::string path = io::join_path(dir_, format::segment_file_name(offset, format::kSnapshotSuffix));
  if (auto r = io::write_file_atomically(services_.fs(), path, bytes); !r) return io_failure(r.error());
  return {};
}

size_t PartitionLog::expire_producers(int64_t now_ms, int64_t expiration_ms) {
  std::lock_guard lock(mu_);
  return producers_.expire(now_ms, expiration_ms, last_batch_producer_id_);
}

std::optional<ProducerEntry> PartitionLog::producer_state(int64_t producer_id) const {
  std::lock_guard lock(mu_);
  const ProducerEntry* e = producers_.find(producer_id);
  if (!e) return std::nullopt;
  return *e;
}

std::vector<ProducerEntry> PartitionLog::producer_states() const {
  std::lock_guard lock(mu_);
  return producers_.all();
}

size_t PartitionLog::producer_count() const {
  std::lock_guard lock(mu_);
  return producers_.size();
}

void PartitionLog::remove_snapshots_below(int64_t offset) {
  io::FileSystem& fs = services_.fs();
  auto names = fs.list_dir(dir_);
  if (!names) return;
  for (const auto& name : *names) {
    auto o = format::parse_segment_file_name(name, format::kSnapshotSuffix);
    if (o && *o < offset) (void)fs.remove(io::join_path(dir_, name));
  }
}

bool PartitionLog::needs_interval_flush(int64_t now_ms) const {
  std::lock_guard lock(mu_);
  return config_.flush_mode == FlushMode::interval && !failed_ && !closed_ &&
         now_ms - last_sync_ms_ >= config_.flush_interval_ms &&
         (active_->synced_size < active_->size || !rolled_unsynced_.empty());
}

StorageResult<void> PartitionLog::write_index_files() {
  std::vector<std::shared_ptr<Segment>> stale;
  {
    std::lock_guard lock(mu_);
    for (auto& [base, s] : segments_) {
      if (!s->index_files_current) stale.push_back(s);
    }
  }
  for (const auto& s : stale) {
    if (auto r = s->write_index_files(services_.fs()); !r) return r;
    std::lock_guard lock(mu_);
    s->index_files_current = true;
  }
  return {};
}

void PartitionLog::close() {
  // Waits for a segment swap in progress (not for a whole cleaning pass):
  // after this no cleaned file is created or swapped in. Likewise for a
  // recovery mark: none is written after this.
  std::lock_guard cleaner_lock(cleaner_mu_);
  std::lock_guard flush_lock(flush_mu_);
  std::lock_guard mark_lock(mark_file_mu_);
  std::vector<DurableCallback> ready;
  std::optional<Errc> error;
  std::string message;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    ready = take_ready_waiters_locked(error, message);
  }
  for (auto& callback : ready) callback(make_error(Errc::closed, message));
}

// ---------------------------------------------------------------- recovery marks
//
// Why a mark is safe (the ordering argument; docs/storage-format.md):
//  1. The mark is taken under mu_ together with the flush's sync target T =
//     the log end, so the active segment's size S then ends exactly at T and
//     the producer state is exactly the state as of T.
//  2. It becomes ready only after the fdatasync of every segment up to T
//     (and the directory sync) succeeded; a failed sync drops it.
//  3. write_recovery_mark writes index entries only for batches starting
//     below S (wholly inside fsynced bytes) and <T>.snapshot, each atomically
//     (temp file, fsync, rename, directory fsync).
//  4. Then the LogManager writes the recovery-point checkpoint from each
//     log's durable offset, which only a completed sync ever sets (>= T).
// Load trusts an index entry only if it lies below the checkpointed recovery
// point R, and starts the CRC walk at the last such entry. Every entry
// written points at a batch that was durable when written, and bytes below
// the durable offset never change except by truncate_to /
// truncate_fully_and_start_at (which remove the index files and cap R
// through truncation-in-progress before touching bytes, and hold
// mark_file_mu_ so that no mark writes meanwhile) and `holdfast log repair`
// (which removes them too). Whichever of the index files and the checkpoint
// reached the disk first, entries below R point at good, durable batches: a
// stale index file only makes the walk longer, a missing or invalid one makes
// it start at byte 0. A snapshot past the log end (a power loss took the
// tail) is deleted at load, as any snapshot past the end.

bool PartitionLog::recovery_mark_due(int64_t now_ms, int64_t interval_ms, int64_t min_bytes,
                                     int64_t max_interval_ms) const {
  std::lock_guard lock(mu_);
  const int64_t since = now_ms - last_mark_ms_;
  return !offline_ && !closed_ && !failed_ && !truncating_ && !mark_wanted_ && !ready_mark_ &&
         durable_offset_ > last_mark_offset_ && since >= interval_ms &&
         (bytes_since_mark_ >= min_bytes || since >= max_interval_ms);
}

void PartitionLog::request_recovery_mark() {
  {
    std::lock_guard lock(mu_);
    if (closed_ || failed_ || offline_) return;
    mark_wanted_ = true;
    last_mark_ms_ = services_.now_ms();
    bytes_since_mark_ = 0;
  }
  services_.request_flush(shared_from_this());
}

PartitionLog::RecoveryMark PartitionLog::take_recovery_mark_locked() const {
  return RecoveryMark{active_, active_->size, log_end_offset_,
                      producers_.encode_snapshot(log_end_offset_)};
}

StorageResult<bool> PartitionLog::write_recovery_mark() {
  std::lock_guard mark_lock(mark_file_mu_);
  RecoveryMark mark;
  std::optional<Segment::EncodedIndexes> indexes;
  std::vector<int64_t> bases;
  {
    std::lock_guard lock(mu_);
    if (!ready_mark_) return false;
    mark = std::move(*ready_mark_);
    ready_mark_.reset();
    if (closed_ || failed_ || truncating_ || mark.offset > log_end_offset_) return false;
    // A segment that rolled since gets its whole index files from the flusher.
    if (mark.segment == active_) indexes = mark.segment->encode_index_prefix(mark.size, mark.offset);
    for (const auto& [base, segment] : segments_) bases.push_back(base);
    last_mark_offset_ = mark.offset;
  }
  if (indexes && !indexes->index.empty()) {
    if (auto r = mark.segment->write_index_bytes(services_.fs(), *indexes); !r) return r.error();
  }
  io::FileSystem& fs = services_.fs();
  std::string path =
      io::join_path(dir_, format::segment_file_name(mark.offset, format::kSnapshotSuffix));
  if (auto r = io::write_file_atomically(fs, path, mark.snapshot); !r) return io_failure(r.error());
  // Older marks' snapshots are superseded; those of segment bases (written
  // at rolls) stay for retention to remove with their segments.
  if (auto names = fs.list_dir(dir_)) {
    for (const auto& name : *names) {
      auto offset = format::parse_segment_file_name(name, format::kSnapshotSuffix);
      if (offset && *offset < mark.offset && !std::binary_search(bases.begin(), bases.end(), *offset))
        (void)fs.remove(io::join_path(dir_, name));
    }
  }
  return true;
}

// ---------------------------------------------------------------- reads

StorageResult<ReadResult> PartitionLog::read(int64_t offset, size_t max_bytes, bool min_one_batch,
                                             int64_t upper_bound) const {
  struct Span {
    std::shared_ptr<Segment> segment;
    uint64_t start;
    uint64_t end;
  };
  std::vector<Span> plan;
  ReadResult result;
  int64_t upper;
  {
    std::lock_guard lock(mu_);
    if (offline_) return make_error(Errc::io_error, failure_);
    result.high_watermark = high_watermark_;
    result.log_start_offset = log_start_offset_;
    result.log_end_offset = log_end_offset_;
    if (offset < log_start_offset_ || offset > log_end_offset_) {
      return make_error(Errc::offset_out_of_range,
                        fmt::format("offset {} is outside {}-{} [{}, {}]", offset, topic_,
                                    partition_, log_start_offset_, log_end_offset_));
    }
    upper = std::min(upper_bound, log_end_offset_);
    if (offset >= upper) return result;
    auto it = segments_.upper_bound(offset);
    if (it != segments_.begin()) --it;
    uint64_t planned = 0;
    for (; it != segments_.end() && it->first < upper; ++it) {
      const auto& s = it->second;
      uint64_t start = plan.empty() ? s->index_lookup(offset) : 0;
      plan.push_back({s, start, s->size});
      planned += s->size - start;
      if (planned >= max_bytes + 2 * uint64_t(config_.index_interval_bytes)) break;
    }
  }
  std::vector<uint8_t> out;
  bool first = true;
  for (const auto& span : plan) {
    uint64_t position = span.start;
    if (first) {
      auto found = span.segment->scan_to_offset(offset, span.start, span.end);
      if (!found) return found.error();
      position = *found;
      first = false;
    }
    bool stop = false;
    while (position < span.end && !stop) {
      auto header = span.segment->read_header(position, span.end);
      if (!header) return header.error();
      if (header->base_offset >= upper) {
        stop = true;
        break;
      }
      size_t old = out.size();
      uint64_t room = max_bytes > old ? max_bytes - old : 0;
      uint64_t want = std::min<uint64_t>(room, span.end - position);
      if (header->size_in_bytes() > want) {
        if (old != 0 || !min_one_batch) {
          stop = true;
          break;
        }
        want = header->size_in_bytes();  // KIP-74: the first batch goes out whole
      }
      out.resize(old + want);
      if (auto r = span.segment->read_exact(position, {out.data() + old, want}); !r)
        return r.error();
      // Keep whole batches below the upper bound.
      size_t p = old;
      while (out.size() - p >= record::kBatchHeaderSize) {
        auto h = record::parse_batch_header({out.data() + p, out.size() - p});
        if (!h || h->base_offset >= upper || h->size_in_bytes() > out.size() - p) break;
        p += h->size_in_bytes();
      }
      if (p - old < want) stop = true;
      out.resize(p);
      position += p - old;
      if (out.size() >= max_bytes) stop = true;
    }
    if (stop) break;
  }
  result.records = Bytes(std::move(out));
  return result;
}

int64_t PartitionLog::log_start_offset() const {
  std::lock_guard lock(mu_);
  return log_start_offset_;
}
int64_t PartitionLog::log_end_offset() const {
  std::lock_guard lock(mu_);
  return log_end_offset_;
}
int64_t PartitionLog::durable_offset() const {
  std::lock_guard lock(mu_);
  return durable_offset_;
}
int64_t PartitionLog::high_watermark() const {
  std::lock_guard lock(mu_);
  return high_watermark_;
}
std::optional<int64_t> PartitionLog::first_unstable_offset(int64_t high_watermark) {
  std::lock_guard lock(mu_);
  return producers_.first_unstable_offset(high_watermark);
}

std::vector<AbortedTxn> PartitionLog::aborted_txns(int64_t from, int64_t upper) const {
  std::vector<AbortedTxn> out;
  std::lock_guard lock(mu_);
  auto it = segments_.upper_bound(from);
  if (it != segments_.begin()) --it;
  for (; it != segments_.end(); ++it) {
    bool complete = false;
    for (const auto& t : it->second->aborted_txns) {
      if (t.last_offset >= from && t.first_offset < upper) out.push_back(t);
      // Kafka's early stop: every transaction open before `upper` ended by here.
      if (t.last_stable_offset > upper) complete = true;
    }
    if (complete) break;
  }
  return out;
}

int64_t PartitionLog::size_bytes() const {
  std::lock_guard lock(mu_);
  return total_bytes_;
}
LogConfig PartitionLog::config() const {
  std::lock_guard lock(mu_);
  return config_;
}
bool PartitionLog::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}
StorageResult<void> PartitionLog::check_online() const {
  if (!offline_) return {};
  std::lock_guard lock(mu_);
  return make_error(Errc::io_error, failure_);
}
size_t PartitionLog::segment_count() const {
  std::lock_guard lock(mu_);
  return segments_.size();
}

void PartitionLog::update_config(const LogConfig& config) {
  bool kick;
  {
    std::lock_guard lock(mu_);
    kick = config.flush_mode != config_.flush_mode;
    config_ = config;
    if (config_.flush_mode != FlushMode::always) high_watermark_ = log_end_offset_;
  }
  if (kick) services_.request_flush(shared_from_this());
}

std::optional<TimestampAndOffset> PartitionLog::offset_for_timestamp(int64_t ts) const {
  std::shared_ptr<Segment> segment;
  uint64_t start = 0, end = 0;
  int64_t hw;
  {
    std::lock_guard lock(mu_);
    hw = high_watermark_;
    for (const auto& [base, s] : segments_) {
      if (base >= hw) break;
      if (s->largest_timestamp >= ts) {
        segment = s;
        start = s->time_index_lookup(ts);
        end = s->size;
        break;
      }
    }
  }
  if (!segment) return std::nullopt;
  uint64_t position = start;
  while (position < end) {
    auto header = segment->read_header(position, end);
    if (!header || header->base_offset >= hw) return std::nullopt;
    if (header->max_timestamp >= ts) {
      // The first record at or after ts inside the batch.
      std::vector<uint8_t> batch(header->size_in_bytes());
      if (segment->read_exact(position, batch)) {
        if (auto records = record::decode_records(batch)) {
          for (const auto& r : *records) {
            if (r.timestamp >= ts && r.offset < hw) return TimestampAndOffset{r.timestamp, r.offset};
          }
        }
      }
      return TimestampAndOffset{header->max_timestamp, header->base_offset};
    }
    position += header->size_in_bytes();
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- leader epochs

int32_t PartitionLog::leader_epoch() const {
  std::lock_guard lock(mu_);
  return leader_epoch_;
}

StorageResult<void> PartitionLog::set_leader_epoch(int32_t epoch) {
  {
    std::lock_guard lock(mu_);
    if (offline_) return make_error(Errc::io_error, failure_);
    if (epoch < leader_epoch_) {
      return make_error(Errc::invalid_argument,
                        fmt::format("{}-{}: leader epoch {} is below the current {}", topic_,
                                    partition_, epoch, leader_epoch_));
    }
    if (epoch == leader_epoch_ && epochs_.latest_epoch() == epoch) return {};
    leader_epoch_ = epoch;
    if (!epochs_.assign(epoch, log_end_offset_)) return {};
    ++epochs_version_;
    if (closed_) return {};
  }
  services_.request_flush(shared_from_this());
  return {};
}

StorageResult<EpochEndOffset> PartitionLog::end_offset_for_epoch(int32_t epoch) const {
  std::lock_guard lock(mu_);
  if (offline_) return make_error(Errc::io_error, failure_);
  return epochs_.end_offset_for(epoch, log_end_offset_);
}

std::vector<EpochEntry> PartitionLog::leader_epoch_entries() const {
  std::lock_guard lock(mu_);
  return epochs_.entries();
}

std::optional<PartitionLog::EpochSnapshot> PartitionLog::epochs_to_persist_locked() const {
  if (offline_ || epochs_version_ == epochs_persisted_version_) return std::nullopt;
  return EpochSnapshot{epochs_version_, epochs_.entries()};
}

StorageResult<void> PartitionLog::persist_leader_epochs(const EpochSnapshot& snapshot) {
  std::lock_guard file_lock(epoch_file_mu_);
  {
    std::lock_guard lock(mu_);
    if (epochs_persisted_version_ >= snapshot.version) return {};
  }
  const std::string path = io::join_path(dir_, format::kLeaderEpochCheckpointFile);
  if (auto r = write_leader_epoch_checkpoint(services_.fs(), path, snapshot.entries); !r) return r;
  std::lock_guard lock(mu_);
  epochs_persisted_version_ = std::max(epochs_persisted_version_, snapshot.version);
  return {};
}

// ---------------------------------------------------------------- deletion

StorageResult<void> PartitionLog::remove_segments(
    const std::vector<std::shared_ptr<Segment>>& dead, int64_t first_base) {
  if (dead.empty()) return {};
  for (const auto& s : dead) {
    if (auto r = s->remove_files(services_.fs()); !r) return r;
  }
  // Snapshots before the first remaining segment can never be used again.
  // (The producer state itself is kept: KAFKA-7190.)
  remove_snapshots_below(first_base);
  if (auto r = services_.fs().sync_dir(dir_); !r) return io_failure(r.error());
  return {};
}

StorageResult<int64_t> PartitionLog::delete_records_before(int64_t offset) {
  std::lock_guard cleaner_lock(cleaner_mu_);
  std::vector<std::shared_ptr<Segment>> dead;
  int64_t new_start;
  int64_t first_base = 0;
  std::optional<EpochSnapshot> epochs;
  {
    std::lock_guard lock(mu_);
    if (closed_)
      return make_error(Errc::closed, fmt::format("log {}-{} is closed", topic_, partition_));
    if (offline_) return make_error(Errc::io_error, failure_);
    if (offset == -1) offset = high_watermark_;
    if (offset < 0 || offset > high_watermark_) {
      return make_error(Errc::offset_out_of_range,
                        fmt::format("cannot delete {}-{} records before {}: high watermark is {}",
                                    topic_, partition_, offset, high_watermark_));
    }
    if (offset <= log_start_offset_) return log_start_offset_;
    log_start_offset_ = offset;
    if (epochs_.truncate_from_start(log_start_offset_)) ++epochs_version_;
    epochs = epochs_to_persist_locked();
    while (segments_.size() > 1) {
      auto first = segments_.begin();
      auto next = std::next(first);
      if (next->first > log_start_offset_) break;
      if (std::find(rolled_unsynced_.begin(), rolled_unsynced_.end(), first->second) !=
          rolled_unsynced_.end()) {
        break;
      }
      total_bytes_ -= int64_t(first->second->size);
      dead.push_back(first->second);
      segments_.erase(first);
    }
    new_start = log_start_offset_;
    first_base = segments_.begin()->first;
  }
  if (auto r = services_.checkpoint_log_start_offsets(); !r) return r.error();
  if (auto r = remove_segments(dead, first_base); !r) return r.error();
  // A stale file costs nothing: load() trims it to the log start. The next
  // flush retries a failed write.
  if (epochs) {
    if (auto r = persist_leader_epochs(*epochs); !r) {
      HF_WARN("{}: writing leader-epoch-checkpoint: {}", dir_, r.error().message);
    }
  }
  return new_start;
}

StorageResult<int> PartitionLog::apply_retention(int64_t now_ms) {
  std::lock_guard cleaner_lock(cleaner_mu_);
  std::vector<std::shared_ptr<Segment>> dead;
  int64_t first_base = 0;
  std::optional<EpochSnapshot> epochs;
  {
    std::lock_guard lock(mu_);
    if (closed_ || offline_ || (config_.retention_ms < 0 && config_.retention_bytes < 0)) return 0;
    const std::optional<int64_t> ongoing = producers_.first_ongoing_offset();
    while (segments_.size() > 1) {
      auto first = segments_.begin();
      auto next = std::next(first);
      const auto& s = first->second;
      if (next->first > high_watermark_) break;
      // The log start never passes the first batch of an ongoing transaction.
      if (ongoing && next->first > *ongoing) break;
      if (std::find(rolled_unsynced_.begin(), rolled_unsynced_.end(), s) !=
          rolled_unsynced_.end()) {
        break;
      }
      bool expired =
          config_.retention_ms >= 0 && now_ms - s->retention_timestamp() > config_.retention_ms;
      bool oversize = config_.retention_bytes >= 0 &&
                      total_bytes_ - int64_t(s->size) >= config_.retention_bytes;
      if (!expired && !oversize) break;
      total_bytes_ -= int64_t(s->size);
      log_start_offset_ = std::max(log_start_offset_, next->first);
      dead.push_back(s);
      segments_.erase(first);
    }
    first_base = segments_.begin()->first;
    if (epochs_.truncate_from_start(log_start_offset_)) ++epochs_version_;
    epochs = epochs_to_persist_locked();
  }
  if (auto r = remove_segments(dead, first_base); !r) return r.error();
  if (epochs) {
    if (auto r = persist_leader_epochs(*epochs); !r) {
      HF_WARN("{}: writing leader-epoch-checkpoint: {}", dir_, r.error().message);
    }
  }
  return int(dead.size());
}

}  // namespace holdfast::storage
