// Persistence of the coordinator: appending records to __consumer_offsets-N,
// waiting for their durability, and rebuilding the state by replaying the
// partition (docs/storage-format.md, "Consumer offsets and group metadata").
#include <set>

#include "base/log.h"
#include "coordinator/group_coordinator.h"
#include "coordinator/group_state.h"
#include "coordinator/txn_records.h"
#include "record/batch.h"

namespace holdfast::coordinator {

GroupCoordinator::AppendTicket GroupCoordinator::append_records_locked(
    CoordinatorPartition& part,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& records,
    const TxnProducer* producer) {
  AppendTicket ticket;
  ticket.part = &part;
  ticket.log = part.log;
  ticket.replica = part.replica;
  ticket.generation = part.generation;
  if (records.empty()) return ticket;
  if (!part.log || part.status == CoordinatorPartition::Status::failed) {
    ticket.error = GroupErrc::coordinator_not_available;
    return ticket;
  }
  if (part.replica) {
    // Cluster mode: acks=all, as Kafka writes __consumer_offsets; with fewer
    // in-sync replicas than min.insync.replicas nothing is appended.
    ticket.min_insync = options_.min_insync_replicas ? options_.min_insync_replicas() : 0;
    if (auto ready = part.replica->check_min_isr(ticket.min_insync); !ready) {
      HF_WARN("group coordinator: not writing to {}-{}: {}", kOffsetsTopic, part.index,
              ready.error().message);
      ticket.error = from_replication(ready.code());
      return ticket;
    }
  }
  record::BatchBuilder builder;
  if (producer) {
    // The sequence the log expects next from this producer (the log checks
    // it as it checks a client's; part.mu orders this partition's appends).
    int32_t sequence = 0;
    if (auto state = part.log->producer_state(producer->id)) {
      if (state->epoch == producer->epoch && state->last_sequence() >= 0) {
        sequence = state->last_sequence() == INT32_MAX ? 0 : state->last_sequence() + 1;
      }
    }
    builder.set_producer(producer->id, producer->epoch, sequence);
    builder.set_transactional(true);
  }
  int64_t ts = wall_now();
  for (const auto& [key, value] : records) {
    builder.add(std::string_view(key),
                value ? std::optional<std::string_view>(*value) : std::nullopt, ts);
  }
  Bytes batch = builder.build();
  auto header = record::parse_batch_header(batch.span());
  if (!header) {
    ticket.error = GroupErrc::storage_error;
    return ticket;
  }
  // In the log's leader epoch; in cluster mode through the replica, which
  // refuses (closed) once it no longer leads.
  auto appended = part.replica ? part.replica->append(batch.span(), *header)
                               : part.log->append(batch.span(), *header);
  if (!appended && part.replica && appended.code() == storage::Errc::closed &&
      part.replica->role() != replication::Role::leader) {
    // Lost the leadership; the role change unloads this partition.
    ticket.error = GroupErrc::not_coordinator;
    return ticket;
  }
  if (!appended && producer && appended.code() == storage::Errc::invalid_producer_epoch) {
    ticket.error = GroupErrc::invalid_producer_epoch;
    return ticket;
  }
  if (!appended) {
    HF_ERROR("group coordinator: appending to {}-{} failed: {}", kOffsetsTopic, part.index,
             appended.error().message);
    if (appended.code() == storage::Errc::io_error || appended.code() == storage::Errc::closed) {
      // The log will never acknowledge again; the in-memory state may now be
      // ahead of it, so this partition stops serving.
      part.status = CoordinatorPartition::Status::failed;
    }
    ticket.error = part.replica ? GroupErrc::not_coordinator : GroupErrc::storage_error;
    return ticket;
  }
  ticket.end_offset = appended->last_offset + 1;
  return ticket;
}

GroupCoordinator::AppendTicket GroupCoordinator::append_locked(
    CoordinatorPartition& part,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& records,
    const TxnProducer* producer) {
  AppendTicket ticket = append_records_locked(part, records, producer);
  if (records.empty()) return ticket;
  ++part.appends;
  if (ticket.error != GroupErrc::none) {
    part.last_failed_append = part.appends;
  } else {
    part.appended_end = ticket.end_offset;
  }
  return ticket;
}

GroupCoordinator::AppendTicket GroupCoordinator::appended_since_locked(
    CoordinatorPartition& part, uint64_t appends_before) const {
  AppendTicket ticket;
  ticket.part = &part;
  ticket.log = part.log;
  ticket.replica = part.replica;
  ticket.generation = part.generation;
  ticket.min_insync = options_.min_insync_replicas ? options_.min_insync_replicas() : 0;
  if (part.last_failed_append > appends_before) {
    ticket.error = GroupErrc::storage_error;
  } else {
    ticket.end_offset = part.appended_end;
  }
  return ticket;
}

void GroupCoordinator::when_durable(const AppendTicket& ticket,
                                    std::function<void(GroupErrc)> then) {
  if (ticket.error != GroupErrc::none) return then(ticket.error);
  if (ticket.end_offset < 0 || !ticket.log) return then(GroupErrc::none);
  CoordinatorPartition* part = ticket.part;
  if (ticket.replica) {
    // Cluster mode: answered once the high watermark passes the records (on
    // every in-sync replica's disk); fails if the replica stops leading.
    const uint64_t generation = ticket.generation;
    ticket.replica->wait_for_high_watermark(
        ticket.end_offset,
        [part, generation, then = std::move(then)](Result<void, replication::Errc> replicated) {
          if (replicated) return then(GroupErrc::none);
          HF_WARN("group coordinator: {}-{} write not replicated: {}", kOffsetsTopic,
                  part->index, replicated.error().message);
          if (replicated.code() == replication::Errc::log_failed) {
            std::lock_guard lock(part->mu);
            if (part->generation == generation) {
              part->status = CoordinatorPartition::Status::failed;
            }
          }
          then(from_replication(replicated.code()));
        },
        ticket.min_insync);
    return;
  }
  logs_.wait_durable(ticket.log, ticket.end_offset,
                     [part, then = std::move(then)](Result<void, storage::Errc> durable) {
                       if (durable) return then(GroupErrc::none);
                       HF_ERROR("group coordinator: {}-{} not durable: {}", kOffsetsTopic,
                                part->index, durable.error().message);
                       {
                         std::lock_guard lock(part->mu);
                         part->status = CoordinatorPartition::Status::failed;
                       }
                       then(GroupErrc::storage_error);
                     });
}

GroupValue GroupCoordinator::group_value(const Group& group) const {
  GroupValue v;
  v.protocol_type = group.protocol_type;
  v.generation = group.generation;
  v.protocol_name = group.protocol_name;
  v.leader = group.leader;
  v.state_timestamp_ms = group.state_timestamp_ms;
  for (const auto& id : group.join_order) {
    auto it = group.members.find(id);
    if (it == group.members.end()) continue;
    const Member& m = it->second;
    StoredMember s;
    s.member_id = id;
    s.group_instance_id = m.group_instance_id;
    s.client_id = m.client_id;
    s.client_host = m.client_host;
    s.rebalance_timeout_ms = m.rebalance_timeout_ms;
    s.session_timeout_ms = m.session_timeout_ms;
    if (group.protocol_name) {
      if (const auto* p = m.protocol(*group.protocol_name)) s.subscription = p->metadata;
    }
    s.assignment = m.assignment;
    v.members.push_back(std::move(s));
  }
  return v;
}

GroupCoordinator::AppendTicket GroupCoordinator::store_group_locked(CoordinatorPartition& part,
                                                                    const Group& group) {
  return append_locked(part, {{encode_key(GroupKey{group.group_id}),
                               encode_group_value(group_value(group))}});
}

void GroupCoordinator::load_partition(CoordinatorPartition& part, storage::PartitionLog* log,
                                      uint64_t generation) {
  int64_t offset = log->log_start_offset();
  const int64_t end = log->log_end_offset();
  std::map<std::string, GroupValue> groups;
  std::map<std::string, std::map<TopicPartitionKey, OffsetValue>> offsets;
  // Keys whose latest record is in the legacy Holdfast layout: rewritten in
  // Kafka's layout once loaded (docs/storage-format.md, "Upgrading").
  std::set<std::string> legacy_groups;
  std::set<std::pair<std::string, TopicPartitionKey>> legacy_offsets;
  // TxnOffsetCommit offsets by producer id, until their marker: a commit
  // marker makes them the group's offsets, an abort marker drops them.
  std::map<int64_t, std::map<std::string, std::map<TopicPartitionKey, OffsetValue>>> txn_pending;
  size_t records_seen = 0;
  bool failed = false;
  while (offset < end && !failed) {
    auto read = log->read(offset, 1 << 20, true, end);
    if (!read) {
      HF_ERROR("group coordinator: reading {}-{} at {}: {}", kOffsetsTopic, part.index, offset,
               read.error().message);
      failed = true;
      break;
    }
    auto data = read->records.span();
    if (data.empty()) break;
    while (!data.empty()) {
      auto header = record::check_batch(data);
      if (!header) {
        HF_ERROR("group coordinator: bad batch in {}-{} near offset {}", kOffsetsTopic,
                 part.index, offset);
        failed = true;
        break;
      }
      auto batch = data.subspan(0, header->size_in_bytes());
      data = data.subspan(header->size_in_bytes());
      if (header->last_offset() < offset) continue;
      offset = header->last_offset() + 1;
      if (header->is_control()) {
        auto pending = txn_pending.find(header->producer_id);
        if (!header->is_transactional() || pending == txn_pending.end()) continue;
        auto control = record::decode_records(batch);
        std::optional<bool> commit;
        if (control && !control->empty() && control->front().key) {
          commit = decode_control_commit(control->front().key->span());
        }
        if (!commit) continue;
        if (*commit) {
          for (auto& [group, committed] : pending->second) {
            for (auto& [tp, value] : committed) {
              legacy_offsets.erase({group, tp});
              offsets[group][tp] = std::move(value);
            }
          }
        }
        txn_pending.erase(pending);
        continue;
      }
      const bool transactional = header->is_transactional();
      auto records = record::decode_records(batch);
      if (!records) {
        HF_ERROR("group coordinator: undecodable batch in {}-{} at {}", kOffsetsTopic, part.index,
                 header->base_offset);
        failed = true;
        break;
      }
      for (const auto& r : *records) {
        ++records_seen;
        if (!r.key) continue;
        auto key = decode_key(r.key->span());
        if (!key) {
          HF_WARN("group coordinator: skipping record at {}-{}@{}: {}", kOffsetsTopic, part.index,
                  r.offset, key.error().message);
          continue;
        }
        if (const auto* k = std::get_if<OffsetKey>(&*key)) {
          TopicPartitionKey tp{k->topic, k->partition};
          legacy_offsets.erase({k->group, tp});
          if (!r.value) {
            offsets[k->group].erase(tp);
            continue;
          }
          RecordLayout layout = RecordLayout::kafka;
          auto value = decode_offset_value(r.value->span(), &layout);
          if (!value) {
            HF_WARN("group coordinator: skipping offset record at {}-{}@{}: {}", kOffsetsTopic,
                    part.index, r.offset, value.error().message);
            continue;
          }
          if (transactional) {
            txn_pending[header->producer_id][k->group][tp] = *value;
            continue;
          }
          if (layout == RecordLayout::holdfast_legacy) legacy_offsets.insert({k->group, tp});
          offsets[k->group][tp] = *value;
        } else {
          const auto& group = std::get<GroupKey>(*key).group;
          legacy_groups.erase(group);
          if (!r.value) {
            groups.erase(group);
            continue;
          }
          RecordLayout layout = RecordLayout::kafka;
          auto value = decode_group_value(r.value->span(), &layout);
          if (!value) {
            HF_WARN("group coordinator: skipping group record at {}-{}@{}: {}", kOffsetsTopic,
                    part.index, r.offset, value.error().message);
            continue;
          }
          if (layout == RecordLayout::holdfast_legacy) legacy_groups.insert(group);
          groups[group] = std::move(*value);
        }
      }
    }
  }

  if (options_.after_replay_for_test) options_.after_replay_for_test(part.index);
  std::lock_guard lock(part.mu);
  // Cluster mode: the partition may have moved while it was read (unloaded,
  // or led again in a later epoch): this load is stale.
  if (part.generation != generation || part.status != CoordinatorPartition::Status::loading ||
      (part.replica && (part.replica->role() != replication::Role::leader ||
                        part.replica->leader_epoch() != part.leader_epoch))) {
    HF_INFO("group coordinator: discarding a stale load of {}-{}", kOffsetsTopic, part.index);
    return;
  }
  if (failed) {
    part.status = CoordinatorPartition::Status::failed;
    return;
  }
  // The upgrade from the legacy layout: the live state's legacy records are
  // appended again in Kafka's layout, in one batch. Not waited for: if it is
  // lost in a crash the legacy records are still there and the next load
  // rewrites them again; the cleaner drops the superseded ones.
  std::vector<std::pair<std::string, std::optional<std::string>>> migrated;
  for (const auto& id : legacy_groups) {
    migrated.emplace_back(encode_key(GroupKey{id}), encode_group_value(groups.at(id)));
  }
  for (const auto& [id, tp] : legacy_offsets) {
    OffsetValue value = offsets.at(id).at(tp);
    if (value.metadata && value.metadata->size() > kMaxOffsetMetadataBytes) value.metadata = "";
    migrated.emplace_back(encode_key(OffsetKey{id, tp.topic, tp.partition}),
                          encode_offset_value(value));
  }
  if (!migrated.empty()) {
    if (append_locked(part, migrated).error != GroupErrc::none) {
      HF_WARN("group coordinator: could not rewrite {}-{} in Kafka's record format; "
              "will retry at the next start",
              kOffsetsTopic, part.index);
    } else {
      HF_INFO("group coordinator: {}-{}: rewrote {} records of the old layout in Kafka's format",
              kOffsetsTopic, part.index, migrated.size());
    }
  }
  // Now in Kafka's layout, the metadata is never null (the first read in
  // Kafka's layout would give the empty string).
  for (auto& [id, committed] : offsets) {
    for (auto& [tp, value] : committed) {
      if (!value.metadata || value.metadata->size() > kMaxOffsetMetadataBytes) value.metadata = "";
    }
  }
  int64_t t = now();
  for (auto& [id, value] : groups) {
    auto group = std::make_unique<Group>();
    group->group_id = id;
    group->generation = value.generation;
    group->protocol_type = value.protocol_type;
    group->protocol_name = value.protocol_name;
    group->leader = value.leader;
    // Versions 0 and 1 of the group value have no state timestamp: the
    // offsets' retention clock starts at the load.
    group->state_timestamp_ms = value.state_timestamp_ms >= 0 ? value.state_timestamp_ms
                                                              : wall_now();
    for (auto& s : value.members) {
      Member m;
      m.member_id = s.member_id;
      m.group_instance_id = s.group_instance_id;
      m.client_id = s.client_id;
      m.client_host = s.client_host;
      m.session_timeout_ms = s.session_timeout_ms;
      m.rebalance_timeout_ms = s.rebalance_timeout_ms;
      m.protocol_type = value.protocol_type;
      if (value.protocol_name) m.protocols.push_back(Protocol{*value.protocol_name, s.subscription});
      m.assignment = s.assignment;
      // Members get a full session to find the coordinator again.
      m.session_deadline = t + m.session_timeout_ms;
      if (m.group_instance_id) group->static_members[*m.group_instance_id] = m.member_id;
      group->join_order.push_back(m.member_id);
      group->members.emplace(m.member_id, std::move(m));
    }
    group->state = group->members.empty() ? GroupState::empty : GroupState::stable;
    part.groups[id] = std::move(group);
  }
  for (auto& [id, committed] : offsets) {
    if (committed.empty()) continue;
    auto& group = part.groups[id];
    if (!group) {
      group = std::make_unique<Group>();
      group->group_id = id;
      group->state = GroupState::empty;
    }
    for (auto& [tp, value] : committed) group->offsets[tp] = CommittedOffset{value};
  }
  for (auto& [producer_id, by_group] : txn_pending) {
    for (auto& [id, pending] : by_group) {
      auto& group = part.groups[id];
      if (!group) {
        group = std::make_unique<Group>();
        group->group_id = id;
        group->state = GroupState::empty;
      }
      for (auto& [tp, value] : pending) {
        if (!value.metadata || value.metadata->size() > kMaxOffsetMetadataBytes) value.metadata = "";
      }
      group->pending_txn_offsets[producer_id] = std::move(pending);
      part.txn_groups[producer_id].insert(id);
    }
  }
  part.status = CoordinatorPartition::Status::active;
  if (!part.groups.empty()) {
    HF_INFO("group coordinator: {}-{} loaded: {} records, {} groups", kOffsetsTopic, part.index,
            records_seen, part.groups.size());
  }
}

}  // namespace holdfast::coordinator
