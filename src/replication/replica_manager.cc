#include "replication/replica_manager.h"

#include <pthread.h>

#include <mutex>

namespace holdfast::replication {

ReplicaManager::ReplicaManager(storage::LogManager& logs, int32_t node_id, Partition::Clock clock)
    : logs_(logs),
      node_id_(node_id),
      clock_(clock ? std::move(clock) : Partition::Clock([] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
      })) {
  std::unique_lock lock(mu_);
  for (auto* log : logs_.all()) adopt_locked(log);
}

ReplicaManager::~ReplicaManager() {
  stop_isr_checks();
  close_all();
  logs_.set_high_watermark_listener(nullptr);
}

std::shared_ptr<Partition> ReplicaManager::adopt_locked(storage::PartitionLog* log) {
  auto partition = std::make_shared<Partition>(logs_, *log, node_id_, clock_);
  partition->set_replica_lag_time_max_ms(lag_max_ms_.load());
  std::weak_ptr<Listeners> weak_listeners = listeners_;
  Partition* raw = partition.get();
  partition->set_wake_hook([weak_listeners, raw] {
    auto listeners = weak_listeners.lock();
    if (!listeners) return;
    std::function<void(Partition*)> wake;
    {
      std::lock_guard lock(listeners->mu);
      wake = listeners->wake;
    }
    if (wake) wake(raw);
  });
  {
    std::lock_guard lock(listeners_->mu);
    if (listeners_->isr_sink) partition->set_isr_change_sink(listeners_->isr_sink);
  }
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
    std::lock_guard lock(listeners_->mu);
    listeners_->wake = std::move(listener);
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
    std::function<void(Partition*)> wake;
    {
      std::lock_guard lock(listeners_->mu);
      wake = listeners_->wake;
    }
    if (wake) wake(partition.get());
  });
}

void ReplicaManager::set_role_change_listener(
    std::function<void(std::shared_ptr<Partition>, Role)> listener) {
  std::lock_guard lock(listeners_->mu);
  listeners_->role_change = std::move(listener);
}

void ReplicaManager::add_role_change_listener(
    std::function<void(std::shared_ptr<Partition>, Role)> listener) {
  std::lock_guard lock(listeners_->mu);
  listeners_->more_role_change.push_back(std::move(listener));
}

void ReplicaManager::notify_role_change(const std::shared_ptr<Partition>& partition, Role role) {
  std::vector<std::function<void(std::shared_ptr<Partition>, Role)>> listeners;
  {
    std::lock_guard lock(listeners_->mu);
    if (listeners_->role_change) listeners.push_back(listeners_->role_change);
    listeners.insert(listeners.end(), listeners_->more_role_change.begin(),
                     listeners_->more_role_change.end());
  }
  for (const auto& listener : listeners) listener(partition, role);
}

void ReplicaManager::set_replica_removed_listener(
    std::function<void(const std::string&, int32_t)> listener) {
  std::lock_guard lock(listeners_->mu);
  listeners_->removed = std::move(listener);
}

void ReplicaManager::set_isr_change_sink(IsrChangeSink sink) {
  {
    std::lock_guard lock(listeners_->mu);
    listeners_->isr_sink = sink;
  }
  for (const auto& partition : all()) partition->set_isr_change_sink(sink);
}

void ReplicaManager::start_isr_checks(int64_t replica_lag_time_max_ms) {
  lag_max_ms_.store(replica_lag_time_max_ms);
  for (const auto& partition : all()) partition->set_replica_lag_time_max_ms(replica_lag_time_max_ms);
  std::lock_guard lock(isr_mu_);
  if (isr_thread_.joinable()) return;
  isr_stop_ = false;
  // Kafka checks every replica.lag.time.max.ms / 2: a follower is dropped
  // between 1 and 1.5 lag periods after it stopped catching up.
  const int64_t interval = std::max<int64_t>(replica_lag_time_max_ms / 2, 1);
  isr_thread_ = std::thread([this, interval] { isr_check_loop(interval); });
}

void ReplicaManager::stop_isr_checks() {
  {
    std::lock_guard lock(isr_mu_);
    isr_stop_ = true;
  }
  isr_cv_.notify_all();
  if (isr_thread_.joinable()) isr_thread_.join();
}

void ReplicaManager::check_isr_now() {
  const int64_t now = clock_();
  for (const auto& partition : all()) partition->maybe_shrink_isr(now);
}

void ReplicaManager::isr_check_loop(int64_t interval_ms) {
  pthread_setname_np(pthread_self(), "hf-isr");
  std::unique_lock lock(isr_mu_);
  while (!isr_stop_) {
    isr_cv_.wait_for(lock, std::chrono::milliseconds(interval_ms), [this] { return isr_stop_; });
    if (isr_stop_) break;
    lock.unlock();
    check_isr_now();
    lock.lock();
  }
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

void ReplicaManager::close_all() {
  for (const auto& partition : all()) partition->close();
}

storage::StorageResult<void> ReplicaManager::remove(const std::string& topic, int32_t partition) {
  std::function<void(const std::string&, int32_t)> removed;
  {
    std::lock_guard lock(listeners_->mu);
    removed = listeners_->removed;
  }
  if (removed && get(topic, partition)) removed(topic, partition);
  std::shared_ptr<Partition> gone;
  {
    std::unique_lock lock(mu_);
    auto it = partitions_.find({topic, partition});
    if (it != partitions_.end()) {
      gone = it->second;
      by_log_.erase(&it->second->log());
      partitions_.erase(it);
    }
  }
  if (gone) gone->close();
  if (!logs_.get(topic, partition)) return {};
  return logs_.remove(topic, partition);
}

}  // namespace holdfast::replication
