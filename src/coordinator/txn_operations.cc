// The request operations of the transaction coordinator: Kafka's
// TransactionCoordinator state checks, with its error for every illegal
// transition (docs/transactions.md lists them).
#include "base/log.h"
#include "coordinator/txn_coordinator.h"
#include "coordinator/txn_state.h"

namespace holdfast::coordinator {
namespace {

using Deferred = std::vector<std::function<void()>>;

void run(Deferred& deferred) {
  for (auto& d : deferred) d();
}

}  // namespace

void TxnCoordinator::init_producer_id(const std::string& transactional_id, int32_t timeout_ms,
                                      int64_t expected_producer_id, int16_t expected_epoch,
                                      std::function<void(InitProducerIdResult)> done) {
  auto fail = [&](TxnErrc e) { done(InitProducerIdResult{e, -1, -1}); };
  if (transactional_id.empty()) return fail(TxnErrc::invalid_request);
  if (timeout_ms <= 0 || timeout_ms > options_.max_timeout_ms) {
    return fail(TxnErrc::invalid_transaction_timeout);
  }
  TxnPartitionState* part = partition_of(transactional_id);
  Deferred deferred;
  {
    std::lock_guard lock(part->mu);
    if (auto e = not_ready(*part)) return fail(*e);
    auto it = part->txns.find(transactional_id);
    if (it == part->txns.end()) {
      auto id = options_.next_producer_id ? options_.next_producer_id()
                                          : Result<int64_t, std::string>(make_error(
                                                std::string("no producer ids")));
      if (!id) {
        HF_ERROR("transaction coordinator: no producer id for '{}': {}", transactional_id,
                 id.error().message);
        return fail(TxnErrc::coordinator_not_available);
      }
      // As Kafka: known with epoch -1 until the first record is written.
      TxnMeta meta;
      meta.value.producer_id = *id;
      meta.value.producer_epoch = -1;
      meta.value.timeout_ms = timeout_ms;
      meta.value.state = TxnState::empty;
      it = part->txns.emplace(transactional_id, std::move(meta)).first;
    }
    TxnMeta& meta = it->second;
    if (meta.writing) return fail(TxnErrc::concurrent_transactions);
    // KIP-360: a producer that names itself must be the current one (or the
    // one whose transaction the coordinator aborted with an epoch bump).
    if (expected_producer_id >= 0 &&
        (expected_producer_id != meta.value.producer_id ||
         (expected_epoch != meta.value.producer_epoch &&
          expected_epoch != meta.last_producer_epoch))) {
      return fail(TxnErrc::producer_fenced);
    }
    const int64_t t = now();
    switch (meta.value.state) {
      case TxnState::prepare_commit:
      case TxnState::prepare_abort:
      case TxnState::prepare_epoch_fence:
        // Completing: the client retries until it is done.
        return fail(TxnErrc::concurrent_transactions);
      case TxnState::dead:
        return fail(TxnErrc::invalid_txn_state);
      case TxnState::ongoing: {
        // The previous instance left a transaction open: it is aborted with
        // the epoch bumped (fencing that instance); the client retries.
        TxnValue abort = meta.value;
        if (abort.producer_epoch < INT16_MAX - 1) {
          meta.last_producer_epoch = abort.producer_epoch;
          ++abort.producer_epoch;
        }
        abort.state = TxnState::prepare_abort;
        abort.last_update_ms = t;
        write_locked(
            *part, transactional_id, std::move(abort),
            [done](TxnErrc e) {
              done(InitProducerIdResult{e == TxnErrc::none ? TxnErrc::concurrent_transactions : e,
                                        -1, -1});
            },
            deferred);
        break;
      }
      case TxnState::empty:
      case TxnState::complete_commit:
      case TxnState::complete_abort: {
        TxnValue next = meta.value;
        if (next.producer_epoch >= INT16_MAX - 1) {
          // Epoch exhausted: a new producer id starts at epoch 0.
          auto id = options_.next_producer_id();
          if (!id) return fail(TxnErrc::coordinator_not_available);
          next.producer_id = *id;
          next.producer_epoch = 0;
        } else {
          ++next.producer_epoch;
        }
        next.timeout_ms = timeout_ms;
        next.state = TxnState::empty;
        next.partitions.clear();
        next.last_update_ms = t;
        next.start_ms = -1;
        const int64_t pid = next.producer_id;
        const int16_t epoch = next.producer_epoch;
        write_locked(
            *part, transactional_id, std::move(next),
            [done, pid, epoch](TxnErrc e) {
              if (e != TxnErrc::none) return done(InitProducerIdResult{e, -1, -1});
              done(InitProducerIdResult{TxnErrc::none, pid, epoch});
            },
            deferred);
        break;
      }
    }
  }
  run(deferred);
}

void TxnCoordinator::add_partitions(const std::string& transactional_id, int64_t producer_id,
                                    int16_t producer_epoch, std::vector<TxnPartition> partitions,
                                    std::function<void(TxnErrc)> done) {
  if (transactional_id.empty()) return done(TxnErrc::invalid_request);
  TxnPartitionState* part = partition_of(transactional_id);
  Deferred deferred;
  {
    std::lock_guard lock(part->mu);
    if (auto e = not_ready(*part)) return done(*e);
    auto it = part->txns.find(transactional_id);
    if (it == part->txns.end() || it->second.value.producer_id != producer_id) {
      return done(TxnErrc::invalid_producer_id_mapping);
    }
    TxnMeta& meta = it->second;
    if (meta.value.producer_epoch != producer_epoch) return done(TxnErrc::producer_fenced);
    if (meta.writing) return done(TxnErrc::concurrent_transactions);
    switch (meta.value.state) {
      case TxnState::prepare_commit:
      case TxnState::prepare_abort:
      case TxnState::prepare_epoch_fence:
        return done(TxnErrc::concurrent_transactions);
      case TxnState::dead:
        return done(TxnErrc::invalid_txn_state);
      default:
        break;
    }
    TxnValue next = meta.value;
    const int64_t t = now();
    if (next.state != TxnState::ongoing) {
      next.partitions.clear();
      next.start_ms = t;
    }
    const size_t before = next.partitions.size();
    for (auto& tp : partitions) next.partitions.insert(std::move(tp));
    if (next.state == TxnState::ongoing && next.partitions.size() == before) {
      return done(TxnErrc::none);  // every partition is already in the transaction
    }
    next.state = TxnState::ongoing;
    next.last_update_ms = t;
    write_locked(*part, transactional_id, std::move(next), std::move(done), deferred);
  }
  run(deferred);
}

void TxnCoordinator::end_txn(const std::string& transactional_id, int64_t producer_id,
                             int16_t producer_epoch, bool commit,
                             std::function<void(TxnErrc)> done) {
  if (transactional_id.empty()) return done(TxnErrc::invalid_request);
  TxnPartitionState* part = partition_of(transactional_id);
  Deferred deferred;
  {
    std::lock_guard lock(part->mu);
    if (auto e = not_ready(*part)) return done(*e);
    auto it = part->txns.find(transactional_id);
    if (it == part->txns.end() || it->second.value.producer_id != producer_id) {
      return done(TxnErrc::invalid_producer_id_mapping);
    }
    TxnMeta& meta = it->second;
    if (meta.value.producer_epoch != producer_epoch) return done(TxnErrc::producer_fenced);
    if (meta.writing) return done(TxnErrc::concurrent_transactions);
    switch (meta.value.state) {
      case TxnState::ongoing: {
        TxnValue next = meta.value;
        next.state = commit ? TxnState::prepare_commit : TxnState::prepare_abort;
        next.last_update_ms = now();
        // Answered once the decision is replicated; the markers follow.
        write_locked(*part, transactional_id, std::move(next), std::move(done), deferred);
        break;
      }
      case TxnState::complete_commit:
        // A retry of a commit that completed; an abort is too late.
        return done(commit ? TxnErrc::none : TxnErrc::invalid_txn_state);
      case TxnState::complete_abort:
        return done(commit ? TxnErrc::invalid_txn_state : TxnErrc::none);
      case TxnState::prepare_commit:
        return done(commit ? TxnErrc::concurrent_transactions : TxnErrc::invalid_txn_state);
      case TxnState::prepare_abort:
        return done(commit ? TxnErrc::invalid_txn_state : TxnErrc::concurrent_transactions);
      case TxnState::prepare_epoch_fence:
        return done(TxnErrc::concurrent_transactions);
      case TxnState::empty:
      case TxnState::dead:
        return done(TxnErrc::invalid_txn_state);
    }
  }
  run(deferred);
}

TxnErrc TxnCoordinator::verify_partition(const std::string& transactional_id, int64_t producer_id,
                                         int16_t producer_epoch, const TxnPartition& partition) {
  TxnPartitionState* part = partition_of(transactional_id);
  std::lock_guard lock(part->mu);
  if (auto e = not_ready(*part)) return *e;
  auto it = part->txns.find(transactional_id);
  if (it == part->txns.end() || it->second.value.producer_id != producer_id) {
    return TxnErrc::invalid_producer_id_mapping;
  }
  const TxnValue& v = it->second.value;
  if (v.producer_epoch != producer_epoch) return TxnErrc::producer_fenced;
  if (v.state != TxnState::ongoing || !v.partitions.count(partition)) {
    return TxnErrc::invalid_txn_state;
  }
  return TxnErrc::none;
}

TxnDescription TxnCoordinator::describe(const std::string& transactional_id) {
  TxnDescription d;
  d.transactional_id = transactional_id;
  if (transactional_id.empty()) {
    d.error = TxnErrc::transactional_id_not_found;
    return d;
  }
  TxnPartitionState* part = partition_of(transactional_id);
  std::lock_guard lock(part->mu);
  if (auto e = not_ready(*part)) {
    d.error = *e;
    return d;
  }
  auto it = part->txns.find(transactional_id);
  // An id known with epoch -1 only (its first record failed) does not exist.
  if (it == part->txns.end() || it->second.value.producer_epoch < 0) {
    d.error = TxnErrc::transactional_id_not_found;
    return d;
  }
  const TxnValue& v = it->second.value;
  d.state = v.state;
  d.timeout_ms = v.timeout_ms;
  d.start_ms = v.state == TxnState::ongoing || is_prepare(v.state) ? v.start_ms : -1;
  d.producer_id = v.producer_id;
  d.producer_epoch = v.producer_epoch;
  d.partitions.assign(v.partitions.begin(), v.partitions.end());
  return d;
}

Result<std::vector<TxnListing>, TxnErrc> TxnCoordinator::list(
    const std::set<TxnState>& states, const std::set<int64_t>& producer_ids) {
  if (stopped_) return make_error(TxnErrc::coordinator_not_available);
  std::vector<TxnListing> out;
  for (auto& part : partitions_) {
    std::lock_guard lock(part->mu);
    if (part->status == TxnPartitionState::Status::loading) {
      return make_error(TxnErrc::coordinator_load_in_progress);
    }
    if (part->status != TxnPartitionState::Status::active) continue;
    for (const auto& [id, meta] : part->txns) {
      if (meta.value.producer_epoch < 0) continue;
      if (!states.empty() && !states.count(meta.value.state)) continue;
      if (!producer_ids.empty() && !producer_ids.count(meta.value.producer_id)) continue;
      out.push_back({id, meta.value.producer_id, meta.value.state});
    }
  }
  return out;
}

}  // namespace holdfast::coordinator
