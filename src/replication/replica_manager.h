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

#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "replication/partition.h"
#include "storage/log_manager.h"

namespace holdfast::replication {

class ReplicaManager {
 public:
  // Adopts every log `logs` has opened (start-up: LogManager::open first).
  explicit ReplicaManager(storage::LogManager& logs);
  // Clears the log manager's listener; destroy after LogManager::shutdown()
  // (whose flusher may still be calling it until then).
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

  // Called (from any thread, no lock held) when a partition's high watermark
  // advances: Fetch long-polls wake on it. Set before LogManager::start().
  void set_high_watermark_listener(std::function<void(Partition*)> listener);

  // ---- For PartitionLifecycle ----

  // Creates the replica (its log directory, synced, then the Partition) with
  // `config`; an existing replica is returned as it is.
  storage::StorageResult<std::shared_ptr<Partition>> create(const std::string& topic,
                                                            int32_t partition,
                                                            const storage::LogConfig& config);
  // Removes the replica and deletes its log (LogManager::remove); absent is ok.
  storage::StorageResult<void> remove(const std::string& topic, int32_t partition);

 private:
  std::shared_ptr<Partition> adopt_locked(storage::PartitionLog* log);

  storage::LogManager& logs_;
  mutable std::shared_mutex mu_;
  std::map<std::pair<std::string, int32_t>, std::shared_ptr<Partition>> partitions_;
  // The same partitions by log, for the log's high-watermark notifications.
  std::unordered_map<const storage::PartitionLog*, std::shared_ptr<Partition>> by_log_;
  std::mutex listener_mu_;
  std::function<void(Partition*)> listener_;
};

}  // namespace holdfast::replication
