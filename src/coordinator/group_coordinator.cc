// Lifecycle, threads, timers and the read-only group APIs of the coordinator.
// Membership (join/sync/leave) is in group_membership.cc, offsets in
// group_offsets.cc, persistence and replay in group_store.cc.
#include "coordinator/group_coordinator.h"

#include <algorithm>
#include <random>

#include "base/clock.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "coordinator/group_state.h"

namespace holdfast::coordinator {

const char* to_string(GroupErrc e) {
  switch (e) {
    case GroupErrc::none: return "none";
    case GroupErrc::coordinator_load_in_progress: return "coordinator_load_in_progress";
    case GroupErrc::coordinator_not_available: return "coordinator_not_available";
    case GroupErrc::not_coordinator: return "not_coordinator";
    case GroupErrc::invalid_group_id: return "invalid_group_id";
    case GroupErrc::unknown_member_id: return "unknown_member_id";
    case GroupErrc::illegal_generation: return "illegal_generation";
    case GroupErrc::inconsistent_group_protocol: return "inconsistent_group_protocol";
    case GroupErrc::invalid_session_timeout: return "invalid_session_timeout";
    case GroupErrc::rebalance_in_progress: return "rebalance_in_progress";
    case GroupErrc::member_id_required: return "member_id_required";
    case GroupErrc::fenced_instance_id: return "fenced_instance_id";
    case GroupErrc::group_id_not_found: return "group_id_not_found";
    case GroupErrc::non_empty_group: return "non_empty_group";
    case GroupErrc::unstable_offset_commit: return "unstable_offset_commit";
    case GroupErrc::offset_metadata_too_large: return "offset_metadata_too_large";
    case GroupErrc::group_subscribed_to_topic: return "group_subscribed_to_topic";
    case GroupErrc::storage_error: return "storage_error";
    case GroupErrc::invalid_producer_epoch: return "invalid_producer_epoch";
  }
  return "unknown";
}

const char* to_string(GroupState s) {
  switch (s) {
    case GroupState::empty: return "Empty";
    case GroupState::preparing_rebalance: return "PreparingRebalance";
    case GroupState::completing_rebalance: return "CompletingRebalance";
    case GroupState::stable: return "Stable";
    case GroupState::dead: return "Dead";
  }
  return "Unknown";
}

std::set<std::string> Group::candidate_protocols() const {
  std::set<std::string> candidates;
  bool first = true;
  for (const auto& [id, m] : members) {
    std::set<std::string> names;
    for (const auto& p : m.protocols) names.insert(p.name);
    if (first) {
      candidates = std::move(names);
      first = false;
    } else {
      std::set<std::string> both;
      std::set_intersection(candidates.begin(), candidates.end(), names.begin(), names.end(),
                            std::inserter(both, both.begin()));
      candidates = std::move(both);
    }
  }
  return candidates;
}

std::string Group::select_protocol() const {
  auto candidates = candidate_protocols();
  std::map<std::string, int> votes;
  for (const auto& id : join_order) {
    auto it = members.find(id);
    if (it == members.end()) continue;
    for (const auto& p : it->second.protocols) {
      if (candidates.count(p.name)) {
        ++votes[p.name];
        break;
      }
    }
  }
  // Most votes; ties go to the protocol the earliest member prefers.
  std::string best;
  int best_votes = -1;
  for (const auto& id : join_order) {
    auto it = members.find(id);
    if (it == members.end()) continue;
    for (const auto& p : it->second.protocols) {
      auto v = votes.find(p.name);
      if (v != votes.end() && v->second > best_votes) {
        best = p.name;
        best_votes = v->second;
      }
    }
  }
  return best;
}

bool Group::supports_protocols(const std::string& type, const std::vector<Protocol>& protocols) const {
  if (type.empty() || protocols.empty()) return false;
  if (members.empty()) return true;
  if (type != protocol_type) return false;
  auto candidates = candidate_protocols();
  for (const auto& p : protocols) {
    if (candidates.count(p.name)) return true;
  }
  return false;
}

GroupCoordinator::GroupCoordinator(storage::LogManager& logs, GroupCoordinatorOptions options)
    : logs_(logs), options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return steady_clock_ms(); };
  if (!options_.wall_clock) options_.wall_clock = [] { return wall_clock_ms(); };
  for (int32_t p = 0; p < options_.num_partitions; ++p) {
    auto part = std::make_unique<CoordinatorPartition>();
    part->index = p;
    if (options_.follow_leadership) {
      part->status = CoordinatorPartition::Status::unloaded;
      partitions_.push_back(std::move(part));
      continue;
    }
    part->log = logs_.get(kOffsetsTopic, p);
    if (!part->log) {
      HF_ERROR("group coordinator: {}-{} does not exist; its groups are unavailable",
               kOffsetsTopic, p);
      part->status = CoordinatorPartition::Status::failed;
    }
    partitions_.push_back(std::move(part));
  }
  last_expiry_check_ = now();
}

GroupCoordinator::~GroupCoordinator() { shutdown(); }

void GroupCoordinator::start() {
  loader_ = std::thread([this] {
    set_thread_name("hf-group-load");
    if (options_.follow_leadership) {
      load_queue_loop();
    } else {
      loader_loop();
    }
  });
  if (options_.start_timer_thread) timer_ = std::thread([this] {
    set_thread_name("hf-group-timer");
    timer_loop();
  });
}

void GroupCoordinator::loader_loop() {
  int64_t started = steady_clock_ms();
  for (auto& part : partitions_) {
    {
      std::lock_guard lock(threads_mu_);
      if (stop_threads_) return;
    }
    if (part->log) load_partition(*part, part->log, 0);
    threads_cv_.notify_all();
  }
  HF_INFO("group coordinator: loaded {} partitions of {} in {} ms", partitions_.size(),
          kOffsetsTopic, steady_clock_ms() - started);
}

void GroupCoordinator::load_queue_loop() {
  for (;;) {
    std::pair<int32_t, uint64_t> next;
    {
      std::unique_lock lock(threads_mu_);
      threads_cv_.wait(lock, [this] { return stop_threads_ || !load_queue_.empty(); });
      if (stop_threads_) return;
      next = load_queue_.front();
      load_queue_.pop_front();
    }
    CoordinatorPartition& part = *partitions_[next.first];
    storage::PartitionLog* log = nullptr;
    {
      std::lock_guard lock(part.mu);
      // Moved on before its turn: a later load (or nothing) is due instead.
      if (part.generation != next.second ||
          part.status != CoordinatorPartition::Status::loading || !part.replica) {
        continue;
      }
      log = &part.replica->log();
    }
    int64_t started = steady_clock_ms();
    load_partition(part, log, next.second);
    HF_INFO("group coordinator: {}-{} replayed in {} ms", kOffsetsTopic, part.index,
            steady_clock_ms() - started);
    threads_cv_.notify_all();
  }
}

void GroupCoordinator::became_leader(std::shared_ptr<replication::Partition> partition) {
  const int32_t index = partition->index();
  if (!options_.follow_leadership || index < 0 || index >= options_.num_partitions) {
    HF_WARN("group coordinator: ignoring leadership of {}-{} ({} partitions configured)",
            kOffsetsTopic, index, options_.num_partitions);
    return;
  }
  CoordinatorPartition& part = *partitions_[index];
  Deferred deferred;
  uint64_t generation;
  {
    std::lock_guard lock(part.mu);
    // Read under part.mu: a became_follower for this replica is ordered
    // after us if the replica still leads here.
    if (partition->role() != replication::Role::leader) return;
    const int32_t epoch = partition->leader_epoch();
    const bool same = part.replica == partition && part.leader_epoch == epoch &&
                      (part.status == CoordinatorPartition::Status::loading ||
                       part.status == CoordinatorPartition::Status::active);
    if (same) return;
    unload_locked(part, deferred);
    part.replica = std::move(partition);
    part.leader_epoch = epoch;
    part.log = &part.replica->log();
    part.status = CoordinatorPartition::Status::loading;
    generation = part.generation;
    HF_INFO("group coordinator: leading {}-{} in epoch {}: loading its groups", kOffsetsTopic,
            index, epoch);
  }
  for (auto& d : deferred) d();
  {
    std::lock_guard lock(threads_mu_);
    load_queue_.emplace_back(index, generation);
  }
  threads_cv_.notify_all();
}

void GroupCoordinator::became_follower(const std::shared_ptr<replication::Partition>& partition) {
  const int32_t index = partition->index();
  if (!options_.follow_leadership || index < 0 || index >= options_.num_partitions) return;
  CoordinatorPartition& part = *partitions_[index];
  Deferred deferred;
  {
    std::lock_guard lock(part.mu);
    if (part.status == CoordinatorPartition::Status::unloaded) return;
    HF_INFO("group coordinator: no longer leading {}-{}: unloading {} groups", kOffsetsTopic,
            index, part.groups.size());
    unload_locked(part, deferred);
  }
  for (auto& d : deferred) d();
}

void GroupCoordinator::send_waiting_members_away(Group& group, Deferred& deferred) {
  for (auto& [mid, m] : group.members) {
    if (m.awaiting_join) {
      JoinResult r;
      r.error = GroupErrc::not_coordinator;
      r.member_id = mid;
      deferred.push_back([cb = std::move(m.awaiting_join), r] { cb(r); });
      m.awaiting_join = nullptr;
    }
    if (m.awaiting_sync) {
      deferred.push_back([cb = std::move(m.awaiting_sync)] {
        cb(SyncResult{GroupErrc::not_coordinator, {}});
      });
      m.awaiting_sync = nullptr;
    }
  }
}

void GroupCoordinator::unload_locked(CoordinatorPartition& part, Deferred& deferred) {
  ++part.generation;
  for (auto& [id, group] : part.groups) {
    send_waiting_members_away(*group, deferred);
    group->transition(GroupState::dead, wall_now());
  }
  part.groups.clear();
  part.txn_groups.clear();
  part.replica.reset();
  part.leader_epoch = -1;
  part.log = nullptr;
  part.status = CoordinatorPartition::Status::unloaded;
}

bool GroupCoordinator::serving(int32_t partition) {
  if (partition < 0 || partition >= options_.num_partitions) return false;
  std::lock_guard lock(partitions_[partition]->mu);
  return partitions_[partition]->status == CoordinatorPartition::Status::active;
}

GroupErrc GroupCoordinator::from_replication(replication::Errc e) {
  using replication::Errc;
  switch (e) {
    // Kafka's GroupMetadataManager: NOT_LEADER_OR_FOLLOWER and
    // KAFKA_STORAGE_ERROR become NOT_COORDINATOR (the client looks the
    // coordinator up again), NOT_ENOUGH_REPLICAS(_AFTER_APPEND) become
    // COORDINATOR_NOT_AVAILABLE (it retries).
    case Errc::not_leader:
    case Errc::log_failed:
      return GroupErrc::not_coordinator;
    case Errc::not_enough_replicas:
    case Errc::not_enough_replicas_after_append:
    case Errc::log_closed:
    case Errc::shut_down:
    case Errc::storage_error:
    case Errc::not_replica:
      return GroupErrc::coordinator_not_available;
  }
  return GroupErrc::coordinator_not_available;
}

bool GroupCoordinator::wait_until_loaded(int64_t timeout_ms) {
  auto loaded = [this] {
    for (auto& part : partitions_) {
      std::lock_guard lock(part->mu);
      if (part->status == CoordinatorPartition::Status::loading) return false;
    }
    return true;
  };
  std::unique_lock lock(threads_mu_);
  return threads_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                              [&] { return loaded(); });
}

GroupCoordinator::LoadCounts GroupCoordinator::load_counts() {
  LoadCounts counts;
  for (auto& part : partitions_) {
    std::lock_guard lock(part->mu);
    switch (part->status) {
      case CoordinatorPartition::Status::loading:
        ++counts.loading;
        break;
      case CoordinatorPartition::Status::active:
        ++counts.active;
        break;
      case CoordinatorPartition::Status::failed:
        ++counts.failed;
        break;
      case CoordinatorPartition::Status::unloaded:
        break;
    }
  }
  return counts;
}

void GroupCoordinator::timer_loop() {
  std::unique_lock lock(threads_mu_);
  while (!stop_threads_) {
    threads_cv_.wait_for(lock, std::chrono::milliseconds(options_.tick_interval_ms));
    if (stop_threads_) break;
    lock.unlock();
    tick();
    lock.lock();
  }
}

void GroupCoordinator::shutdown() {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard lock(threads_mu_);
    stop_threads_ = true;
  }
  threads_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  if (loader_.joinable()) loader_.join();
  // Whoever still waits in a join or sync is told to find the coordinator
  // again (as Kafka does when a coordinator partition is unloaded).
  for (auto& part : partitions_) {
    Deferred deferred;
    {
      std::lock_guard lock(part->mu);
      for (auto& [id, group] : part->groups) send_waiting_members_away(*group, deferred);
    }
    for (auto& d : deferred) d();
  }
}

int32_t GroupCoordinator::partition_for(const std::string& group_id) const {
  return partition_for_group(group_id, options_.num_partitions);
}

CoordinatorPartition* GroupCoordinator::partition_of(const std::string& group_id) {
  return partitions_[partition_for(group_id)].get();
}

std::optional<GroupErrc> GroupCoordinator::not_ready(const CoordinatorPartition& part) const {
  if (stopped_) return GroupErrc::coordinator_not_available;
  switch (part.status) {
    case CoordinatorPartition::Status::loading:
      return GroupErrc::coordinator_load_in_progress;
    case CoordinatorPartition::Status::failed:
      return GroupErrc::coordinator_not_available;
    case CoordinatorPartition::Status::unloaded:
      return GroupErrc::not_coordinator;
    case CoordinatorPartition::Status::active:
      return std::nullopt;
  }
  return GroupErrc::coordinator_not_available;
}

std::string GroupCoordinator::new_member_id(const std::string& client_id) {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          (uint64_t(steady_clock_ms()) << 20));
  uint64_t a = rng();
  uint64_t b = rng() ^ member_counter_.fetch_add(1);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", uint32_t(a >> 32),
                uint32_t((a >> 16) & 0xffff), uint32_t(a & 0xffff), uint32_t(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return client_id + "-" + buf;
}

GroupErrc GroupCoordinator::heartbeat(const std::string& group_id, const std::string& member_id,
                                      const std::optional<std::string>& group_instance_id,
                                      int32_t generation) {
  if (stopped_) return GroupErrc::coordinator_not_available;
  if (group_id.empty()) return GroupErrc::invalid_group_id;
  auto* part = partition_of(group_id);
  std::lock_guard lock(part->mu);
  if (auto e = not_ready(*part)) return *e;
  auto it = part->groups.find(group_id);
  if (it == part->groups.end()) return GroupErrc::unknown_member_id;
  Group& group = *it->second;
  if (group.is(GroupState::dead)) return GroupErrc::coordinator_not_available;
  if (group.is(GroupState::empty)) return GroupErrc::unknown_member_id;
  if (group.is_static_member_fenced(member_id, group_instance_id)) {
    return GroupErrc::fenced_instance_id;
  }
  auto m = group.members.find(member_id);
  if (m == group.members.end()) return GroupErrc::unknown_member_id;
  if (generation != group.generation) return GroupErrc::illegal_generation;
  m->second.session_deadline = now() + m->second.session_timeout_ms;
  if (group.is(GroupState::preparing_rebalance)) return GroupErrc::rebalance_in_progress;
  return GroupErrc::none;
}

Result<std::vector<GroupListing>, GroupErrc> GroupCoordinator::list_groups(
    const std::set<std::string>& states) {
  if (stopped_) return make_error(GroupErrc::coordinator_not_available);
  std::vector<GroupListing> out;
  bool loading = false;
  for (auto& part : partitions_) {
    std::lock_guard lock(part->mu);
    if (part->status == CoordinatorPartition::Status::loading) loading = true;
    if (part->status != CoordinatorPartition::Status::active) continue;
    for (const auto& [id, group] : part->groups) {
      if (group->is(GroupState::dead)) continue;
      std::string state = to_string(group->state);
      if (!states.empty()) {
        // Kafka matches the filter case-insensitively.
        bool match = false;
        for (const auto& s : states) {
          match |= std::equal(s.begin(), s.end(), state.begin(), state.end(),
                              [](char a, char b) { return std::tolower(a) == std::tolower(b); });
        }
        if (!match) continue;
      }
      out.push_back(GroupListing{id, group->protocol_type, state});
    }
  }
  if (loading) return make_error(GroupErrc::coordinator_load_in_progress);
  return out;
}

GroupDescription GroupCoordinator::describe(const std::string& group_id) {
  GroupDescription d;
  d.group_id = group_id;
  if (stopped_) {
    d.error = GroupErrc::coordinator_not_available;
    return d;
  }
  auto* part = partition_of(group_id);
  std::lock_guard lock(part->mu);
  if (auto e = not_ready(*part)) {
    d.error = *e;
    return d;
  }
  auto it = part->groups.find(group_id);
  if (it == part->groups.end()) {
    d.state = "Dead";
    return d;
  }
  const Group& group = *it->second;
  d.state = to_string(group.state);
  d.protocol_type = group.protocol_type;
  bool stable = group.is(GroupState::stable);
  if (stable) d.protocol_name = group.protocol_name.value_or("");
  for (const auto& id : group.join_order) {
    auto m = group.members.find(id);
    if (m == group.members.end()) continue;
    DescribedMember out;
    out.member_id = id;
    out.group_instance_id = m->second.group_instance_id;
    out.client_id = m->second.client_id;
    out.client_host = m->second.client_host;
    if (stable) {
      if (const auto* p = m->second.protocol(*group.protocol_name)) out.metadata = p->metadata;
      out.assignment = m->second.assignment;
    }
    d.members.push_back(std::move(out));
  }
  return d;
}

void GroupCoordinator::tick() {
  if (stopped_) return;
  int64_t t = now();
  for (auto& part : partitions_) {
    Deferred deferred;
    {
      std::lock_guard lock(part->mu);
      if (part->status == CoordinatorPartition::Status::active) tick_partition(*part, t, deferred);
    }
    for (auto& d : deferred) d();
  }
  if (t - last_expiry_check_ >= options_.offsets_retention_check_interval_ms) {
    last_expiry_check_ = t;
    expire_offsets_now();
  }
}

}  // namespace holdfast::coordinator
