// Long-poll Fetch requests waiting for data. A waiter registers on the
// partitions it reads; when a partition's high watermark advances the
// ReplicaManager's listener wakes every waiter registered on it. Partitions
// are keys only (never dereferenced here).
#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "server/async.h"
#include "replication/partition.h"

namespace holdfast::server {

class FetchWaiters {
 public:
  void add(const replication::Partition* partition, const std::shared_ptr<Wakeup>& waiter) {
    std::lock_guard lock(mutex_);
    waiters_[partition].push_back(waiter);
  }

  // Wakes and forgets every waiter on `partition`. Safe from any thread.
  void notify(const replication::Partition* partition) {
    std::vector<std::weak_ptr<Wakeup>> woken;
    {
      std::lock_guard lock(mutex_);
      auto it = waiters_.find(partition);
      if (it == waiters_.end()) return;
      woken.swap(it->second);
      waiters_.erase(it);
    }
    for (auto& w : woken) {
      if (auto live = w.lock()) live->notify();
    }
  }

  // Wakes everyone (shutdown, topic deletion).
  void notify_all() {
    std::unordered_map<const replication::Partition*, std::vector<std::weak_ptr<Wakeup>>> all;
    {
      std::lock_guard lock(mutex_);
      all.swap(waiters_);
    }
    for (auto& [partition, list] : all) {
      for (auto& w : list) {
        if (auto live = w.lock()) live->notify();
      }
    }
  }

  // How many registrations are waiting (tests wait on this, not on sleeps).
  size_t waiting() {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const auto& [partition, list] : waiters_) n += list.size();
    return n;
  }

  // Drops `waiter`'s registration on `partition`, and any that expired.
  void remove(const replication::Partition* partition, const Wakeup* waiter) {
    std::lock_guard lock(mutex_);
    auto it = waiters_.find(partition);
    if (it == waiters_.end()) return;
    auto& list = it->second;
    std::erase_if(list, [waiter](const std::weak_ptr<Wakeup>& w) {
      auto live = w.lock();
      return !live || live.get() == waiter;
    });
    if (list.empty()) waiters_.erase(it);
  }

  // Registrations held now (a waiter on n partitions counts n), for tests.
  size_t size() {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const auto& [partition, list] : waiters_) n += list.size();
    return n;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<const replication::Partition*, std::vector<std::weak_ptr<Wakeup>>> waiters_;
};

}  // namespace holdfast::server
