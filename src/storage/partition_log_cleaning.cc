// PartitionLog's interface for the log cleaner (partition_log.h, "For the log
// cleaner"; the pass itself is in log_cleaner.cc).
//
// Contract: a cleaning pass holds cleaning_pass_mu_ throughout, and
// cleaner_mu_ only while it creates a cleaned file and while it swaps one in
// (renames, directory syncs, index files). Retention, DeleteRecords and
// close() take cleaner_mu_, so they wait at most for one such short step; in
// exchange, a segment may disappear (or the log close) while the cleaner is
// reading it or writing its cleaned copy, and every step that touches the
// directory re-checks under cleaner_mu_ that the segment is still there.
#include <fmt/format.h>

#include <algorithm>

#include "base/log.h"
#include "storage/format.h"
#include "storage/partition_log.h"

namespace holdfast::storage {
namespace {

std::string path_of(const std::string& dir, int64_t base, std::string_view suffix) {
  return io::join_path(dir, format::segment_file_name(base, suffix));
}

}  // namespace

std::unique_lock<std::mutex> PartitionLog::begin_cleaning_pass() {
  return std::unique_lock<std::mutex>(cleaning_pass_mu_);
}

std::optional<PartitionLog::CleanableRange> PartitionLog::cleanable_range(int64_t now_ms) {
  CleanableRange range;
  // Holding flush_mu_ too: a segment that left rolled_unsynced_ has had its
  // index files written by the flush that removed it (the flusher writes
  // them under flush_mu_), so no flusher writes an index file we replace.
  std::lock_guard flush_lock(flush_mu_);
  std::lock_guard lock(mu_);
  range.config = config_;
  range.first_dirty_offset = first_dirty_offset_;
  if (closed_ || failed_ || !config_.compact) return std::nullopt;
  int64_t safe = std::min(high_watermark_, durable_offset_);
  // Nothing at or past the first batch of an ongoing transaction is cleaned
  // (Kafka cleans below the first unstable offset): its outcome is unknown.
  if (auto ongoing = producers_.first_ongoing_offset()) safe = std::min(safe, *ongoing);
  uint64_t total = 0, dirty = 0;
  for (const auto& [base, s] : segments_) {
    if (s == active_ || s->next_offset > safe) break;
    if (std::find(rolled_unsynced_.begin(), rolled_unsynced_.end(), s) != rolled_unsynced_.end()) {
      break;
    }
    if (now_ms - s->retention_timestamp() < config_.min_compaction_lag_ms) break;
    range.segments.push_back(s);
    total += s->size;
    if (s->next_offset > first_dirty_offset_) dirty += s->size;
  }
  if (range.segments.empty() || dirty == 0 ||
      double(dirty) / double(total) < config_.min_cleanable_dirty_ratio) {
    return std::nullopt;
  }
  return range;
}

void PartitionLog::set_first_dirty_offset(int64_t offset) {
  first_dirty_offset_ = offset;
}

StorageResult<std::unique_ptr<io::File>> PartitionLog::create_cleaned_file(
    const std::shared_ptr<Segment>& segment) {
  std::lock_guard cleaner_lock(cleaner_mu_);
  {
    std::lock_guard lock(mu_);
    if (closed_) return make_error(Errc::closed, fmt::format("log {} is closed", dir_));
    auto it = segments_.find(segment->base_offset);
    if (it == segments_.end() || it->second != segment) {
      return make_error(Errc::not_found,
                        fmt::format("segment {} was deleted", segment->log_path()));
    }
  }
  io::FileSystem& fs = services_.fs();
  const std::string path = path_of(dir_, segment->base_offset, format::kCleanedSuffix);
  (void)fs.remove(path);  // a leftover of a failed pass
  auto opened = fs.open(path, io::OpenMode::create_new);
  if (!opened) return io_failure(opened.error());
  return std::move(*opened);
}

StorageResult<void> PartitionLog::discard_cleaned_file(int64_t base_offset) {
  auto r = services_.fs().remove(path_of(dir_, base_offset, format::kCleanedSuffix));
  if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
  return {};
}

bool PartitionLog::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

StorageResult<PartitionLog::SwapOutcome> PartitionLog::swap_segments(
    const std::shared_ptr<Segment>& old_segment, uint64_t cleaned_size, int64_t now_ms,
    const std::function<void(std::string_view)>& step_hook) {
  io::FileSystem& fs = services_.fs();
  const int64_t base = old_segment->base_offset;
  const std::string cleaned_path = path_of(dir_, base, format::kCleanedSuffix);
  const std::string swap_path = path_of(dir_, base, format::kSwapSuffix);
  auto step = [&](std::string_view name) {
    if (step_hook) step_hook(name);
  };
  // Under mu_: the segment is still the log's and the log is open.
  auto serves = [&](const std::shared_ptr<Segment>& s) {
    if (closed_) return false;
    auto it = segments_.find(s->base_offset);
    return it != segments_.end() && it->second == s;
  };

  {
    std::lock_guard cleaner_lock(cleaner_mu_);
    bool present;
    {
      std::lock_guard lock(mu_);
      present = serves(old_segment);
    }
    if (!present) {
      // Deleted (or the log closed) while we cleaned it: renaming now would
      // bring a deleted segment back.
      (void)fs.remove(cleaned_path);
      return SwapOutcome::segment_gone;
    }
    // The old index files must never describe the new file: removed in the
    // same directory sync that makes .swap durable (recover_swaps removes
    // them again should only the rename have reached the disk).
    for (auto suffix : {format::kIndexSuffix, format::kTimeIndexSuffix}) {
      auto r = fs.remove(path_of(dir_, base, suffix));
      if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
    }
    if (auto r = fs.rename(cleaned_path, swap_path); !r) return io_failure(r.error());
    step("swap_renamed");
    if (auto r = fs.sync_dir(dir_); !r) return io_failure(r.error());
    step("swap_synced");
    if (auto r = fs.rename(swap_path, old_segment->log_path()); !r) return io_failure(r.error());
    step("log_renamed");
    if (auto r = fs.sync_dir(dir_); !r) return io_failure(r.error());
    step("log_synced");
  }

  // Load the new file without the lock. Readers holding the old segment keep
  // reading the old file through its open descriptor. Should the segment be
  // deleted meanwhile, its files (now the new one) went with it.
  auto fresh = Segment::open_existing(fs, dir_, base, now_ms);
  if (!fresh) return fresh.error();
  auto loaded = (*fresh)->load(fs, /*recover=*/true, config().index_interval_bytes);
  if (!loaded) return loaded.error();
  if (*loaded || (*fresh)->next_offset != old_segment->next_offset ||
      (*fresh)->size != cleaned_size) {
    // Cannot happen (the cleaner writes whole batches and keeps the last
    // one); the file on disk is still a valid cleaning of the old one.
    return make_error(Errc::corrupt,
                      fmt::format("{}: cleaned segment reloads as {} bytes ending at {}, "
                                  "expected {} bytes ending at {}",
                                  old_segment->log_path(), (*fresh)->size, (*fresh)->next_offset,
                                  cleaned_size, old_segment->next_offset));
  }
  (*fresh)->created_ms = old_segment->created_ms;
  (*fresh)->synced_size = (*fresh)->size;
  {
    std::lock_guard lock(mu_);
    if (!serves(old_segment)) return SwapOutcome::segment_gone;
    segments_[base] = *fresh;
    // Markers are kept by the cleaner, so the segment's aborted transactions are too.
    (*fresh)->aborted_txns = old_segment->aborted_txns;
    total_bytes_ += int64_t((*fresh)->size) - int64_t(old_segment->size);
  }
  {
    std::lock_guard cleaner_lock(cleaner_mu_);
    bool present;
    {
      std::lock_guard lock(mu_);
      present = serves(*fresh);
    }
    if (present) {
      if (auto r = (*fresh)->write_index_files(fs); !r) {
        HF_WARN("writing the indexes of cleaned {}: {}", old_segment->log_path(),
                r.error().message);
      } else {
        std::lock_guard lock(mu_);
        (*fresh)->index_files_current = true;
      }
    }
  }
  step("indexes_written");
  return SwapOutcome::swapped;
}

}  // namespace holdfast::storage
