#include "server/topic_manager.h"

#include <future>

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

Result<metadata::ImagePtr, metadata::Errc> TopicManager::append(metadata::MetadataRecord record) {
  using Outcome = Result<metadata::ImagePtr, metadata::Errc>;
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto future = promise->get_future();
  metadata_.append(std::move(record), [promise](Outcome r) { promise->set_value(std::move(r)); });
  // A local store answers at once; a Raft log once a majority has the record
  // (or leadership is lost: unknown_outcome). The bound only guards a quorum
  // that is gone altogether.
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return make_error(metadata::Errc::unknown_outcome,
                      "the metadata record was not committed within 30 s (is a majority of "
                      "controller.quorum.voters up?)");
  }
  return future.get();
}

int16_t TopicManager::auto_create_replication(const std::string& name, int16_t wanted) const {
  if (!config_.cluster_mode()) return -1;
  auto capped = controller::auto_create_replication(*metadata_.current(), name, wanted);
  if (!capped) return wanted;  // no live broker: the create fails with the placement's error
  if (capped->capped) HF_WARN("{}", capped->warning);
  return capped->replication_factor;
}

Result<void, replication::Errc> TopicManager::wait_for_replicas(const metadata::ImagePtr& image) {
  return lifecycle_.wait_applied(image->last_record_index);
}

storage::LogConfig TopicManager::log_config(const std::string& topic) const {
  auto image = metadata_.current();
  const auto* info = image->find_topic(topic);
  return log_config_for(config_, info ? info->configs : metadata::ConfigMap{});
}

TopicOutcome TopicManager::create_topic(const std::string& name, int32_t partitions,
                                        int16_t replication, const metadata::ConfigMap& configs,
                                        bool validate_only) {
  if (!is_valid_topic_name(name)) {
    return {KafkaError::invalid_topic_exception,
            "topic name '" + name +
                "' is invalid: use 1 to 249 characters from [a-zA-Z0-9._-], not '.' or '..'"};
  }
  if (partitions == -1) partitions = config_.num_partitions;
  if (partitions < 1 || partitions > 100000) {
    return {KafkaError::invalid_partitions,
            "number of partitions must be between 1 and 100000, got " + std::to_string(partitions)};
  }
  if (!config_.cluster_mode() && replication != -1 && replication != 1) {
    return {KafkaError::invalid_replication_factor,
            "replication factor " + std::to_string(replication) +
                " is larger than the 1 broker available"};
  }
  if (auto valid = validate_topic_configs(configs); !valid) {
    return {KafkaError::invalid_config, valid.error().message};
  }
  std::lock_guard lock(mutex_);
  if (metadata_.current()->find_topic(name)) {
    return {KafkaError::topic_already_exists, "topic '" + name + "' already exists"};
  }
  metadata::TopicCreated record{name, metadata::random_id(), partitions, configs};
  if (config_.cluster_mode()) {
    int16_t rf = replication == -1 ? config_.effective_default_replication_factor() : replication;
    auto placed = placement_.create_topic(*metadata_.current(), name, record.id, partitions, rf,
                                          configs);
    if (!placed) return {placement_error(placed.code()), placed.error().message};
    record = std::move(*placed);
  }
  if (validate_only) return {};
  auto appended = append(std::move(record));
  if (!appended) {
    HF_ERROR("creating topic {}: {}", name, appended.error().message);
    return append_failure(appended.error());
  }
  // The lifecycle creates the partition logs as it applies the record.
  if (auto replicas = wait_for_replicas(*appended); !replicas) {
    return {KafkaError::unknown_server_error, replicas.error().message};
  }
  HF_INFO("created topic {} with {} partitions", name, partitions);
  return {};
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

TopicOutcome TopicManager::delete_topic(const std::string& name) {
  if (is_internal_topic(name)) {
    return {KafkaError::invalid_topic_exception, "internal topic '" + name + "' cannot be deleted"};
  }
  std::lock_guard lock(mutex_);
  const auto* info = metadata_.current()->find_topic(name);
  if (!info) {
    return {KafkaError::unknown_topic_or_partition, "topic '" + name + "' does not exist"};
  }
  auto appended = append(metadata::TopicDeleted{name});
  if (!appended) return append_failure(appended.error());
  // The lifecycle removes the logs and tells the group coordinator. A log it
  // could not remove is logged there; the metadata no longer has the topic,
  // so the next start's reconcile finishes the removal.
  if (auto replicas = wait_for_replicas(*appended); !replicas) {
    HF_WARN("deleting topic {}: {}", name, replicas.error().message);
  }
  HF_INFO("deleted topic {}", name);
  return {};
}

TopicOutcome TopicManager::create_partitions(const std::string& name, int32_t new_total,
                                             bool validate_only) {
  if (is_internal_topic(name)) {
    // A group's coordinator partition is hash(group id) % partition count:
    // changing the count would move groups away from their committed offsets.
    return {KafkaError::invalid_topic_exception,
            "the partition count of internal topic '" + name + "' cannot change (groups are "
            "mapped to its partitions by hash of the group id)"};
  }
  std::lock_guard lock(mutex_);
  const auto* info = metadata_.current()->find_topic(name);
  if (!info) {
    return {KafkaError::unknown_topic_or_partition, "topic '" + name + "' does not exist"};
  }
  if (new_total <= info->partition_count) {
    return {KafkaError::invalid_partitions,
            "topic '" + name + "' has " + std::to_string(info->partition_count) +
                " partitions; the new count must be larger, got " + std::to_string(new_total)};
  }
  if (new_total > 100000) {
    return {KafkaError::invalid_partitions, "at most 100000 partitions"};
  }
  metadata::PartitionsAdded record{name, new_total};
  if (config_.cluster_mode()) {
    auto placed = placement_.add_partitions(*metadata_.current(), name, new_total);
    if (!placed) return {placement_error(placed.code()), placed.error().message};
    record = std::move(*placed);
  }
  if (validate_only) return {};
  auto appended = append(std::move(record));
  if (!appended) return append_failure(appended.error());
  if (auto replicas = wait_for_replicas(*appended); !replicas) {
    return {KafkaError::unknown_server_error, replicas.error().message};
  }
  return {};
}

TopicOutcome TopicManager::replace_configs(const std::string& name,
                                           const metadata::ConfigMap& configs,
                                           bool validate_only) {
  std::lock_guard lock(mutex_);
  auto image = metadata_.current();  // keeps *info alive across the append
  const auto* info = image->find_topic(name);
  if (!info) {
    return {KafkaError::unknown_topic_or_partition, "topic '" + name + "' does not exist"};
  }
  return commit_configs(name, *info, configs, validate_only);
}

TopicOutcome TopicManager::alter_configs(const std::string& name, const std::vector<ConfigOp>& ops,
                                         bool validate_only) {
  std::lock_guard lock(mutex_);
  auto image = metadata_.current();  // keeps *info alive across the append
  const auto* info = image->find_topic(name);
  if (!info) {
    return {KafkaError::unknown_topic_or_partition, "topic '" + name + "' does not exist"};
  }
  auto configs = apply_config_ops(config_, info->configs, ops);
  if (!configs) {
    return {configs.code() == TopicConfigErrc::invalid_operation ? KafkaError::invalid_request
                                                                 : KafkaError::invalid_config,
            configs.error().message};
  }
  return commit_configs(name, *info, *configs, validate_only);
}

namespace {

// What an internal topic's correctness rests on: compaction, and no time or
// size retention of its records.
constexpr const char* kInternalTopicFixedConfigs[] = {"cleanup.policy", "retention.ms",
                                                      "retention.bytes"};

}  // namespace

TopicOutcome TopicManager::commit_configs(const std::string& name,
                                          const metadata::TopicInfo& info,
                                          const metadata::ConfigMap& configs,
                                          bool validate_only) {
  if (auto valid = validate_topic_configs(configs); !valid) {
    return {KafkaError::invalid_config, valid.error().message};
  }
  if (is_internal_topic(name)) {
    for (const char* key : kInternalTopicFixedConfigs) {
      auto before = info.configs.find(key);
      auto after = configs.find(key);
      bool had = before != info.configs.end(), has = after != configs.end();
      if (had != has || (had && before->second != after->second)) {
        return {KafkaError::invalid_config,
                std::string("config '") + key + "' of internal topic '" + name +
                    "' cannot be changed" + (had && !has ? " or removed" : "")};
      }
    }
  }
  if (validate_only) return {};
  auto appended = append(metadata::TopicConfigsReplaced{name, configs});
  if (!appended) return append_failure(appended.error());
  // The lifecycle applies the new log config to the partitions.
  if (auto replicas = wait_for_replicas(*appended); !replicas) {
    return {KafkaError::unknown_server_error, replicas.error().message};
  }
  return {};
}

}  // namespace holdfast::server
