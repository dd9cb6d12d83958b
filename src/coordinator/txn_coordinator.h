// The transaction coordinator (issue 10, docs/dev/transactions-plan.md).
//
// A transactional id belongs to the `__transaction_state` partition it hashes
// to (partition_for_transactional_id); the coordinator of the id is the
// leader of that partition, as in Kafka. A partition serves nothing
// (not_coordinator) until became_leader() says this broker leads it; it is
// then replayed from its log to the log end on the loader thread (its ids
// answer coordinator_load_in_progress meanwhile) and dropped by
// became_follower(). Every load and unload bumps the partition's generation;
// a load or a write completion from an older generation is discarded. This is
// the group coordinator's leadership contract (group_coordinator.h); on a
// single node the broker calls became_leader for every partition at start.
//
// State per transactional id is Kafka's TransactionMetadata: producer id and
// epoch, timeout, state (txn_records.h), the partitions of the ongoing
// transaction and at most one pending transition. A transition is appended to
// the partition through the replication::Partition (acks=all with
// min.insync.replicas) and applied and answered only once the high watermark
// passes it; while it is being written the id answers concurrent_transactions.
//
// Ending a transaction (Kafka's order, which makes a failover in the middle
// safe): EndTxn writes PrepareCommit/PrepareAbort with the partition list and
// answers once it is replicated; then the markers are sent to every
// partition's leader through the TxnMarkerSender (WriteTxnMarkers) and
// retried until each partition acknowledged; then CompleteCommit /
// CompleteAbort is written. A partition loaded with a Prepare* record resumes
// the markers.
//
// Timeouts: tick() aborts an Ongoing transaction older than its timeout with
// an epoch bump (the running producer is fenced), as Kafka's
// abortTimedOutTransactions.
//
// Expiration (transactional.id.expiration.ms, Kafka's
// removeExpiredTransactionalIds): an id with no transaction open (Empty,
// CompleteCommit, CompleteAbort) whose last update is older than the
// expiration is removed with a tombstone; once it is replicated the id is
// forgotten, and the next InitProducerId for it starts afresh.
//
// Threading: every public method may be called from any thread. Each
// partition has one mutex, never held across a replication wait, a marker
// send or a completion callback. Callbacks fire exactly once, from the calling
// thread, the timer thread or the thread that completes a replication wait.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "coordinator/txn_records.h"
#include "replication/partition.h"

namespace holdfast::coordinator {

enum class TxnErrc {
  none = 0,
  not_coordinator,
  coordinator_load_in_progress,
  coordinator_not_available,
  invalid_request,
  invalid_transaction_timeout,
  concurrent_transactions,
  producer_fenced,  // INVALID_PRODUCER_EPOCH for the request versions before KIP-588
  invalid_producer_id_mapping,
  invalid_txn_state,
  transactional_id_not_found,
  storage_error,  // the record could not be written; nothing changed
};
const char* to_string(TxnErrc e);

// The markers of one transaction for a set of partitions.
struct TxnMarkers {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  bool commit = false;
  int32_t coordinator_epoch = -1;  // the leader epoch of the __transaction_state partition
  std::vector<TxnPartition> partitions;
};

// Writes markers to the partitions' leaders (WriteTxnMarkers). `done` gets the
// partitions that acknowledged (their marker is past their high watermark, or
// the partition no longer exists); the others are retried.
class TxnMarkerSender {
 public:
  virtual ~TxnMarkerSender() = default;
  virtual void send(TxnMarkers markers, std::function<void(std::vector<TxnPartition>)> done) = 0;
};

struct TxnCoordinatorOptions {
  int32_t num_partitions = 50;                   // transaction.state.log.num.partitions
  int32_t max_timeout_ms = 900000;               // transaction.max.timeout.ms
  int64_t abort_check_interval_ms = 10000;       // transaction.abort.timed.out.transaction.cleanup.interval.ms
  int64_t id_expiration_ms = 604800000;          // transactional.id.expiration.ms (7 days)
  int64_t expiration_check_interval_ms = 3600000;  // transaction.remove.expired.transaction.cleanup.interval.ms
  int64_t marker_retry_backoff_ms = 100;
  bool start_timer_thread = true;                // false: the test calls tick()
  int64_t tick_interval_ms = 50;
  std::function<int64_t()> clock;                // wall clock, ms (stored timestamps, timeouts)
  std::function<int32_t()> min_insync_replicas;  // unset: no minimum
  // A new producer id (ProducerIdManager::next_producer_id).
  std::function<Result<int64_t, std::string>()> next_producer_id;
};

struct InitProducerIdResult {
  TxnErrc error = TxnErrc::none;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
};

struct TxnDescription {
  TxnErrc error = TxnErrc::none;
  std::string transactional_id;
  TxnState state = TxnState::empty;
  int32_t timeout_ms = 0;
  int64_t start_ms = -1;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  std::vector<TxnPartition> partitions;
};

struct TxnListing {
  std::string transactional_id;
  int64_t producer_id = -1;
  TxnState state = TxnState::empty;
};

struct TxnPartitionState;

class TxnCoordinator {
 public:
  TxnCoordinator(TxnCoordinatorOptions options, TxnMarkerSender& markers);
  ~TxnCoordinator();
  TxnCoordinator(const TxnCoordinator&) = delete;
  TxnCoordinator& operator=(const TxnCoordinator&) = delete;

  void start();
  // Stops the threads; later calls answer coordinator_not_available.
  void shutdown();

  // This broker leads `partition` (a __transaction_state replica) in its
  // current leader epoch: its ids are loaded (the same leadership again is a
  // no-op, a new epoch reloads).
  void became_leader(std::shared_ptr<replication::Partition> partition);
  void became_follower(const std::shared_ptr<replication::Partition>& partition);
  bool serving(int32_t partition);
  bool wait_until_loaded(int64_t timeout_ms);

  int32_t partition_for(const std::string& transactional_id) const;
  int32_t num_partitions() const { return options_.num_partitions; }

  // InitProducerId with a transactional id. expected_* are InitProducerId
  // v3+'s producer_id / producer_epoch (-1: none).
  void init_producer_id(const std::string& transactional_id, int32_t timeout_ms,
                        int64_t expected_producer_id, int16_t expected_epoch,
                        std::function<void(InitProducerIdResult)> done);
  // AddPartitionsToTxn / AddOffsetsToTxn (the group's offsets partition).
  void add_partitions(const std::string& transactional_id, int64_t producer_id,
                      int16_t producer_epoch, std::vector<TxnPartition> partitions,
                      std::function<void(TxnErrc)> done);
  // EndTxn: answered once PrepareCommit/PrepareAbort is replicated.
  void end_txn(const std::string& transactional_id, int64_t producer_id, int16_t producer_epoch,
               bool commit, std::function<void(TxnErrc)> done);
  // KIP-890 / TxnOffsetCommit checks: whether `producer_id`/`epoch` has an
  // ongoing transaction that holds `partition`.
  TxnErrc verify_partition(const std::string& transactional_id, int64_t producer_id,
                           int16_t producer_epoch, const TxnPartition& partition);

  TxnDescription describe(const std::string& transactional_id);
  // Empty filters match everything.
  Result<std::vector<TxnListing>, TxnErrc> list(const std::set<TxnState>& states,
                                                const std::set<int64_t>& producer_ids);

  // Runs due work: marker (re)sends, Complete records, timed-out aborts.
  void tick();
  // Aborts every Ongoing transaction older than its timeout now. Returns how
  // many it started aborting.
  int abort_timed_out_now();
  // Starts removing every id idle past the expiration now. Returns how many.
  int expire_idle_ids_now();

 private:
  struct Write;
  TxnPartitionState* partition_of(const std::string& transactional_id);
  std::optional<TxnErrc> not_ready(const TxnPartitionState& part) const;
  // Appends `value` for `id` and runs `done` once it is replicated and
  // applied (or failed). Requires part.mu; `done` runs after it is released
  // (through `deferred`).
  void write_locked(TxnPartitionState& part, const std::string& id, TxnValue value,
                    std::function<void(TxnErrc)> done,
                    std::vector<std::function<void()>>& deferred);
  void on_written(TxnPartitionState* part, uint64_t generation, const std::string& id,
                  const TxnValue& value, TxnErrc result, std::function<void(TxnErrc)> done);
  // Starts (or resumes) the markers of a Prepare* transaction.
  void send_markers(TxnPartitionState* part, uint64_t generation, const std::string& id);
  void on_markers_done(TxnPartitionState* part, uint64_t generation, const std::string& id,
                       int64_t producer_id, int16_t producer_epoch,
                       std::vector<TxnPartition> acknowledged);
  void load_partition(TxnPartitionState& part, uint64_t generation);
  void unload_locked(TxnPartitionState& part);
  struct TickChecks {
    bool timeouts = false;
    bool expiration = false;
  };
  struct TickCounts {
    int aborted = 0;  // timed-out transactions it started aborting
    int expired = 0;  // idle ids it started removing
  };
  TickCounts tick_partition(TxnPartitionState& part, int64_t now, TickChecks checks);
  int64_t now() const { return options_.clock(); }
  void timer_loop();
  void loader_loop();

  TxnCoordinatorOptions options_;
  TxnMarkerSender& markers_;
  std::vector<std::unique_ptr<TxnPartitionState>> partitions_;
  std::atomic<bool> stopped_{false};
  int64_t last_timeout_check_ = 0;
  int64_t last_expiration_check_ = 0;

  std::mutex threads_mu_;
  std::condition_variable threads_cv_;
  bool stop_threads_ = false;
  std::thread timer_;
  std::thread loader_;
  std::deque<std::pair<int32_t, uint64_t>> load_queue_;
};

}  // namespace holdfast::coordinator
