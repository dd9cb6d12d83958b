// Topic-level configuration: Kafka's topic config names, their validation,
// their defaults (from the broker config) and what they mean for the log.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "metadata/metadata_image.h"
#include "server/broker_config.h"
#include "storage/log_manager.h"

namespace holdfast::server {

enum class TopicConfigErrc {
  unknown_key,
  invalid_value,
  invalid_operation,  // an IncrementalAlterConfigs request Kafka calls invalid (INVALID_REQUEST)
};

struct TopicConfigEntry {
  std::string name;
  std::string value;
  bool is_default = true;  // not overridden on the topic
  bool read_only = false;
  bool sensitive = false;
};

// Checks a set of topic config overrides: every key known, every value valid.
Result<void, TopicConfigErrc> validate_topic_configs(const metadata::ConfigMap& configs);

// One IncrementalAlterConfigs operation (KIP-339).
enum class ConfigOpType : int8_t { set = 0, remove = 1, append = 2, subtract = 3 };
struct ConfigOp {
  std::string name;
  int8_t op = 0;  // a ConfigOpType, as it came off the wire
  std::optional<std::string> value;
};

// True for configs whose value is a comma-separated list (cleanup.policy),
// the only ones APPEND and SUBTRACT apply to.
bool is_list_config(const std::string& name);

// The overrides after applying `ops` to `current`: SET replaces a value,
// DELETE returns the key to its default, APPEND adds list items not yet
// present and SUBTRACT removes items (both starting from the default when
// the key is not overridden). Errors: a duplicate key, an unknown operation
// or a null value for SET/APPEND/SUBTRACT (invalid_operation); APPEND or
// SUBTRACT on a config that is not a list (invalid_value). The result is
// not validated here (validate_topic_configs does that).
Result<metadata::ConfigMap, TopicConfigErrc> apply_config_ops(const BrokerConfig& broker,
                                                              const metadata::ConfigMap& current,
                                                              const std::vector<ConfigOp>& ops);

// Every topic config with its effective value (override or broker default), in
// name order, as DescribeConfigs reports them.
std::vector<TopicConfigEntry> describe_topic_configs(const BrokerConfig& broker,
                                                     const metadata::ConfigMap& overrides);

// compression.type: the codec (record::Compression's id) that produced batches
// are recompressed with on append, or nullopt for `producer` (kept as sent).
std::optional<int8_t> topic_compression(const metadata::ConfigMap& overrides);

// The storage settings a topic's partitions run with.
storage::LogConfig log_config_for(const BrokerConfig& broker, const metadata::ConfigMap& overrides);

// Topic names: 1..249 chars of [a-zA-Z0-9._-], not "." or "..".
bool is_valid_topic_name(const std::string& name);

}  // namespace holdfast::server
