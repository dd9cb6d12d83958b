#include "storage/partition_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "base/log.h"
#include "storage/format.h"
#include "storage/log_cleaner.h"

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
  return log;
}

StorageResult<std::shared_ptr<PartitionLog>> PartitionLog::load(
    LogServices& services, std::string dir, std::string topic, int32_t partition,
    const LogConfig& config, std::optional<int64_t> recovery_point,
    std::optional<int64_t> log_start, bool clean) {
  io::FileSystem& fs = services.fs();
  int64_t now = services.now_ms();
  bool dir_changed = false;
  // Finish (or roll back) a cleaned-segment swap a crash interrupted, before
  // the segments are listed (log_cleaner.h).
  if (auto r = LogCleaner::recover_swaps(fs, dir, dir_changed); !r) return r.error();
  auto names = fs.list_dir(dir);
  if (!names) return io_failure(names.error());
  std::vector<int64_t> bases;
  std::vector<std::string> index_files;
  for (const auto& name : *names) {
    if (name.ends_with(format::kTempSuffix)) {  // an interrupted atomic replace
      (void)fs.remove(io::join_path(dir, name));
      dir_changed = true;
    } else if (auto base = format::parse_segment_file_name(name, format::kLogSuffix)) {
      bases.push_back(*base);
    } else if (format::parse_segment_file_name(name, format::kIndexSuffix) ||
               format::parse_segment_file_name(name, format::kTimeIndexSuffix)) {
      index_files.push_back(name);
    }
  }
  std::sort(bases.begin(), bases.end());
  // Index files without their log are leftovers of a deletion.
  for (const auto& name : index_files) {
    auto base = format::parse_segment_file_name(name, format::kIndexSuffix);
    if (!base) base = format::parse_segment_file_name(name, format::kTimeIndexSuffix);
    if (!std::binary_search(bases.begin(), bases.end(), *base)) {
      (void)fs.remove(io::join_path(dir, name));
      dir_changed = true;
    }
  }

  auto log = std::make_shared<PartitionLog>(services, dir, std::move(topic), partition, config);
  log->last_sync_ms_ = now;
  int64_t recover_from = clean ? std::numeric_limits<int64_t>::max() : recovery_point.value_or(0);
  std::vector<std::shared_ptr<Segment>> recovered;
  for (size_t i = 0; i < bases.size(); ++i) {
    int64_t next_base = i + 1 < bases.size() ? bases[i + 1] : std::numeric_limits<int64_t>::max();
    bool recover = next_base > recover_from;
    // Segments must continue exactly where the previous one ends. An overlap
    // is corruption; in the recovery region a gap means the previous
    // segment lost an unsynced tail while this newer file survived (no order
    // between files without fsync), so nothing from here on was ever
    // acknowledged and none of it may be served.
    bool overlap = !log->segments_.empty() && bases[i] < log->active_->next_offset;
    bool gap = !log->segments_.empty() && recover && bases[i] > log->active_->next_offset;
    if (overlap || gap) {
      HF_WARN("{}: segment {} does not continue the log at offset {}", dir, bases[i],
              log->active_->next_offset);
    }
    overlap = overlap || gap;
    std::shared_ptr<Segment> segment;
    bool truncated = false;
    if (!overlap) {
      auto opened = Segment::open_existing(fs, dir, bases[i], now);
      if (!opened) return opened.error();
      segment = *opened;
      auto loaded = segment->load(fs, recover, config.index_interval_bytes);
      if (!loaded) return loaded.error();
      truncated = *loaded;
      if (recover) recovered.push_back(segment);
      log->segments_[segment->base_offset] = segment;
      log->active_ = segment;
      log->total_bytes_ += int64_t(segment->size);
    }
    if (overlap || truncated) {
      // Everything after a bad batch is unreachable: drop the later segments.
      size_t first_dead = overlap ? i : i + 1;
      for (size_t j = first_dead; j < bases.size(); ++j) {
        HF_WARN("{}: removing segment {} after the recovered end of the log", dir, bases[j]);
        auto dead = Segment::open_existing(fs, dir, bases[j], now);
        if (dead) (void)(*dead)->remove_files(fs);
        dir_changed = true;
      }
      break;
    }
  }
  if (log->segments_.empty()) {
    // The directory lost its only segment (created but never synced).
    int64_t base = std::max<int64_t>(0, log_start.value_or(0));
    auto segment = Segment::create(fs, dir, base, now);
    if (!segment) return segment.error();
    log->segments_[base] = *segment;
    log->active_ = *segment;
    dir_changed = true;
  }
  log->log_end_offset_ = log->active_->next_offset;
  log->log_start_offset_ =
      std::clamp(log_start.value_or(0), log->segments_.begin()->first, log->log_end_offset_);
  // Segments wholly below the log start (DeleteRecords whose deletions a crash undid).
  while (log->segments_.size() > 1 &&
         std::next(log->segments_.begin())->first <= log->log_start_offset_) {
    auto dead = log->segments_.begin()->second;
    log->total_bytes_ -= int64_t(dead->size);
    log->segments_.erase(log->segments_.begin());
    std::erase(recovered, dead);
    if (auto r = dead->remove_files(fs); !r) return r.error();
    dir_changed = true;
  }
  if (auto r = log->load_producer_state(*names, dir_changed); !r) return r.error();
  // Recovered bytes may sit only in the page cache (a process crash): sync
  // them before they count as durable.
  for (const auto& segment : recovered) {
    if (auto r = segment->file().sync_data(); !r) return io_failure(r.error());
  }
  if (dir_changed) {
    if (auto r = fs.sync_dir(dir); !r) return io_failure(r.error());
  }
  for (auto& [base, segment] : log->segments_) segment->synced_size = segment->size;
  log->durable_offset_ = log->log_end_offset_;
  log->high_watermark_ = log->log_end_offset_;
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

StorageResult<AppendResult> PartitionLog::append(std::span<const uint8_t> batch,
                                                 const BatchHeader& header, int32_t leader_epoch) {
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
    if (closed_)
      return make_error(Errc::closed, fmt::format("log {}-{} is closed", topic_, partition_));
    if (failed_) return make_error(Errc::io_error, failure_);
    // Idempotence: checked under the lock, atomically with the append below.
    if (header.producer_id >= 0) {
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
    int64_t segment_bytes = std::min(config_.segment_bytes, format::kMaxSegmentBytes);
    bool full = int64_t(active_->size + batch.size()) > segment_bytes;
    bool old = now - active_->created_ms >= config_.segment_ms;
    bool offsets_exhausted = log_end_offset_ + header.last_offset_delta - active_->base_offset >
                             format::kMaxRelativeOffset;
    if (active_->size > 0 && (full || old || offsets_exhausted)) {
      if (auto r = roll_locked(now); !r) return r.error();
      rolled = true;
    }
    scratch_.assign(batch.begin(), batch.end());
    BatchHeader stamped = header;
    stamped.base_offset = log_end_offset_;
    stamped.partition_leader_epoch = leader_epoch;
    record::stamp_batch(scratch_.data(), log_end_offset_, leader_epoch);
    result.log_append_time_ms = -1;
    if (config_.log_append_time) {
      record::set_log_append_time(scratch_.data(), scratch_.size(), now);
      stamped.attributes |= record::kTimestampTypeBit;
      stamped.max_timestamp = now;
      result.log_append_time_ms = now;
    }
    if (auto r = active_->append(scratch_, stamped, config_.index_interval_bytes); !r) {
      fail_locked(r.error().message);
      return r.error();
    }
    result.base_offset = stamped.base_offset;
    result.last_offset = stamped.last_offset();
    log_end_offset_ = result.last_offset + 1;
    if (header.producer_id >= 0) producers_.record(stamped, now);
    last_batch_producer_id_ = header.producer_id;
    total_bytes_ += int64_t(batch.size());
    mode = config_.flush_mode;
    if (mode != FlushMode::always) high_watermark_ = log_end_offset_;
  }
  if (mode == FlushMode::always || rolled) services_.request_flush(shared_from_this());
  if (mode != FlushMode::always) services_.high_watermark_advanced(this);
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
  {
    std::lock_guard lock(mu_);
    do_sync =
        !closed_ && !failed_ &&
        (config_.flush_mode == FlushMode::always || force_sync || sync_requested_.exchange(false));
    if (do_sync) {
      target = log_end_offset_;
      for (const auto& s : rolled_unsynced_) to_sync.push_back({s, s->size});
      if (active_->synced_size < active_->size) to_sync.push_back({active_, active_->size});
      dir_generation = dir_generation_;
      sync_dir = dir_generation_ != synced_dir_generation_;
      do_sync = !to_sync.empty() || sync_dir;
    }
  }
  bool advanced = false;
  std::vector<std::shared_ptr<Segment>> finished;  // rolled segments now fully synced
  if (do_sync) {
    std::optional<std::string> error;
    for (const auto& p : to_sync) {
      if (p.segment->synced_size >= p.size) continue;
      if (auto r = p.segment->file().sync_data(); !r) {
        error = r.error().message;
        break;
      }
    }
    if (!error && sync_dir) {
      if (auto r = services_.fs().sync_dir(dir_); !r) error = r.error().message;
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
        if (config_.flush_mode == FlushMode::always && durable_offset_ > high_watermark_) {
          high_watermark_ = durable_offset_;
          advanced = true;
        }
      }
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

StorageResult<void> PartitionLog::load_producer_state(const std::vector<std::string>& names,
                                                      bool& dir_changed) {
  io::FileSystem& fs = services_.fs();
  const int64_t first_base = segments_.begin()->first;
  std::vector<int64_t> offsets;
  for (const auto& name : names) {
    auto offset = format::parse_segment_file_name(name, format::kSnapshotSuffix);
    if (!offset) continue;
    // Past the (possibly truncated) end, or before the oldest batch we hold
    // (the batches between it and the log would be missing): unusable.
    if (*offset > log_end_offset_ || *offset < first_base) {
      (void)fs.remove(io::join_path(dir_, name));
      dir_changed = true;
      continue;
    }
    offsets.push_back(*offset);
  }
  std::sort(offsets.rbegin(), offsets.rend());
  int64_t replay_from = first_base;
  for (int64_t offset : offsets) {
    std::string path = io::join_path(dir_, format::segment_file_name(offset, format::kSnapshotSuffix));
    auto data = io::read_file(fs, path);
    if (data) {
      auto decoded = ProducerStateTable::decode_snapshot(*data);
      if (decoded && decoded->offset == offset) {
        producers_ = std::move(decoded->table);
        replay_from = offset;
        break;
      }
      HF_WARN("{}: ignoring producer snapshot: {}", path,
              decoded ? "offset does not match its name" : decoded.error().message);
    } else {
      HF_WARN("{}: cannot read producer snapshot: {}", path, data.error().message);
    }
    (void)fs.remove(path);
    dir_changed = true;
  }
  // Replay the batch headers after the snapshot (Kafka's replication origin:
  // no validation, the log is the truth).
  const int64_t now = services_.now_ms();
  size_t replayed = 0;
  auto it = segments_.upper_bound(replay_from);
  if (it != segments_.begin()) --it;
  bool first = true;
  for (; it != segments_.end(); ++it) {
    const auto& segment = it->second;
    uint64_t position = first ? segment->index_lookup(replay_from) : 0;
    first = false;
    while (position < segment->size) {
      auto header = segment->read_header(position, segment->size);
      if (!header) return header.error();
      if (header->base_offset >= replay_from && header->producer_id >= 0 && !header->is_control()) {
        producers_.record(*header, now);
        ++replayed;
      }
      position += header->size_in_bytes();
    }
  }
  // The producer of the latest batch is never expired: find it (a short scan
  // from the last index entry of the last non-empty segment).
  for (auto r = segments_.rbegin(); r != segments_.rend(); ++r) {
    const auto& segment = r->second;
    if (segment->size == 0) continue;
    uint64_t position = segment->index_lookup(segment->next_offset - 1);
    while (position < segment->size) {
      auto header = segment->read_header(position, segment->size);
      if (!header) return header.error();
      last_batch_producer_id_ = header->producer_id;
      position += header->size_in_bytes();
    }
    break;
  }
  if (replayed > 0 || producers_.size() > 0) {
    HF_DEBUG("{}: producer state of {} producers, {} batches replayed from offset {}", dir_,
             producers_.size(), replayed, replay_from);
  }
  return {};
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
  std::lock_guard cleaner_lock(cleaner_mu_);  // waits for a cleaning pass to end
  std::lock_guard flush_lock(flush_mu_);
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
  {
    std::lock_guard lock(mu_);
    if (closed_)
      return make_error(Errc::closed, fmt::format("log {}-{} is closed", topic_, partition_));
    if (offset == -1) offset = high_watermark_;
    if (offset < 0 || offset > high_watermark_) {
      return make_error(Errc::offset_out_of_range,
                        fmt::format("cannot delete {}-{} records before {}: high watermark is {}",
                                    topic_, partition_, offset, high_watermark_));
    }
    if (offset <= log_start_offset_) return log_start_offset_;
    log_start_offset_ = offset;
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
  return new_start;
}

StorageResult<int> PartitionLog::apply_retention(int64_t now_ms) {
  std::lock_guard cleaner_lock(cleaner_mu_);
  std::vector<std::shared_ptr<Segment>> dead;
  int64_t first_base = 0;
  {
    std::lock_guard lock(mu_);
    if (closed_ || (config_.retention_ms < 0 && config_.retention_bytes < 0)) return 0;
    while (segments_.size() > 1) {
      auto first = segments_.begin();
      auto next = std::next(first);
      const auto& s = first->second;
      if (next->first > high_watermark_) break;
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
  }
  if (auto r = remove_segments(dead, first_base); !r) return r.error();
  return int(dead.size());
}

}  // namespace holdfast::storage
