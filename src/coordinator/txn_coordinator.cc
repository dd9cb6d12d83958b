// Lifecycle, leadership, persistence, replay, markers and timers of the
// transaction coordinator. The request operations are in txn_operations.cc.
#include "coordinator/txn_coordinator.h"

#include <algorithm>

#include "base/clock.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "coordinator/txn_state.h"
#include "record/batch.h"

namespace holdfast::coordinator {
namespace {

TxnErrc from_replication(replication::Errc e) {
  using replication::Errc;
  switch (e) {
    // As Kafka's TransactionStateManager: the client finds the coordinator
    // again (not_coordinator) or retries (coordinator_not_available).
    case Errc::not_leader:
    case Errc::log_failed:
      return TxnErrc::not_coordinator;
    default:
      return TxnErrc::coordinator_not_available;
  }
}

}  // namespace

const char* to_string(TxnErrc e) {
  switch (e) {
    case TxnErrc::none: return "none";
    case TxnErrc::not_coordinator: return "not_coordinator";
    case TxnErrc::coordinator_load_in_progress: return "coordinator_load_in_progress";
    case TxnErrc::coordinator_not_available: return "coordinator_not_available";
    case TxnErrc::invalid_request: return "invalid_request";
    case TxnErrc::invalid_transaction_timeout: return "invalid_transaction_timeout";
    case TxnErrc::concurrent_transactions: return "concurrent_transactions";
    case TxnErrc::producer_fenced: return "producer_fenced";
    case TxnErrc::invalid_producer_id_mapping: return "invalid_producer_id_mapping";
    case TxnErrc::invalid_txn_state: return "invalid_txn_state";
    case TxnErrc::transactional_id_not_found: return "transactional_id_not_found";
    case TxnErrc::storage_error: return "storage_error";
  }
  return "unknown";
}

TxnCoordinator::TxnCoordinator(TxnCoordinatorOptions options, TxnMarkerSender& markers)
    : options_(std::move(options)), markers_(markers) {
  if (!options_.clock) options_.clock = [] { return wall_clock_ms(); };
  for (int32_t p = 0; p < options_.num_partitions; ++p) {
    auto part = std::make_unique<TxnPartitionState>();
    part->index = p;
    partitions_.push_back(std::move(part));
  }
  last_timeout_check_ = now();
}

TxnCoordinator::~TxnCoordinator() { shutdown(); }

void TxnCoordinator::start() {
  loader_ = std::thread([this] {
    set_thread_name("hf-txn-load");
    loader_loop();
  });
  if (options_.start_timer_thread) {
    timer_ = std::thread([this] {
      set_thread_name("hf-txn-timer");
      timer_loop();
    });
  }
}

void TxnCoordinator::shutdown() {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard lock(threads_mu_);
    stop_threads_ = true;
  }
  threads_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  if (loader_.joinable()) loader_.join();
}

int32_t TxnCoordinator::partition_for(const std::string& transactional_id) const {
  return partition_for_transactional_id(transactional_id, options_.num_partitions);
}

TxnPartitionState* TxnCoordinator::partition_of(const std::string& transactional_id) {
  return partitions_[partition_for(transactional_id)].get();
}

std::optional<TxnErrc> TxnCoordinator::not_ready(const TxnPartitionState& part) const {
  if (stopped_) return TxnErrc::coordinator_not_available;
  switch (part.status) {
    case TxnPartitionState::Status::loading: return TxnErrc::coordinator_load_in_progress;
    case TxnPartitionState::Status::failed: return TxnErrc::coordinator_not_available;
    case TxnPartitionState::Status::unloaded: return TxnErrc::not_coordinator;
    case TxnPartitionState::Status::active: return std::nullopt;
  }
  return TxnErrc::coordinator_not_available;
}

// ---- leadership ----

void TxnCoordinator::became_leader(std::shared_ptr<replication::Partition> partition) {
  const int32_t index = partition->index();
  if (index < 0 || index >= options_.num_partitions) {
    HF_WARN("transaction coordinator: ignoring leadership of {}-{} ({} partitions configured)",
            kTransactionStateTopic, index, options_.num_partitions);
    return;
  }
  TxnPartitionState& part = *partitions_[index];
  uint64_t generation;
  {
    std::lock_guard lock(part.mu);
    if (partition->role() != replication::Role::leader) return;
    const int32_t epoch = partition->leader_epoch();
    if (part.replica == partition && part.leader_epoch == epoch &&
        (part.status == TxnPartitionState::Status::loading ||
         part.status == TxnPartitionState::Status::active)) {
      return;
    }
    unload_locked(part);
    part.replica = std::move(partition);
    part.leader_epoch = epoch;
    part.status = TxnPartitionState::Status::loading;
    generation = part.generation;
  }
  {
    std::lock_guard lock(threads_mu_);
    load_queue_.emplace_back(index, generation);
  }
  threads_cv_.notify_all();
}

void TxnCoordinator::became_follower(const std::shared_ptr<replication::Partition>& partition) {
  const int32_t index = partition->index();
  if (index < 0 || index >= options_.num_partitions) return;
  TxnPartitionState& part = *partitions_[index];
  std::lock_guard lock(part.mu);
  if (part.status == TxnPartitionState::Status::unloaded) return;
  HF_INFO("transaction coordinator: no longer leading {}-{}: unloading {} transactional ids",
          kTransactionStateTopic, index, part.txns.size());
  unload_locked(part);
}

void TxnCoordinator::unload_locked(TxnPartitionState& part) {
  // Writes and marker sends in flight see another generation and are dropped
  // (their requests are answered not_coordinator).
  ++part.generation;
  part.txns.clear();
  part.replica.reset();
  part.leader_epoch = -1;
  part.status = TxnPartitionState::Status::unloaded;
}

bool TxnCoordinator::serving(int32_t partition) {
  if (partition < 0 || partition >= options_.num_partitions) return false;
  std::lock_guard lock(partitions_[partition]->mu);
  return partitions_[partition]->status == TxnPartitionState::Status::active;
}

bool TxnCoordinator::wait_until_loaded(int64_t timeout_ms) {
  auto loaded = [this] {
    for (auto& part : partitions_) {
      std::lock_guard lock(part->mu);
      if (part->status == TxnPartitionState::Status::loading) return false;
    }
    return true;
  };
  std::unique_lock lock(threads_mu_);
  return threads_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return loaded(); });
}

void TxnCoordinator::loader_loop() {
  for (;;) {
    std::pair<int32_t, uint64_t> next;
    {
      std::unique_lock lock(threads_mu_);
      threads_cv_.wait(lock, [this] { return stop_threads_ || !load_queue_.empty(); });
      if (stop_threads_) return;
      next = load_queue_.front();
      load_queue_.pop_front();
    }
    load_partition(*partitions_[next.first], next.second);
    threads_cv_.notify_all();
  }
}

void TxnCoordinator::load_partition(TxnPartitionState& part, uint64_t generation) {
  std::shared_ptr<replication::Partition> replica;
  {
    std::lock_guard lock(part.mu);
    if (part.generation != generation || part.status != TxnPartitionState::Status::loading) return;
    replica = part.replica;
  }
  storage::PartitionLog& log = replica->log();
  int64_t offset = log.log_start_offset();
  const int64_t end = log.log_end_offset();
  std::map<std::string, TxnValue> txns;
  bool failed = false;
  size_t records_seen = 0;
  while (offset < end && !failed) {
    auto read = log.read(offset, 1 << 20, true, end);
    if (!read) {
      HF_ERROR("transaction coordinator: reading {}-{} at {}: {}", kTransactionStateTopic,
               part.index, offset, read.error().message);
      failed = true;
      break;
    }
    auto data = read->records.span();
    if (data.empty()) break;
    while (!data.empty()) {
      auto header = record::check_batch(data);
      if (!header) {
        HF_ERROR("transaction coordinator: bad batch in {}-{} near {}", kTransactionStateTopic,
                 part.index, offset);
        failed = true;
        break;
      }
      auto batch = data.subspan(0, header->size_in_bytes());
      data = data.subspan(header->size_in_bytes());
      if (header->last_offset() < offset) continue;
      offset = header->last_offset() + 1;
      if (header->is_control()) continue;
      auto records = record::decode_records(batch);
      if (!records) {
        failed = true;
        break;
      }
      for (const auto& r : *records) {
        ++records_seen;
        if (!r.key) continue;
        auto id = decode_txn_key(r.key->span());
        if (!id) {
          HF_WARN("transaction coordinator: skipping record at {}-{}@{}: {}",
                  kTransactionStateTopic, part.index, r.offset, id.error().message);
          continue;
        }
        if (!r.value) {
          txns.erase(*id);
          continue;
        }
        auto value = decode_txn_value(r.value->span());
        if (!value) {
          HF_WARN("transaction coordinator: skipping record at {}-{}@{}: {}",
                  kTransactionStateTopic, part.index, r.offset, value.error().message);
          continue;
        }
        txns[*id] = std::move(*value);
      }
    }
  }
  int resumed = 0;
  {
    std::lock_guard lock(part.mu);
    if (part.generation != generation || part.status != TxnPartitionState::Status::loading ||
        replica->role() != replication::Role::leader ||
        replica->leader_epoch() != part.leader_epoch) {
      HF_INFO("transaction coordinator: discarding a stale load of {}-{}", kTransactionStateTopic,
              part.index);
      return;
    }
    if (failed) {
      part.status = TxnPartitionState::Status::failed;
      return;
    }
    for (auto& [id, value] : txns) {
      TxnMeta meta;
      meta.value = std::move(value);
      // A decision taken before this leadership: its markers are sent again
      // (the timer thread does it), then the Complete record is written.
      if (is_prepare(meta.value.state)) {
        meta.markers_pending = meta.value.partitions;
        ++resumed;
      }
      part.txns.emplace(id, std::move(meta));
    }
    part.status = TxnPartitionState::Status::active;
  }
  if (!txns.empty()) {
    HF_INFO("transaction coordinator: {}-{} loaded: {} records, {} transactional ids, {} "
            "transactions completing",
            kTransactionStateTopic, part.index, records_seen, txns.size(), resumed);
  }
}

// ---- persistence ----

void TxnCoordinator::write_locked(TxnPartitionState& part, const std::string& id, TxnValue value,
                                  std::function<void(TxnErrc)> done,
                                  std::vector<std::function<void()>>& deferred) {
  auto fail = [&](TxnErrc e) { deferred.push_back([done = std::move(done), e] { done(e); }); };
  if (!part.replica) return fail(TxnErrc::not_coordinator);
  replication::Partition* replica = part.replica.get();
  const int32_t min_insync = options_.min_insync_replicas ? options_.min_insync_replicas() : 0;
  if (auto ready = replica->check_min_isr(min_insync); !ready) {
    HF_WARN("transaction coordinator: not writing to {}-{}: {}", kTransactionStateTopic,
            part.index, ready.error().message);
    return fail(from_replication(ready.code()));
  }
  const std::string key = encode_txn_key(id);
  // Dead is never stored: it is the tombstone that removes the id.
  const bool tombstone = value.state == TxnState::dead;
  const std::string encoded = tombstone ? std::string() : encode_txn_value(value);
  record::BatchBuilder builder;
  builder.add(std::string_view(key),
              tombstone ? std::nullopt : std::optional<std::string_view>(encoded), now());
  Bytes batch = builder.build();
  auto header = record::parse_batch_header(batch.span());
  if (!header) return fail(TxnErrc::storage_error);
  auto appended = replica->append(batch.span(), *header);
  if (!appended) {
    HF_WARN("transaction coordinator: appending to {}-{} failed: {}", kTransactionStateTopic,
            part.index, appended.error().message);
    return fail(TxnErrc::not_coordinator);
  }
  part.txns[id].writing = true;
  const int64_t end = appended->last_offset + 1;
  deferred.push_back([this, replica = part.replica, part = &part, generation = part.generation,
                      id, value = std::move(value), done = std::move(done), end,
                      min_insync]() mutable {
    replica->wait_for_high_watermark(
        end,
        [this, part, generation, id = std::move(id), value = std::move(value),
         done = std::move(done)](Result<void, replication::Errc> replicated) mutable {
          TxnErrc result = TxnErrc::none;
          if (!replicated) {
            HF_WARN("transaction coordinator: {}-{} write not replicated: {}",
                    kTransactionStateTopic, part->index, replicated.error().message);
            result = from_replication(replicated.code());
          }
          on_written(part, generation, id, value, result, std::move(done));
        },
        min_insync);
  });
}

void TxnCoordinator::on_written(TxnPartitionState* part, uint64_t generation,
                                const std::string& id, const TxnValue& value, TxnErrc result,
                                std::function<void(TxnErrc)> done) {
  bool markers = false;
  {
    std::lock_guard lock(part->mu);
    auto it = part->txns.find(id);
    if (part->generation != generation || part->status != TxnPartitionState::Status::active ||
        it == part->txns.end()) {
      // Unloaded meanwhile: whoever leads now replays the record (or not).
      if (result == TxnErrc::none) result = TxnErrc::not_coordinator;
    } else {
      TxnMeta& meta = it->second;
      meta.writing = false;
      if (result == TxnErrc::none && value.state == TxnState::dead) {
        part->txns.erase(it);  // the tombstone is replicated: the id is gone
      } else if (result == TxnErrc::none) {
        meta.value = value;
        if (is_prepare(value.state)) {
          meta.markers_pending = value.partitions;
          meta.next_marker_attempt_ms = 0;
          meta.marker_failures = 0;
          markers = true;
        }
      }
    }
  }
  // Markers first, so that they are on their way when the client hears of
  // the decision.
  if (markers) send_markers(part, generation, id);
  done(result);
}

// ---- markers ----

void TxnCoordinator::send_markers(TxnPartitionState* part, uint64_t generation,
                                  const std::string& id) {
  TxnMarkers m;
  {
    std::lock_guard lock(part->mu);
    if (part->generation != generation || part->status != TxnPartitionState::Status::active) return;
    auto it = part->txns.find(id);
    if (it == part->txns.end()) return;
    TxnMeta& meta = it->second;
    if (!is_prepare(meta.value.state) || meta.writing || meta.markers_in_flight ||
        meta.markers_pending.empty()) {
      return;
    }
    meta.markers_in_flight = true;
    m.producer_id = meta.value.producer_id;
    m.producer_epoch = meta.value.producer_epoch;
    m.commit = meta.value.state == TxnState::prepare_commit;
    m.coordinator_epoch = part->leader_epoch;
    m.partitions.assign(meta.markers_pending.begin(), meta.markers_pending.end());
  }
  const int64_t producer_id = m.producer_id;
  const int16_t producer_epoch = m.producer_epoch;
  markers_.send(std::move(m), [this, part, generation, id, producer_id,
                               producer_epoch](std::vector<TxnPartition> acknowledged) {
    on_markers_done(part, generation, id, producer_id, producer_epoch, std::move(acknowledged));
  });
}

void TxnCoordinator::on_markers_done(TxnPartitionState* part, uint64_t generation,
                                     const std::string& id, int64_t producer_id,
                                     int16_t producer_epoch,
                                     std::vector<TxnPartition> acknowledged) {
  std::vector<std::function<void()>> deferred;
  {
    std::lock_guard lock(part->mu);
    if (part->generation != generation || part->status != TxnPartitionState::Status::active) return;
    auto it = part->txns.find(id);
    if (it == part->txns.end()) return;
    TxnMeta& meta = it->second;
    meta.markers_in_flight = false;
    if (stopped_) return;
    if (!is_prepare(meta.value.state) || meta.value.producer_id != producer_id ||
        meta.value.producer_epoch != producer_epoch) {
      return;
    }
    const size_t before = meta.markers_pending.size();
    for (const auto& tp : acknowledged) meta.markers_pending.erase(tp);
    if (meta.markers_pending.size() < before) meta.marker_failures = 0;
    if (meta.markers_pending.empty()) {
      TxnValue complete = meta.value;
      complete.state = meta.value.state == TxnState::prepare_commit ? TxnState::complete_commit
                                                                    : TxnState::complete_abort;
      complete.partitions.clear();
      complete.last_update_ms = now();
      // A failed write leaves the transaction in Prepare* with no marker
      // pending: tick() writes the Complete record again.
      write_locked(*part, id, std::move(complete), [](TxnErrc) {}, deferred);
    } else {
      // Retried with a backoff that doubles per failed send in a row, up to
      // 32 times the configured one (a partition leader that is down).
      const int shift = std::min(meta.marker_failures++, 5);
      meta.next_marker_attempt_ms = now() + (options_.marker_retry_backoff_ms << shift);
    }
  }
  for (auto& d : deferred) d();
}

// ---- timers ----

void TxnCoordinator::timer_loop() {
  std::unique_lock lock(threads_mu_);
  while (!stop_threads_) {
    threads_cv_.wait_for(lock, std::chrono::milliseconds(options_.tick_interval_ms));
    if (stop_threads_) break;
    lock.unlock();
    tick();
    lock.lock();
  }
}

void TxnCoordinator::tick() {
  if (stopped_) return;
  const int64_t t = now();
  TickChecks checks;
  checks.timeouts = t - last_timeout_check_ >= options_.abort_check_interval_ms;
  if (checks.timeouts) last_timeout_check_ = t;
  checks.expiration = t - last_expiration_check_ >= options_.expiration_check_interval_ms;
  if (checks.expiration) last_expiration_check_ = t;
  for (auto& part : partitions_) tick_partition(*part, t, checks);
}

int TxnCoordinator::abort_timed_out_now() {
  int aborted = 0;
  for (auto& part : partitions_) aborted += tick_partition(*part, now(), {true, false}).aborted;
  return aborted;
}

int TxnCoordinator::expire_idle_ids_now() {
  int expired = 0;
  for (auto& part : partitions_) expired += tick_partition(*part, now(), {false, true}).expired;
  return expired;
}

TxnCoordinator::TickCounts TxnCoordinator::tick_partition(TxnPartitionState& part, int64_t t,
                                                          TickChecks checks) {
  TickCounts counts;
  std::vector<std::function<void()>> deferred;
  std::vector<std::string> to_send;
  uint64_t generation;
  {
    std::lock_guard lock(part.mu);
    if (part.status != TxnPartitionState::Status::active) return counts;
    generation = part.generation;
    for (auto& [id, meta] : part.txns) {
      if (meta.writing || meta.markers_in_flight) continue;
      if (is_prepare(meta.value.state)) {
        if (meta.markers_pending.empty()) {
          TxnValue complete = meta.value;
          complete.state = meta.value.state == TxnState::prepare_commit
                               ? TxnState::complete_commit
                               : TxnState::complete_abort;
          complete.partitions.clear();
          complete.last_update_ms = t;
          write_locked(part, id, std::move(complete), [](TxnErrc) {}, deferred);
        } else if (t >= meta.next_marker_attempt_ms) {
          to_send.push_back(id);
        }
        continue;
      }
      const TxnState state = meta.value.state;
      const bool idle = state == TxnState::empty || state == TxnState::complete_commit ||
                        state == TxnState::complete_abort;
      if (checks.expiration && idle && t - meta.value.last_update_ms >= options_.id_expiration_ms) {
        HF_INFO("transaction coordinator: expiring transactional id '{}' (producer {}): idle "
                "for {} ms (transactional.id.expiration.ms {})",
                id, meta.value.producer_id, t - meta.value.last_update_ms,
                options_.id_expiration_ms);
        TxnValue dead = meta.value;
        dead.state = TxnState::dead;  // written as a tombstone
        dead.last_update_ms = t;
        write_locked(part, id, std::move(dead), [](TxnErrc) {}, deferred);
        ++counts.expired;
        continue;
      }
      if (checks.timeouts && meta.value.state == TxnState::ongoing &&
          t - meta.value.start_ms > meta.value.timeout_ms) {
        // Kafka's abortTimedOutTransactions: the epoch is bumped, so the
        // producer that let it time out is fenced from the transaction.
        HF_INFO("transaction coordinator: aborting transaction of '{}' (producer {} epoch {}): "
                "open for {} ms, timeout {} ms",
                id, meta.value.producer_id, meta.value.producer_epoch, t - meta.value.start_ms,
                meta.value.timeout_ms);
        TxnValue abort = meta.value;
        if (abort.producer_epoch < INT16_MAX - 1) {
          meta.last_producer_epoch = abort.producer_epoch;
          ++abort.producer_epoch;
        }
        abort.state = TxnState::prepare_abort;
        abort.last_update_ms = t;
        write_locked(part, id, std::move(abort), [](TxnErrc) {}, deferred);
        ++counts.aborted;
      }
    }
  }
  for (auto& d : deferred) d();
  for (const auto& id : to_send) send_markers(&part, generation, id);
  return counts;
}

}  // namespace holdfast::coordinator
