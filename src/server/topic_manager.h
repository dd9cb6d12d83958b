// Topic administration: validates requests and appends metadata records.
// The local replicas (partition logs) follow the applied records through
// replication::PartitionLifecycle; each change here waits until the lifecycle
// has handled its record, so a CreateTopics answer is never sent before the
// partitions exist (clients produce right after) and a DeleteTopics answer
// not before they are gone. Serialised by one mutex; topic changes are rare.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "controller/controller.h"
#include "metadata/metadata_log.h"
#include "replication/partition_lifecycle.h"
#include "server/broker_config.h"
#include "server/kafka_error.h"
#include "server/topic_config.h"

namespace holdfast::server {

struct TopicOutcome {
  KafkaError error = KafkaError::none;
  std::string message;  // for the error_message fields; empty on success
  bool ok() const { return error == KafkaError::none; }
};

// In cluster mode (config.cluster_mode()) the records carry replica
// assignments from the controller's placement (controller/placement.h) and go
// to the Raft metadata log; only the active controller's appends succeed (a
// non-controller gets NOT_CONTROLLER: the handlers forward to the controller
// before calling in here). On a single node, records carry no assignment and
// behave exactly as before.
class TopicManager {
 public:
  TopicManager(const BrokerConfig& config, metadata::MetadataLog& metadata,
               replication::PartitionLifecycle& lifecycle);

  metadata::ImagePtr image() const { return metadata_.current(); }

  // Creates a topic with `partitions` (-1 = num.partitions) partitions and the
  // given config overrides. With validate_only nothing changes.
  // `replication` -1 = default.replication.factor.
  TopicOutcome create_topic(const std::string& name, int32_t partitions, int16_t replication,
                            const metadata::ConfigMap& configs, bool validate_only);
  // The replication factor for an auto-created topic (Metadata with
  // allow_auto_topic_creation, __consumer_offsets): `wanted` capped at the
  // live brokers in a cluster, with a logged warning when the cap applies; -1
  // (the default) on a single node.
  int16_t auto_create_replication(const std::string& name, int16_t wanted) const;
  // Waits until the local replicas follow every record up to `record_index`
  // (a forwarded change, once the record is in the local image).
  Result<void, replication::Errc> wait_applied(int64_t record_index) {
    return lifecycle_.wait_applied(record_index);
  }
  TopicOutcome delete_topic(const std::string& name);
  TopicOutcome create_partitions(const std::string& name, int32_t new_total, bool validate_only);
  // Replaces the topic's overrides (AlterConfigs semantics: unspecified = default).
  TopicOutcome replace_configs(const std::string& name, const metadata::ConfigMap& configs,
                               bool validate_only);
  // Applies IncrementalAlterConfigs operations to the topic's overrides,
  // atomically with respect to other config changes.
  TopicOutcome alter_configs(const std::string& name, const std::vector<ConfigOp>& ops,
                             bool validate_only);

  storage::LogConfig log_config(const std::string& topic) const;

  // Creates __consumer_offsets (offsets.topic.num.partitions partitions,
  // cleanup.policy=compact) unless it exists; an existing topic keeps its
  // partition count, as in Kafka.
  TopicOutcome ensure_offsets_topic();
  // The overrides __consumer_offsets is created with.
  metadata::ConfigMap offsets_topic_configs() const;

 private:
  // Validates `configs` as the topic's new overrides and, unless
  // validate_only, makes them durable and applies them. Requires mutex_.
  TopicOutcome commit_configs(const std::string& name, const metadata::TopicInfo& info,
                              const metadata::ConfigMap& configs, bool validate_only);

  // Waits until the lifecycle has handled the record that produced `image`.
  Result<void, replication::Errc> wait_for_replicas(const metadata::ImagePtr& image);
  // Appends one record and waits (bounded) for it to be committed and applied.
  Result<metadata::ImagePtr, metadata::Errc> append(metadata::MetadataRecord record);

  const BrokerConfig& config_;
  metadata::MetadataLog& metadata_;
  // Placement only (const methods; no session state): the same decisions the
  // active controller makes, computed from the image.
  const controller::Controller placement_{{}, [] { return int64_t{0}; }};
  replication::PartitionLifecycle& lifecycle_;
  std::mutex mutex_;
};

// Internal topics (DESIGN §6): reported with is_internal, closed to client
// produce, never deleted, and their cleanup.policy and retention settings
// cannot be changed (turning off compaction of __consumer_offsets would put
// committed offsets under time retention).
bool is_internal_topic(const std::string& name);

}  // namespace holdfast::server
