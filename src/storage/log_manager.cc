#include "storage/log_manager.h"

#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "storage/format.h"
#include "storage/log_cleaner.h"
#include "storage/truncation_marker.h"

namespace holdfast::storage {
namespace {

std::string without_trailing_slash(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

LogManager::LogManager(io::FileSystem& fs, std::string data_dir, LogManagerOptions options)
    : fs_(fs),
      data_dir_(without_trailing_slash(std::move(data_dir))),
      options_(options),
      clock_(wall_clock_ms) {}

LogManager::~LogManager() {
  stop_threads();
  if (!shut_down_) {
    for (const auto& log : snapshot()) log->close();
  }
}

void LogManager::set_clock(std::function<int64_t()> clock) {
  clock_ = std::move(clock);
}

std::vector<std::shared_ptr<PartitionLog>> LogManager::snapshot() const {
  std::shared_lock lock(logs_mu_);
  std::vector<std::shared_ptr<PartitionLog>> out;
  out.reserve(logs_.size());
  for (const auto& [tp, log] : logs_) out.push_back(log);
  return out;
}

StorageResult<void> LogManager::open(
    std::function<LogConfig(const std::string& topic)> config_for) {
  if (auto r = io::create_dirs(fs_, data_dir_); !r) return io_failure(r.error());
  std::string marker = io::join_path(data_dir_, format::kCleanShutdownFile);
  bool clean = fs_.exists(marker);
  auto read_or_empty = [&](std::string_view name) -> CheckpointEntries {
    auto entries = read_checkpoint(fs_, io::join_path(data_dir_, name));
    if (entries) return std::move(*entries);
    if (entries.code() != Errc::not_found) {
      HF_WARN("ignoring {}: {}", name, entries.error().message);
    }
    return {};
  };
  // A recovery point checkpoint that cannot be read means: recover everything.
  CheckpointEntries recovery_points = read_or_empty(format::kRecoveryPointCheckpointFile);
  CheckpointEntries log_starts = read_or_empty(format::kLogStartOffsetCheckpointFile);
  auto names = fs_.list_dir(data_dir_);
  if (!names) return io_failure(names.error());
  const auto load_started = std::chrono::steady_clock::now();
  size_t loaded = 0;
  bool finished_deletions = false;
  for (const auto& name : *names) {
    std::string dir = io::join_path(data_dir_, name);
    auto tp = format::parse_partition_dir_name(name);
    if (!tp || !fs_.is_directory(dir)) continue;
    if (fs_.exists(io::join_path(dir, "meta.properties"))) {
      // Another broker's data directory inside this one (e.g. `node-1` of a
      // local cluster): its name looks like a partition, but it is not ours.
      // Loading it would let recovery touch its files (stray *.tmp removed,
      // torn tails cut) and the lifecycle set it aside as a stray partition
      // (renaming another broker's data directory), so it is never loaded.
      HF_WARN("ignoring {}: it is a broker's data directory (it has meta.properties), not a "
              "partition",
              dir);
      continue;
    }
    if (fs_.exists(io::join_path(dir, format::kDeletionFile))) {
      // remove() was deleting it when the process stopped: finish.
      HF_INFO("{}: finishing the deletion of a removed partition a crash interrupted", dir);
      if (auto r = delete_partition_dir(dir); !r) return r;
      finished_deletions = true;
      continue;
    }
    auto find = [&](const CheckpointEntries& entries) -> std::optional<int64_t> {
      auto it = entries.find(*tp);
      if (it == entries.end()) return std::nullopt;
      return it->second;
    };
    auto log = PartitionLog::load(*this, dir, tp->first, tp->second, config_for(tp->first),
                                  find(recovery_points), find(log_starts), clean);
    if (!log) return log.error();
    ++loaded;
    open_stats_.crc_checked_bytes += (*log)->load_stats().crc_checked_bytes;
    open_stats_.header_walked_bytes += (*log)->load_stats().header_walked_bytes;
    if ((*log)->offline()) {
      HF_ERROR("{} is OFFLINE: its operations fail with KAFKA_STORAGE_ERROR until it is repaired",
               name);
    } else {
      HF_DEBUG("loaded {}: offsets [{}, {}), {} segments{}", name, (*log)->log_start_offset(),
               (*log)->log_end_offset(), (*log)->segment_count(), clean ? "" : " (recovered)");
    }
    std::unique_lock lock(logs_mu_);
    logs_[*tp] = *log;
  }
  // One line per data dir at info; the per-partition lines are debug.
  HF_INFO("loaded {} partitions from {} in {} ms ({}; {} bytes of batches checked with CRCs, "
          "{} bytes of batch headers walked)",
          loaded, data_dir_,
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                load_started)
              .count(),
          clean ? "clean shutdown, no recovery needed"
                : fmt::format("{} recovered after an unclean shutdown", loaded),
          open_stats_.crc_checked_bytes, open_stats_.header_walked_bytes);
  // A truncation load() finished: its file goes once the recovery points no
  // longer name offsets past the cut (partition_log_replica.cc).
  std::vector<std::shared_ptr<PartitionLog>> truncated;
  for (const auto& log : snapshot()) {
    if (log->loaded_truncation_pending()) truncated.push_back(log);
  }
  if (!truncated.empty() || finished_deletions) {
    // (A finished deletion may still be named in the checkpoints: the crash
    // came before remove() rewrote them.)
    if (auto r = checkpoint_now(); !r) return r;
    for (const auto& log : truncated) {
      if (auto r = log->finish_loaded_truncation(); !r) return r;
    }
  }
  if (clean) {
    // From here on a crash must trigger recovery.
    if (auto r = fs_.remove(marker); !r) return io_failure(r.error());
    if (auto r = fs_.sync_dir(data_dir_); !r) return io_failure(r.error());
  }
  return {};
}

PartitionLog* LogManager::get(const std::string& topic, int32_t partition) const {
  std::shared_lock lock(logs_mu_);
  auto it = logs_.find({topic, partition});
  return it == logs_.end() ? nullptr : it->second.get();
}

StorageResult<PartitionLog*> LogManager::create(const std::string& topic, int32_t partition,
                                                const LogConfig& config) {
  if (!format::is_valid_topic_name(topic) || partition < 0) {
    return make_error(Errc::invalid_argument,
                      fmt::format("invalid topic partition '{}' {}", topic, partition));
  }
  // One creation or deletion at a time; readers of logs_ go on meanwhile.
  std::lock_guard dir_lock(dir_mu_);
  {
    std::shared_lock lock(logs_mu_);
    if (logs_.count({topic, partition})) {
      return make_error(Errc::already_exists, fmt::format("{}-{} exists", topic, partition));
    }
  }
  std::string dir = io::join_path(data_dir_, format::partition_dir_name(topic, partition));
  // mkdir, the first segment and the directory syncs: all durable before the
  // log is published, exactly as when this ran under logs_mu_.
  auto log = PartitionLog::create(*this, dir, topic, partition, config);
  if (!log) return log.error();
  std::unique_lock lock(logs_mu_);
  logs_[{topic, partition}] = *log;
  return log->get();
}

StorageResult<void> LogManager::remove(const std::string& topic, int32_t partition) {
  std::lock_guard dir_lock(dir_mu_);
  std::shared_ptr<PartitionLog> log;
  {
    std::unique_lock lock(logs_mu_);
    auto it = logs_.find({topic, partition});
    if (it == logs_.end()) {
      return make_error(Errc::not_found, fmt::format("{}-{} does not exist", topic, partition));
    }
    log = it->second;
    logs_.erase(it);
    // Handlers on other threads may still hold the raw pointer from get();
    // a closed log answers them with `closed`. Keep it alive until we go.
    retired_.push_back(log);
  }
  log->close();
  const bool stray = log->kept_as_stray();
  // A deletion is recorded in the directory first: a crash at any later
  // point leaves a directory that open() recognises and finishes deleting,
  // instead of loading it as a partition of a topic the metadata no longer
  // has (which start-up would set aside as a stray).
  if (!stray) {
    const std::string marker = io::join_path(log->dir(), format::kDeletionFile);
    if (auto r = io::write_file_atomically(fs_, marker, {}); !r) return io_failure(r.error());
  }
  // Out of every checkpoint before the directory goes: a partition created
  // again under this name must not inherit the old recovery point (its
  // unsynced tail would then be trusted without a CRC walk after a crash)
  // nor the old log start.
  if (auto r = checkpoint_now(); !r) return r;
  if (stray) return set_aside_as_stray(log->dir());
  return delete_partition_dir(log->dir());
}

StorageResult<void> LogManager::delete_partition_dir(const std::string& dir) {
  // The data files go first, the deletion marker with the directory last.
  if (auto r = remove_partition_data_files(fs_, dir); !r) return r;
  if (auto r = io::remove_all(fs_, dir); !r) return io_failure(r.error());
  if (auto r = fs_.sync_dir(data_dir_); !r) return io_failure(r.error());
  return {};
}

StorageResult<void> LogManager::set_aside_as_stray(const std::string& dir) {
  std::string name = dir.substr(dir.find_last_of('/') + 1);
  std::string target =
      io::join_path(data_dir_, format::set_aside_dir_name(name, format::kStrayDirSuffix));
  if (auto r = fs_.rename(dir, target); !r) return io_failure(r.error());
  if (auto r = fs_.sync_dir(data_dir_); !r) return io_failure(r.error());
  HF_WARN("{}: its topic is not in the metadata (never created here, or deleted while this "
          "broker was down); kept as {} for an operator to inspect or delete",
          dir, target);
  return {};
}

std::vector<PartitionLog*> LogManager::all() const {
  std::shared_lock lock(logs_mu_);
  std::vector<PartitionLog*> out;
  for (const auto& [tp, log] : logs_) out.push_back(log.get());
  return out;
}

void LogManager::wait_durable(PartitionLog* log, int64_t end_offset,
                              std::function<void(Result<void, Errc>)> on_durable) {
  log->add_waiter(end_offset, std::move(on_durable));
}

void LogManager::set_high_watermark_listener(std::function<void(PartitionLog*)> listener) {
  std::lock_guard lock(listener_mu_);
  listener_ = std::move(listener);
}

void LogManager::high_watermark_advanced(PartitionLog* log) {
  std::function<void(PartitionLog*)> listener;
  {
    std::lock_guard lock(listener_mu_);
    listener = listener_;
  }
  if (listener) listener(log);
}

void LogManager::request_flush(const std::shared_ptr<PartitionLog>& log) {
  {
    std::lock_guard lock(flush_mu_);
    if (log->flush_running) {
      // The thread flushing it queues it again when done: no second thread
      // wakes only to wait for the first on the log's flush mutex.
      log->flush_again = true;
      return;
    }
    if (log->flush_queued) return;
    log->flush_queued = true;
    flush_queue_.push_back(log);
  }
  flush_cv_.notify_one();
}

void LogManager::flusher_loop() {
  std::unique_lock lock(flush_mu_);
  for (;;) {
    flush_cv_.wait(lock, [&] { return flusher_stop_ || !flush_queue_.empty(); });
    if (flush_queue_.empty() && flusher_stop_) return;
    // One log at a time: the other flusher threads take the next ones, so
    // different partitions' syncs overlap.
    std::shared_ptr<PartitionLog> log = std::move(flush_queue_.front());
    flush_queue_.pop_front();
    log->flush_queued = false;
    log->flush_running = true;
    lock.unlock();
    log->flush(false);
    lock.lock();
    log->flush_running = false;
    if (log->flush_again) {
      // Appended to (or waited on) while this flush ran: at the back of the
      // queue, so other partitions' flushes are not starved. This thread
      // takes the queue's front next, so no other thread needs waking.
      log->flush_again = false;
      log->flush_queued = true;
      flush_queue_.push_back(std::move(log));
    }
  }
}

void LogManager::timer_loop() {
  int64_t next_retention = clock_() + options_.retention_check_interval_ms;
  int64_t next_checkpoint = clock_() + options_.recovery_point_checkpoint_interval_ms;
  int64_t next_expiration = clock_() + options_.producer_id_expiration_check_interval_ms;
  std::unique_lock lock(timer_mu_);
  while (!timer_stop_) {
    timer_cv_.wait_for(lock, std::chrono::milliseconds(options_.timer_tick_ms));
    if (timer_stop_) break;
    lock.unlock();
    int64_t now = clock_();
    for (const auto& log : snapshot()) {
      if (log->needs_interval_flush(now)) {
        log->request_sync();
        request_flush(log);
      }
    }
    if (now >= next_retention) {
      if (auto r = run_retention_now(); !r) HF_WARN("retention: {}", r.error().message);
      next_retention = now + options_.retention_check_interval_ms;
    }
    if (now >= next_expiration) {
      expire_producers_now();
      next_expiration = now + options_.producer_id_expiration_check_interval_ms;
    }
    if (options_.recovery_mark_interval_ms >= 0) {
      if (auto r = write_recovery_marks_now(); !r) HF_WARN("recovery mark: {}", r.error().message);
    }
    if (now >= next_checkpoint) {
      if (auto r = write_recovery_checkpoint(); !r) HF_WARN("checkpoint: {}", r.error().message);
      next_checkpoint = now + options_.recovery_point_checkpoint_interval_ms;
    }
    lock.lock();
  }
}

void LogManager::cleaner_loop() {
  std::unique_lock lock(timer_mu_);
  while (!timer_stop_) {
    timer_cv_.wait_for(lock, std::chrono::milliseconds(options_.log_cleaner_backoff_ms));
    if (timer_stop_) break;
    lock.unlock();
    if (auto r = run_compaction_now(); !r) HF_WARN("log cleaner: {}", r.error().message);
    lock.lock();
  }
}

StorageResult<int> LogManager::run_compaction_now() {
  int rewritten = 0;
  std::optional<Error<Errc>> first_error;
  for (const auto& log : snapshot()) {
    {
      std::lock_guard lock(timer_mu_);
      if (timer_stop_) break;  // shutting down: the rest waits for the next start
    }
    if (log->offline() || !log->config().compact) continue;
    LogCleaner::Options cleaner_options;
    cleaner_options.dedupe_buffer_bytes = options_.log_cleaner_dedupe_buffer_size;
    auto r = LogCleaner::clean(*log, clock_(), cleaner_options);
    if (!r) {
      HF_WARN("cleaning {}-{}: {}", log->topic(), log->partition(), r.error().message);
      if (!first_error) first_error = r.error();
      continue;
    }
    rewritten += r->segments_rewritten;
  }
  if (first_error) return *first_error;
  return rewritten;
}

void LogManager::start() {
  if (flushers_.empty()) {
    for (int i = 0; i < std::max(1, options_.flush_threads); ++i) {
      flushers_.emplace_back([this, i] {
        set_thread_name("hf-flush-" + std::to_string(i));
        flusher_loop();
      });
    }
  }
  if (!timer_.joinable()) timer_ = std::thread([this] {
    set_thread_name("hf-log-timer");
    timer_loop();
  });
  if (options_.log_cleaner_enable && !cleaner_.joinable()) {
    cleaner_ = std::thread([this] {
      set_thread_name("hf-cleaner");
      cleaner_loop();
    });
  }
}

void LogManager::stop_threads() {
  {
    std::lock_guard lock(timer_mu_);
    timer_stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  if (cleaner_.joinable()) cleaner_.join();
  {
    std::lock_guard lock(flush_mu_);
    flusher_stop_ = true;
  }
  flush_cv_.notify_all();
  for (auto& flusher : flushers_) {
    if (flusher.joinable()) flusher.join();
  }
  flushers_.clear();
}

StorageResult<int> LogManager::run_retention_now() {
  int deleted = 0;
  int64_t now = clock_();
  std::optional<Error<Errc>> first_error;
  for (const auto& log : snapshot()) {
    auto r = log->apply_retention(now);
    if (!r) {
      if (!first_error) first_error = r.error();
      continue;
    }
    deleted += *r;
  }
  if (deleted > 0) {
    if (auto r = checkpoint_log_start_offsets(); !r && !first_error) first_error = r.error();
  }
  if (first_error) return *first_error;
  return deleted;
}

size_t LogManager::expire_producers_now() {
  size_t expired = 0;
  int64_t now = clock_();
  for (const auto& log : snapshot()) {
    expired += log->expire_producers(now, options_.producer_id_expiration_ms);
  }
  if (expired > 0) HF_INFO("expired the idempotence state of {} idle producers", expired);
  return expired;
}

StorageResult<void> LogManager::checkpoint_log_start_offsets() {
  std::lock_guard lock(checkpoint_mu_);
  CheckpointEntries entries;
  for (const auto& log : snapshot()) {
    entries[{log->topic(), log->partition()}] = log->log_start_offset();
  }
  return write_checkpoint(fs_, io::join_path(data_dir_, format::kLogStartOffsetCheckpointFile),
                          entries);
}

StorageResult<void> LogManager::write_recovery_checkpoint() {
  std::lock_guard lock(checkpoint_mu_);
  CheckpointEntries entries;
  for (const auto& log : snapshot()) {
    entries[{log->topic(), log->partition()}] = log->durable_offset();
  }
  return write_checkpoint(fs_, io::join_path(data_dir_, format::kRecoveryPointCheckpointFile),
                          entries);
}

StorageResult<int> LogManager::write_recovery_marks_now() {
  int written = 0;
  std::optional<Error<Errc>> first_error;
  const int64_t now = clock_();
  for (const auto& log : snapshot()) {
    auto r = log->write_recovery_mark();
    if (!r) {
      HF_WARN("{}-{}: writing a recovery mark: {}", log->topic(), log->partition(),
              r.error().message);
      if (!first_error) first_error = r.error();
    } else if (*r) {
      ++written;
    }
    if (log->recovery_mark_due(now, std::max<int64_t>(0, options_.recovery_mark_interval_ms),
                               options_.recovery_mark_bytes,
                               options_.recovery_mark_max_interval_ms)) {
      log->request_recovery_mark();
    }
  }
  // Every mark written covers offsets already durable: now the checkpoint
  // may claim them (a mark's index files without it are simply unused).
  if (written > 0) {
    if (auto r = write_recovery_checkpoint(); !r && !first_error) first_error = r.error();
  }
  if (first_error) return *first_error;
  return written;
}

StorageResult<void> LogManager::checkpoint_now() {
  if (auto r = write_recovery_checkpoint(); !r) return r;
  return checkpoint_log_start_offsets();
}

StorageResult<void> LogManager::shutdown() {
  if (shut_down_) return {};
  stop_threads();
  std::optional<Error<Errc>> first_error;
  auto logs = snapshot();
  std::vector<std::string> offline;
  for (const auto& log : logs) {
    if (log->offline()) {  // nothing to flush; its checkpoint entries are kept as loaded
      offline.push_back(fmt::format("{}-{}", log->topic(), log->partition()));
      continue;
    }
    log->flush(true);
    if (log->failed() || log->durable_offset() != log->log_end_offset()) {
      if (!first_error) {
        first_error = make_error(Errc::io_error, fmt::format("{}-{} could not be flushed",
                                                             log->topic(), log->partition()));
      }
      continue;
    }
    if (auto r = log->write_index_files(); !r && !first_error) first_error = r.error();
    // Producer state as of the end, so the next start replays nothing.
    if (auto r = log->write_producer_snapshot(); !r && !first_error) first_error = r.error();
  }
  if (auto r = checkpoint_now(); !r && !first_error) first_error = r.error();
  if (!first_error && !offline.empty()) {
    HF_WARN("not writing the clean-shutdown marker: {} offline ({}); the next start checks "
            "every log again",
            offline.size() == 1 ? "a partition is" : "partitions are", fmt::join(offline, ", "));
  } else if (!first_error) {
    std::string marker = io::join_path(data_dir_, format::kCleanShutdownFile);
    if (auto r = io::write_file_atomically(fs_, marker, {}); !r)
      first_error = io_failure(r.error());
  }
  for (const auto& log : logs) log->close();
  shut_down_ = true;
  if (first_error) return *first_error;
  return {};
}

}  // namespace holdfast::storage
