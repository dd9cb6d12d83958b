// Topic lifecycle on one node: the metadata record first (durable), then the
// partition logs. Serialised by one mutex; topic changes are rare and short.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "metadata/metadata_store.h"
#include "server/broker_config.h"
#include "server/kafka_error.h"
#include "server/topic_config.h"
#include "storage/log_manager.h"

namespace holdfast::server {

struct TopicOutcome {
  KafkaError error = KafkaError::none;
  std::string message;  // for the error_message fields; empty on success
  bool ok() const { return error == KafkaError::none; }
};

class TopicManager {
 public:
  TopicManager(const BrokerConfig& config, metadata::MetadataStore& metadata,
               storage::LogManager& logs);

  metadata::ImagePtr image() const { return metadata_.current(); }

  // Creates a topic with `partitions` (-1 = num.partitions) partitions and the
  // given config overrides. With validate_only nothing changes.
  TopicOutcome create_topic(const std::string& name, int32_t partitions, int16_t replication,
                            const metadata::ConfigMap& configs, bool validate_only);
  TopicOutcome delete_topic(const std::string& name);
  TopicOutcome create_partitions(const std::string& name, int32_t new_total, bool validate_only);
  // Replaces the topic's overrides (AlterConfigs semantics: unspecified = default).
  TopicOutcome replace_configs(const std::string& name, const metadata::ConfigMap& configs,
                               bool validate_only);
  // Applies IncrementalAlterConfigs operations to the topic's overrides,
  // atomically with respect to other config changes.
  TopicOutcome alter_configs(const std::string& name, const std::vector<ConfigOp>& ops,
                             bool validate_only);

  // The partition's log, or nullptr if the topic or partition does not exist.
  storage::PartitionLog* log(const std::string& topic, int32_t partition) const;

  // Makes every partition log that the metadata names exist (start-up), and
  // removes logs of topics the metadata no longer has (a crash mid-delete).
  Result<void, storage::Errc> reconcile_logs();

  storage::LogConfig log_config(const std::string& topic) const;

  // Creates __consumer_offsets (offsets.topic.num.partitions partitions,
  // cleanup.policy=compact) unless it exists; an existing topic keeps its
  // partition count, as in Kafka.
  TopicOutcome ensure_offsets_topic();
  // Called (under the topic lock) after a topic is deleted; the group
  // coordinator drops the topic's committed offsets.
  void set_topic_deleted_listener(std::function<void(const std::string&)> listener);

 private:
  // Validates `configs` as the topic's new overrides and, unless
  // validate_only, makes them durable and applies them. Requires mutex_.
  TopicOutcome commit_configs(const std::string& name, const metadata::TopicInfo& info,
                              const metadata::ConfigMap& configs, bool validate_only);

  const BrokerConfig& config_;
  metadata::MetadataStore& metadata_;
  storage::LogManager& logs_;
  std::mutex mutex_;
  std::function<void(const std::string&)> topic_deleted_;
};

// Internal topics (DESIGN §6): reported with is_internal, closed to client
// produce, never deleted, and their cleanup.policy and retention settings
// cannot be changed (turning off compaction of __consumer_offsets would put
// committed offsets under time retention).
bool is_internal_topic(const std::string& name);

}  // namespace holdfast::server
