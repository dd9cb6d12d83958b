#include "replication/partition.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

#include "base/log.h"

namespace holdfast::replication {
namespace {

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* to_string(Errc code) {
  switch (code) {
    case Errc::storage_error:
      return "storage_error";
    case Errc::shut_down:
      return "shut_down";
    case Errc::not_leader:
      return "not_leader";
    case Errc::not_replica:
      return "not_replica";
    case Errc::not_enough_replicas:
      return "not_enough_replicas";
    case Errc::not_enough_replicas_after_append:
      return "not_enough_replicas_after_append";
    case Errc::log_failed:
      return "log_failed";
    case Errc::log_closed:
      return "log_closed";
  }
  return "unknown";
}

Partition::Partition(storage::LogManager& logs, storage::PartitionLog& log, int32_t local_id,
                     Clock clock)
    : logs_(logs),
      log_(log),
      local_id_(local_id),
      clock_(clock ? std::move(clock) : Clock(steady_now_ms)),
      leader_id_(local_id),
      replicas_{local_id},
      isr_{local_id},
      // Unknown until a leader tells us (or we lead alone): the log start.
      high_watermark_(log.log_start_offset()) {}

// ---- State ----

int32_t Partition::leader_id() const {
  std::lock_guard lock(mu_);
  return leader_id_;
}

int32_t Partition::leader_epoch() const {
  if (role_.load() == Role::leader) return log_.leader_epoch();
  std::lock_guard lock(mu_);
  return image_leader_epoch_;
}

int32_t Partition::partition_epoch() const {
  std::lock_guard lock(mu_);
  return std::max(partition_epoch_, 0);
}

std::vector<int32_t> Partition::replicas() const {
  std::lock_guard lock(mu_);
  return replicas_;
}

std::vector<int32_t> Partition::isr() const {
  std::lock_guard lock(mu_);
  return isr_;
}

std::vector<int32_t> Partition::maximal_isr() const {
  std::lock_guard lock(mu_);
  return maximal_isr_locked();
}

bool Partition::isr_change_pending() const {
  std::lock_guard lock(mu_);
  return pending_isr_.has_value();
}

bool Partition::is_member(const std::vector<int32_t>& ids, int32_t id) const {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

std::vector<int32_t> Partition::maximal_isr_locked() const {
  std::vector<int32_t> out = isr_;
  if (pending_isr_) {
    for (int32_t id : *pending_isr_) {
      if (!is_member(out, id)) out.push_back(id);
    }
  }
  return out;
}

void Partition::update_solo_locked() {
  bool solo = role_.load() == Role::leader;
  for (int32_t id : maximal_isr_locked()) solo = solo && id == local_id_;
  if (solo && !solo_.load()) {
    // From here on high_watermark() reads the log's; never below ours.
    high_watermark_.store(std::max(high_watermark_.load(), log_.high_watermark()));
  }
  solo_.store(solo);
}

void Partition::reset_followers_locked(int64_t now_ms) {
  followers_.clear();
  for (int32_t id : replicas_) {
    if (id == local_id_) continue;
    Follower f;
    // Kafka's rule: ISR members get a full lag period to fetch from the new
    // leader before they count as lagging.
    f.progress.last_caught_up_ms = is_member(isr_, id) ? now_ms : 0;
    followers_[id] = f;
  }
}

bool Partition::become_leader(int32_t leader_epoch, int32_t partition_epoch,
                              std::vector<int32_t> replicas, std::vector<int32_t> isr) {
  std::vector<Completion> ready;
  bool changed;
  {
    std::unique_lock role_lock(role_mu_);
    std::lock_guard lock(mu_);
    changed = role_.load() != Role::leader || leader_epoch != image_leader_epoch_;
    if (changed && leader_epoch > log_.leader_epoch()) {
      if (auto raised = log_.set_leader_epoch(leader_epoch); !raised) {
        // An offline or failed log: it refuses appends anyway.
        HF_WARN("{}-{}: cannot raise the log's leader epoch to {}: {}", topic(), index(),
                leader_epoch, raised.error().message);
      }
    }
    // A record of another partition of the topic re-applies this one's
    // unchanged state: only a newer partition epoch (or a new leadership)
    // replaces it, and clears a pending ISR proposal.
    const bool newer = changed || partition_epoch > partition_epoch_;
    if (newer) {
      replicas_ = std::move(replicas);
      isr_ = std::move(isr);
      partition_epoch_ = partition_epoch;
      clear_isr_proposal_locked();
    }
    if (changed) {
      role_.store(Role::leader);
      leader_id_ = local_id_;
      image_leader_epoch_ = leader_epoch;
      ++leadership_;
      leader_epoch_start_offset_ = log_.log_end_offset();
      reset_followers_locked(clock_());
      // A follower's HW may be above what this log holds after a truncation
      // raced with it; never above the log end.
      high_watermark_.store(std::min(high_watermark_.load(), log_.log_end_offset()));
    } else if (newer) {
      // Same leadership: replicas may have changed.
      for (int32_t id : replicas_) {
        if (id != local_id_ && !followers_.count(id)) followers_[id] = Follower{};
      }
      std::erase_if(followers_, [&](const auto& f) { return !is_member(replicas_, f.first); });
    }
    update_solo_locked();
    advance_high_watermark_locked(ready);
  }
  after_unlock(std::move(ready), std::nullopt, true);
  return changed;
}

bool Partition::become_follower(int32_t leader_id, int32_t leader_epoch, int32_t partition_epoch,
                                std::vector<int32_t> replicas, std::vector<int32_t> isr) {
  std::vector<Completion> ready;
  bool changed;
  {
    std::unique_lock role_lock(role_mu_);
    std::lock_guard lock(mu_);
    changed = role_.load() != Role::follower || leader_id != leader_id_ ||
              leader_epoch != image_leader_epoch_;
    if (changed || partition_epoch > partition_epoch_) {
      replicas_ = std::move(replicas);
      isr_ = std::move(isr);
      partition_epoch_ = partition_epoch;
      clear_isr_proposal_locked();
    }
    if (changed) {
      role_.store(Role::follower);
      leader_id_ = leader_id;
      image_leader_epoch_ = leader_epoch;
      ++leadership_;
      followers_.clear();
      fail_all_waiters_locked(
          Errc::not_leader,
          fmt::format("{}-{}: this replica stopped leading (the leader is now {}, epoch {})",
                      topic(), index(), leader_id, leader_epoch),
          ready);
      high_watermark_.store(std::min(high_watermark_.load(), log_.log_end_offset()));
    }
    update_solo_locked();
  }
  after_unlock(std::move(ready), std::nullopt, changed);
  return changed;
}

void Partition::apply_isr(std::vector<int32_t> isr, int32_t partition_epoch) {
  std::vector<Completion> ready;
  bool moved = false;
  {
    std::lock_guard lock(mu_);
    if (partition_epoch <= partition_epoch_) return;  // not newer than what we have
    isr_ = std::move(isr);
    partition_epoch_ = partition_epoch;
    clear_isr_proposal_locked();
    if (role_.load() == Role::leader) {
      // A member that just joined has been fetching all along: keep its
      // progress. One that left keeps its progress too (it may come back).
      update_solo_locked();
      moved = advance_high_watermark_locked(ready);
      // The ISR may have shrunk below a waiter's min.insync.replicas without
      // the HW moving: those already past the HW were answered; the others
      // are answered (after_append) when the HW reaches them.
      take_reached_waiters_locked(ready);
    } else {
      update_solo_locked();
    }
  }
  after_unlock(std::move(ready), std::nullopt, moved);
}

// ---- ISR proposals ----

void Partition::set_isr_change_sink(IsrChangeSink sink) {
  std::lock_guard lock(mu_);
  sink_ = std::move(sink);
}

void Partition::clear_isr_proposal_locked() {
  pending_isr_.reset();
  isr_backoff_ms_ = 0;
  isr_retry_at_ms_ = 0;
}

IsrProposal Partition::propose_locked(std::vector<int32_t> new_isr) {
  pending_isr_ = new_isr;
  update_solo_locked();
  IsrProposal proposal;
  proposal.topic = topic();
  proposal.partition = index();
  proposal.leader_epoch = image_leader_epoch_;
  proposal.partition_epoch = std::max(partition_epoch_, 0);
  proposal.new_isr = std::move(new_isr);
  return proposal;
}

void Partition::maybe_shrink_isr(int64_t now_ms) {
  std::optional<IsrProposal> proposal;
  {
    std::lock_guard lock(mu_);
    if (role_.load() != Role::leader || pending_isr_ || !sink_) return;
    if (now_ms < isr_retry_at_ms_) return;  // backing off after a refusal
    const int64_t leader_end = log_.log_end_offset();
    const int64_t lag_max = lag_max_ms_.load();
    std::vector<int32_t> keep;
    std::vector<int32_t> lagging;
    for (int32_t id : isr_) {
      auto f = followers_.find(id);
      const bool caught_up =
          id == local_id_ ||
          (f != followers_.end() && (f->second.progress.fetch_offset >= leader_end ||
                                     now_ms - f->second.progress.last_caught_up_ms <= lag_max));
      (caught_up ? keep : lagging).push_back(id);
    }
    if (lagging.empty()) return;
    HF_INFO("{}-{}: proposing to shrink the ISR from {} to {}: {} not caught up within {} ms",
            topic(), index(), fmt::join(isr_, ","), fmt::join(keep, ","), fmt::join(lagging, ","),
            lag_max);
    proposal = propose_locked(std::move(keep));
  }
  after_unlock({}, std::move(proposal), false);
}

std::optional<IsrProposal> Partition::maybe_expand_isr_locked(int32_t replica_id) {
  if (!sink_ || pending_isr_ || is_member(isr_, replica_id)) return std::nullopt;
  if (isr_retry_at_ms_ > 0 && clock_() < isr_retry_at_ms_) return std::nullopt;  // backing off
  const auto& progress = followers_.at(replica_id).progress;
  if (progress.fetch_offset < high_watermark_.load() ||
      progress.fetch_offset < leader_epoch_start_offset_) {
    return std::nullopt;
  }
  // Replica order, as the controller writes ISRs.
  std::vector<int32_t> grown;
  for (int32_t id : replicas_) {
    if (id == replica_id || is_member(isr_, id)) grown.push_back(id);
  }
  HF_INFO("{}-{}: proposing to add replica {} to the ISR (fetched up to {})", topic(), index(),
          replica_id, progress.fetch_offset);
  return propose_locked(std::move(grown));
}

int64_t Partition::isr_proposal_failed() {
  std::vector<Completion> ready;
  bool moved = false;
  int64_t backoff;
  {
    std::lock_guard lock(mu_);
    pending_isr_.reset();
    const int64_t cap = std::max<int64_t>(lag_max_ms_.load(), 1);
    isr_backoff_ms_ = std::min(isr_backoff_ms_ == 0 ? kIsrRetryBackoffInitialMs
                                                    : isr_backoff_ms_ * 2,
                               cap);
    backoff = isr_backoff_ms_;
    isr_retry_at_ms_ = clock_() + backoff;
    update_solo_locked();
    moved = advance_high_watermark_locked(ready);
  }
  after_unlock(std::move(ready), std::nullopt, moved);
  return backoff;
}

// ---- High watermark ----

int64_t Partition::high_watermark() const {
  if (solo_.load()) return std::max(high_watermark_.load(), log_.high_watermark());
  return high_watermark_.load();
}

bool Partition::high_watermark_reached(int64_t end_offset) const {
  return high_watermark() >= end_offset;
}

bool Partition::advance_high_watermark_locked(std::vector<Completion>& ready) {
  if (role_.load() != Role::leader) return false;
  int64_t candidate = log_.high_watermark();
  for (int32_t id : maximal_isr_locked()) {
    if (id == local_id_) continue;
    auto f = followers_.find(id);
    candidate = std::min(candidate, f == followers_.end() ? -1 : f->second.progress.fetch_offset);
  }
  const int64_t before = high_watermark_.load();
  const bool moved = candidate > before;
  if (moved) high_watermark_.store(candidate);
  take_reached_waiters_locked(ready);
  return moved;
}

void Partition::take_reached_waiters_locked(std::vector<Completion>& ready) {
  const int64_t hw = high_watermark();
  const size_t isr_size = isr_.size();
  while (!waiters_.empty() && waiters_.begin()->first <= hw) {
    Waiter w = std::move(waiters_.begin()->second);
    waiters_.erase(waiters_.begin());
    if (static_cast<size_t>(std::max(w.min_insync, 0)) > isr_size) {
      ready.emplace_back(std::move(w.done),
                         make_error(Errc::not_enough_replicas_after_append,
                                    fmt::format("{}-{}: the ISR has {} member(s), fewer than "
                                                "min.insync.replicas={}",
                                                topic(), index(), isr_size, w.min_insync)));
    } else {
      ready.emplace_back(std::move(w.done), Result<void, Errc>());
    }
  }
}

void Partition::fail_all_waiters_locked(Errc code, const std::string& why,
                                        std::vector<Completion>& ready) {
  for (auto& [end, w] : waiters_) ready.emplace_back(std::move(w.done), make_error(code, why));
  waiters_.clear();
}

Errc Partition::from_log(storage::Errc code) {
  return code == storage::Errc::closed ? Errc::log_closed : Errc::log_failed;
}

void Partition::wait_for_high_watermark(int64_t end_offset, HighWatermarkCallback done,
                                        int32_t min_insync) {
  uint64_t leadership;
  {
    std::lock_guard lock(mu_);
    leadership = leadership_;
  }
  // First this replica's own durability (io_error and closed come from the
  // log), then the followers'. In single-node mode the second step finds the
  // HW already there: the log raises its high watermark before it completes
  // durability waiters.
  logs_.wait_durable(
      &log_, end_offset,
      [weak = weak_from_this(), end_offset, leadership, min_insync,
       done = std::move(done)](Result<void, storage::Errc> durable) mutable {
        if (!durable) {
          done(make_error(from_log(durable.code()), durable.error().message));
          return;
        }
        auto self = weak.lock();
        if (!self) {
          done(make_error(Errc::log_closed, "the partition was removed"));
          return;
        }
        self->on_locally_durable(end_offset, leadership, min_insync, std::move(done));
      });
}

void Partition::on_locally_durable(int64_t end_offset, uint64_t leadership, int32_t min_insync,
                                   HighWatermarkCallback done) {
  std::vector<Completion> ready;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      ready.emplace_back(std::move(done),
                         make_error(Errc::log_closed, fmt::format("{}-{} was closed", topic(),
                                                                  index())));
    } else if (leadership != leadership_ || role_.load() != Role::leader) {
      ready.emplace_back(std::move(done),
                         make_error(Errc::not_leader,
                                    fmt::format("{}-{}: leadership changed before offset {} was "
                                                "replicated",
                                                topic(), index(), end_offset)));
    } else {
      waiters_.emplace(end_offset, Waiter{min_insync, std::move(done)});
      advance_high_watermark_locked(ready);
    }
  }
  after_unlock(std::move(ready), std::nullopt, false);
}

void Partition::wait_for_local(int64_t end_offset, HighWatermarkCallback done) {
  logs_.wait_durable(&log_, end_offset,
                     [done = std::move(done)](Result<void, storage::Errc> durable) {
                       if (!durable) {
                         done(make_error(from_log(durable.code()), durable.error().message));
                       } else {
                         done({});
                       }
                     });
}

bool Partition::on_log_high_watermark_advanced() {
  std::vector<Completion> ready;
  {
    std::lock_guard lock(mu_);
    advance_high_watermark_locked(ready);
  }
  after_unlock(std::move(ready), std::nullopt, false);
  return true;
}

// ---- Produce ----

Result<void, Errc> Partition::check_min_isr(int32_t min_insync) const {
  std::lock_guard lock(mu_);
  if (role_.load() != Role::leader) {
    return make_error(Errc::not_leader, fmt::format("{}-{}: this broker is not the leader (the "
                                                    "leader is {})",
                                                    topic(), index(), leader_id_));
  }
  if (min_insync > 0 && isr_.size() < static_cast<size_t>(min_insync)) {
    return make_error(Errc::not_enough_replicas,
                      fmt::format("{}-{}: the ISR has {} member(s), fewer than "
                                  "min.insync.replicas={}",
                                  topic(), index(), isr_.size(), min_insync));
  }
  return {};
}

storage::StorageResult<storage::AppendResult> Partition::append(std::span<const uint8_t> batch,
                                                                const record::BatchHeader& header) {
  bool has_followers;
  storage::StorageResult<storage::AppendResult> appended =
      make_error(storage::Errc::closed, std::string());
  {
    std::shared_lock role_lock(role_mu_);
    if (role_.load() != Role::leader) {
      return make_error(storage::Errc::closed,
                        fmt::format("{}-{}: this broker is not the leader", topic(), index()));
    }
    has_followers = !solo_.load();
    // The idempotence check runs inside the log's append, under its lock, so
    // concurrent produces of one producer are checked in append order.
    appended = log_.append(batch, header);  // stamped with the log's leader epoch
  }
  // Followers long-polling for new data wake (under flush.policy=always the
  // log itself only notifies once the bytes are durable).
  if (appended && has_followers) wake();
  return appended;
}

// ---- Follower fetches ----

Result<void, Errc> Partition::record_follower_fetch(int32_t replica_id, int64_t fetch_offset,
                                                    int64_t now_ms) {
  std::vector<Completion> ready;
  std::optional<IsrProposal> proposal;
  bool moved;
  {
    std::lock_guard lock(mu_);
    if (role_.load() != Role::leader) {
      return make_error(Errc::not_leader,
                        fmt::format("{}-{}: this broker is not the leader", topic(), index()));
    }
    auto it = followers_.find(replica_id);
    if (replica_id == local_id_ || it == followers_.end()) {
      return make_error(Errc::not_replica, fmt::format("broker {} is not a follower of {}-{}",
                                                       replica_id, topic(), index()));
    }
    Follower& f = it->second;
    const int64_t leader_end = log_.log_end_offset();
    // Kafka's lastCaughtUpTime: caught up now if it has everything; caught
    // up as of its previous fetch if it has what the leader had then.
    if (fetch_offset >= leader_end) {
      f.progress.last_caught_up_ms = now_ms;
    } else if (f.leader_end_at_last_fetch >= 0 && fetch_offset >= f.leader_end_at_last_fetch) {
      f.progress.last_caught_up_ms =
          std::max(f.progress.last_caught_up_ms, f.progress.last_fetch_ms);
    }
    f.progress.fetch_offset = fetch_offset;
    f.progress.last_fetch_ms = now_ms;
    f.leader_end_at_last_fetch = leader_end;
    moved = advance_high_watermark_locked(ready);
    proposal = maybe_expand_isr_locked(replica_id);
  }
  after_unlock(std::move(ready), std::move(proposal), moved);
  return {};
}

storage::StorageResult<storage::ReadResult> Partition::read_for_follower(int64_t offset,
                                                                         size_t max_bytes,
                                                                         bool min_one_batch) const {
  auto read = log_.read(offset, max_bytes, min_one_batch, log_.log_end_offset());
  if (read) read->high_watermark = high_watermark();
  return read;
}

std::optional<FollowerProgress> Partition::follower_progress(int32_t replica_id) const {
  std::lock_guard lock(mu_);
  auto it = followers_.find(replica_id);
  if (it == followers_.end()) return std::nullopt;
  return it->second.progress;
}

int64_t Partition::high_watermark_sent(int32_t replica_id) const {
  std::lock_guard lock(mu_);
  auto it = followers_.find(replica_id);
  return it == followers_.end() ? -1 : it->second.high_watermark_sent;
}

void Partition::note_high_watermark_sent(int32_t replica_id, int64_t high_watermark) {
  std::lock_guard lock(mu_);
  auto it = followers_.find(replica_id);
  if (it != followers_.end()) {
    it->second.high_watermark_sent = std::max(it->second.high_watermark_sent, high_watermark);
  }
}

void Partition::set_follower_high_watermark(int64_t high_watermark) {
  std::lock_guard lock(mu_);
  if (role_.load() != Role::follower) return;
  const int64_t bounded = std::min(high_watermark, log_.log_end_offset());
  if (bounded > high_watermark_.load()) high_watermark_.store(bounded);
}

void Partition::wait_durable(int64_t end_offset,
                             std::function<void(Result<void, storage::Errc>)> done) {
  logs_.wait_durable(&log_, end_offset, std::move(done));
}

// ---- Reads ----

storage::StorageResult<storage::ReadResult> Partition::read(int64_t offset, size_t max_bytes,
                                                            bool min_one_batch) const {
  const int64_t bound = high_watermark();
  auto read = log_.read(offset, max_bytes, min_one_batch, bound);
  if (read) read->high_watermark = bound;
  return read;
}

int64_t Partition::last_stable_offset() const {
  const int64_t hw = high_watermark();
  const std::optional<int64_t> unstable = log_.first_unstable_offset(hw);
  return unstable ? std::min(*unstable, hw) : hw;
}

storage::StorageResult<storage::ReadResult> Partition::read_committed(int64_t offset,
                                                                      size_t max_bytes,
                                                                      bool min_one_batch) const {
  const int64_t hw = high_watermark();
  const std::optional<int64_t> unstable = log_.first_unstable_offset(hw);
  const int64_t lso = unstable ? std::min(*unstable, hw) : hw;
  auto read = log_.read(offset, max_bytes, min_one_batch, lso);
  if (read) {
    read->high_watermark = hw;
    read->last_stable_offset = lso;
  }
  return read;
}

std::optional<storage::TimestampAndOffset> Partition::offset_for_timestamp(
    int64_t timestamp) const {
  // The log only looks below its own high watermark; the partition's may be
  // lower, so cap to ours as well.
  const int64_t bound = high_watermark();
  auto found = log_.offset_for_timestamp(timestamp);
  if (found && found->offset >= bound) return std::nullopt;
  return found;
}

storage::StorageResult<int64_t> Partition::delete_records_before(int64_t offset) {
  const int64_t bound = high_watermark();
  if (offset == -1) offset = bound;
  if (offset < 0 || offset > bound) {
    return make_error(storage::Errc::offset_out_of_range,
                      fmt::format("cannot delete {}-{} records before {}: high watermark is {}",
                                  topic(), index(), offset, bound));
  }
  return log_.delete_records_before(offset);
}

// ---- Plumbing ----

void Partition::set_wake_hook(std::function<void()> hook) {
  std::lock_guard lock(hook_mu_);
  wake_hook_ = std::move(hook);
}

size_t Partition::waiting_for_followers() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

void Partition::close() {
  std::vector<Completion> ready;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    fail_all_waiters_locked(Errc::log_closed,
                            fmt::format("{}-{} was closed (removed, or shutdown)", topic(), index()),
                            ready);
  }
  after_unlock(std::move(ready), std::nullopt, false);
}

void Partition::wake() const {
  std::function<void()> hook;
  {
    std::lock_guard lock(hook_mu_);
    hook = wake_hook_;
  }
  if (hook) hook();
}

void Partition::after_unlock(std::vector<Completion> ready, std::optional<IsrProposal> proposal,
                             bool wake_fetches) {
  // Fetches first (consumers see the new HW), then acknowledgements.
  if (wake_fetches) wake();
  for (auto& [done, result] : ready) done(std::move(result));
  if (proposal) {
    IsrChangeSink sink;
    {
      std::lock_guard lock(mu_);
      sink = sink_;
    }
    if (sink) sink(std::move(*proposal));
  }
}

}  // namespace holdfast::replication
