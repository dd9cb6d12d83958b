// The follower side of replication in PartitionLog (partition_log.h,
// "Follower side of replication"): append_replicated, truncate_to,
// truncate_fully_and_start_at, and the truncation-in-progress file that makes
// a truncation crash-safe (truncation_marker.h).
//
// Why the file: a truncation changes several files (later segments deleted,
// one segment cut, leader-epoch-checkpoint, producer snapshots) and the data
// dir's recovery-point checkpoint, which may name an offset past the new end.
// No order of those steps is safe on its own: cutting first and crashing
// before the checkpoint is lowered leaves a log that ends before its recovery
// point (load takes it offline), lowering the checkpoint first and crashing
// before the cut brings the removed records back (they are valid batches). So
// the target is written durably first; load() caps the recovery point at it,
// finishes the cut, and LogManager::open checkpoints the recovery points
// before the file goes.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "base/log.h"
#include "storage/format.h"
#include "storage/partition_log.h"
#include "storage/truncation_marker.h"

namespace holdfast::storage {

using record::BatchHeader;

// ---------------------------------------------------------------- the marker file

namespace {

std::string marker_path(const std::string& dir) {
  return io::join_path(dir, format::kTruncationFile);
}

bool parse_offset(std::string_view s, int64_t& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty() && out >= 0;
}

}  // namespace

std::string encode_truncation_marker(const TruncationMarker& marker) {
  return fmt::format("{}\n{} {}\n", format::kCheckpointVersion,
                     marker.kind == TruncationMarker::Kind::end ? "end" : "start", marker.offset);
}

StorageResult<TruncationMarker> decode_truncation_marker(std::string_view text) {
  auto corrupt = [&] {
    return make_error(Errc::corrupt, fmt::format("{}: not a valid truncation record: '{}'",
                                                 format::kTruncationFile, text));
  };
  std::string version = fmt::format("{}\n", format::kCheckpointVersion);
  if (!text.starts_with(version) || !text.ends_with('\n')) return corrupt();
  std::string_view line = text.substr(version.size(), text.size() - version.size() - 1);
  size_t space = line.find(' ');
  if (space == std::string_view::npos) return corrupt();
  TruncationMarker marker;
  std::string_view kind = line.substr(0, space);
  if (kind == "end") {
    marker.kind = TruncationMarker::Kind::end;
  } else if (kind == "start") {
    marker.kind = TruncationMarker::Kind::start;
  } else {
    return corrupt();
  }
  if (!parse_offset(line.substr(space + 1), marker.offset)) return corrupt();
  return marker;
}

StorageResult<void> write_truncation_marker(io::FileSystem& fs, const std::string& dir,
                                            const TruncationMarker& marker) {
  std::string text = encode_truncation_marker(marker);
  auto r = io::write_file_atomically(fs, marker_path(dir),
                                     {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  if (!r) return io_failure(r.error());
  return {};
}

StorageResult<std::optional<TruncationMarker>> read_truncation_marker(io::FileSystem& fs,
                                                                      const std::string& dir) {
  auto data = io::read_file(fs, marker_path(dir));
  if (!data) {
    if (data.code() == io::Errc::not_found) return std::optional<TruncationMarker>();
    return io_failure(data.error());
  }
  auto marker =
      decode_truncation_marker({reinterpret_cast<const char*>(data->data()), data->size()});
  if (!marker) return marker.error();
  return std::optional<TruncationMarker>(*marker);
}

StorageResult<void> remove_truncation_marker(io::FileSystem& fs, const std::string& dir) {
  auto r = fs.remove(marker_path(dir));
  if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
  if (auto s = fs.sync_dir(dir); !s) return io_failure(s.error());
  return {};
}

StorageResult<void> remove_partition_data_files(io::FileSystem& fs, const std::string& dir) {
  auto names = fs.list_dir(dir);
  if (!names) return io_failure(names.error());
  // Newest segment first, its .log before its indexes (as Segment::remove_files).
  std::vector<std::string> doomed;
  for (const auto& name : *names) {
    if (format::parse_segment_file_name(name, format::kLogSuffix) ||
        format::parse_segment_file_name(name, format::kSnapshotSuffix) ||
        name == format::kLeaderEpochCheckpointFile) {
      doomed.push_back(name);
    }
  }
  std::sort(doomed.rbegin(), doomed.rend());
  for (const auto& name : *names) {
    if (format::parse_segment_file_name(name, format::kIndexSuffix) ||
        format::parse_segment_file_name(name, format::kTimeIndexSuffix) ||
        format::parse_segment_file_name(name, format::kTxnIndexSuffix)) {
      doomed.push_back(name);
    }
  }
  for (const auto& name : doomed) {
    auto r = fs.remove(io::join_path(dir, name));
    if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
  }
  if (auto r = fs.sync_dir(dir); !r) return io_failure(r.error());
  return {};
}

// ---------------------------------------------------------------- append_replicated

StorageResult<AppendResult> PartitionLog::append_replicated(std::span<const uint8_t> batch,
                                                            const BatchHeader& header) {
  auto invalid = [&](std::string why) {
    return make_error(Errc::invalid_argument,
                      fmt::format("replicated append to {}-{}: {}", topic_, partition_, why));
  };
  if (batch.size() < record::kBatchHeaderSize || batch.size() != header.size_in_bytes()) {
    return invalid(fmt::format("batch of {} bytes does not match its header", batch.size()));
  }
  // The bytes are the truth: framing and CRC checked, and the caller's
  // header must be theirs.
  auto checked = record::check_batch(batch);
  if (!checked) return invalid(checked.error().message);
  const BatchHeader& h = *checked;
  if (h.size_in_bytes() != batch.size() || h.base_offset != header.base_offset ||
      h.last_offset_delta != header.last_offset_delta ||
      h.partition_leader_epoch != header.partition_leader_epoch ||
      h.producer_id != header.producer_id || h.base_sequence != header.base_sequence) {
    return invalid("the header does not match the batch's bytes");
  }
  if (h.base_offset < 0 || h.last_offset_delta < 0 || h.partition_leader_epoch < 0) {
    return invalid(fmt::format("base offset {}, last offset delta {}, leader epoch {}",
                               h.base_offset, h.last_offset_delta, h.partition_leader_epoch));
  }
  AppendResult result;
  FlushMode mode;
  bool rolled = false;
  {
    std::lock_guard lock(mu_);
    if (auto r = check_writable_locked(); !r) return r.error();
    if (h.base_offset < log_end_offset_) {
      return invalid(fmt::format("base offset {} is below the log end {}", h.base_offset,
                                 log_end_offset_));
    }
    // The epoch of the log's last batch: entries starting at or after this
    // batch cover no batch (an epoch this replica led without writing).
    int32_t floor = kUndefinedEpoch;
    for (auto it = epochs_.entries().rbegin(); it != epochs_.entries().rend(); ++it) {
      if (it->start_offset < h.base_offset) {
        floor = it->epoch;
        break;
      }
    }
    if (h.partition_leader_epoch < floor) {
      return invalid(fmt::format("leader epoch {} is below the epoch {} of the log's last batch",
                                 h.partition_leader_epoch, floor));
    }
    // The bytes go in unchanged: the leader stamped them.
    auto written = write_at_end_locked(batch, h, services_.now_ms());
    if (!written) return written.error();
    rolled = *written;
    result.base_offset = h.base_offset;
    result.last_offset = h.last_offset();
    result.log_append_time_ms = (h.attributes & record::kTimestampTypeBit) ? h.max_timestamp : -1;
    mode = config_.flush_mode;
  }
  after_write(mode, rolled);
  return result;
}

// ---------------------------------------------------------------- truncation

StorageResult<void> PartitionLog::plan_cut_locked(int64_t offset, std::shared_ptr<Segment>& cut,
                                                  Segment::TruncationPoint& point,
                                                  std::vector<std::shared_ptr<Segment>>& dead) const {
  auto it = segments_.upper_bound(offset);
  if (it == segments_.begin()) {
    return make_error(Errc::invalid_argument,
                      fmt::format("{}-{}: offset {} is before the first segment", topic_,
                                  partition_, offset));
  }
  cut = std::prev(it)->second;
  auto planned = cut->truncation_point(offset);
  if (!planned) return planned.error();
  point = *planned;
  dead.clear();
  for (auto d = segments_.rbegin(); d->first > cut->base_offset; ++d) dead.push_back(d->second);
  return {};
}

StorageResult<void> PartitionLog::cut_segments(const std::shared_ptr<Segment>& cut,
                                               const Segment::TruncationPoint& point,
                                               const std::vector<std::shared_ptr<Segment>>& dead) {
  io::FileSystem& fs = services_.fs();
  // Stale once cut (and a crash must not leave index entries past the cut).
  if (auto r = cut->remove_index_files(fs); !r) return r;
  for (const auto& s : dead) {
    if (auto r = s->remove_files(fs); !r) return r;
  }
  if (auto r = fs.sync_dir(dir_); !r) return io_failure(r.error());
  {
    std::lock_guard lock(mu_);
    for (const auto& s : dead) {
      segments_.erase(s->base_offset);
      std::erase(rolled_unsynced_, s);
    }
    std::erase(rolled_unsynced_, cut);  // active again: the flusher syncs it as such
    if (auto r = cut->truncate_at(point, config_.index_interval_bytes); !r) return r;
    active_ = cut;
    log_end_offset_ = cut->next_offset;
    total_bytes_ = 0;
    for (const auto& [base, s] : segments_) total_bytes_ += int64_t(s->size);
    std::erase_if(pending_snapshots_,
                  [&](const PendingSnapshot& p) { return p.offset > log_end_offset_; });
  }
  // The cut itself reaches the disk before anything depends on it.
  if (auto r = cut->file().sync_data(); !r) return io_failure(r.error());
  return {};
}

StorageResult<void> PartitionLog::truncate_to(int64_t offset) {
  auto pass = begin_cleaning_pass();  // a cleaned copy of a cut segment must not be swapped in
  std::lock_guard cleaner_lock(cleaner_mu_);
  std::lock_guard flush_lock(flush_mu_);  // no flush may set a durable offset from before the cut
  std::lock_guard mark_lock(mark_file_mu_);  // no recovery mark writes index files meanwhile
  std::shared_ptr<Segment> cut;
  Segment::TruncationPoint point;
  std::vector<std::shared_ptr<Segment>> dead;
  int64_t old_end;
  {
    std::lock_guard lock(mu_);
    if (closed_)
      return make_error(Errc::closed, fmt::format("log {}-{} is closed", topic_, partition_));
    if (failed_) return make_error(Errc::io_error, failure_);
    if (truncating_) {
      return make_error(Errc::invalid_argument,
                        fmt::format("{}-{}: a truncation is already running", topic_, partition_));
    }
    if (offset < log_start_offset_) {
      return make_error(Errc::invalid_argument,
                        fmt::format("cannot truncate {}-{} to {}: below the log start {}", topic_,
                                    partition_, offset, log_start_offset_));
    }
    if (offset >= log_end_offset_) return {};
    if (auto r = plan_cut_locked(offset, cut, point, dead); !r) return r;
    old_end = log_end_offset_;
    truncating_ = true;
    ready_mark_.reset();  // its index entries may lie past the cut
    mark_wanted_ = false;
  }
  // From here on the log accepts no append until the truncation is done.
  auto finish = [&](StorageResult<void> outcome) -> StorageResult<void> {
    {
      std::lock_guard lock(mu_);
      truncating_ = false;
      if (!outcome) fail_locked("truncating: " + outcome.error().message);
    }
    services_.request_flush(shared_from_this());  // waiters at or below the end, or the failure
    return outcome;
  };
  // Nothing is changed if this fails.
  if (auto r = write_truncation_marker(services_.fs(), dir_,
                                       {TruncationMarker::Kind::end, point.end_offset});
      !r) {
    std::lock_guard lock(mu_);
    truncating_ = false;
    return r.error();
  }
  HF_INFO("{}-{}: truncating from offset {} to {} (requested {}): {} later segments deleted",
          topic_, partition_, old_end, point.end_offset, offset, dead.size());
  if (auto r = cut_segments(cut, point, dead); !r) return finish(r);
  std::vector<Waiter> dropped;
  std::optional<EpochSnapshot> epochs;
  bool dir_changed = false;
  int64_t new_end;
  StorageResult<void> rebuilt;
  {
    std::lock_guard lock(mu_);
    new_end = log_end_offset_;
    durable_offset_ = std::min(durable_offset_, new_end);
    high_watermark_ = std::min(high_watermark_, new_end);
    first_dirty_offset_ = std::min(first_dirty_offset_, new_end);
    if (epochs_.truncate_from_end(new_end)) ++epochs_version_;
    epochs = epochs_to_persist_locked();
    // The records these waiters wait for are gone: never acknowledge them.
    std::erase_if(waiters_, [&](Waiter& w) {
      if (w.end_offset <= new_end) return false;
      dropped.push_back(std::move(w));
      return true;
    });
    // Rebuilt from the newest snapshot at or below the end (later ones are
    // removed) and the batches after it.
    auto names = services_.fs().list_dir(dir_);
    if (!names) {
      rebuilt = io_failure(names.error());
    } else {
      producers_.clear();
      last_batch_producer_id_ = -1;
      rebuilt = load_producer_state(*names, dir_changed);
    }
  }
  if (!rebuilt) return finish(rebuilt);
  auto message = fmt::format("{}-{} was truncated to offset {}: the records this waiter "
                             "waited for were removed",
                             topic_, partition_, new_end);
  for (auto& w : dropped) w.callback(make_error(Errc::truncated, message));
  if (epochs) {
    if (auto r = persist_leader_epochs(*epochs); !r) return finish(r);
  }
  if (dir_changed) {
    if (auto r = services_.fs().sync_dir(dir_); !r) return finish(io_failure(r.error()));
  }
  // The recovery point may have been past the new end: lower it before the
  // truncation file goes (load would find the log ending before it).
  if (auto r = services_.checkpoint_recovery_points(); !r) return finish(r);
  if (auto r = remove_truncation_marker(services_.fs(), dir_); !r) return finish(r);
  return finish({});
}

StorageResult<void> PartitionLog::truncate_fully_and_start_at(int64_t offset) {
  if (offset < 0) {
    return make_error(Errc::invalid_argument,
                      fmt::format("{}-{}: cannot start at offset {}", topic_, partition_, offset));
  }
  auto pass = begin_cleaning_pass();
  std::lock_guard cleaner_lock(cleaner_mu_);
  std::lock_guard flush_lock(flush_mu_);
  std::lock_guard mark_lock(mark_file_mu_);
  int64_t old_start, old_end;
  {
    std::lock_guard lock(mu_);
    if (closed_)
      return make_error(Errc::closed, fmt::format("log {}-{} is closed", topic_, partition_));
    if (failed_) return make_error(Errc::io_error, failure_);
    if (truncating_) {
      return make_error(Errc::invalid_argument,
                        fmt::format("{}-{}: a truncation is already running", topic_, partition_));
    }
    truncating_ = true;
    ready_mark_.reset();
    mark_wanted_ = false;
    old_start = log_start_offset_;
    old_end = log_end_offset_;
  }
  auto finish = [&](StorageResult<void> outcome) -> StorageResult<void> {
    {
      std::lock_guard lock(mu_);
      truncating_ = false;
      if (!outcome) fail_locked("truncating fully: " + outcome.error().message);
    }
    services_.request_flush(shared_from_this());
    return outcome;
  };
  io::FileSystem& fs = services_.fs();
  if (auto r = write_truncation_marker(fs, dir_, {TruncationMarker::Kind::start, offset}); !r) {
    std::lock_guard lock(mu_);
    truncating_ = false;
    return r.error();
  }
  HF_INFO("{}-{}: replacing the log [{}, {}) by an empty log starting at {}", topic_, partition_,
          old_start, old_end, offset);
  if (auto r = remove_partition_data_files(fs, dir_); !r) return finish(r);
  auto segment = Segment::create(fs, dir_, offset, services_.now_ms());
  if (!segment) return finish(segment.error());
  if (auto r = fs.sync_dir(dir_); !r) return finish(io_failure(r.error()));
  std::vector<Waiter> dropped;
  {
    std::lock_guard lock(mu_);
    segments_.clear();
    segments_[offset] = *segment;
    active_ = *segment;
    rolled_unsynced_.clear();
    pending_snapshots_.clear();
    synced_dir_generation_ = dir_generation_;
    log_start_offset_ = log_end_offset_ = durable_offset_ = high_watermark_ = offset;
    last_mark_offset_ = offset;
    total_bytes_ = 0;
    first_dirty_offset_ = offset;
    epochs_ = LeaderEpochCache();
    // The file is gone, which reads as empty (nothing to rebuild from).
    epochs_persisted_version_ = ++epochs_version_;
    producers_.clear();
    last_batch_producer_id_ = -1;
    dropped = std::move(waiters_);
    waiters_.clear();
  }
  auto message = fmt::format("{}-{} was emptied to start at offset {}: the records this waiter "
                             "waited for were removed",
                             topic_, partition_, offset);
  for (auto& w : dropped) w.callback(make_error(Errc::truncated, message));
  if (auto r = services_.checkpoint_log_start_offsets(); !r) return finish(r);
  if (auto r = services_.checkpoint_recovery_points(); !r) return finish(r);
  if (auto r = remove_truncation_marker(fs, dir_); !r) return finish(r);
  return finish({});
}

bool PartitionLog::loaded_truncation_pending() const {
  std::lock_guard lock(mu_);
  return loaded_truncation_;
}

StorageResult<void> PartitionLog::finish_loaded_truncation() {
  {
    std::lock_guard lock(mu_);
    if (!loaded_truncation_) return {};
  }
  if (auto r = remove_truncation_marker(services_.fs(), dir_); !r) return r;
  std::lock_guard lock(mu_);
  loaded_truncation_ = false;
  return {};
}

}  // namespace holdfast::storage
