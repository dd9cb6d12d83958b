// FollowerReplica: what the replica fetcher (replica_fetcher.h) needs from a
// local replica that follows a leader on another broker. Partition implements
// it for real replicas; tests use an in-memory one.
//
// Every method may be called from any thread; the fetcher calls them from its
// own thread (one per leader broker), never two at once for one replica.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "base/result.h"
#include "record/batch.h"
#include "storage/types.h"

namespace holdfast::replication {

class FollowerReplica {
 public:
  virtual ~FollowerReplica() = default;

  virtual const std::string& topic() const = 0;
  virtual int32_t index() const = 0;

  virtual int64_t log_end_offset() const = 0;
  virtual int64_t log_start_offset() const = 0;
  // The epoch of the last epoch entry in the replica's leader epoch cache; -1 if none.
  virtual int32_t latest_epoch() const = 0;
  // (largest epoch <= `epoch` the replica knows, offset where it ended: the
  // start of the next epoch, or the log end for the latest), as
  // storage::LeaderEpochCache::end_offset_for; nullopt if it knows none.
  virtual std::optional<std::pair<int32_t, int64_t>> end_offset_for_epoch(int32_t epoch) const = 0;
  // The leader epoch this replica expects the leader to be in (from the
  // metadata that made it a follower); sent as current_leader_epoch.
  virtual int32_t current_leader_epoch() const = 0;

  // One complete batch as the leader stored it (offsets and epoch kept).
  // Requires header.base_offset == log_end_offset() (else invalid_argument).
  virtual Result<void, storage::Errc> append_replicated(std::span<const uint8_t> batch,
                                                        const record::BatchHeader& header) = 0;
  // Calls `done` once everything below `end_offset` is durable as the log's
  // flush policy defines it: fsynced under flush.policy=always (decision 1:
  // the next fetch offset must be durable), at once under the others. Any
  // thread, possibly this one before returning. An error if it never can be.
  virtual void wait_durable(int64_t end_offset,
                            std::function<void(Result<void, storage::Errc>)> done) = 0;
  // Removes every record at and after `offset` (no-op at or past the log end);
  // durable on return.
  virtual Result<void, storage::Errc> truncate_to(int64_t offset) = 0;
  // Empties the log and starts it at `offset` (the leader's log start passed
  // this replica's log end).
  virtual Result<void, storage::Errc> truncate_fully_and_start_at(int64_t offset) = 0;
  // The leader's high watermark from the last fetch, already capped at this
  // replica's log end.
  virtual void set_high_watermark(int64_t high_watermark) = 0;
};

}  // namespace holdfast::replication
