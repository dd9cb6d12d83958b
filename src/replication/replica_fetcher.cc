#include "replication/replica_fetcher.h"

#include <algorithm>
#include <condition_variable>
#include <optional>
#include <thread>

#include "base/log.h"
#include "base/thread_name.h"

namespace holdfast::replication {
namespace {

// The Kafka error codes the fetcher reads in responses (Errors.java). This
// module sits below the server's KafkaError; it only interprets, never produces.
constexpr int16_t kNone = 0;
constexpr int16_t kOffsetOutOfRange = 1;

using Clock = std::chrono::steady_clock;
using TopicPartition = std::pair<std::string, int32_t>;

// Completion callbacks (the client thread, the flusher) hand their results to
// the fetcher thread through this, never through the fetcher's own mutex: that
// one is held while calling into replicas, which may wait for the flusher.
// Shared with the callbacks, so a late one outlives the fetcher harmlessly.
struct Waker {
  std::mutex mutex;
  std::condition_variable cv;
  bool stop = false;
  uint64_t changes = 0;  // bumped by add(): an idle fetcher has work
};

template <typename T>
struct Slot {
  std::optional<T> value;  // under Waker::mutex
};

}  // namespace

class ReplicaFetcherManager::LeaderFetcher {
 public:
  LeaderFetcher(int32_t leader_id, net::Endpoint endpoint, net::KafkaClient& client,
                const ReplicaFetcherOptions& options)
      : leader_id_(leader_id),
        client_(client),
        options_(options),
        endpoint_(std::move(endpoint)),
        waker_(std::make_shared<Waker>()) {
    thread_ = std::thread([this] {
      set_thread_name("hf-fetch-" + std::to_string(leader_id_));
      run();
    });
  }
  ~LeaderFetcher() { stop(); }

  void set_endpoint(const net::Endpoint& endpoint) {
    std::lock_guard lock(mutex_);
    endpoint_ = endpoint;
  }

  void add(std::shared_ptr<FollowerReplica> replica) {
    {
      std::lock_guard lock(mutex_);
      TopicPartition key{replica->topic(), replica->index()};
      PartitionState& state = partitions_[key];
      state = PartitionState{};
      state.replica = std::move(replica);
      state.generation = ++generations_;
    }
    std::lock_guard lock(waker_->mutex);
    ++waker_->changes;
    waker_->cv.notify_all();
  }

  // Waits for a response being applied (mutex_), so nothing of this
  // partition's follows.
  bool remove(const TopicPartition& key) {
    bool removed;
    {
      std::lock_guard lock(mutex_);
      removed = partitions_.erase(key) > 0;
    }
    // A durability wait for it need not go on (wait_durable below).
    std::lock_guard lock(waker_->mutex);
    ++waker_->changes;
    waker_->cv.notify_all();
    return removed;
  }

  void stop() {
    {
      std::lock_guard lock(waker_->mutex);
      waker_->stop = true;
      waker_->cv.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    partitions_.clear();
  }

 private:
  struct PartitionState {
    std::shared_ptr<FollowerReplica> replica;
    uint64_t generation = 0;  // per add(): a response for an earlier one is discarded
    bool needs_truncation = true;
    // Epoch to ask OffsetForLeaderEpoch for in the next round of the
    // truncation loop; nullopt = the replica's latest.
    std::optional<int32_t> truncation_epoch;
    Clock::time_point delayed_until{};
    int16_t last_error = kNone;  // logged when it changes, not on every retry
  };

  // What one request covered, to match the answers against the state.
  struct Sent {
    TopicPartition key;
    uint64_t generation;
    int64_t fetch_offset;  // Fetch
    int32_t asked_epoch;   // OffsetForLeaderEpoch
  };

  void run() {
    uint64_t seen_changes = 0;
    for (;;) {
      if (stopping()) return;
      std::vector<Sent> truncations;
      std::vector<Sent> fetches;
      net::Endpoint endpoint;
      std::optional<Clock::time_point> next_ready;
      protocol::OffsetForLeaderEpochRequest epoch_request;
      protocol::FetchRequest fetch_request;
      {
        std::lock_guard lock(mutex_);
        endpoint = endpoint_;
        plan_locked(truncations, fetches, next_ready, epoch_request, fetch_request);
      }
      if (!truncations.empty()) {
        truncate_round(endpoint, epoch_request, truncations);
      } else if (!fetches.empty()) {
        fetch_round(endpoint, fetch_request, fetches);
      } else {
        // Idle: until a partition is added, a delayed one is due, or stop.
        std::unique_lock lock(waker_->mutex);
        auto woken = [&] { return waker_->stop || waker_->changes != seen_changes; };
        if (next_ready) {
          waker_->cv.wait_until(lock, *next_ready, woken);
        } else {
          waker_->cv.wait(lock, woken);
        }
        seen_changes = waker_->changes;
      }
    }
  }

  bool stopping() {
    std::lock_guard lock(waker_->mutex);
    return waker_->stop;
  }

  void plan_locked(std::vector<Sent>& truncations, std::vector<Sent>& fetches,
                   std::optional<Clock::time_point>& next_ready,
                   protocol::OffsetForLeaderEpochRequest& epoch_request,
                   protocol::FetchRequest& fetch_request) {
    const auto now = Clock::now();
    // A different partition first each round: only the first partition of a
    // response is sure to get a batch larger than partition_max_bytes
    // (KIP-74), so a fixed order could starve one behind another.
    std::vector<std::map<TopicPartition, PartitionState>::iterator> order;
    for (auto it = partitions_.begin(); it != partitions_.end(); ++it) order.push_back(it);
    if (!order.empty()) {
      std::rotate(order.begin(), order.begin() + static_cast<ptrdiff_t>(rounds_++ % order.size()),
                  order.end());
    }
    for (auto entry : order) {
      const TopicPartition& key = entry->first;
      PartitionState& state = entry->second;
      if (state.delayed_until > now) {
        next_ready = next_ready ? std::min(*next_ready, state.delayed_until) : state.delayed_until;
        continue;
      }
      FollowerReplica& replica = *state.replica;
      if (state.needs_truncation) {
        const int32_t epoch = state.truncation_epoch.value_or(replica.latest_epoch());
        if (epoch < 0) {
          // No epoch at all: nothing written by a leader we could compare
          // with. Anything present is refetched rather than trusted.
          if (!truncate_locked(key, state, replica.log_start_offset())) continue;
          state.needs_truncation = false;
        } else {
          truncations.push_back({key, state.generation, -1, epoch});
          auto& topic = topic_entry(epoch_request.topics, key.first);
          auto& p = topic.partitions.emplace_back();
          p.partition = key.second;
          p.current_leader_epoch = replica.current_leader_epoch();
          p.leader_epoch = epoch;
          continue;
        }
      }
      const int64_t fetch_offset = replica.log_end_offset();
      fetches.push_back({key, state.generation, fetch_offset, -1});
      auto& topic = topic_entry(fetch_request.topics, key.first);
      auto& p = topic.partitions.emplace_back();
      p.partition = key.second;
      p.current_leader_epoch = replica.current_leader_epoch();
      p.fetch_offset = fetch_offset;
      p.log_start_offset = replica.log_start_offset();
      p.partition_max_bytes = options_.partition_max_bytes;
    }
    epoch_request.replica_id = options_.node_id;
    fetch_request.replica_id = options_.node_id;
    fetch_request.max_wait_ms = options_.max_wait_ms;
    fetch_request.min_bytes = options_.min_bytes;
    fetch_request.max_bytes = options_.max_bytes;
    fetch_request.isolation_level = 0;
    fetch_request.session_id = 0;  // non-incremental
    fetch_request.session_epoch = -1;
    fetch_request.rack_id = options_.rack_id;
  }

  template <typename Topics>
  static typename Topics::value_type& topic_entry(Topics& topics, const std::string& name) {
    for (auto& t : topics) {
      if (t.topic == name) return t;
    }
    auto& t = topics.emplace_back();
    t.topic = name;
    return t;
  }

  // Sends and waits for the answer, or nullopt when the fetcher stops first.
  template <typename Response, typename Request>
  std::optional<net::NetResult<Response>> call(const net::Endpoint& endpoint,
                                               const Request& request, int16_t version,
                                               std::chrono::milliseconds timeout) {
    auto slot = std::make_shared<Slot<net::NetResult<Response>>>();
    client_.send<Response>(
        endpoint, request, version,
        [slot, waker = waker_](net::NetResult<Response> result) {
          std::lock_guard lock(waker->mutex);
          slot->value.emplace(std::move(result));
          waker->cv.notify_all();
        },
        timeout);
    std::unique_lock lock(waker_->mutex);
    waker_->cv.wait(lock, [&] { return waker_->stop || slot->value.has_value(); });
    if (waker_->stop) return std::nullopt;
    return std::move(slot->value);
  }

  void delay_locked(PartitionState& state) {
    state.delayed_until = Clock::now() + options_.backoff;
  }

  // The request failed as a whole: every partition it covered waits. Said
  // once per episode, not on every retry of an unreachable leader.
  void delay_all(const std::vector<Sent>& sent, const std::string& what, const std::string& why) {
    std::lock_guard lock(mutex_);
    if (failures_in_a_row_++ == 0) {
      HF_WARN("{} to leader {} ({}) failed: {}; retrying every {} ms (logged once)", what,
              leader_id_, endpoint_.to_string(), why, options_.backoff.count());
    } else {
      HF_DEBUG("{} to leader {} failed again: {}", what, leader_id_, why);
    }
    for (const auto& s : sent) {
      if (auto* state = current_locked(s)) delay_locked(*state);
    }
  }

  void answered() {
    if (failures_in_a_row_ == 0) return;
    HF_INFO("leader {} ({}) answers again after {} failed requests", leader_id_,
            endpoint_.to_string(), failures_in_a_row_);
    failures_in_a_row_ = 0;
  }

  // A partition-level error: retried after the backoff, logged when it changes.
  void partition_error_locked(const TopicPartition& key, PartitionState& state, const char* what,
                              int16_t error) {
    if (error != state.last_error) {
      HF_INFO("{}-{}: {} from leader {} answered error {}; retrying every {} ms", key.first,
              key.second, what, leader_id_, error, options_.backoff.count());
      state.last_error = error;
    }
    delay_locked(state);
  }

  PartitionState* current_locked(const Sent& sent) {
    auto it = partitions_.find(sent.key);
    if (it == partitions_.end() || it->second.generation != sent.generation) return nullptr;
    return &it->second;
  }

  // ---- Truncation by epoch (decision 3) ----

  void truncate_round(const net::Endpoint& endpoint,
                      const protocol::OffsetForLeaderEpochRequest& request,
                      const std::vector<Sent>& sent) {
    auto response = call<protocol::OffsetForLeaderEpochResponse>(
        endpoint, request, options_.offset_for_leader_epoch_version, options_.request_timeout);
    if (!response) return;  // stopping
    if (!*response) return delay_all(sent, "OffsetForLeaderEpoch", response->error().message);
    std::lock_guard lock(mutex_);
    answered();
    for (const auto& s : sent) {
      PartitionState* state = current_locked(s);
      if (!state) continue;
      const auto* answer = find_epoch_answer(**response, s.key);
      if (!answer) {
        HF_WARN("leader {} did not answer OffsetForLeaderEpoch for {}-{}", leader_id_, s.key.first,
                s.key.second);
        delay_locked(*state);
        continue;
      }
      if (answer->error_code != kNone) {
        partition_error_locked(s.key, *state, "OffsetForLeaderEpoch", answer->error_code);
        continue;
      }
      state->last_error = kNone;
      apply_epoch_answer_locked(s, *state, answer->leader_epoch, answer->end_offset);
    }
  }

  static const protocol::OffsetForLeaderEpochResponse::EpochEndOffset* find_epoch_answer(
      const protocol::OffsetForLeaderEpochResponse& response, const TopicPartition& key) {
    for (const auto& t : response.topics) {
      if (t.topic != key.first) continue;
      for (const auto& p : t.partitions) {
        if (p.partition == key.second) return &p;
      }
    }
    return nullptr;
  }

  void apply_epoch_answer_locked(const Sent& sent, PartitionState& state, int32_t leader_epoch,
                                 int64_t leader_end) {
    FollowerReplica& replica = *state.replica;
    int64_t truncate_at;
    if (leader_end < 0 || leader_epoch < 0) {
      // The leader knows no epoch <= ours: none of our records is from its
      // history. Start over (a fetch below its log start then moves us up).
      truncate_at = replica.log_start_offset();
    } else {
      auto ours = replica.end_offset_for_epoch(leader_epoch);
      if (!ours) {
        truncate_at = replica.log_start_offset();
      } else if (ours->first == leader_epoch) {
        truncate_at = std::min(leader_end, ours->second);
      } else {
        // We do not have the leader's epoch: compare again from our largest
        // epoch below it (strictly lower each round, so the loop ends).
        state.truncation_epoch = ours->first;
        return;
      }
    }
    if (!truncate_locked(sent.key, state, truncate_at)) return;
    state.needs_truncation = false;
    state.truncation_epoch.reset();
  }

  // Truncates (a no-op at or past the log end); false (and delayed) on failure.
  bool truncate_locked(const TopicPartition& key, PartitionState& state, int64_t offset) {
    FollowerReplica& replica = *state.replica;
    const int64_t end = replica.log_end_offset();
    if (offset >= end) return true;
    if (offset < replica.log_start_offset()) offset = replica.log_start_offset();
    auto truncated = replica.truncate_to(offset);
    if (!truncated) {
      HF_ERROR("truncating {}-{} to {} failed: {}", key.first, key.second, offset,
               truncated.error().message);
      delay_locked(state);
      return false;
    }
    HF_INFO("truncated {}-{} from {} to {} (following leader {})", key.first, key.second, end,
            offset, leader_id_);
    return true;
  }

  // ---- Fetch ----

  struct DurableWait {
    std::shared_ptr<FollowerReplica> replica;
    Sent sent;
    int64_t end_offset;
  };

  void fetch_round(const net::Endpoint& endpoint, const protocol::FetchRequest& request,
                   const std::vector<Sent>& sent) {
    auto response = call<protocol::FetchResponse>(
        endpoint, request, options_.fetch_version,
        options_.request_timeout + std::chrono::milliseconds(options_.max_wait_ms));
    if (!response) return;  // stopping
    if (!*response) return delay_all(sent, "Fetch", response->error().message);
    const auto& fetched = **response;
    if (fetched.error_code != kNone) {
      return delay_all(sent, "Fetch", "error " + std::to_string(fetched.error_code));
    }
    std::vector<DurableWait> durable;
    auto outcomes = std::make_shared<Slot<std::vector<DurableOutcome>>>();
    outcomes->value.emplace();
    {
      std::lock_guard lock(mutex_);
      answered();
      for (const auto& s : sent) {
        PartitionState* state = current_locked(s);
        if (!state) continue;  // removed or replaced meanwhile
        const auto* data = find_fetch_answer(fetched, s.key);
        if (!data) {
          delay_locked(*state);
          continue;
        }
        if (apply_fetched_locked(s, *state, *data)) {
          durable.push_back({state->replica, s, state->replica->log_end_offset()});
        }
      }
      // Registered under mutex_ too: nothing reaches a removed replica.
      register_durable_waits_locked(durable, outcomes);
    }
    wait_durable(durable, outcomes);
  }

  static const protocol::FetchResponse::PartitionData* find_fetch_answer(
      const protocol::FetchResponse& response, const TopicPartition& key) {
    for (const auto& t : response.responses) {
      if (t.topic != key.first) continue;
      for (const auto& p : t.partitions) {
        if (p.partition_index == key.second) return &p;
      }
    }
    return nullptr;
  }

  // Applies one partition's answer; true if something was appended.
  bool apply_fetched_locked(const Sent& sent, PartitionState& state,
                            const protocol::FetchResponse::PartitionData& data) {
    FollowerReplica& replica = *state.replica;
    const auto& [topic, partition] = sent.key;
    if (data.error_code == kOffsetOutOfRange) {
      if (data.log_start_offset >= 0 && sent.fetch_offset < data.log_start_offset) {
        HF_INFO("{}-{}: fetch offset {} is below leader {}'s log start {}; starting over there",
                topic, partition, sent.fetch_offset, leader_id_, data.log_start_offset);
        if (auto r = replica.truncate_fully_and_start_at(data.log_start_offset); !r) {
          HF_ERROR("{}-{}: cannot restart the log at {}: {}", topic, partition,
                   data.log_start_offset, r.error().message);
          delay_locked(state);
        }
        return false;
      }
      // Past the leader's log end: our log diverged (an unclean election, a
      // leader that lost its tail); truncate by epoch again.
      HF_WARN("{}-{}: fetch offset {} is out of range on leader {}; truncating by epoch again",
              topic, partition, sent.fetch_offset, leader_id_);
      state.needs_truncation = true;
      delay_locked(state);
      return false;
    }
    if (data.error_code != kNone) {
      // FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH / NOT_LEADER_OR_FOLLOWER /
      // UNKNOWN_TOPIC_OR_PARTITION / KAFKA_STORAGE_ERROR: the metadata will
      // move us (the lifecycle re-adds the partition); until then, retry.
      partition_error_locked(sent.key, state, "Fetch", data.error_code);
      return false;
    }
    state.last_error = kNone;
    bool appended = false;
    if (data.records && !data.records->empty()) {
      const auto bytes = data.records->span();
      size_t pos = 0;
      while (bytes.size() - pos >= record::kBatchHeaderSize) {
        const auto rest = bytes.subspan(pos);
        auto header = record::parse_batch_header(rest);
        if (!header || header->length < 0) {
          return corrupt_locked(sent, state, "unreadable batch header", appended);
        }
        const size_t size = header->size_in_bytes();
        if (size > rest.size()) break;  // a trailing partial batch: fetched whole next time
        const auto batch = rest.first(size);
        auto checked = record::check_batch(batch);
        if (!checked) {
          return corrupt_locked(sent, state, record::to_string(checked.code()), appended);
        }
        pos += size;
        const int64_t end = replica.log_end_offset();
        if (checked->last_offset() < end) continue;  // we have it already
        if (checked->base_offset != end) {
          HF_WARN("{}-{}: leader {} sent a batch at {} for log end {}; truncating by epoch again",
                  topic, partition, leader_id_, checked->base_offset, end);
          state.needs_truncation = true;
          return appended;
        }
        if (auto r = replica.append_replicated(batch, *checked); !r) {
          HF_ERROR("{}-{}: appending the batch at {} failed: {}; truncating by epoch again", topic,
                   partition, checked->base_offset, r.error().message);
          state.needs_truncation = true;
          delay_locked(state);
          return appended;
        }
        appended = true;
      }
    }
    if (data.high_watermark >= 0) {
      replica.set_high_watermark(std::min(data.high_watermark, replica.log_end_offset()));
    }
    return appended;
  }

  bool corrupt_locked(const Sent& sent, PartitionState& state, const std::string& why,
                      bool appended) {
    HF_ERROR("{}-{}: leader {} sent a corrupt batch ({}); retrying in {} ms", sent.key.first,
             sent.key.second, leader_id_, why, options_.backoff.count());
    delay_locked(state);
    return appended;
  }

  struct DurableOutcome {
    size_t index;
    Result<void, storage::Errc> result;
  };

  void register_durable_waits_locked(
      const std::vector<DurableWait>& waits,
      const std::shared_ptr<Slot<std::vector<DurableOutcome>>>& outcomes) {
    for (size_t i = 0; i < waits.size(); ++i) {
      waits[i].replica->wait_durable(
          waits[i].end_offset, [outcomes, waker = waker_, i](Result<void, storage::Errc> result) {
            std::lock_guard lock(waker->mutex);
            outcomes->value->push_back({i, std::move(result)});
            waker->cv.notify_all();
          });
    }
  }

  // Decision 1: the next fetch offset is durable here. Waits for all of this
  // round's appends (one group commit), or until the fetcher stops.
  void wait_durable(const std::vector<DurableWait>& waits,
                    const std::shared_ptr<Slot<std::vector<DurableOutcome>>>& slot) {
    if (waits.empty()) return;
    std::vector<DurableOutcome> outcomes;
    // Partitions added or removed since we last looked (any at first): once
    // none of those still waited for is followed, the wait protects nobody.
    uint64_t seen_changes = UINT64_MAX;
    for (;;) {
      {
        std::unique_lock lock(waker_->mutex);
        auto done = [&] { return slot->value->size() == waits.size(); };
        waker_->cv.wait(lock,
                        [&] { return waker_->stop || done() || waker_->changes != seen_changes; });
        if (waker_->stop) return;
        if (done()) {
          outcomes = std::move(*slot->value);
          break;
        }
        seen_changes = waker_->changes;
      }
      if (!any_still_followed(waits, slot)) {
        std::lock_guard lock(waker_->mutex);
        outcomes = *slot->value;  // what did complete still counts
        break;
      }
    }
    std::lock_guard lock(mutex_);
    for (const auto& outcome : outcomes) {
      if (outcome.result) continue;
      const auto& wait = waits[outcome.index];
      HF_ERROR("{}-{}: the fetched records did not become durable: {}", wait.sent.key.first,
               wait.sent.key.second, outcome.result.error().message);
      if (PartitionState* state = current_locked(wait.sent)) {
        state->needs_truncation = true;
        delay_locked(*state);
      }
    }
  }

  bool any_still_followed(const std::vector<DurableWait>& waits,
                          const std::shared_ptr<Slot<std::vector<DurableOutcome>>>& slot) {
    std::vector<bool> answered(waits.size(), false);
    {
      std::lock_guard lock(waker_->mutex);
      for (const auto& outcome : *slot->value) answered[outcome.index] = true;
    }
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < waits.size(); ++i) {
      if (!answered[i] && current_locked(waits[i].sent)) return true;
    }
    return false;
  }

  const int32_t leader_id_;
  net::KafkaClient& client_;
  const ReplicaFetcherOptions& options_;
  // Held while a response is applied to the replicas; remove() takes it, so
  // nothing of a removed partition is applied after remove() returns.
  std::mutex mutex_;
  net::Endpoint endpoint_;
  std::map<TopicPartition, PartitionState> partitions_;
  uint64_t generations_ = 0;
  int64_t failures_in_a_row_ = 0;  // whole requests, under mutex_
  uint64_t rounds_ = 0;            // under mutex_: rotates the partition order
  std::shared_ptr<Waker> waker_;
  std::thread thread_;
};

ReplicaFetcherManager::ReplicaFetcherManager(ReplicaFetcherOptions options)
    : options_(std::move(options)), client_([&] {
        auto client = options_.client;
        if (client.client_id == net::KafkaClientOptions{}.client_id) {
          client.client_id = "holdfast-replica-fetcher-" + std::to_string(options_.node_id);
        }
        if (client.thread_name == net::KafkaClientOptions{}.thread_name) {
          client.thread_name = "hf-fetch-client";
        }
        return client;
      }()) {}

ReplicaFetcherManager::~ReplicaFetcherManager() {
  shutdown();
}

void ReplicaFetcherManager::add(int32_t leader_id, const net::Endpoint& leader,
                                std::shared_ptr<FollowerReplica> replica) {
  std::lock_guard lock(mutex_);
  if (stopped_) return;
  TopicPartition key{replica->topic(), replica->index()};
  if (auto it = leader_of_.find(key); it != leader_of_.end() && it->second != leader_id) {
    fetchers_.at(it->second)->remove(key);
  }
  auto& fetcher = fetchers_[leader_id];
  if (!fetcher) {
    fetcher = std::make_unique<LeaderFetcher>(leader_id, leader, client_, options_);
  } else {
    fetcher->set_endpoint(leader);
  }
  leader_of_[key] = leader_id;
  fetcher->add(std::move(replica));
}

bool ReplicaFetcherManager::remove(const std::string& topic, int32_t partition) {
  std::lock_guard lock(mutex_);
  TopicPartition key{topic, partition};
  auto it = leader_of_.find(key);
  if (it == leader_of_.end()) return false;
  fetchers_.at(it->second)->remove(key);
  leader_of_.erase(it);
  return true;
}

void ReplicaFetcherManager::shutdown() {
  std::map<int32_t, std::unique_ptr<LeaderFetcher>> fetchers;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    fetchers = std::move(fetchers_);
    fetchers_.clear();
    leader_of_.clear();
  }
  fetchers.clear();  // each stops and joins its thread
  client_.shutdown();
}

std::map<std::pair<std::string, int32_t>, int32_t> ReplicaFetcherManager::followed() const {
  std::lock_guard lock(mutex_);
  return leader_of_;
}

}  // namespace holdfast::replication
