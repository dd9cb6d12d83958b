// All partition logs of one data directory, their group-commit flusher and
// the retention / interval-flush / checkpoint timer.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/file_system.h"
#include "storage/checkpoint.h"
#include "storage/partition_log.h"
#include "storage/types.h"

namespace holdfast::storage {

struct LogManagerOptions {
  int64_t retention_check_interval_ms = 300000;           // log.retention.check.interval.ms
  int64_t recovery_point_checkpoint_interval_ms = 60000;  // log.flush.offset.checkpoint.interval.ms
  int64_t timer_tick_ms = 50;                             // granularity of interval flushes
  int64_t producer_id_expiration_ms = 86400000;                  // producer.id.expiration.ms
  int64_t producer_id_expiration_check_interval_ms = 600000;     // ...expiration.check.interval.ms
  bool log_cleaner_enable = true;        // log.cleaner.enable
  int64_t log_cleaner_backoff_ms = 15000;  // log.cleaner.backoff.ms: pause between cleaner passes
  int64_t log_cleaner_dedupe_buffer_size = 128LL << 20;  // log.cleaner.dedupe.buffer.size
  // A partition whose durable offset moved gets a recovery mark at most this
  // often (PartitionLog::write_recovery_mark): a restart after a crash walks
  // with CRCs only what was written since. -1: never (recovery then walks the
  // whole active segment, as before marks existed).
  int64_t recovery_mark_interval_ms = 1000;
  // ...and only once this many bytes were appended since its last mark, or
  // recovery_mark_max_interval_ms passed: a mark costs a snapshot, index
  // files and directory syncs, which share the disk's journal with the
  // fdatasyncs that acknowledge produces, so at a low rate they are spaced
  // out (a restart then walks at most this many bytes plus what one
  // interval wrote). 0: every interval.
  int64_t recovery_mark_bytes = 64LL << 20;
  int64_t recovery_mark_max_interval_ms = 60000;
  // Group-commit threads (log.flush.threads). Each takes one partition at a
  // time off the shared queue, so the fdatasyncs of different partitions run
  // side by side instead of one after another; one partition is never
  // flushed by two threads at once (PartitionLog::flush_mu_).
  int flush_threads = 4;
};

class LogManager final : private LogServices {
 public:
  LogManager(io::FileSystem& fs, std::string data_dir, LogManagerOptions options = {});
  // Without shutdown(): stops the threads without flushing (like a crash) and
  // fails pending waiters with `closed`.
  ~LogManager() override;
  LogManager(const LogManager&) = delete;
  LogManager& operator=(const LogManager&) = delete;

  // Tests: the wall clock used for segment.ms, retention and LogAppendTime.
  // Set before open().
  void set_clock(std::function<int64_t()> clock);

  // Loads every partition directory; recovers each log from its recovery
  // point (walk batches checking length, offsets and CRC, cut a torn tail,
  // rebuild indexes) unless the clean-shutdown marker is present; removes the
  // marker. A partition with any other damage is loaded offline (see
  // PartitionLog::load) and the others serve. `config_for(topic)` supplies
  // each topic's LogConfig.
  StorageResult<void> open(std::function<LogConfig(const std::string& topic)> config_for);

  // nullptr if absent; the pointer stays valid until remove().
  PartitionLog* get(const std::string& topic, int32_t partition) const;
  // Creates the partition directory with an empty first segment, all synced,
  // then publishes the log. The directory I/O runs outside logs_mu_, so get()
  // and all() on other threads never wait for it.
  StorageResult<PartitionLog*> create(const std::string& topic, int32_t partition,
                                      const LogConfig& config);
  // Deletes the partition (delete topic): waiters get `closed`, the partition
  // leaves both checkpoints (durably, before its directory goes, so a
  // partition created again under the same name never inherits its recovery
  // point), then the directory is removed.
  // A log marked PartitionLog::keep_as_stray() is not deleted: it leaves the
  // checkpoints and its directory is renamed <dir>.<id>-stray (kept on disk,
  // never loaded again), with a warning. A crash during a deletion leaves a
  // deletion-in-progress file that the next open() finds: it finishes the
  // deletion instead of loading the directory.
  StorageResult<void> remove(const std::string& topic, int32_t partition);
  std::vector<PartitionLog*> all() const;

  // Group commit. Calls on_durable (from the flusher thread) once an
  // fdatasync covers every byte of the log up to end_offset (plus the
  // directory entry of every segment file involved), or with an error if a
  // sync failed; after a failed sync the log never acknowledges again.
  // Under FlushMode::interval/never it fires as soon as the bytes are in the
  // log (durability per the flush policy). Many waiters share one fdatasync.
  // Exception: if the log is already closed (removed, or the manager shut
  // down) on_durable runs at once on the calling thread with Errc::closed.
  void wait_durable(PartitionLog* log, int64_t end_offset,
                    std::function<void(Result<void, Errc>)> on_durable);

  // Called from any thread, without locks held, whenever a partition's high
  // watermark advances.
  void set_high_watermark_listener(std::function<void(PartitionLog*)> listener);

  // Starts the flusher thread and the timer thread (retention every
  // retention_check_interval_ms, interval flushes, recovery-point checkpoints).
  void start();
  // Stops the threads, flushes everything, writes indexes, both checkpoints
  // and the clean-shutdown marker (only if everything before succeeded and
  // no partition is offline: an offline partition must be checked again at
  // the next start, and a clean start trusts every segment).
  StorageResult<void> shutdown();

  // Runs one retention pass now (also what the timer does).
  StorageResult<int> run_retention_now();
  // Runs one log cleaner pass over every compacted log now (also what the
  // cleaner thread does every log_cleaner_backoff_ms; log_cleaner.h).
  // Returns how many segments were rewritten.
  StorageResult<int> run_compaction_now();
  // Forgets idle producers' idempotence state now (also what the timer does
  // every producer_id_expiration_check_interval_ms). Returns how many.
  size_t expire_producers_now();
  // Writes recovery-point-offset-checkpoint and log-start-offset-checkpoint now.
  StorageResult<void> checkpoint_now();
  // One round of what the timer does for recovery marks: writes the marks
  // flushes made ready (then the recovery-point checkpoint if any was
  // written), and asks for new ones where due. Returns how many were written.
  StorageResult<int> write_recovery_marks_now();
  // What the last open() walked over all partitions (PartitionLog::LoadStats).
  PartitionLog::LoadStats last_open_stats() const { return open_stats_; }

  const std::string& data_dir() const { return data_dir_; }

 private:
  // LogServices
  io::FileSystem& fs() override { return fs_; }
  int64_t now_ms() override { return clock_(); }
  void request_flush(const std::shared_ptr<PartitionLog>& log) override;
  void high_watermark_advanced(PartitionLog* log) override;
  StorageResult<void> checkpoint_log_start_offsets() override;
  StorageResult<void> checkpoint_recovery_points() override { return write_recovery_checkpoint(); }

  void flusher_loop();
  void timer_loop();
  void cleaner_loop();
  void stop_threads();
  std::vector<std::shared_ptr<PartitionLog>> snapshot() const;
  StorageResult<void> write_recovery_checkpoint();
  StorageResult<void> delete_partition_dir(const std::string& dir);
  StorageResult<void> set_aside_as_stray(const std::string& dir);

  io::FileSystem& fs_;
  const std::string data_dir_;
  const LogManagerOptions options_;
  std::function<int64_t()> clock_;

  mutable std::shared_mutex logs_mu_;
  std::map<TopicPartition, std::shared_ptr<PartitionLog>> logs_;
  // Removed logs, kept alive (closed) so raw pointers handed out by get() stay valid.
  std::vector<std::shared_ptr<PartitionLog>> retired_;
  // Serialises creating and deleting partition directories (create, remove),
  // which do I/O; never taken by get(). Lock order: dir_mu_ before logs_mu_.
  std::mutex dir_mu_;

  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  std::deque<std::shared_ptr<PartitionLog>> flush_queue_;
  bool flusher_stop_ = false;
  std::vector<std::thread> flushers_;

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool timer_stop_ = false;
  std::thread timer_;
  // The log cleaner thread (its own, so a long pass never delays interval
  // flushes or checkpoints); stopped with the timer (timer_mu_/timer_cv_).
  std::thread cleaner_;

  std::mutex listener_mu_;
  std::function<void(PartitionLog*)> listener_;

  std::mutex checkpoint_mu_;  // one checkpoint writer at a time
  bool shut_down_ = false;
  PartitionLog::LoadStats open_stats_;
};

}  // namespace holdfast::storage
