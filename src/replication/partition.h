// One local replica of a partition and its replicated state (DESIGN §5,
// docs/dev/cluster-plan.md, the cluster contract's decisions 2, 4 and 5):
// the log that holds the bytes, the replica's role, leader and epochs, the
// replicas and the in-sync replicas (ISR), each follower's progress as seen
// by the leader, and the partition's high watermark (HW).
//
// The log reports how far this replica is acknowledgeable on its own:
// PartitionLog::high_watermark(), its durable (fdatasynced) offset under
// flush.policy=always, its log end under interval/never. The partition's HW
// is decided here:
//   leader    HW = min(the log's own acknowledgeable offset, the fetch
//             offset of every other member of the maximal ISR). A follower's
//             fetch offset is its fsynced log end under flush.policy=always
//             (it fsyncs before it fetches again), so the HW never passes
//             what an ISR member could lose in a power cut.
//   follower  HW = the HW the leader sent in its last Fetch response, min
//             this log's end; consumers do not read from followers.
// The HW never moves backwards (only a truncation below it, on a follower,
// cuts it to the new log end). A replica that becomes leader starts from the
// HW it had as a follower and advances as its followers fetch. A replica
// that never heard a leader's HW (just started) starts from its log start.
//
// Single-node mode (the default state, and what the lifecycle sets up when
// the image names this node alone): leader, replicas = ISR = {this node}, so
// the HW is the log's own acknowledgeable offset and every client-visible
// offset is exactly as before the replication module existed.
//
// ISR changes go through the controller (decision 4): the leader proposes a
// new ISR through the IsrChangeSink (AlterPartition at integration) and
// applies it only when the metadata record comes back (apply_isr). While a
// proposal is pending the HW is taken over the union of the committed and the
// proposed ISR ("maximal ISR"), so a shrink never acknowledges early, and
// no second proposal is made. After a refused (or lost) proposal the next
// one waits a backoff that doubles with each refusal in a row (from
// kIsrRetryBackoffInitialMs, capped at replica.lag.time.max.ms) and resets
// when a change of the partition's state is applied: a controller that keeps
// refusing is not asked again at every check or fetch.
//   shrink  an ISR follower that has not caught up to the leader's log end
//           within replica.lag.time.max.ms (maybe_shrink_isr, on a timer);
//   expand  a replica outside the ISR whose fetch offset reached the HW and
//           the start of the leader's current epoch (on its fetch).
//
// acks=all (decision 5): check_min_isr refuses with not_enough_replicas
// before anything is appended when the (committed) ISR is smaller than
// min.insync.replicas; a waiter is answered once the HW passes its batch, with
// not_enough_replicas_after_append if at that point the ISR is smaller than
// min.insync.replicas. A replica that stops leading fails its waiters with
// not_leader, and refuses appends.
//
// Thread safety: every method may be called from any thread. `mu_` guards the
// replicated state; `role_mu_` orders appends (shared) against role changes
// (exclusive), so no leader append lands after become_follower returned.
// Lock order: role_mu_, then mu_, then the log's own lock. Callbacks (waiters,
// the ISR sink, the wake hook) run with no lock of ours held.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "record/batch.h"
#include "replication/errc.h"
#include "storage/log_manager.h"
#include "storage/partition_log.h"
#include "storage/types.h"

namespace holdfast::replication {

enum class Role { leader, follower };

// A proposed ISR change, for the controller (AlterPartition, API 56).
struct IsrProposal {
  std::string topic;
  int32_t partition = 0;
  int32_t leader_epoch = 0;     // the proposer's
  int32_t partition_epoch = 0;  // the state the proposal is based on
  std::vector<int32_t> new_isr;
};
using IsrChangeSink = std::function<void(IsrProposal)>;

// What the leader knows of one follower (introspection, tests).
struct FollowerProgress {
  int64_t fetch_offset = -1;       // -1: no fetch since this replica became leader
  int64_t last_fetch_ms = 0;
  int64_t last_caught_up_ms = 0;   // last time it had everything the leader had
};

class Partition : public std::enable_shared_from_this<Partition> {
 public:
  using Clock = std::function<int64_t()>;  // milliseconds, monotonic
  using HighWatermarkCallback = std::function<void(Result<void, Errc>)>;

  // `log` must stay valid as long as this object: LogManager keeps removed
  // logs alive (closed) for the manager's lifetime. `local_id` is this
  // broker's node id. Starts as the single-node leader (see above).
  Partition(storage::LogManager& logs, storage::PartitionLog& log, int32_t local_id,
            Clock clock = {});

  const std::string& topic() const { return log_.topic(); }
  int32_t index() const { return log_.partition(); }
  int32_t local_id() const { return local_id_; }

  // ---- Role and replicated state (from the metadata image) ----

  Role role() const { return role_.load(); }
  // This node while leading; the leader named by the image while following
  // (-1: the partition is offline).
  int32_t leader_id() const;
  // Leader: the log's epoch (it stamps batches and keeps the
  // leader-epoch-checkpoint; never lowered). Follower: the epoch of the
  // leader the image names (what a follower fetch presents as
  // current_leader_epoch).
  int32_t leader_epoch() const;
  // Raises the log's epoch (tests; become_leader does it from the image).
  storage::StorageResult<void> set_leader_epoch(int32_t epoch) { return log_.set_leader_epoch(epoch); }
  int32_t partition_epoch() const;
  std::vector<int32_t> replicas() const;
  // The committed ISR (what the last applied record says).
  std::vector<int32_t> isr() const;
  // The ISR the HW is taken over: the committed one plus a pending proposal.
  std::vector<int32_t> maximal_isr() const;
  bool isr_change_pending() const;

  // This replica leads `leader_epoch`: raises the log's epoch to it, resets
  // the followers' progress (ISR members count as caught up now), keeps the
  // HW it had. Called again with the same epoch (a later record of the same
  // leadership) it only applies replicas, ISR and partition epoch. Returns
  // whether the leadership changed (role or epoch).
  bool become_leader(int32_t leader_epoch, int32_t partition_epoch, std::vector<int32_t> replicas,
                     std::vector<int32_t> isr);
  // This replica follows `leader_id` (-1: offline) in `leader_epoch`: pending
  // acks=all waiters fail with not_leader, appends are refused from now on.
  // Same leader and epoch again: only state is applied. Returns whether the
  // leadership changed (role, leader or epoch).
  bool become_follower(int32_t leader_id, int32_t leader_epoch, int32_t partition_epoch,
                       std::vector<int32_t> replicas, std::vector<int32_t> isr);
  // An applied partition change with the same leader: the new committed ISR
  // (clears a pending proposal). Older partition epochs are ignored.
  void apply_isr(std::vector<int32_t> isr, int32_t partition_epoch);

  // ---- ISR proposals (leader) ----

  // Where proposals go; none (the default) = no ISR changes are proposed
  // (single-node mode).
  void set_isr_change_sink(IsrChangeSink sink);
  void set_replica_lag_time_max_ms(int64_t ms) { lag_max_ms_.store(ms); }
  // Proposes to drop ISR followers that have not caught up to the log end
  // within replica.lag.time.max.ms. No-op on a follower, without a sink, or
  // while a proposal is pending.
  void maybe_shrink_isr(int64_t now_ms);
  // The controller refused the pending proposal (or it was lost): forget it,
  // so a check or fetch may propose again once the backoff has passed.
  // Returns that backoff (ms).
  int64_t isr_proposal_failed();
  // The first backoff after a refused proposal.
  static constexpr int64_t kIsrRetryBackoffInitialMs = 500;

  // ---- Produce ----

  // Before an append: not_leader on a follower; not_enough_replicas if the
  // committed ISR is smaller than `min_insync` (acks=all; 0 = no check).
  Result<void, Errc> check_min_isr(int32_t min_insync) const;
  // Appends one batch validated by record::validate_produced_batch, with the
  // idempotence checks of PartitionLog::append (a retry returns the original
  // offsets with `duplicate` set), stamped with the log's leader epoch.
  // A replica that is not the leader refuses with storage::Errc::closed
  // (which handlers answer as NOT_LEADER_OR_FOLLOWER).
  storage::StorageResult<storage::AppendResult> append(std::span<const uint8_t> batch,
                                                       const record::BatchHeader& header);
  // True when the HW is already at or past `end_offset`.
  bool high_watermark_reached(int64_t end_offset) const;
  // True when this replica alone has made `end_offset` acknowledgeable
  // (acks=1: the log's own high watermark).
  bool locally_acknowledgeable(int64_t end_offset) const {
    return log_.high_watermark() >= end_offset;
  }
  // Calls `done` once the HW is at or past `end_offset` (acks=all): ok, or
  // not_enough_replicas_after_append if the committed ISR is then smaller
  // than `min_insync`; not_leader if this replica stopped leading first;
  // log_failed if the log failed its fsync; log_closed if the partition was
  // removed or the broker shut down. Runs on the flusher thread, a fetching
  // network thread, or at once on this thread. Many waiters share one
  // fdatasync (group commit).
  void wait_for_high_watermark(int64_t end_offset, HighWatermarkCallback done,
                               int32_t min_insync = 0);
  // acks=1: once this replica alone made `end_offset` acknowledgeable (its
  // fsync under flush.policy=always). Errors: log_failed, log_closed.
  void wait_for_local(int64_t end_offset, HighWatermarkCallback done);

  // ---- Follower fetches (leader side) ----

  // A follower's Fetch at `fetch_offset` (which the caller checked is within
  // [log start, log end]): it durably has everything below (decision 1).
  // Advances the HW (completing waiters and waking fetches) and may propose
  // an ISR expansion. not_leader on a follower, not_replica for a broker that
  // is not a replica.
  Result<void, Errc> record_follower_fetch(int32_t replica_id, int64_t fetch_offset,
                                           int64_t now_ms);
  // Whole batches from `offset` up to the log end (not the HW); the result's
  // high_watermark is the partition's HW.
  storage::StorageResult<storage::ReadResult> read_for_follower(int64_t offset, size_t max_bytes,
                                                                bool min_one_batch) const;
  std::optional<FollowerProgress> follower_progress(int32_t replica_id) const;
  // The HW last sent to `replica_id` in a Fetch response (-1: none yet), so
  // a follower's long-poll returns when the HW moved past it.
  int64_t high_watermark_sent(int32_t replica_id) const;
  void note_high_watermark_sent(int32_t replica_id, int64_t high_watermark);

  // ---- Follower side (partition_follower.cc): delegations to the log that
  // refuse (invalid_argument) while this replica leads ----

  // One complete batch as the leader stored it (offsets and epoch kept).
  storage::StorageResult<storage::AppendResult> append_replicated(std::span<const uint8_t> batch,
                                                                  const record::BatchHeader& header);
  // Removes every record at and after `offset`; the HW follows the log end down.
  storage::StorageResult<void> truncate_to(int64_t offset);
  // Empties the log and starts it at `offset` (the leader's log start passed us).
  storage::StorageResult<void> truncate_fully_and_start_at(int64_t offset);
  // The HW from the leader's Fetch response: min(hw, log end), never lowered.
  void set_follower_high_watermark(int64_t high_watermark);
  // Calls `done` once the log has made `end_offset` durable (per its flush
  // policy), for a follower that must fsync before it fetches again.
  void wait_durable(int64_t end_offset, std::function<void(Result<void, storage::Errc>)> done);

  // ---- Reads (Fetch, ListOffsets) ----

  int64_t high_watermark() const;
  int64_t log_start_offset() const { return log_.log_start_offset(); }
  int64_t log_end_offset() const { return log_.log_end_offset(); }
  // io_error naming the damage if the log is offline (a corrupt segment).
  storage::StorageResult<void> check_online() const { return log_.check_online(); }
  // Whole batches from the one containing `offset`, never past the HW; the
  // result's high_watermark is the bound used. KIP-74 with min_one_batch.
  storage::StorageResult<storage::ReadResult> read(int64_t offset, size_t max_bytes,
                                                   bool min_one_batch) const;
  // Transactions: the last stable offset, min(the first offset of a
  // transaction that is ongoing or whose marker the HW has not passed, the
  // HW). Never above the HW; computed here, where the HW is known.
  int64_t last_stable_offset() const;
  // Fetch with isolation_level=read_committed: as read, bounded by the LSO
  // (the result's last_stable_offset is that bound, high_watermark the HW).
  storage::StorageResult<storage::ReadResult> read_committed(int64_t offset, size_t max_bytes,
                                                             bool min_one_batch) const;
  // The aborted transactions overlapping [from, upper) (PartitionLog::aborted_txns).
  std::vector<storage::AbortedTxn> aborted_txns(int64_t from, int64_t upper) const {
    return log_.aborted_txns(from, upper);
  }
  // The first record at or after `timestamp` below the HW.
  std::optional<storage::TimestampAndOffset> offset_for_timestamp(int64_t timestamp) const;

  // ---- Admin ----

  // DeleteRecords: the new log start; -1 = the HW; beyond the HW is
  // offset_out_of_range.
  storage::StorageResult<int64_t> delete_records_before(int64_t offset);
  std::vector<storage::ProducerEntry> producer_states() const { return log_.producer_states(); }
  std::optional<storage::ProducerEntry> producer_state(int64_t producer_id) const {
    return log_.producer_state(producer_id);
  }
  int64_t size_bytes() const { return log_.size_bytes(); }
  storage::LogConfig config() const { return log_.config(); }
  void update_config(const storage::LogConfig& config) { log_.update_config(config); }

  // ---- For ReplicaManager, tests and introspection ----

  // The log's own acknowledgeable offset advanced: recomputes the HW
  // (completing waiters). Returns true: fetches should wake (the HW may have
  // moved, and followers wait for new data too).
  bool on_log_high_watermark_advanced();
  // Called (no lock held) when fetches waiting on this partition should
  // wake: the HW moved, or a leader with followers appended.
  void set_wake_hook(std::function<void()> hook);
  // The replica is removed or the broker shuts down: acks=all waiters still
  // waiting for followers fail with log_closed (the log answers its own).
  void close();
  int64_t now_ms() const { return clock_(); }
  // acks=all waiters that this replica made durable and that wait for
  // followers now (tests wait on it).
  size_t waiting_for_followers() const;
  storage::PartitionLog& log() { return log_; }

 private:
  struct Follower {
    FollowerProgress progress;
    int64_t leader_end_at_last_fetch = -1;  // Kafka's lastFetchLeaderLogEndOffset
    int64_t high_watermark_sent = -1;
  };
  struct Waiter {
    int32_t min_insync;
    HighWatermarkCallback done;
  };
  using Completion = std::pair<HighWatermarkCallback, Result<void, Errc>>;

  // wait_for_high_watermark, once the log made end_offset durable here.
  void on_locally_durable(int64_t end_offset, uint64_t leadership, int32_t min_insync,
                          HighWatermarkCallback done);
  bool is_member(const std::vector<int32_t>& ids, int32_t id) const;
  std::vector<int32_t> maximal_isr_locked() const;
  void update_solo_locked();
  // Recomputes the leader's HW; returns whether it moved and moves the
  // waiters it reaches into `ready`.
  bool advance_high_watermark_locked(std::vector<Completion>& ready);
  void take_reached_waiters_locked(std::vector<Completion>& ready);
  void fail_all_waiters_locked(Errc code, const std::string& why,
                               std::vector<Completion>& ready);
  void reset_followers_locked(int64_t now_ms);
  std::optional<IsrProposal> maybe_expand_isr_locked(int32_t replica_id);
  IsrProposal propose_locked(std::vector<int32_t> new_isr);
  // A new partition state was applied: no pending proposal, no backoff.
  void clear_isr_proposal_locked();
  // Runs completions, proposals and the wake hook with no lock held.
  void after_unlock(std::vector<Completion> ready, std::optional<IsrProposal> proposal, bool wake);
  void wake() const;
  // The log's durability outcome as one of our errors.
  static Errc from_log(storage::Errc code);

  storage::LogManager& logs_;
  storage::PartitionLog& log_;
  const int32_t local_id_;
  const Clock clock_;

  std::shared_mutex role_mu_;
  mutable std::mutex mu_;
  std::atomic<Role> role_{Role::leader};
  // Leader and this replica the only member of the maximal ISR: the HW is the
  // log's own (read without mu_).
  std::atomic<bool> solo_{true};
  int32_t leader_id_;
  int32_t image_leader_epoch_ = -1;  // -1: no image state applied yet
  int32_t partition_epoch_ = -1;
  std::vector<int32_t> replicas_;
  std::vector<int32_t> isr_;
  std::optional<std::vector<int32_t>> pending_isr_;
  // After a refused proposal: no new one before isr_retry_at_ms_; the
  // current backoff (0: none since the last applied change).
  int64_t isr_backoff_ms_ = 0;
  int64_t isr_retry_at_ms_ = 0;
  std::map<int32_t, Follower> followers_;
  int64_t leader_epoch_start_offset_ = 0;
  uint64_t leadership_ = 0;
  bool closed_ = false;  // close() ran: no waiter is queued any more  // bumped by every change of role, leader or epoch
  std::atomic<int64_t> high_watermark_;
  std::multimap<int64_t, Waiter> waiters_;  // by end offset
  IsrChangeSink sink_;
  std::atomic<int64_t> lag_max_ms_{30000};
  mutable std::mutex hook_mu_;
  std::function<void()> wake_hook_;
};

}  // namespace holdfast::replication
