// The local replicas of this broker (Kafka's ReplicaManager): one
// replication::Partition per partition whose log lives in this data
// directory, looked up by (topic, partition). Request handlers reach
// partitions only through here; the PartitionLifecycle alone creates and
// removes them, as metadata records are applied.
//
// Thread safety: every method may be called from any thread. Lookups take a
// shared lock; create and remove are serialised by the caller (the lifecycle
// thread) and do their directory I/O outside the lookup lock, in LogManager.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "replication/partition.h"
#include "storage/log_manager.h"

namespace holdfast::replication {

class ReplicaManager {
 public:
  // Adopts every log `logs` has opened (start-up: LogManager::open first).
  // `node_id` is this broker's (node.id): replicas are told who they are.
  // `clock` (ms, monotonic; default steady_clock) times follower fetches and
  // ISR checks.
  ReplicaManager(storage::LogManager& logs, int32_t node_id, Partition::Clock clock = {});
  // Stops the ISR checks and clears the log manager's listener; destroy after
  // LogManager::shutdown() (whose flusher may still be calling it until then).
  ~ReplicaManager();
  ReplicaManager(const ReplicaManager&) = delete;
  ReplicaManager& operator=(const ReplicaManager&) = delete;

  // The partition, or nullptr if this broker has no replica of it. The
  // shared_ptr keeps the object usable (a removed partition's log answers
  // `closed`) for as long as the caller holds it.
  std::shared_ptr<Partition> get(const std::string& topic, int32_t partition) const;
  std::vector<std::shared_ptr<Partition>> all() const;
  // The partition indexes of `topic` held here, ascending.
  std::vector<int32_t> partitions_of(const std::string& topic) const;
  const std::string& data_dir() const { return logs_.data_dir(); }

  int32_t node_id() const { return node_id_; }
  int64_t now_ms() const { return clock_(); }

  // Called (from any thread, no lock held) when Fetch long-polls waiting on
  // a partition should wake: its high watermark advanced, or (a leader with
  // followers) its log end did. Set before LogManager::start().
  void set_high_watermark_listener(std::function<void(Partition*)> listener);

  // ---- Cluster (issue 9) ----

  // Called on the lifecycle thread after a partition's leadership changed
  // (became leader, became follower, or follows another leader or epoch),
  // so follower fetchers can be started (follower) and stopped (leader).
  void set_role_change_listener(std::function<void(std::shared_ptr<Partition>, Role)> listener);
  // Another listener, told after the one set above, in the order added (the
  // group coordinator loads and unloads __consumer_offsets partitions there).
  // Listeners cannot be removed: one added must outlive this manager's
  // notifications (the lifecycle stops first).
  void add_role_change_listener(std::function<void(std::shared_ptr<Partition>, Role)> listener);
  void notify_role_change(const std::shared_ptr<Partition>& partition, Role role);
  // Called by remove() before the replica's log is deleted (a follower
  // fetcher must stop appending to it first).
  void set_replica_removed_listener(std::function<void(const std::string&, int32_t)> listener);
  // Where every partition (now and later) sends its ISR proposals.
  void set_isr_change_sink(IsrChangeSink sink);
  // Starts the hf-isr thread: every replica.lag.time.max.ms / 2 it asks
  // each leader to propose dropping lagging followers (Partition::maybe_shrink_isr).
  // Idempotent; stopped by stop_isr_checks() or the destructor.
  void start_isr_checks(int64_t replica_lag_time_max_ms);
  void stop_isr_checks();
  // One round of what hf-isr does (tests).
  void check_isr_now();

  // ---- For PartitionLifecycle ----

  // Creates the replica (its log directory, synced, then the Partition) with
  // `config`; an existing replica is returned as it is.
  storage::StorageResult<std::shared_ptr<Partition>> create(const std::string& topic,
                                                            int32_t partition,
                                                            const storage::LogConfig& config);
  // Fails what waits on followers in every replica (Partition::close):
  // shutdown, after LogManager::shutdown(). Also run by the destructor.
  void close_all();
  // Removes the replica and deletes its log (LogManager::remove); absent is
  // ok. The replica's waiters fail (Partition::close).
  storage::StorageResult<void> remove(const std::string& topic, int32_t partition);

 private:
  std::shared_ptr<Partition> adopt_locked(storage::PartitionLog* log);
  void isr_check_loop(int64_t interval_ms);

  // What partitions call back into; shared so a partition that outlives this
  // manager (a handler still holds it) calls nothing dangling.
  struct Listeners {
    std::mutex mu;
    std::function<void(Partition*)> wake;
    std::function<void(std::shared_ptr<Partition>, Role)> role_change;
    std::vector<std::function<void(std::shared_ptr<Partition>, Role)>> more_role_change;
    IsrChangeSink isr_sink;
    std::function<void(const std::string&, int32_t)> removed;
  };

  storage::LogManager& logs_;
  const int32_t node_id_;
  const Partition::Clock clock_;
  std::shared_ptr<Listeners> listeners_ = std::make_shared<Listeners>();
  std::atomic<int64_t> lag_max_ms_{30000};
  mutable std::shared_mutex mu_;
  std::map<std::pair<std::string, int32_t>, std::shared_ptr<Partition>> partitions_;
  // The same partitions by log, for the log's high-watermark notifications.
  std::unordered_map<const storage::PartitionLog*, std::shared_ptr<Partition>> by_log_;
  std::mutex isr_mu_;
  std::condition_variable isr_cv_;
  bool isr_stop_ = false;
  std::thread isr_thread_;
};

}  // namespace holdfast::replication
