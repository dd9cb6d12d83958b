// One local replica of a partition and its replicated state (DESIGN §5,
// docs/dev/cluster-plan.md): the log that holds the bytes, the replica's role,
// its leader epoch and the partition's high watermark.
//
// The high watermark is decided here, not by the log. The log reports how far
// this replica is acknowledgeable on its own: PartitionLog::high_watermark(),
// which under flush.policy=always is its durable (fdatasynced) offset and
// under interval/never its log end, never moving backwards. The partition's
// high watermark is the minimum of that over the in-sync replicas; in
// single-node mode the only in-sync replica is this one, so the two are equal
// and Fetch, ListOffsets, DeleteRecords and produce acknowledgements behave
// exactly as before the replication module existed.
//
// What a cluster adds later without changing the handlers: a follower role
// (append refused with not-leader, the log fed by a fetcher), the ISR and each
// follower's fetched and fsynced offsets, and a high watermark taken over the
// ISR. The produce path already asks "wait until the high watermark passes
// offset X" (wait_for_high_watermark) rather than waiting on the log's flush,
// and Fetch readers are bounded by high_watermark(), so only this class
// changes when the high watermark stops being the local one.
//
// Thread safety: every method may be called from any thread; the log has its
// own lock, the role and epoch are atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "record/batch.h"
#include "storage/log_manager.h"
#include "storage/partition_log.h"
#include "storage/types.h"

namespace holdfast::replication {

enum class Role { leader, follower };

class Partition {
 public:
  using HighWatermarkCallback = std::function<void(Result<void, storage::Errc>)>;

  // `log` must stay valid as long as this object: LogManager keeps removed
  // logs alive (closed) for the manager's lifetime.
  Partition(storage::LogManager& logs, storage::PartitionLog& log);

  const std::string& topic() const { return log_.topic(); }
  int32_t index() const { return log_.partition(); }

  // Always leader in single-node mode.
  Role role() const { return role_.load(); }
  void set_role(Role role) { role_.store(role); }
  // The leader epoch is the log's (it stamps batches and keeps the
  // leader-epoch-checkpoint): 0 on a new log, the latest recorded epoch after
  // a restart; it never goes down (a lower epoch is invalid_argument).
  int32_t leader_epoch() const { return log_.leader_epoch(); }
  storage::StorageResult<void> set_leader_epoch(int32_t epoch) { return log_.set_leader_epoch(epoch); }

  // ---- Produce ----

  // Appends one batch validated by record::validate_produced_batch, with the
  // idempotence checks of PartitionLog::append (a retry returns the original
  // offsets with `duplicate` set). The result is acknowledgeable once the
  // high watermark reaches last_offset + 1 (see below).
  storage::StorageResult<storage::AppendResult> append(std::span<const uint8_t> batch,
                                                       const record::BatchHeader& header);
  // True when the high watermark is already at or past `end_offset`: the
  // batch ending there can be acknowledged without waiting.
  bool high_watermark_reached(int64_t end_offset) const;
  // Calls `done` (from the flusher thread, or at once on this thread if the
  // log is closed) once the high watermark is at or past `end_offset`, or
  // with an error if the bytes can never get there (io_error: the log failed
  // its fsync; closed: the partition was removed or the broker shut down).
  // Many waiters share one fdatasync (group commit).
  void wait_for_high_watermark(int64_t end_offset, HighWatermarkCallback done);

  // ---- Reads (Fetch, ListOffsets) ----

  int64_t high_watermark() const;
  int64_t log_start_offset() const { return log_.log_start_offset(); }
  int64_t log_end_offset() const { return log_.log_end_offset(); }
  // io_error naming the damage if the log is offline (a corrupt segment).
  storage::StorageResult<void> check_online() const { return log_.check_online(); }
  // Whole batches from the one containing `offset`, never past the high
  // watermark (PartitionLog::read); the result's high_watermark is the bound
  // used. KIP-74 with min_one_batch.
  storage::StorageResult<storage::ReadResult> read(int64_t offset, size_t max_bytes,
                                                   bool min_one_batch) const;
  // The first record at or after `timestamp` below the high watermark.
  std::optional<storage::TimestampAndOffset> offset_for_timestamp(int64_t timestamp) const;

  // ---- Admin ----

  // DeleteRecords: the new log start; -1 = the high watermark; beyond the
  // high watermark is offset_out_of_range.
  storage::StorageResult<int64_t> delete_records_before(int64_t offset);
  // The idempotent producers this partition remembers (DescribeProducers).
  std::vector<storage::ProducerEntry> producer_states() const { return log_.producer_states(); }
  // Bytes on disk (DescribeLogDirs).
  int64_t size_bytes() const { return log_.size_bytes(); }
  storage::LogConfig config() const { return log_.config(); }
  void update_config(const storage::LogConfig& config) { log_.update_config(config); }

  // ---- For ReplicaManager, tests and introspection ----

  // The log's own acknowledgeable offset advanced; returns true if the
  // partition's high watermark moved (so Fetch long-polls should wake).
  bool on_log_high_watermark_advanced();
  // The bytes. Request handlers do not use it: they go through the methods
  // above, which know about the high watermark.
  storage::PartitionLog& log() { return log_; }

 private:
  storage::LogManager& logs_;
  storage::PartitionLog& log_;
  std::atomic<Role> role_{Role::leader};
};

}  // namespace holdfast::replication
