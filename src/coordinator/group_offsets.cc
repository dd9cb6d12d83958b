// Committed offsets: commit, fetch, delete, expire.
//
// A commit is applied to the in-memory map when its record is appended (so
// the map always equals a replay of the log) and answered once the record is
// durable; until then the partition counts as a pending commit, which
// OffsetFetch with require_stable answers with unstable_offset_commit.
#include <algorithm>
#include <memory>

#include "base/log.h"
#include "coordinator/group_coordinator.h"
#include "coordinator/group_state.h"

namespace holdfast::coordinator {
namespace {

// Topics in a ConsumerProtocolSubscription (version, [topic], user data, ...):
// only the topic list is needed, to know what a consumer group subscribes to.
std::set<std::string> subscribed_topics(const Bytes& metadata) {
  std::set<std::string> topics;
  auto d = metadata.span();
  size_t pos = 0;
  auto need = [&](size_t n) { return d.size() - pos >= n; };
  if (!need(6)) return topics;
  pos += 2;  // version
  int32_t count = int32_t(load_be32(d.data() + pos));
  pos += 4;
  for (int32_t i = 0; i < count && need(2); ++i) {
    int16_t len = int16_t(load_be16(d.data() + pos));
    pos += 2;
    if (len < 0 || !need(size_t(len))) break;
    topics.emplace(reinterpret_cast<const char*>(d.data() + pos), size_t(len));
    pos += size_t(len);
  }
  return topics;
}

}  // namespace

void GroupCoordinator::commit(CommitParams params, std::function<void(CommitResult)> done) {
  CommitResult result;
  auto fail_all = [&](GroupErrc e) {
    result.errors.assign(params.offsets.size(), e);
    done(std::move(result));
  };
  if (stopped_) return fail_all(GroupErrc::coordinator_not_available);
  if (params.group_id.empty()) return fail_all(GroupErrc::invalid_group_id);
  auto* part = partition_of(params.group_id);
  AppendTicket ticket;
  std::vector<TopicPartitionKey> appended;
  {
    std::lock_guard lock(part->mu);
    auto error = [&]() -> std::optional<GroupErrc> {
      if (auto e = not_ready(*part)) return e;
      auto it = part->groups.find(params.group_id);
      if (it == part->groups.end()) {
        // Only a consumer that assigns partitions itself (generation -1)
        // may create a group by committing.
        if (params.generation >= 0) return GroupErrc::illegal_generation;
        auto group = std::make_unique<Group>();
        group->group_id = params.group_id;
        group->state_timestamp_ms = wall_now();
        it = part->groups.emplace(params.group_id, std::move(group)).first;
      }
      Group& group = *it->second;
      if (group.is(GroupState::dead)) return GroupErrc::coordinator_not_available;
      if (group.is_static_member_fenced(params.member_id, params.group_instance_id)) {
        return GroupErrc::fenced_instance_id;
      }
      if (params.generation < 0 && group.is(GroupState::empty)) return std::nullopt;
      if (group.is(GroupState::completing_rebalance)) return GroupErrc::rebalance_in_progress;
      auto m = group.members.find(params.member_id);
      if (m == group.members.end()) return GroupErrc::unknown_member_id;
      if (params.generation != group.generation) return GroupErrc::illegal_generation;
      m->second.session_deadline = now() + m->second.session_timeout_ms;
      return std::nullopt;
    }();
    if (error) {
      result.errors.assign(params.offsets.size(), *error);
    } else {
      Group& group = *part->groups[params.group_id];
      std::vector<std::pair<std::string, std::optional<std::string>>> records;
      result.errors.assign(params.offsets.size(), GroupErrc::none);
      int64_t ts = wall_now();
      std::vector<std::pair<TopicPartitionKey, OffsetValue>> values;
      for (size_t i = 0; i < params.offsets.size(); ++i) {
        const auto& o = params.offsets[i];
        // Kafka's record stores the metadata with an int16 length.
        const int64_t max_metadata = std::min<int64_t>(options_.offset_metadata_max_bytes,
                                                       int64_t(kMaxOffsetMetadataBytes));
        if (o.metadata && int64_t(o.metadata->size()) > max_metadata) {
          result.errors[i] = GroupErrc::offset_metadata_too_large;
          continue;
        }
        OffsetValue v;
        v.offset = o.offset;
        v.leader_epoch = o.leader_epoch;
        v.metadata = o.metadata.value_or("");  // as Kafka stores (and returns) a null
        v.commit_timestamp_ms = ts;
        v.expire_timestamp_ms = o.expire_timestamp_ms;
        records.emplace_back(encode_key(OffsetKey{params.group_id, o.tp.topic, o.tp.partition}),
                             encode_offset_value(v));
        values.emplace_back(o.tp, v);
      }
      ticket = append_locked(*part, records);
      if (ticket.error != GroupErrc::none) {
        for (auto& e : result.errors) {
          if (e == GroupErrc::none) e = ticket.error;
        }
      } else {
        for (auto& [tp, v] : values) {
          group.offsets[tp] = CommittedOffset{v};
          ++group.pending_commits[tp];
          appended.push_back(tp);
        }
      }
    }
  }
  if (appended.empty()) return done(std::move(result));
  when_durable(ticket, [this, part, group_id = params.group_id, appended = std::move(appended),
                        result = std::move(result), done = std::move(done)](GroupErrc e) mutable {
    {
      std::lock_guard lock(part->mu);
      auto it = part->groups.find(group_id);
      if (it != part->groups.end()) {
        for (const auto& tp : appended) {
          auto p = it->second->pending_commits.find(tp);
          if (p != it->second->pending_commits.end() && --p->second <= 0) {
            it->second->pending_commits.erase(p);
          }
        }
      }
    }
    if (e != GroupErrc::none) {
      for (auto& r : result.errors) {
        if (r == GroupErrc::none) r = e;
      }
    }
    done(std::move(result));
  });
}

OffsetFetchResult GroupCoordinator::fetch_offsets(
    const std::string& group_id, const std::optional<std::vector<TopicPartitionKey>>& partitions,
    bool require_stable) {
  OffsetFetchResult result;
  if (stopped_) {
    result.error = GroupErrc::coordinator_not_available;
    return result;
  }
  if (group_id.empty()) {
    result.error = GroupErrc::invalid_group_id;
    return result;
  }
  auto* part = partition_of(group_id);
  std::lock_guard lock(part->mu);
  if (auto e = not_ready(*part)) {
    result.error = *e;
    return result;
  }
  auto it = part->groups.find(group_id);
  const Group* group = it == part->groups.end() ? nullptr : it->second.get();
  auto lookup = [&](const TopicPartitionKey& tp) {
    FetchedOffset f;
    f.tp = tp;
    if (!group) return f;
    if (require_stable && group->pending_commits.count(tp)) {
      f.error = GroupErrc::unstable_offset_commit;
      return f;
    }
    // An open transaction holds offsets for it (TxnOffsetCommit, no marker yet).
    if (require_stable) {
      for (const auto& [producer_id, pending] : group->pending_txn_offsets) {
        if (pending.count(tp)) {
          f.error = GroupErrc::unstable_offset_commit;
          return f;
        }
      }
    }
    auto o = group->offsets.find(tp);
    if (o == group->offsets.end()) return f;
    f.offset = o->second.value.offset;
    f.leader_epoch = o->second.value.leader_epoch;
    f.metadata = o->second.value.metadata;
    return f;
  };
  if (partitions) {
    for (const auto& tp : *partitions) result.offsets.push_back(lookup(tp));
  } else if (group) {
    for (const auto& [tp, o] : group->offsets) result.offsets.push_back(lookup(tp));
  }
  return result;
}

void GroupCoordinator::delete_groups(std::vector<std::string> group_ids,
                                     std::function<void(std::vector<GroupErrc>)> done) {
  struct Pending {
    std::mutex mu;
    std::vector<GroupErrc> errors;
    size_t outstanding = 0;
    std::function<void(std::vector<GroupErrc>)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->errors.assign(group_ids.size(), GroupErrc::none);
  pending->done = std::move(done);
  std::vector<std::pair<size_t, AppendTicket>> tickets;
  for (size_t i = 0; i < group_ids.size(); ++i) {
    const auto& id = group_ids[i];
    if (stopped_) {
      pending->errors[i] = GroupErrc::coordinator_not_available;
      continue;
    }
    if (id.empty()) {
      pending->errors[i] = GroupErrc::invalid_group_id;
      continue;
    }
    auto* part = partition_of(id);
    std::lock_guard lock(part->mu);
    if (auto e = not_ready(*part)) {
      pending->errors[i] = *e;
      continue;
    }
    auto it = part->groups.find(id);
    if (it == part->groups.end() || it->second->is(GroupState::dead)) {
      pending->errors[i] = GroupErrc::group_id_not_found;
      continue;
    }
    Group& group = *it->second;
    if (!group.is(GroupState::empty)) {
      pending->errors[i] = GroupErrc::non_empty_group;
      continue;
    }
    std::vector<std::pair<std::string, std::optional<std::string>>> records;
    for (const auto& [tp, o] : group.offsets) {
      records.emplace_back(encode_key(OffsetKey{id, tp.topic, tp.partition}), std::nullopt);
    }
    records.emplace_back(encode_key(GroupKey{id}), std::nullopt);
    auto ticket = append_locked(*part, records);
    if (ticket.error != GroupErrc::none) {
      pending->errors[i] = ticket.error;
      continue;
    }
    group.transition(GroupState::dead, wall_now());
    part->groups.erase(it);
    HF_INFO("group {}: deleted", id);
    tickets.emplace_back(i, ticket);
  }
  pending->outstanding = tickets.size() + 1;
  auto finish_one = [pending] {
    std::unique_lock lock(pending->mu);
    if (--pending->outstanding > 0) return;
    auto errors = std::move(pending->errors);
    lock.unlock();
    pending->done(std::move(errors));
  };
  for (auto& [index, ticket] : tickets) {
    when_durable(ticket, [pending, index, finish_one](GroupErrc e) {
      if (e != GroupErrc::none) {
        std::lock_guard lock(pending->mu);
        pending->errors[index] = e;
      }
      finish_one();
    });
  }
  finish_one();
}

void GroupCoordinator::delete_offsets(const std::string& group_id,
                                      std::vector<TopicPartitionKey> partitions,
                                      std::function<void(OffsetDeleteResult)> done) {
  OffsetDeleteResult result;
  if (stopped_) {
    result.error = GroupErrc::coordinator_not_available;
    return done(std::move(result));
  }
  if (group_id.empty()) {
    result.error = GroupErrc::invalid_group_id;
    return done(std::move(result));
  }
  auto* part = partition_of(group_id);
  AppendTicket ticket;
  {
    std::lock_guard lock(part->mu);
    if (auto e = not_ready(*part)) {
      result.error = *e;
    } else if (auto it = part->groups.find(group_id);
               it == part->groups.end() || it->second->is(GroupState::dead)) {
      result.error = GroupErrc::group_id_not_found;
    } else {
      Group& group = *it->second;
      std::set<std::string> subscribed;
      if (!group.members.empty()) {
        if (group.protocol_type != "consumer" || !group.protocol_name) {
          result.error = GroupErrc::non_empty_group;
        } else {
          for (const auto& [id, m] : group.members) {
            if (const auto* p = m.protocol(*group.protocol_name)) {
              subscribed.merge(subscribed_topics(p->metadata));
            }
          }
        }
      }
      if (result.error == GroupErrc::none) {
        std::vector<std::pair<std::string, std::optional<std::string>>> records;
        for (const auto& tp : partitions) {
          if (subscribed.count(tp.topic)) {
            result.partitions.push_back(GroupErrc::group_subscribed_to_topic);
            continue;
          }
          result.partitions.push_back(GroupErrc::none);
          if (group.offsets.erase(tp)) {
            records.emplace_back(encode_key(OffsetKey{group_id, tp.topic, tp.partition}),
                                 std::nullopt);
          }
        }
        ticket = append_locked(*part, records);
        if (ticket.error != GroupErrc::none) result.error = ticket.error;
      }
    }
  }
  if (result.error != GroupErrc::none) return done(std::move(result));
  when_durable(ticket, [result = std::move(result), done = std::move(done)](GroupErrc e) mutable {
    if (e != GroupErrc::none) result.error = e;
    done(std::move(result));
  });
}

void GroupCoordinator::remove_offsets_of_topic(const std::string& topic) {
  for (auto& part : partitions_) {
    std::lock_guard lock(part->mu);
    if (part->status != CoordinatorPartition::Status::active) continue;
    std::vector<std::pair<std::string, std::optional<std::string>>> records;
    for (auto& [id, group] : part->groups) {
      for (auto o = group->offsets.begin(); o != group->offsets.end();) {
        if (o->first.topic != topic) {
          ++o;
          continue;
        }
        records.emplace_back(encode_key(OffsetKey{id, topic, o->first.partition}), std::nullopt);
        o = group->offsets.erase(o);
      }
    }
    if (!records.empty()) {
      HF_INFO("group coordinator: removed {} committed offsets of deleted topic {}",
              records.size(), topic);
      auto ticket = append_locked(*part, records);
      (void)ticket;  // the topic is gone either way; replay drops offsets of unknown topics too
    }
  }
}

int GroupCoordinator::expire_offsets_now() {
  int expired = 0;
  int64_t wall = wall_now();
  for (auto& part : partitions_) {
    std::vector<AppendTicket> tickets;
    std::lock_guard lock(part->mu);
    if (part->status != CoordinatorPartition::Status::active) continue;
    expired += expire_offsets_locked(*part, wall, tickets);
  }
  return expired;
}

int GroupCoordinator::expire_offsets_locked(CoordinatorPartition& part, int64_t wall,
                                            std::vector<AppendTicket>& tickets) {
  // KIP-211: offsets of a group expire only while it is empty; a consumer
  // group's clock starts when it became empty, a group that only stores
  // offsets (no protocol type) counts from each commit.
  std::vector<std::pair<std::string, std::optional<std::string>>> records;
  std::vector<std::string> dead;
  int expired = 0;
  const int64_t retention = options_.offsets_retention_ms;
  for (auto& [id, group] : part.groups) {
    if (!group->is(GroupState::empty)) continue;
    for (auto o = group->offsets.begin(); o != group->offsets.end();) {
      const OffsetValue& v = o->second.value;
      int64_t expire_at;
      if (v.expire_timestamp_ms >= 0) {
        expire_at = v.expire_timestamp_ms;
      } else if (!group->protocol_type.empty()) {
        expire_at = group->state_timestamp_ms + retention;
      } else {
        expire_at = v.commit_timestamp_ms + retention;
      }
      if (wall < expire_at || group->pending_commits.count(o->first)) {
        ++o;
        continue;
      }
      records.emplace_back(encode_key(OffsetKey{id, o->first.topic, o->first.partition}),
                           std::nullopt);
      o = group->offsets.erase(o);
      ++expired;
    }
    if (group->offsets.empty() && group->members.empty() && group->pending_commits.empty() &&
        group->pending_members.empty()) {
      records.emplace_back(encode_key(GroupKey{id}), std::nullopt);
      dead.push_back(id);
    }
  }
  for (const auto& id : dead) {
    HF_INFO("group {}: empty with no committed offsets; removing it", id);
    part.groups.erase(id);
  }
  if (!records.empty()) tickets.push_back(append_locked(part, records));
  if (expired > 0) HF_INFO("group coordinator: expired {} committed offsets", expired);
  return expired;
}

}  // namespace holdfast::coordinator
