// Group membership: the rebalance state machine (Kafka's GroupCoordinator).
//
//   Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//   CompletingRebalance --leader's SyncGroup stored--> Stable
//   Stable / CompletingRebalance --join with new metadata, leave, expiry--> PreparingRebalance
//   PreparingRebalance --nobody rejoined--> Empty
//
// Every function here runs with the partition's mutex held; completions are
// queued on `deferred` and run by the caller after unlocking.
#include <algorithm>

#include "base/log.h"
#include "coordinator/group_coordinator.h"
#include "coordinator/group_state.h"

namespace holdfast::coordinator {
namespace {

bool same_protocols(const std::vector<Protocol>& a, const std::vector<Protocol>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || !(a[i].metadata == b[i].metadata)) return false;
  }
  return true;
}

JoinResult join_error(GroupErrc e, const std::string& member_id) {
  JoinResult r;
  r.error = e;
  r.member_id = member_id;
  return r;
}

void defer_join(Deferred& deferred, std::function<void(JoinResult)> cb,
                JoinResult r) {
  deferred.push_back([cb = std::move(cb), r = std::move(r)] { cb(r); });
}

}  // namespace

// The current generation as a member sees it; the leader also gets every
// member's metadata for the selected protocol.
static JoinResult current_generation(const Group& group, const std::string& member_id,
                                     bool include_members) {
  JoinResult r;
  r.generation = group.generation;
  r.protocol_type = group.protocol_type;
  r.protocol_name = group.protocol_name.value_or("");
  r.leader = group.leader.value_or("");
  r.member_id = member_id;
  if (include_members) {
    for (const auto& id : group.join_order) {
      auto it = group.members.find(id);
      if (it == group.members.end()) continue;
      JoinedMember jm;
      jm.member_id = id;
      jm.group_instance_id = it->second.group_instance_id;
      if (const auto* p = it->second.protocol(r.protocol_name)) jm.metadata = p->metadata;
      r.members.push_back(std::move(jm));
    }
  }
  return r;
}

void GroupCoordinator::join(JoinParams params, std::function<void(JoinResult)> done) {
  if (stopped_) return done(join_error(GroupErrc::coordinator_not_available, params.member_id));
  if (params.group_id.empty()) {
    return done(join_error(GroupErrc::invalid_group_id, params.member_id));
  }
  if (params.session_timeout_ms < options_.min_session_timeout_ms ||
      params.session_timeout_ms > options_.max_session_timeout_ms) {
    return done(join_error(GroupErrc::invalid_session_timeout, params.member_id));
  }
  if (params.rebalance_timeout_ms <= 0) params.rebalance_timeout_ms = params.session_timeout_ms;
  auto* part = partition_of(params.group_id);
  Deferred deferred;
  {
    std::lock_guard lock(part->mu);
    if (auto e = not_ready(*part)) {
      defer_join(deferred, std::move(done), join_error(*e, params.member_id));
    } else {
      join_locked(*part, std::move(params), std::move(done), deferred);
    }
  }
  for (auto& d : deferred) d();
}

void GroupCoordinator::join_locked(CoordinatorPartition& part, JoinParams params,
                                   std::function<void(JoinResult)> done, Deferred& deferred) {
  const bool unknown_member = params.member_id.empty();
  auto it = part.groups.find(params.group_id);
  if (it == part.groups.end()) {
    if (!unknown_member) {
      return defer_join(deferred, std::move(done),
                        join_error(GroupErrc::unknown_member_id, params.member_id));
    }
    auto group = std::make_unique<Group>();
    group->group_id = params.group_id;
    group->state_timestamp_ms = wall_now();
    it = part.groups.emplace(params.group_id, std::move(group)).first;
  }
  Group& group = *it->second;
  if (group.is(GroupState::dead)) {
    return defer_join(deferred, std::move(done),
                      join_error(GroupErrc::coordinator_not_available, params.member_id));
  }
  if (!group.supports_protocols(params.protocol_type, params.protocols)) {
    return defer_join(deferred, std::move(done),
                      join_error(GroupErrc::inconsistent_group_protocol, params.member_id));
  }

  if (unknown_member) {
    std::string member_id = new_member_id(params.client_id);
    if (params.group_instance_id) {
      auto known = group.static_members.find(*params.group_instance_id);
      if (known != group.static_members.end() && group.has_member(known->second)) {
        // A static member restarted: it takes over the old member's place
        // (and assignment); the old id is fenced.
        std::string old_id = known->second;
        Member member = std::move(group.members[old_id]);
        group.members.erase(old_id);
        std::function<void(JoinResult)> old_join = std::move(member.awaiting_join);
        std::function<void(SyncResult)> old_sync = std::move(member.awaiting_sync);
        member.awaiting_join = nullptr;
        member.awaiting_sync = nullptr;
        std::string old_leader = group.leader.value_or("");
        member.member_id = member_id;
        member.session_deadline = now() + params.session_timeout_ms;
        group.members.emplace(member_id, std::move(member));
        std::replace(group.join_order.begin(), group.join_order.end(), old_id, member_id);
        known->second = member_id;
        if (group.leader == old_id) group.leader = member_id;
        HF_INFO("group {}: static member {} rejoined as {} (was {})", group.group_id,
                *params.group_instance_id, member_id, old_id);
        Member& m = group.members[member_id];
        if (group.is(GroupState::stable) && same_protocols(m.protocols, params.protocols)) {
          // Nothing changed: hand back the current generation without a
          // rebalance. The old leader id is returned so that the new member
          // does not compute an assignment the stable group would not use.
          auto r = current_generation(group, member_id, false);
          r.leader = old_leader;
          // The new member id is stored so that a restart still fences the
          // old one; the new member, and the old one's fencing, are answered
          // only once that record is durable (else a crash would bring the
          // old id back while the new member believes it owns the instance).
          auto ticket = store_group_locked(part, group);
          deferred.push_back([this, ticket, r = std::move(r), done = std::move(done), old_id,
                              old_join = std::move(old_join),
                              old_sync = std::move(old_sync)]() mutable {
            when_durable(ticket, [r = std::move(r), done = std::move(done), old_id,
                                  old_join = std::move(old_join),
                                  old_sync = std::move(old_sync)](GroupErrc stored) mutable {
              const GroupErrc fenced =
                  stored == GroupErrc::none ? GroupErrc::fenced_instance_id : stored;
              if (old_join) old_join(join_error(fenced, old_id));
              if (old_sync) old_sync(SyncResult{fenced, {}});
              if (stored != GroupErrc::none) {
                HF_WARN("group: storing the rejoin of static member {} failed", r.member_id);
                return done(join_error(stored, r.member_id));
              }
              done(std::move(r));
            });
          });
          return;
        }
        // A rebalance follows: the replacement is stored with the leader's
        // assignment (SyncGroup), as for any membership change. The old
        // member's pending requests are fenced now.
        if (old_join) {
          defer_join(deferred, std::move(old_join),
                     join_error(GroupErrc::fenced_instance_id, old_id));
        }
        if (old_sync) {
          deferred.push_back([cb = std::move(old_sync)] {
            cb(SyncResult{GroupErrc::fenced_instance_id, {}});
          });
        }
        return update_member_and_rebalance(part, group, member_id, params, std::move(done),
                                           deferred);
      }
      return add_member_and_rebalance(part, group, params, member_id, std::move(done), deferred);
    }
    if (params.require_known_member_id) {
      // KIP-394: the member must come back with this id, so that a client that
      // times out and retries does not leave a stray member behind.
      group.pending_members[member_id] = now() + params.session_timeout_ms;
      return defer_join(deferred, std::move(done),
                        join_error(GroupErrc::member_id_required, member_id));
    }
    return add_member_and_rebalance(part, group, params, member_id, std::move(done), deferred);
  }

  const std::string& member_id = params.member_id;
  if (group.pending_members.count(member_id)) {
    group.pending_members.erase(member_id);
    return add_member_and_rebalance(part, group, params, member_id, std::move(done), deferred);
  }
  if (group.is_static_member_fenced(member_id, params.group_instance_id)) {
    return defer_join(deferred, std::move(done),
                      join_error(GroupErrc::fenced_instance_id, member_id));
  }
  if (!group.has_member(member_id)) {
    return defer_join(deferred, std::move(done),
                      join_error(GroupErrc::unknown_member_id, member_id));
  }
  Member& member = group.members[member_id];
  switch (group.state) {
    case GroupState::preparing_rebalance:
      return update_member_and_rebalance(part, group, member_id, params, std::move(done),
                                         deferred);
    case GroupState::completing_rebalance:
      if (same_protocols(member.protocols, params.protocols)) {
        // The member missed our join response; send it again.
        member.session_deadline = now() + member.session_timeout_ms;
        return defer_join(deferred, std::move(done),
                          current_generation(group, member_id, group.leader == member_id));
      }
      return update_member_and_rebalance(part, group, member_id, params, std::move(done),
                                         deferred);
    case GroupState::stable:
      if (group.leader == member_id || !same_protocols(member.protocols, params.protocols)) {
        // The leader rejoining (e.g. to reassign after a metadata change) or
        // a member with a new subscription forces a rebalance.
        return update_member_and_rebalance(part, group, member_id, params, std::move(done),
                                           deferred);
      }
      member.session_deadline = now() + member.session_timeout_ms;
      return defer_join(deferred, std::move(done), current_generation(group, member_id, false));
    case GroupState::empty:
    case GroupState::dead:
      return defer_join(deferred, std::move(done),
                        join_error(GroupErrc::unknown_member_id, member_id));
  }
}

void GroupCoordinator::add_member_and_rebalance(CoordinatorPartition& part, Group& group,
                                                JoinParams& params, std::string member_id,
                                                std::function<void(JoinResult)> done,
                                                Deferred& deferred) {
  Member m;
  m.member_id = member_id;
  m.group_instance_id = params.group_instance_id;
  m.client_id = params.client_id;
  m.client_host = params.client_host;
  m.session_timeout_ms = params.session_timeout_ms;
  m.rebalance_timeout_ms = params.rebalance_timeout_ms;
  m.protocol_type = params.protocol_type;
  m.protocols = std::move(params.protocols);
  m.awaiting_join = std::move(done);
  m.is_new = true;
  m.session_deadline = now() + m.session_timeout_ms;
  if (group.members.empty()) group.protocol_type = params.protocol_type;
  if (!group.leader || !group.has_member(*group.leader)) group.leader = member_id;
  if (m.group_instance_id) group.static_members[*m.group_instance_id] = member_id;
  group.members.emplace(member_id, std::move(m));
  group.join_order.push_back(member_id);
  HF_DEBUG("group {}: member {} joined ({} members)", group.group_id, member_id,
           group.members.size());
  if (group.is(GroupState::preparing_rebalance)) {
    if (group.join_delay_deadline > now()) {
      // The initial delay is extended by each new member, up to the rebalance timeout.
      group.join_delay_deadline =
          std::min(now() + options_.initial_rebalance_delay_ms, group.join_deadline);
    }
    maybe_complete_join(part, group, deferred);
  } else {
    prepare_rebalance(part, group, "member " + member_id + " joined", deferred);
  }
}

void GroupCoordinator::update_member_and_rebalance(CoordinatorPartition& part, Group& group,
                                                   const std::string& member_id,
                                                   JoinParams& params,
                                                   std::function<void(JoinResult)> done,
                                                   Deferred& deferred) {
  Member& m = group.members[member_id];
  m.protocols = std::move(params.protocols);
  m.session_timeout_ms = params.session_timeout_ms;
  m.rebalance_timeout_ms = params.rebalance_timeout_ms;
  m.client_id = params.client_id;
  m.client_host = params.client_host;
  if (m.awaiting_join) {
    // A duplicate join from the same member: the older request is superseded.
    defer_join(deferred, std::move(m.awaiting_join),
               join_error(GroupErrc::unknown_member_id, member_id));
  }
  m.awaiting_join = std::move(done);
  m.session_deadline = now() + m.session_timeout_ms;
  if (group.is(GroupState::preparing_rebalance)) {
    maybe_complete_join(part, group, deferred);
  } else {
    prepare_rebalance(part, group, "member " + member_id + " rejoined", deferred);
  }
}

void GroupCoordinator::reset_and_fail_syncs(Group& group, GroupErrc error, Deferred& deferred) {
  for (auto& [id, m] : group.members) {
    m.assignment = Bytes();
    if (m.awaiting_sync) {
      deferred.push_back([cb = std::move(m.awaiting_sync), error] { cb(SyncResult{error, {}}); });
      m.awaiting_sync = nullptr;
    }
  }
  group.assignment_pending = false;
}

void GroupCoordinator::prepare_rebalance(CoordinatorPartition& part, Group& group,
                                         const std::string& reason, Deferred& deferred) {
  if (group.is(GroupState::completing_rebalance)) {
    reset_and_fail_syncs(group, GroupErrc::rebalance_in_progress, deferred);
  }
  const bool from_empty = group.is(GroupState::empty);
  group.transition(GroupState::preparing_rebalance, wall_now());
  int64_t rebalance_timeout = 0;
  for (const auto& [id, m] : group.members) {
    rebalance_timeout = std::max<int64_t>(rebalance_timeout, m.rebalance_timeout_ms);
  }
  int64_t t = now();
  if (from_empty) {
    group.join_delay_deadline = t + options_.initial_rebalance_delay_ms;
    group.join_deadline = t + std::max(options_.initial_rebalance_delay_ms, rebalance_timeout);
  } else {
    group.join_delay_deadline = t;
    group.join_deadline = t + rebalance_timeout;
  }
  HF_INFO("group {}: preparing rebalance of generation {} ({})", group.group_id, group.generation,
          reason);
  maybe_complete_join(part, group, deferred);
}

void GroupCoordinator::maybe_complete_join(CoordinatorPartition& part, Group& group,
                                           Deferred& deferred) {
  if (!group.is(GroupState::preparing_rebalance)) return;
  int64_t t = now();
  if ((group.all_members_joined() && t >= group.join_delay_deadline) || t >= group.join_deadline) {
    complete_join(part, group, deferred);
  }
}

void GroupCoordinator::complete_join(CoordinatorPartition& part, Group& group,
                                     Deferred& deferred) {
  // Dynamic members that did not rejoin in time are gone; static members keep
  // their place (they may be restarting).
  std::vector<std::string> gone;
  for (const auto& [id, m] : group.members) {
    if (!m.awaiting_join && !m.group_instance_id) gone.push_back(id);
  }
  for (const auto& id : gone) {
    HF_INFO("group {}: member {} did not rejoin in time; removing it", group.group_id, id);
    auto node = group.members.extract(id);
    if (node.mapped().awaiting_sync) {
      deferred.push_back([cb = std::move(node.mapped().awaiting_sync)] {
        cb(SyncResult{GroupErrc::unknown_member_id, {}});
      });
    }
    group.join_order.erase(std::remove(group.join_order.begin(), group.join_order.end(), id),
                           group.join_order.end());
  }
  if (group.leader && !group.has_member(*group.leader)) group.leader.reset();
  int64_t t = now();
  ++group.generation;
  if (group.members.empty()) {
    group.protocol_name.reset();
    group.leader.reset();
    group.transition(GroupState::empty, wall_now());
    HF_INFO("group {}: generation {} is empty", group.group_id, group.generation);
    auto ticket = store_group_locked(part, group);
    (void)ticket;  // the generation is remembered; nobody waits for it
    return;
  }
  if (!group.leader) {
    // Prefer a member that did rejoin.
    for (const auto& id : group.join_order) {
      if (group.members[id].awaiting_join) {
        group.leader = id;
        break;
      }
    }
    if (!group.leader) group.leader = group.join_order.front();
  }
  group.protocol_name = group.select_protocol();
  group.transition(GroupState::completing_rebalance, wall_now());
  int64_t rebalance_timeout = 0;
  for (const auto& [id, m] : group.members) {
    rebalance_timeout = std::max<int64_t>(rebalance_timeout, m.rebalance_timeout_ms);
  }
  group.sync_deadline = t + rebalance_timeout;
  HF_INFO("group {}: generation {} with {} members, protocol {}, leader {}", group.group_id,
          group.generation, group.members.size(), *group.protocol_name, *group.leader);
  for (auto& [id, m] : group.members) {
    m.is_new = false;
    m.session_deadline = t + m.session_timeout_ms;
    if (!m.awaiting_join) continue;
    defer_join(deferred, std::move(m.awaiting_join),
               current_generation(group, id, group.leader == id));
    m.awaiting_join = nullptr;
  }
}

void GroupCoordinator::remove_member(CoordinatorPartition& part, Group& group,
                                     const std::string& member_id, const std::string& reason,
                                     Deferred& deferred) {
  auto node = group.members.extract(member_id);
  if (node.empty()) return;
  Member& m = node.mapped();
  HF_INFO("group {}: removing member {} ({})", group.group_id, member_id, reason);
  if (m.awaiting_join) {
    defer_join(deferred, std::move(m.awaiting_join),
               join_error(GroupErrc::unknown_member_id, member_id));
  }
  if (m.awaiting_sync) {
    deferred.push_back([cb = std::move(m.awaiting_sync)] {
      cb(SyncResult{GroupErrc::unknown_member_id, {}});
    });
  }
  if (m.group_instance_id) {
    auto s = group.static_members.find(*m.group_instance_id);
    if (s != group.static_members.end() && s->second == member_id) group.static_members.erase(s);
  }
  group.join_order.erase(std::remove(group.join_order.begin(), group.join_order.end(), member_id),
                         group.join_order.end());
  if (group.leader == member_id) {
    group.leader.reset();
    if (!group.join_order.empty()) group.leader = group.join_order.front();
  }
  switch (group.state) {
    case GroupState::stable:
    case GroupState::completing_rebalance:
      prepare_rebalance(part, group, reason, deferred);
      break;
    case GroupState::preparing_rebalance:
      maybe_complete_join(part, group, deferred);
      break;
    case GroupState::empty:
    case GroupState::dead:
      break;
  }
}

void GroupCoordinator::sync(SyncParams params, std::function<void(SyncResult)> done) {
  auto fail = [&](GroupErrc e) { done(SyncResult{e, {}}); };
  if (stopped_) return fail(GroupErrc::coordinator_not_available);
  if (params.group_id.empty()) return fail(GroupErrc::invalid_group_id);
  auto* part = partition_of(params.group_id);
  Deferred deferred;
  std::optional<AppendTicket> ticket;
  int32_t generation = 0;
  {
    std::lock_guard lock(part->mu);
    auto error = [&]() -> std::optional<GroupErrc> {
      if (auto e = not_ready(*part)) return e;
      auto it = part->groups.find(params.group_id);
      if (it == part->groups.end()) return GroupErrc::unknown_member_id;
      Group& group = *it->second;
      if (group.is(GroupState::dead)) return GroupErrc::coordinator_not_available;
      if (group.is_static_member_fenced(params.member_id, params.group_instance_id)) {
        return GroupErrc::fenced_instance_id;
      }
      if (!group.has_member(params.member_id)) return GroupErrc::unknown_member_id;
      if (params.generation != group.generation) return GroupErrc::illegal_generation;
      Member& m = group.members[params.member_id];
      switch (group.state) {
        case GroupState::empty:
        case GroupState::dead:
          return GroupErrc::unknown_member_id;
        case GroupState::preparing_rebalance:
          return GroupErrc::rebalance_in_progress;
        case GroupState::stable:
          m.session_deadline = now() + m.session_timeout_ms;
          deferred.push_back([cb = std::move(done), a = m.assignment] {
            cb(SyncResult{GroupErrc::none, a});
          });
          return std::nullopt;
        case GroupState::completing_rebalance:
          break;
      }
      if (m.awaiting_sync) {
        deferred.push_back([cb = std::move(m.awaiting_sync)] {
          cb(SyncResult{GroupErrc::unknown_member_id, {}});
        });
      }
      m.awaiting_sync = std::move(done);
      m.session_deadline = now() + m.session_timeout_ms;
      if (group.leader == params.member_id && !group.assignment_pending) {
        for (auto& [id, member] : group.members) member.assignment = Bytes();
        for (auto& [id, assignment] : params.assignments) {
          auto target = group.members.find(id);
          if (target != group.members.end()) target->second.assignment = assignment;
        }
        group.assignment_pending = true;
        generation = group.generation;
        ticket = store_group_locked(*part, group);
      }
      return std::nullopt;
    }();
    if (error) deferred.push_back([cb = std::move(done), e = *error] { cb(SyncResult{e, {}}); });
  }
  for (auto& d : deferred) d();
  if (ticket) {
    when_durable(*ticket, [this, part, group_id = params.group_id, generation](GroupErrc e) {
      on_group_stored(*part, group_id, generation, e);
    });
  }
}

void GroupCoordinator::on_group_stored(CoordinatorPartition& part, const std::string& group_id,
                                       int32_t generation, GroupErrc stored) {
  Deferred deferred;
  {
    std::lock_guard lock(part.mu);
    auto it = part.groups.find(group_id);
    if (it == part.groups.end()) return;
    Group& group = *it->second;
    if (group.generation != generation || !group.is(GroupState::completing_rebalance) ||
        !group.assignment_pending) {
      return;  // the group moved on; its members were told already
    }
    group.assignment_pending = false;
    if (stored != GroupErrc::none) {
      HF_WARN("group {}: storing the assignment of generation {} failed; rebalancing", group_id,
              generation);
      reset_and_fail_syncs(group, GroupErrc::coordinator_not_available, deferred);
      prepare_rebalance(part, group, "storing the assignment failed", deferred);
    } else {
      group.transition(GroupState::stable, wall_now());
      for (auto& [id, m] : group.members) {
        if (!m.awaiting_sync) continue;
        deferred.push_back([cb = std::move(m.awaiting_sync), a = m.assignment] {
          cb(SyncResult{GroupErrc::none, a});
        });
        m.awaiting_sync = nullptr;
      }
      HF_INFO("group {}: generation {} is stable", group_id, generation);
    }
  }
  for (auto& d : deferred) d();
}

void GroupCoordinator::leave(const std::string& group_id,
                             const std::vector<MemberIdentity>& members,
                             std::function<void(LeaveResult)> done) {
  LeaveResult result;
  if (stopped_) {
    result.error = GroupErrc::coordinator_not_available;
    return done(std::move(result));
  }
  if (group_id.empty()) {
    result.error = GroupErrc::invalid_group_id;
    return done(std::move(result));
  }
  auto* part = partition_of(group_id);
  Deferred deferred;
  std::optional<AppendTicket> ticket;
  {
    std::lock_guard lock(part->mu);
    const uint64_t appends_before = part->appends;
    [&] {
      if (auto e = not_ready(*part)) {
        result.error = *e;
        return;
      }
      auto it = part->groups.find(group_id);
      if (it == part->groups.end()) {
        result.members.assign(members.size(), GroupErrc::unknown_member_id);
        return;
      }
      Group& group = *it->second;
      if (group.is(GroupState::dead)) {
        result.error = GroupErrc::coordinator_not_available;
        return;
      }
      for (const auto& leaving : members) {
        std::string member_id = leaving.member_id;
        if (member_id.empty() && leaving.group_instance_id) {
          // KIP-345: an admin removes a static member by its instance id.
          auto s = group.static_members.find(*leaving.group_instance_id);
          if (s == group.static_members.end()) {
            result.members.push_back(GroupErrc::unknown_member_id);
            continue;
          }
          member_id = s->second;
        } else if (group.is_static_member_fenced(member_id, leaving.group_instance_id)) {
          result.members.push_back(GroupErrc::fenced_instance_id);
          continue;
        }
        if (group.pending_members.erase(member_id)) {
          maybe_complete_join(*part, group, deferred);
          result.members.push_back(GroupErrc::none);
          continue;
        }
        if (!group.has_member(member_id)) {
          result.members.push_back(GroupErrc::unknown_member_id);
          continue;
        }
        remove_member(*part, group, member_id, "left the group", deferred);
        result.members.push_back(GroupErrc::none);
      }
    }();
    // A leave that empties the group stores the empty generation (complete_join).
    if (part->appends != appends_before) ticket = appended_since_locked(*part, appends_before);
  }
  for (auto& d : deferred) d();
  if (!ticket) return done(std::move(result));
  // The answer says the members are gone: it waits until the record that
  // says so is durable.
  when_durable(*ticket, [result = std::move(result), done = std::move(done)](GroupErrc e) mutable {
    if (e != GroupErrc::none) result.error = e;
    done(std::move(result));
  });
}

void GroupCoordinator::tick_partition(CoordinatorPartition& part, int64_t t, Deferred& deferred) {
  for (auto& [group_id, group_ptr] : part.groups) {
    Group& group = *group_ptr;
    for (auto p = group.pending_members.begin(); p != group.pending_members.end();) {
      p = t >= p->second ? group.pending_members.erase(p) : std::next(p);
    }
    std::vector<std::string> expired;
    for (const auto& [id, m] : group.members) {
      if (!m.awaiting_join && !m.awaiting_sync && t >= m.session_deadline) expired.push_back(id);
    }
    for (const auto& id : expired) {
      remove_member(part, group, id, "session timeout expired", deferred);
    }
    if (group.is(GroupState::completing_rebalance) && !group.assignment_pending &&
        t >= group.sync_deadline) {
      // Someone never sent SyncGroup within the rebalance timeout: start over
      // without the members that did not sync (Kafka 3.x's pending-sync timeout).
      std::vector<std::string> lagging;
      for (const auto& [id, m] : group.members) {
        if (!m.awaiting_sync) lagging.push_back(id);
      }
      for (const auto& id : lagging) {
        remove_member(part, group, id, "did not sync within the rebalance timeout", deferred);
      }
    }
    maybe_complete_join(part, group, deferred);
  }
}

}  // namespace holdfast::coordinator
