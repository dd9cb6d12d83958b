#include "server/topic_manager.h"

#include <future>

#include <asio/steady_timer.hpp>

#include "base/log.h"
#include "controller/placement.h"
#include "metadata/metadata_store.h"
#include "server/topic_config.h"

namespace holdfast::server {
namespace {

// The one mapping from the controller's placement errors to Kafka's.
KafkaError placement_error(controller::Errc e) {
  switch (e) {
    case controller::Errc::invalid_replication_factor: return KafkaError::invalid_replication_factor;
    case controller::Errc::invalid_partitions: return KafkaError::invalid_partitions;
    case controller::Errc::topic_already_exists: return KafkaError::topic_already_exists;
    case controller::Errc::unknown_topic: return KafkaError::unknown_topic_or_partition;
    default: return KafkaError::invalid_request;
  }
}

// The one mapping from a failed metadata append to Kafka's errors.
TopicOutcome append_failure(const Error<metadata::Errc>& e) {
  switch (e.code) {
    case metadata::Errc::not_leader:
      return {KafkaError::not_controller, "this node is not the active controller: " + e.message};
    case metadata::Errc::unknown_outcome:
    case metadata::Errc::shut_down:
      return {KafkaError::request_timed_out, e.message};
    default:
      return {KafkaError::unknown_server_error, e.message};
  }
}

}  // namespace

TopicManager::TopicManager(const BrokerConfig& config, metadata::MetadataLog& metadata,
                           replication::PartitionLifecycle& lifecycle)
    : config_(config), metadata_(metadata), lifecycle_(lifecycle) {}

// ---- the queue ---------------------------------------------------------

void TopicManager::enqueue(Body body, TopicCallback callback) {
  Queued next;
  uint64_t generation = 0;
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(Queued{std::move(body), std::move(callback)});
    const auto now = std::chrono::steady_clock::now();
    if (busy_) {
      if (now - started_ < kTopicChangeTimeout) return;
      // Its record is still not committed (a quorum gone for that long); its
      // caller has been answered REQUEST_TIMED_OUT. Later changes go on, as
      // they would after any other unknown outcome.
      HF_WARN("a topic change has waited {} s for its metadata record; starting the next one",
              std::chrono::duration_cast<std::chrono::seconds>(now - started_).count());
    }
    busy_ = true;
    generation = ++generation_;
    started_ = now;
    next = std::move(queue_.front());
    queue_.pop_front();
  }
  run(std::move(next), generation);
}

void TopicManager::run(Queued op, uint64_t generation) {
  if (op.callback.abandoned->load()) {
    op.callback.done({{KafkaError::request_timed_out, "the change was abandoned"}});
    finished(generation);
    return;
  }
  auto done = std::move(op.callback.done);
  op.body([this, done = std::move(done), generation](TopicChange change) {
    done(std::move(change));
    finished(generation);
  });
}

void TopicManager::finished(uint64_t generation) {
  Queued next;
  {
    std::lock_guard lock(queue_mutex_);
    if (generation != generation_) return;  // overtaken (see enqueue)
    if (queue_.empty()) {
      busy_ = false;
      return;
    }
    generation = ++generation_;
    started_ = std::chrono::steady_clock::now();
    next = std::move(queue_.front());
    queue_.pop_front();
  }
  run(std::move(next), generation);
}

void TopicManager::append(metadata::MetadataRecord record, Complete complete,
                          bool replica_failure_is_error, std::function<void()> on_success) {
  metadata::AppendCallback done = [complete = std::move(complete), replica_failure_is_error,
                                   on_success = std::move(on_success)](
                                      Result<metadata::ImagePtr, metadata::Errc> appended) {
    if (!appended) {
      HF_WARN("a topic change's metadata record failed: {}", appended.error().message);
      complete({append_failure(appended.error()), -1});
      return;
    }
    if (on_success) on_success();
    complete({{}, (*appended)->last_record_index, replica_failure_is_error});
  };
  std::function<void(std::function<void()>)> hook;
  {
    std::lock_guard lock(hook_mutex_);
    hook = append_hook_;
  }
  if (hook) {
    hook([this, record = std::move(record), done]() mutable {
      metadata_.append(std::move(record), std::move(done));
    });
  } else {
    metadata_.append(std::move(record), std::move(done));
  }
}

// ---- waiting for a change ------------------------------------------------

namespace {

// What a waiting coroutine shares with the change's callback (any thread).
struct ChangeWait {
  explicit ChangeWait(asio::any_io_executor executor)
      : wakeup(std::make_shared<Wakeup>(std::move(executor))) {}
  std::shared_ptr<Wakeup> wakeup;
  std::mutex mu;
  std::optional<TopicChange> change;
};

}  // namespace

Awaitable<bool> TopicManager::await_replicas(int64_t record_index,
                                             std::chrono::steady_clock::time_point deadline,
                                             std::optional<std::string>* failure) {
  // The lifecycle has no completion callback; it handles a record within
  // the file work of that record (milliseconds), so a short poll is enough.
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  while (lifecycle_.applied_index() < record_index) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    timer.expires_after(std::chrono::milliseconds(5));
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  // Handled: returns at once, with the record's failure if it had one.
  if (auto applied = lifecycle_.wait_applied(record_index); !applied) {
    *failure = applied.error().message;
  }
  co_return true;
}

Awaitable<TopicOutcome> TopicManager::await_change(TopicChangeStart start,
                                                   std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wait = std::make_shared<ChangeWait>(executor);
  TopicCallback callback;
  auto abandoned = callback.abandoned;
  callback.done = [wait](TopicChange change) {
    {
      std::lock_guard lock(wait->mu);
      wait->change = std::move(change);
    }
    wait->wakeup->notify();
  };
  start(std::move(callback));
  std::optional<TopicChange> change;
  for (;;) {
    {
      std::lock_guard lock(wait->mu);
      change = wait->change;
    }
    if (change || std::chrono::steady_clock::now() >= deadline) break;
    co_await wait->wakeup->wait_until(deadline);
    wait->wakeup->reset();
  }
  if (!change) {
    abandoned->store(true);
    co_return TopicOutcome{KafkaError::request_timed_out,
                           "the metadata record was not committed within " +
                               std::to_string(timeout.count() / 1000) +
                               " s (is a majority of controller.quorum.voters up?)"};
  }
  if (!change->outcome.ok() || change->record_index < 0) co_return change->outcome;
  std::optional<std::string> failure;
  if (!co_await await_replicas(change->record_index, deadline, &failure)) {
    co_return TopicOutcome{KafkaError::request_timed_out,
                           "the change is committed, but this broker's replicas do not follow "
                           "it yet"};
  }
  if (failure) {
    if (change->replica_failure_is_error) {
      co_return TopicOutcome{KafkaError::unknown_server_error, *failure};
    }
    HF_WARN("{}", *failure);
  }
  co_return change->outcome;
}

TopicOutcome TopicManager::run_blocking(const TopicChangeStart& start) {
  auto promise = std::make_shared<std::promise<TopicChange>>();
  auto future = promise->get_future();
  TopicCallback callback;
  auto abandoned = callback.abandoned;
  callback.done = [promise](TopicChange change) { promise->set_value(std::move(change)); };
  start(std::move(callback));
  if (future.wait_for(kTopicChangeTimeout) != std::future_status::ready) {
    abandoned->store(true);
    return {KafkaError::request_timed_out,
            "the metadata record was not committed within 30 s (is a majority of "
            "controller.quorum.voters up?)"};
  }
  TopicChange change = future.get();
  if (!change.outcome.ok() || change.record_index < 0) return change.outcome;
  if (auto replicas = lifecycle_.wait_applied(change.record_index); !replicas) {
    if (change.replica_failure_is_error) {
      return {KafkaError::unknown_server_error, replicas.error().message};
    }
    HF_WARN("{}", replicas.error().message);
  }
  return change.outcome;
}

// ---- the changes -----------------------------------------------------------

int16_t TopicManager::auto_create_replication(const std::string& name, int16_t wanted) const {
  if (!config_.cluster_mode()) return -1;
  auto capped = controller::auto_create_replication(*metadata_.current(), name, wanted);
  if (!capped) return wanted;  // no live broker: the create fails with the placement's error
  if (capped->capped) HF_WARN("{}", capped->warning);
  return capped->replication_factor;
}

storage::LogConfig TopicManager::log_config(const std::string& topic) const {
  auto image = metadata_.current();
  const auto* info = image->find_topic(topic);
  return log_config_for(config_, info ? info->configs : metadata::ConfigMap{});
}

void TopicManager::create_topic(std::string name, int32_t partitions, int16_t replication,
                                metadata::ConfigMap configs, bool validate_only,
                                TopicCallback done) {
  auto refuse = [&](KafkaError error, std::string message) {
    done.done({{error, std::move(message)}});
  };
  if (!is_valid_topic_name(name)) {
    return refuse(KafkaError::invalid_topic_exception,
                  "topic name '" + name +
                      "' is invalid: use 1 to 249 characters from [a-zA-Z0-9._-], not '.' or '..'");
  }
  if (partitions == -1) partitions = config_.num_partitions;
  if (partitions < 1 || partitions > 100000) {
    return refuse(KafkaError::invalid_partitions,
                  "number of partitions must be between 1 and 100000, got " +
                      std::to_string(partitions));
  }
  if (!config_.cluster_mode() && replication != -1 && replication != 1) {
    return refuse(KafkaError::invalid_replication_factor,
                  "replication factor " + std::to_string(replication) +
                      " is larger than the 1 broker available");
  }
  if (auto valid = validate_topic_configs(configs); !valid) {
    return refuse(KafkaError::invalid_config, valid.error().message);
  }
  enqueue(
      [this, name = std::move(name), partitions, replication, configs = std::move(configs),
       validate_only](Complete complete) {
        auto image = metadata_.current();
        if (image->find_topic(name)) {
          return complete({{KafkaError::topic_already_exists, "topic '" + name + "' already exists"}});
        }
        metadata::TopicCreated record{name, metadata::random_id(), partitions, configs};
        if (config_.cluster_mode()) {
          int16_t rf =
              replication == -1 ? config_.effective_default_replication_factor() : replication;
          auto placed = placement_.create_topic(*image, name, record.id, partitions, rf, configs);
          if (!placed) return complete({{placement_error(placed.code()), placed.error().message}});
          record = std::move(*placed);
        }
        if (validate_only) return complete({});
        // The lifecycle creates the partition logs as it applies the record.
        append(std::move(record), std::move(complete), true, [name, partitions] {
          HF_INFO("created topic {} with {} partitions", name, partitions);
        });
      },
      std::move(done));
}

TopicOutcome TopicManager::create_topic(const std::string& name, int32_t partitions,
                                        int16_t replication, const metadata::ConfigMap& configs,
                                        bool validate_only) {
  return run_blocking([&](TopicCallback done) {
    create_topic(name, partitions, replication, configs, validate_only, std::move(done));
  });
}

bool is_internal_topic(const std::string& name) {
  return name == "__consumer_offsets" || name == "__transaction_state";
}

metadata::ConfigMap TopicManager::offsets_topic_configs() const {
  return {{"cleanup.policy", "compact"},
          {"segment.bytes", std::to_string(config_.offsets_topic_segment_bytes)}};
}

TopicOutcome TopicManager::ensure_offsets_topic() {
  const std::string name = "__consumer_offsets";
  if (metadata_.current()->find_topic(name)) return {};
  // Compacted, with its own segment size (offsets.topic.segment.bytes, 100 MiB
  // as in Kafka) so the cleaner gets non-active segments long before 1 GiB.
  auto outcome = create_topic(
      name, config_.offsets_topic_num_partitions,
      auto_create_replication(name, config_.effective_offsets_topic_replication_factor()),
      offsets_topic_configs(), false);
  if (outcome.error == KafkaError::topic_already_exists) return {};
  return outcome;
}

metadata::ConfigMap TopicManager::transaction_state_topic_configs() const {
  return {{"cleanup.policy", "compact"},
          {"segment.bytes", std::to_string(config_.transaction_state_log_segment_bytes)},
          {"min.insync.replicas", std::to_string(config_.effective_transaction_state_log_min_isr())}};
}

TopicOutcome TopicManager::ensure_transaction_state_topic() {
  const std::string name = "__transaction_state";
  if (metadata_.current()->find_topic(name)) return {};
  auto outcome = create_topic(
      name, config_.transaction_state_log_num_partitions,
      auto_create_replication(name, config_.effective_transaction_state_log_replication_factor()),
      transaction_state_topic_configs(), false);
  if (outcome.error == KafkaError::topic_already_exists) return {};
  return outcome;
}

void TopicManager::delete_topic(std::string name, TopicCallback done) {
  if (is_internal_topic(name)) {
    done.done({{KafkaError::invalid_topic_exception,
                "internal topic '" + name + "' cannot be deleted"}});
    return;
  }
  enqueue(
      [this, name = std::move(name)](Complete complete) {
        if (!metadata_.current()->find_topic(name)) {
          return complete(
              {{KafkaError::unknown_topic_or_partition, "topic '" + name + "' does not exist"}});
        }
        // The lifecycle removes the logs and tells the group coordinator. A
        // log it could not remove is logged there; the metadata no longer has
        // the topic, so the next start's reconcile finishes the removal.
        append(metadata::TopicDeleted{name}, std::move(complete), false,
               [name] { HF_INFO("deleted topic {}", name); });
      },
      std::move(done));
}

TopicOutcome TopicManager::delete_topic(const std::string& name) {
  return run_blocking([&](TopicCallback done) { delete_topic(name, std::move(done)); });
}

void TopicManager::create_partitions(std::string name, int32_t new_total, bool validate_only,
                                     TopicCallback done) {
  if (is_internal_topic(name)) {
    // A group's coordinator partition is hash(group id) % partition count:
    // changing the count would move groups away from their committed offsets.
    done.done({{KafkaError::invalid_topic_exception,
                "the partition count of internal topic '" + name + "' cannot change (groups are "
                "mapped to its partitions by hash of the group id)"}});
    return;
  }
  enqueue(
      [this, name = std::move(name), new_total, validate_only](Complete complete) {
        auto image = metadata_.current();
        const auto* info = image->find_topic(name);
        if (!info) {
          return complete(
              {{KafkaError::unknown_topic_or_partition, "topic '" + name + "' does not exist"}});
        }
        if (new_total <= info->partition_count) {
          return complete({{KafkaError::invalid_partitions,
                            "topic '" + name + "' has " + std::to_string(info->partition_count) +
                                " partitions; the new count must be larger, got " +
                                std::to_string(new_total)}});
        }
        if (new_total > 100000) {
          return complete({{KafkaError::invalid_partitions, "at most 100000 partitions"}});
        }
        metadata::PartitionsAdded record{name, new_total};
        if (config_.cluster_mode()) {
          auto placed = placement_.add_partitions(*image, name, new_total);
          if (!placed) return complete({{placement_error(placed.code()), placed.error().message}});
          record = std::move(*placed);
        }
        if (validate_only) return complete({});
        append(std::move(record), std::move(complete), true, nullptr);
      },
      std::move(done));
}

TopicOutcome TopicManager::create_partitions(const std::string& name, int32_t new_total,
                                             bool validate_only) {
  return run_blocking([&](TopicCallback done) {
    create_partitions(name, new_total, validate_only, std::move(done));
  });
}

void TopicManager::replace_configs(std::string name, metadata::ConfigMap configs,
                                   bool validate_only, TopicCallback done) {
  enqueue(
      [this, name = std::move(name), configs = std::move(configs),
       validate_only](Complete complete) {
        auto image = metadata_.current();  // keeps *info alive
        const auto* info = image->find_topic(name);
        if (!info) {
          return complete(
              {{KafkaError::unknown_topic_or_partition, "topic '" + name + "' does not exist"}});
        }
        commit_configs(name, *info, configs, validate_only, std::move(complete));
      },
      std::move(done));
}

TopicOutcome TopicManager::replace_configs(const std::string& name,
                                           const metadata::ConfigMap& configs,
                                           bool validate_only) {
  return run_blocking([&](TopicCallback done) {
    replace_configs(name, configs, validate_only, std::move(done));
  });
}

void TopicManager::alter_configs(std::string name, std::vector<ConfigOp> ops, bool validate_only,
                                 TopicCallback done) {
  enqueue(
      [this, name = std::move(name), ops = std::move(ops), validate_only](Complete complete) {
        auto image = metadata_.current();  // keeps *info alive
        const auto* info = image->find_topic(name);
        if (!info) {
          return complete(
              {{KafkaError::unknown_topic_or_partition, "topic '" + name + "' does not exist"}});
        }
        auto configs = apply_config_ops(config_, info->configs, ops);
        if (!configs) {
          return complete({{configs.code() == TopicConfigErrc::invalid_operation
                                ? KafkaError::invalid_request
                                : KafkaError::invalid_config,
                            configs.error().message}});
        }
        commit_configs(name, *info, *configs, validate_only, std::move(complete));
      },
      std::move(done));
}

TopicOutcome TopicManager::alter_configs(const std::string& name, const std::vector<ConfigOp>& ops,
                                         bool validate_only) {
  return run_blocking([&](TopicCallback done) {
    alter_configs(name, ops, validate_only, std::move(done));
  });
}

namespace {

// What an internal topic's correctness rests on: compaction, and no time or
// size retention of its records.
constexpr const char* kInternalTopicFixedConfigs[] = {"cleanup.policy", "retention.ms",
                                                      "retention.bytes"};

}  // namespace

void TopicManager::commit_configs(const std::string& name, const metadata::TopicInfo& info,
                                  const metadata::ConfigMap& configs, bool validate_only,
                                  Complete complete) {
  if (auto valid = validate_topic_configs(configs); !valid) {
    return complete({{KafkaError::invalid_config, valid.error().message}});
  }
  if (is_internal_topic(name)) {
    for (const char* key : kInternalTopicFixedConfigs) {
      auto before = info.configs.find(key);
      auto after = configs.find(key);
      bool had = before != info.configs.end(), has = after != configs.end();
      if (had != has || (had && before->second != after->second)) {
        return complete({{KafkaError::invalid_config,
                          std::string("config '") + key + "' of internal topic '" + name +
                              "' cannot be changed" + (had && !has ? " or removed" : "")}});
      }
    }
  }
  if (validate_only) return complete({});
  // The lifecycle applies the new log config to the partitions.
  append(metadata::TopicConfigsReplaced{name, configs}, std::move(complete), true, nullptr);
}

}  // namespace holdfast::server
