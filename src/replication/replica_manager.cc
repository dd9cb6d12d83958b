#include "replication/replica_manager.h"

#include <mutex>

namespace holdfast::replication {

ReplicaManager::ReplicaManager(storage::LogManager& logs) : logs_(logs) {
  std::unique_lock lock(mu_);
  for (auto* log : logs_.all()) adopt_locked(log);
}

ReplicaManager::~ReplicaManager() { logs_.set_high_watermark_listener(nullptr); }

std::shared_ptr<Partition> ReplicaManager::adopt_locked(storage::PartitionLog* log) {
  auto partition = std::make_shared<Partition>(logs_, *log);
  partitions_[{log->topic(), log->partition()}] = partition;
  by_log_[log] = partition;
  return partition;
}

std::shared_ptr<Partition> ReplicaManager::get(const std::string& topic, int32_t partition) const {
  std::shared_lock lock(mu_);
  auto it = partitions_.find({topic, partition});
  return it == partitions_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Partition>> ReplicaManager::all() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<Partition>> out;
  out.reserve(partitions_.size());
  for (const auto& [key, partition] : partitions_) out.push_back(partition);
  return out;
}

std::vector<int32_t> ReplicaManager::partitions_of(const std::string& topic) const {
  std::shared_lock lock(mu_);
  std::vector<int32_t> out;
  for (auto it = partitions_.lower_bound({topic, INT32_MIN});
       it != partitions_.end() && it->first.first == topic; ++it) {
    out.push_back(it->first.second);
  }
  return out;
}

void ReplicaManager::set_high_watermark_listener(std::function<void(Partition*)> listener) {
  {
    std::lock_guard lock(listener_mu_);
    listener_ = std::move(listener);
  }
  logs_.set_high_watermark_listener([this](storage::PartitionLog* log) {
    std::shared_ptr<Partition> partition;
    {
      std::shared_lock lock(mu_);
      auto it = by_log_.find(log);
      if (it == by_log_.end()) return;  // removed meanwhile: nobody fetches it any more
      partition = it->second;
    }
    if (!partition->on_log_high_watermark_advanced()) return;
    std::function<void(Partition*)> listener;
    {
      std::lock_guard lock(listener_mu_);
      listener = listener_;
    }
    if (listener) listener(partition.get());
  });
}

storage::StorageResult<std::shared_ptr<Partition>> ReplicaManager::create(
    const std::string& topic, int32_t partition, const storage::LogConfig& config) {
  if (auto existing = get(topic, partition)) return existing;
  // A log opened or created without us (tests, or a start-up that opened it
  // before this manager existed) is adopted rather than created again.
  storage::PartitionLog* log = logs_.get(topic, partition);
  if (!log) {
    auto created = logs_.create(topic, partition, config);
    if (!created) return created.error();
    log = *created;
  }
  std::unique_lock lock(mu_);
  return adopt_locked(log);
}

storage::StorageResult<void> ReplicaManager::remove(const std::string& topic, int32_t partition) {
  {
    std::unique_lock lock(mu_);
    auto it = partitions_.find({topic, partition});
    if (it != partitions_.end()) {
      by_log_.erase(&it->second->log());
      partitions_.erase(it);
    }
  }
  if (!logs_.get(topic, partition)) return {};
  return logs_.remove(topic, partition);
}

}  // namespace holdfast::replication
