// In-memory state of the groups of one coordinator partition. Internal to the
// coordinator module; guarded by CoordinatorPartition::mu.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/group_coordinator.h"

namespace holdfast::coordinator {

enum class GroupState { empty, preparing_rebalance, completing_rebalance, stable, dead };
const char* to_string(GroupState s);

struct Member {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::string protocol_type;
  std::vector<Protocol> protocols;  // in the member's order of preference
  Bytes assignment;
  std::function<void(JoinResult)> awaiting_join;
  std::function<void(SyncResult)> awaiting_sync;
  int64_t session_deadline = 0;  // removed at this time unless awaiting join or sync
  bool is_new = false;           // joined during the current rebalance

  const Protocol* protocol(const std::string& name) const {
    for (const auto& p : protocols) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }
};

struct CommittedOffset {
  OffsetValue value;
};

struct Group {
  std::string group_id;
  GroupState state = GroupState::empty;
  int64_t state_timestamp_ms = 0;  // wall clock of the last state change
  int32_t generation = 0;
  std::string protocol_type;  // empty until a member joined (or offsets-only group)
  std::optional<std::string> protocol_name;
  std::optional<std::string> leader;
  std::map<std::string, Member> members;  // by member id
  std::vector<std::string> join_order;     // member ids in order of joining
  std::map<std::string, std::string> static_members;  // instance id -> member id
  std::map<std::string, int64_t> pending_members;     // MEMBER_ID_REQUIRED issued: id -> deadline
  // Join phase timing (PreparingRebalance).
  int64_t join_delay_deadline = 0;  // initial delay (empty group): complete no earlier
  int64_t join_deadline = 0;        // rebalance timeout: complete at the latest
  // CompletingRebalance: the leader's assignment is being stored.
  bool assignment_pending = false;
  int64_t sync_deadline = 0;  // members that have not synced by then are removed
  std::map<TopicPartitionKey, CommittedOffset> offsets;
  std::map<TopicPartitionKey, int> pending_commits;  // appended, not yet durable
  // TxnOffsetCommit offsets by producer id, waiting for the transaction's
  // marker (GroupCoordinator::complete_txn).
  std::map<int64_t, std::map<TopicPartitionKey, OffsetValue>> pending_txn_offsets;

  bool is(GroupState s) const { return state == s; }
  bool has_member(const std::string& id) const { return members.count(id) != 0; }
  // A request naming `member_id` with `instance_id` is from a fenced (replaced)
  // static member: the instance is now someone else.
  bool is_static_member_fenced(const std::string& member_id,
                               const std::optional<std::string>& instance_id) const {
    if (!instance_id) return false;
    auto it = static_members.find(*instance_id);
    return it != static_members.end() && it->second != member_id;
  }
  void transition(GroupState s, int64_t wall_now) {
    state = s;
    state_timestamp_ms = wall_now;
  }
  bool all_members_joined() const {
    if (!pending_members.empty()) return false;
    for (const auto& [id, m] : members) {
      if (!m.awaiting_join) return false;
    }
    return true;
  }
  // Protocols every member supports.
  std::set<std::string> candidate_protocols() const;
  // Each member votes for its most preferred candidate; the most votes win.
  std::string select_protocol() const;
  bool supports_protocols(const std::string& type, const std::vector<Protocol>& protocols) const;
};

struct CoordinatorPartition {
  // unloaded: cluster mode, this broker does not lead the partition.
  enum class Status { loading, active, failed, unloaded };
  int32_t index = 0;
  storage::PartitionLog* log = nullptr;
  std::mutex mu;
  Status status = Status::loading;
  // Cluster mode: the replica this broker leads, the leader epoch it was
  // loaded for, and the load generation (bumped by every load and unload).
  std::shared_ptr<replication::Partition> replica;
  int32_t leader_epoch = -1;
  uint64_t generation = 0;
  std::map<std::string, std::unique_ptr<Group>> groups;
  // Producer id -> the groups holding its pending transactional offsets.
  std::map<int64_t, std::set<std::string>> txn_groups;
  // Every append_locked() call counts; appended_end is the end offset of the
  // latest successful one, last_failed_append the count of the latest failed
  // one (GroupCoordinator::appended_since_locked).
  uint64_t appends = 0;
  int64_t appended_end = -1;
  uint64_t last_failed_append = 0;
};

}  // namespace holdfast::coordinator
