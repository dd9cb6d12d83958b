#include "server/topic_manager.h"

#include <set>

#include "base/log.h"
#include "server/topic_config.h"

namespace holdfast::server {

TopicManager::TopicManager(const BrokerConfig& config, metadata::MetadataStore& metadata,
                           storage::LogManager& logs)
    : config_(config), metadata_(metadata), logs_(logs) {}

storage::LogConfig TopicManager::log_config(const std::string& topic) const {
  auto image = metadata_.current();
  const auto* info = image->find_topic(topic);
  return log_config_for(config_, info ? info->configs : metadata::ConfigMap{});
}

storage::PartitionLog* TopicManager::log(const std::string& topic, int32_t partition) const {
  return logs_.get(topic, partition);
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
  if (replication != -1 && replication != 1) {
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
  if (validate_only) return {};
  auto appended =
      metadata_.append(metadata::TopicCreated{name, metadata::random_id(), partitions, configs});
  if (!appended) {
    HF_ERROR("creating topic {}: {}", name, appended.error().message);
    return {KafkaError::unknown_server_error, appended.error().message};
  }
  auto log_config = log_config_for(config_, configs);
  for (int32_t p = 0; p < partitions; ++p) {
    auto created = logs_.create(name, p, log_config);
    if (!created) {
      HF_ERROR("creating log {}-{}: {}", name, p, created.error().message);
      return {KafkaError::unknown_server_error, created.error().message};
    }
  }
  HF_INFO("created topic {} with {} partitions", name, partitions);
  return {};
}

bool is_internal_topic(const std::string& name) {
  return name == "__consumer_offsets" || name == "__transaction_state";
}

void TopicManager::set_topic_deleted_listener(std::function<void(const std::string&)> listener) {
  std::lock_guard lock(mutex_);
  topic_deleted_ = std::move(listener);
}

TopicOutcome TopicManager::ensure_offsets_topic() {
  const std::string name = "__consumer_offsets";
  if (metadata_.current()->find_topic(name)) return {};
  // Compacted, with its own segment size (offsets.topic.segment.bytes, 100 MiB
  // as in Kafka) so the cleaner gets non-active segments long before 1 GiB.
  auto outcome = create_topic(
      name, config_.offsets_topic_num_partitions, -1,
      {{"cleanup.policy", "compact"},
       {"segment.bytes", std::to_string(config_.offsets_topic_segment_bytes)}},
      false);
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
  int32_t partitions = info->partition_count;
  auto appended = metadata_.append(metadata::TopicDeleted{name});
  if (!appended) return {KafkaError::unknown_server_error, appended.error().message};
  for (int32_t p = 0; p < partitions; ++p) {
    if (auto removed = logs_.remove(name, p); !removed) {
      // The metadata no longer has the topic; reconcile_logs() finishes this at
      // the next start.
      HF_WARN("removing log {}-{}: {}", name, p, removed.error().message);
    }
  }
  HF_INFO("deleted topic {}", name);
  if (topic_deleted_) topic_deleted_(name);  // the coordinator never calls back into us
  return {};
}

TopicOutcome TopicManager::create_partitions(const std::string& name, int32_t new_total,
                                             bool validate_only) {
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
  if (validate_only) return {};
  int32_t old_total = info->partition_count;
  auto configs = info->configs;
  auto appended = metadata_.append(metadata::PartitionsAdded{name, new_total});
  if (!appended) return {KafkaError::unknown_server_error, appended.error().message};
  auto log_config = log_config_for(config_, configs);
  for (int32_t p = old_total; p < new_total; ++p) {
    if (auto created = logs_.create(name, p, log_config); !created) {
      return {KafkaError::unknown_server_error, created.error().message};
    }
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
  int32_t partitions = info.partition_count;
  auto appended = metadata_.append(metadata::TopicConfigsReplaced{name, configs});
  if (!appended) return {KafkaError::unknown_server_error, appended.error().message};
  auto log_config = log_config_for(config_, configs);
  for (int32_t p = 0; p < partitions; ++p) {
    if (auto* log = logs_.get(name, p)) log->update_config(log_config);
  }
  return {};
}

Result<void, storage::Errc> TopicManager::reconcile_logs() {
  std::lock_guard lock(mutex_);
  auto image = metadata_.current();
  std::set<std::pair<std::string, int32_t>> wanted;
  for (const auto& [name, info] : image->topics) {
    auto log_config = log_config_for(config_, info.configs);
    for (int32_t p = 0; p < info.partition_count; ++p) {
      wanted.emplace(name, p);
      if (!logs_.get(name, p)) {
        auto created = logs_.create(name, p, log_config);
        if (!created) return created.error();
      }
    }
  }
  for (auto* log : logs_.all()) {
    if (!wanted.count({log->topic(), log->partition()})) {
      HF_WARN("removing log {}-{}: its topic was deleted", log->topic(), log->partition());
      std::string topic = log->topic();
      int32_t partition = log->partition();
      if (auto removed = logs_.remove(topic, partition); !removed) return removed.error();
    }
  }
  return {};
}

}  // namespace holdfast::server
