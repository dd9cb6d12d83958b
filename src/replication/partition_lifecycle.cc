#include "replication/partition_lifecycle.h"

#include <pthread.h>

#include <algorithm>
#include <set>

#include <fmt/ranges.h>

#include "base/log.h"

namespace holdfast::replication {
namespace {

// The topic a record changes, if it is one the local replicas follow. Records
// of other kinds (none yet; broker registrations later) change no replica.
std::optional<std::string> topic_of(const metadata::MetadataRecord& record) {
  if (auto* r = std::get_if<metadata::TopicCreated>(&record)) return r->name;
  if (auto* r = std::get_if<metadata::PartitionsAdded>(&record)) return r->name;
  if (auto* r = std::get_if<metadata::TopicConfigsReplaced>(&record)) return r->name;
  if (auto* r = std::get_if<metadata::TopicDeleted>(&record)) return r->name;
  if (auto* r = std::get_if<metadata::PartitionChanged>(&record)) return r->name;
  return std::nullopt;
}

bool names(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// How many record failures wait_applied can still report; older ones are
// forgotten (each was logged when it happened).
constexpr size_t kMaxRememberedFailures = 256;

}  // namespace

PartitionLifecycle::PartitionLifecycle(metadata::MetadataLog& metadata, ReplicaManager& replicas,
                                       LogConfigFor config_for)
    : metadata_(metadata), replicas_(replicas), config_for_(std::move(config_for)) {}

PartitionLifecycle::~PartitionLifecycle() { stop(); }

std::shared_ptr<const metadata::MetadataImage> PartitionLifecycle::subscribe() {
  std::weak_ptr<Queue> weak = queue_;
  return metadata_.subscribe([weak](const metadata::MetadataEvent& event) {
    // With the store's lock held (or on hf-raft): queue only, never block.
    auto queue = weak.lock();
    if (!queue) return;
    Event copy;
    if (event.record) copy.record = *event.record;
    copy.image = event.image;
    {
      std::lock_guard lock(queue->mu);
      if (queue->stopped) return;
      queue->events.push_back(std::move(copy));
    }
    queue->cv.notify_all();
  });
}

Result<void, Errc> PartitionLifecycle::start_held() {
  {
    std::lock_guard lock(queue_->mu);
    queue_->held = true;
  }
  subscribe();
  started_ = true;
  thread_ = std::thread([this] { run(); });
  return {};
}

void PartitionLifecycle::caught_up() {
  // Taken before the queue's lock (listeners take the queue's lock under the
  // metadata log's). Queued records up to this image are in it; newer ones
  // stay queued behind it.
  Event event;
  event.image = metadata_.current();
  {
    std::lock_guard lock(queue_->mu);
    if (!queue_->held || queue_->stopped) return;
    queue_->held = false;
    const int64_t index = event.image->last_record_index;
    std::erase_if(queue_->events,
                  [index](const Event& e) { return e.image->last_record_index <= index; });
    queue_->events.push_front(std::move(event));
  }
  HF_INFO("partition lifecycle: metadata caught up; applying it to the local replicas");
  queue_->cv.notify_all();
}

void PartitionLifecycle::hold() {
  {
    std::lock_guard lock(queue_->mu);
    if (queue_->stopped || queue_->held) return;
    queue_->held = true;
    queue_->step_down = true;
  }
  HF_WARN("partition lifecycle: broker fenced; holding metadata and stepping down as leader");
  queue_->cv.notify_all();
}

void PartitionLifecycle::step_down_leaders() {
  size_t stepped_down = 0;
  for (const auto& partition : replicas_.all()) {
    if (partition->role() != Role::leader) continue;
    if (partition->become_follower(metadata::kNoLeader, partition->leader_epoch(),
                                   partition->partition_epoch(), partition->replicas(),
                                   partition->isr())) {
      ++stepped_down;
      replicas_.notify_role_change(partition, Role::follower);
    }
  }
  HF_WARN("partition lifecycle: stepped down as leader of {} partition(s) until unfenced",
          stepped_down);
}

Result<void, Errc> PartitionLifecycle::start() {
  auto image = subscribe();
  if (auto reconciled = reconcile_all(*image); !reconciled) {
    stop();
    return reconciled;
  }
  {
    std::lock_guard lock(queue_->mu);
    queue_->applied_index = std::max(queue_->applied_index, image->last_record_index);
  }
  started_ = true;
  thread_ = std::thread([this] { run(); });
  return {};
}

void PartitionLifecycle::stop() {
  {
    std::lock_guard lock(queue_->mu);
    queue_->stopped = true;
    queue_->events.clear();
  }
  queue_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t PartitionLifecycle::applied_index() const {
  std::lock_guard lock(queue_->mu);
  return queue_->applied_index;
}

Result<void, Errc> PartitionLifecycle::wait_applied(int64_t record_index) {
  std::unique_lock lock(queue_->mu);
  queue_->cv.wait(lock, [&] {
    return queue_->applied_index >= record_index || queue_->stopped;
  });
  if (queue_->applied_index < record_index) {
    return make_error(Errc::shut_down, "the partition lifecycle stopped (broker shutting down)");
  }
  auto failed = queue_->failures.find(record_index);
  if (failed == queue_->failures.end()) return {};
  auto error = make_error(Errc::storage_error, std::move(failed->second));
  queue_->failures.erase(failed);
  return error;
}

void PartitionLifecycle::add_topic_deleted_listener(
    std::function<void(const std::string&)> listener) {
  std::lock_guard lock(listeners_mu_);
  deleted_listeners_.push_back(std::move(listener));
}

void PartitionLifecycle::run() {
  pthread_setname_np(pthread_self(), "hf-lifecycle");
  for (;;) {
    Event event;
    {
      std::unique_lock lock(queue_->mu);
      queue_->cv.wait(lock, [&] {
        return queue_->stopped || queue_->step_down ||
               (!queue_->held && !queue_->events.empty());
      });
      if (queue_->stopped) return;
      if (queue_->step_down) {
        queue_->step_down = false;
        lock.unlock();
        step_down_leaders();
        continue;
      }
      event = std::move(queue_->events.front());
      queue_->events.pop_front();
    }
    const int64_t index = event.image->last_record_index;
    auto handled = handle(event);
    {
      std::lock_guard lock(queue_->mu);
      queue_->applied_index = std::max(queue_->applied_index, index);
      if (!handled) {
        queue_->failures[index] = handled.error().message;
        while (queue_->failures.size() > kMaxRememberedFailures) {
          queue_->failures.erase(queue_->failures.begin());
        }
      }
    }
    queue_->cv.notify_all();
  }
}

Result<void, Errc> PartitionLifecycle::handle(const Event& event) {
  const int64_t index = event.image->last_record_index;
  int64_t applied;
  {
    std::lock_guard lock(queue_->mu);
    applied = queue_->applied_index;
  }
  if (!event.record) {
    // A replaced image at the index we already have changes nothing we would
    // not redo; an older one is stale.
    if (index < applied) {
      HF_WARN("partition lifecycle: ignoring an image at record {}, older than record {}", index,
              applied);
      return {};
    }
    HF_INFO("partition lifecycle: metadata image replaced (record {}); reconciling local replicas",
            index);
    return reconcile_all(*event.image);
  }
  if (index <= applied) {
    HF_WARN("partition lifecycle: ignoring record {} (already at record {})", index, applied);
    return {};
  }
  auto topic = topic_of(*event.record);
  if (!topic) return {};
  const bool deleted = std::holds_alternative<metadata::TopicDeleted>(*event.record);
  return reconcile_topic(*topic, event.image->find_topic(*topic), deleted);
}

Result<void, Errc> PartitionLifecycle::reconcile_all(const metadata::MetadataImage& image) {
  std::optional<Error<Errc>> first_error;
  std::set<std::string> local_topics;
  for (const auto& partition : replicas_.all()) local_topics.insert(partition->topic());
  for (const auto& [name, info] : image.topics) {
    if (auto r = reconcile_topic(name, &info, false); !r && !first_error) first_error = r.error();
    local_topics.erase(name);
  }
  // Local replicas of topics the image no longer has: deleted while we were
  // down, or between the record and its file work.
  for (const auto& name : local_topics) {
    if (auto r = reconcile_topic(name, nullptr, false); !r && !first_error) first_error = r.error();
  }
  if (first_error) return *first_error;
  return {};
}

Result<void, Errc> PartitionLifecycle::reconcile_topic(const std::string& name,
                                                       const metadata::TopicInfo* info,
                                                       bool deleted) {
  std::optional<Error<Errc>> first_error;
  auto note = [&](std::string message) {
    HF_ERROR("partition lifecycle: {}", message);
    if (!first_error) first_error = make_error(Errc::storage_error, std::move(message));
  };
  std::vector<int32_t> local = replicas_.partitions_of(name);
  auto known = topic_ids_.find(name);
  // A topic of this name with another id: the old one was deleted and the
  // name reused while we did not see the deletion.
  const bool replaced = info && known != topic_ids_.end() && known->second != info->id;
  // A topic the image lacks and this process never saw in an image: nothing
  // says it was deleted (a deletion a crash interrupted is finished by
  // LogManager::open before we get here), so its logs are not deleted but
  // set aside as strays, as Kafka does (LogManager::remove renames them).
  const bool unknown = !info && !deleted && known == topic_ids_.end();
  if (!info || replaced) {
    for (int32_t p : local) {
      if (unknown) {
        if (auto replica = replicas_.get(name, p)) replica->log().keep_as_stray();
      } else if (!deleted) {
        HF_WARN("removing log {}-{}: its topic was deleted", name, p);
      }
      if (auto removed = replicas_.remove(name, p); !removed) {
        note("removing log " + name + "-" + std::to_string(p) + ": " + removed.error().message);
      }
    }
    topic_ids_.erase(name);
    if (deleted) HF_INFO("removed the local replicas of deleted topic {}", name);
    if (deleted || !local.empty()) notify_topic_deleted(name);
    local.clear();
    if (!info) {
      if (first_error) return *first_error;
      return {};
    }
  }
  const storage::LogConfig config = config_for_(info->configs);
  const int32_t self = replicas_.node_id();
  std::set<int32_t> have(local.begin(), local.end());
  int32_t created = 0;
  for (int32_t p = 0; p < info->partition_count; ++p) {
    // The image gives every partition a state (records without assignments
    // resolve to the sole node); a missing one is read as this node alone.
    const metadata::PartitionState state = static_cast<size_t>(p) < info->partitions.size()
                                               ? info->partitions[static_cast<size_t>(p)]
                                               : metadata::sole_node_partition(self);
    if (!names(state.replicas, self)) {
      if (!have.count(p)) continue;
      // Moved away from this node (or never ours: a leftover directory).
      HF_INFO("removing log {}-{}: this node is no longer one of its replicas", name, p);
      if (auto removed = replicas_.remove(name, p); !removed) {
        note("removing log " + name + "-" + std::to_string(p) + ": " + removed.error().message);
      }
      continue;
    }
    std::shared_ptr<Partition> replica;
    if (have.count(p)) {
      replica = replicas_.get(name, p);
      if (replica) replica->update_config(config);
    } else if (auto made = replicas_.create(name, p, config); !made) {
      note("creating log " + name + "-" + std::to_string(p) + ": " + made.error().message);
      continue;
    } else {
      replica = *made;
      ++created;
    }
    if (replica) follow_state(replica, state);
  }
  // Partitions never shrink; a replica past the count is left from something
  // we did not see (a deleted topic recreated with fewer partitions).
  for (int32_t p : local) {
    if (p < info->partition_count) continue;
    HF_WARN("removing log {}-{}: the topic has {} partitions", name, p, info->partition_count);
    if (auto removed = replicas_.remove(name, p); !removed) {
      note("removing log " + name + "-" + std::to_string(p) + ": " + removed.error().message);
    }
  }
  topic_ids_[name] = info->id;
  if (created > 0) {
    HF_INFO("created {} local replica(s) of topic {} ({} partitions)", created, name,
            info->partition_count);
  }
  if (first_error) return *first_error;
  return {};
}

void PartitionLifecycle::follow_state(const std::shared_ptr<Partition>& partition,
                                      const metadata::PartitionState& state) {
  const int32_t self = replicas_.node_id();
  bool changed;
  Role role;
  if (state.leader == self) {
    changed = partition->become_leader(state.leader_epoch, state.partition_epoch, state.replicas,
                                       state.isr);
    role = Role::leader;
  } else {
    changed = partition->become_follower(state.leader, state.leader_epoch, state.partition_epoch,
                                         state.replicas, state.isr);
    role = Role::follower;
  }
  if (!changed) return;
  if (role == Role::follower) {
    HF_INFO("{}-{}: following broker {} in leader epoch {}", partition->topic(), partition->index(),
            state.leader, state.leader_epoch);
  } else if (state.replicas.size() > 1) {
    HF_INFO("{}-{}: leading in epoch {} (replicas {}, ISR {})", partition->topic(),
            partition->index(), state.leader_epoch, fmt::join(state.replicas, ","),
            fmt::join(state.isr, ","));
  }
  replicas_.notify_role_change(partition, role);
}

void PartitionLifecycle::notify_topic_deleted(const std::string& name) {
  std::vector<std::function<void(const std::string&)>> listeners;
  {
    std::lock_guard lock(listeners_mu_);
    listeners = deleted_listeners_;
  }
  for (const auto& listener : listeners) listener(name);
}

}  // namespace holdfast::replication
