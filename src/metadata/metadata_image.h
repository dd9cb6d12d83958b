// The cluster's metadata as an immutable image (DESIGN §5).
//
// Writers append MetadataRecords to the metadata log; each record is applied
// to the current image to produce the next one. Readers take a shared pointer
// to the current image and never see it change under them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"

namespace holdfast::metadata {

using TopicId = std::array<uint8_t, 16>;
using ConfigMap = std::map<std::string, std::string>;

struct TopicInfo {
  std::string name;
  TopicId id{};
  int32_t partition_count = 0;
  ConfigMap configs;  // only the settings that differ from the broker defaults
};

struct MetadataImage {
  std::map<std::string, TopicInfo> topics;
  int64_t last_record_index = -1;  // index in the metadata log of the last applied record

  const TopicInfo* find_topic(const std::string& name) const {
    auto it = topics.find(name);
    return it == topics.end() ? nullptr : &it->second;
  }
};

using ImagePtr = std::shared_ptr<const MetadataImage>;

// Metadata records. Each is a fact about the cluster, applied in log order.
struct TopicCreated {
  std::string name;
  TopicId id{};
  int32_t partition_count = 0;
  ConfigMap configs;
};
struct PartitionsAdded {
  std::string name;
  int32_t new_partition_count = 0;
};
struct TopicConfigsReplaced {
  std::string name;
  ConfigMap configs;
};
struct TopicDeleted {
  std::string name;
};

using MetadataRecord = std::variant<TopicCreated, PartitionsAdded, TopicConfigsReplaced, TopicDeleted>;

enum class Errc {
  corrupt,
  io_error,
  invalid_record,
  // Replicated metadata log (raft_metadata_log.h): this node is not the Raft
  // leader, so nothing was appended; the caller must send the record to the
  // leader (forwarding is not built yet).
  not_leader,
  // The leader lost leadership after proposing the record: it may or may not
  // be committed later by the next leader. Read the image before retrying.
  unknown_outcome,
  // The log is shutting down (or failed to start); nothing more is appended.
  shut_down,
  // A cluster setting (controller.quorum.voters, node.id) is malformed or
  // inconsistent; start-up stops with a message naming the setting.
  invalid_config,
};

// Applies one record. A record that does not fit the image (a partition count
// that shrinks, a topic that does not exist) is invalid_record: the log only
// ever holds records that were checked before they were written.
Result<ImagePtr, Errc> apply_record(const MetadataImage& image, const MetadataRecord& record,
                                    int64_t record_index);

// Serialisation of a record as one JSON object (the payload of a metadata log
// entry; docs/storage-format.md §metadata).
std::string encode_record(const MetadataRecord& record);
Result<MetadataRecord, Errc> decode_record(std::string_view payload);

std::string topic_id_to_string(const TopicId& id);

}  // namespace holdfast::metadata
