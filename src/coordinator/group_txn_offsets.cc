// Transactional offset commits (TxnOffsetCommit, KIP-98 / KIP-447): offsets
// written by a transactional producer as part of its transaction. They are
// appended to the group's __consumer_offsets partition as a transactional
// batch of that producer and stay pending until the transaction's marker
// lands on the partition (complete_txn): a commit makes them the group's
// committed offsets, an abort drops them. The replay (group_store.cc) does
// the same with the markers it finds in the log.
#include "base/log.h"
#include "coordinator/group_coordinator.h"
#include "coordinator/group_state.h"

namespace holdfast::coordinator {

void GroupCoordinator::txn_commit(TxnCommitParams params, std::function<void(CommitResult)> done) {
  CommitResult result;
  auto fail_all = [&](GroupErrc e) {
    result.errors.assign(params.offsets.size(), e);
    done(std::move(result));
  };
  if (stopped_) return fail_all(GroupErrc::coordinator_not_available);
  if (params.group_id.empty()) return fail_all(GroupErrc::invalid_group_id);
  auto* part = partition_of(params.group_id);
  AppendTicket ticket;
  std::vector<std::pair<TopicPartitionKey, OffsetValue>> values;
  {
    std::lock_guard lock(part->mu);
    auto error = [&]() -> std::optional<GroupErrc> {
      if (auto e = not_ready(*part)) return e;
      auto it = part->groups.find(params.group_id);
      if (it == part->groups.end()) {
        // As Kafka: a transactional commit creates the group.
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
      // KIP-447: a producer that names its consumer's member and generation
      // is checked against the group, so a zombie's offsets are refused.
      if (!params.member_id.empty() && !group.has_member(params.member_id)) {
        return GroupErrc::unknown_member_id;
      }
      if (params.generation >= 0 && params.generation != group.generation) {
        return GroupErrc::illegal_generation;
      }
      return std::nullopt;
    }();
    if (error) return fail_all(*error);
    Group& group = *part->groups[params.group_id];
    std::vector<std::pair<std::string, std::optional<std::string>>> records;
    result.errors.assign(params.offsets.size(), GroupErrc::none);
    const int64_t ts = wall_now();
    for (size_t i = 0; i < params.offsets.size(); ++i) {
      const auto& o = params.offsets[i];
      const int64_t max_metadata = std::min<int64_t>(options_.offset_metadata_max_bytes,
                                                     int64_t(kMaxOffsetMetadataBytes));
      if (o.metadata && int64_t(o.metadata->size()) > max_metadata) {
        result.errors[i] = GroupErrc::offset_metadata_too_large;
        continue;
      }
      OffsetValue v;
      v.offset = o.offset;
      v.leader_epoch = o.leader_epoch;
      v.metadata = o.metadata.value_or("");
      v.commit_timestamp_ms = ts;
      records.emplace_back(encode_key(OffsetKey{params.group_id, o.tp.topic, o.tp.partition}),
                           encode_offset_value(v));
      values.emplace_back(o.tp, v);
    }
    if (values.empty()) return done(std::move(result));
    TxnProducer producer{params.producer_id, params.producer_epoch};
    ticket = append_locked(*part, records, &producer);
    if (ticket.error != GroupErrc::none) {
      for (auto& e : result.errors) {
        if (e == GroupErrc::none) e = ticket.error;
      }
      return done(std::move(result));
    }
    // Pending from the append on, so that OffsetFetch(require_stable) sees
    // them and a marker that comes right after the answer finds them.
    auto& pending = group.pending_txn_offsets[params.producer_id];
    for (const auto& [tp, v] : values) pending[tp] = v;
    part->txn_groups[params.producer_id].insert(params.group_id);
  }
  when_durable(ticket, [result = std::move(result), done = std::move(done)](GroupErrc e) mutable {
    // A failed write leaves the offsets pending: the transaction cannot
    // commit (the client aborts it), and the abort marker drops them.
    if (e != GroupErrc::none) {
      for (auto& r : result.errors) {
        if (r == GroupErrc::none) r = e;
      }
    }
    done(std::move(result));
  });
}

void GroupCoordinator::complete_txn(int32_t offsets_partition, int64_t producer_id, bool commit) {
  if (offsets_partition < 0 || offsets_partition >= options_.num_partitions) return;
  CoordinatorPartition& part = *partitions_[offsets_partition];
  std::lock_guard lock(part.mu);
  if (part.status != CoordinatorPartition::Status::active) return;  // the replay sees the marker
  auto groups = part.txn_groups.find(producer_id);
  if (groups == part.txn_groups.end()) return;
  size_t applied = 0;
  for (const auto& id : groups->second) {
    auto it = part.groups.find(id);
    if (it == part.groups.end()) continue;
    Group& group = *it->second;
    auto pending = group.pending_txn_offsets.find(producer_id);
    if (pending == group.pending_txn_offsets.end()) continue;
    if (commit) {
      for (auto& [tp, value] : pending->second) {
        group.offsets[tp] = CommittedOffset{std::move(value)};
        ++applied;
      }
    }
    group.pending_txn_offsets.erase(pending);
  }
  part.txn_groups.erase(groups);
  HF_DEBUG("group coordinator: {}-{}: transaction of producer {} {}: {} offsets", kOffsetsTopic,
           offsets_partition, producer_id, commit ? "committed" : "aborted", applied);
}

}  // namespace holdfast::coordinator
