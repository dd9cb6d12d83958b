// The records the group coordinator writes to `__consumer_offsets-N`
// (docs/storage-format.md, "Consumer offsets and group metadata").
//
// Each record is an ordinary record in a v2 batch; its key says what it is
// about, so that compaction (keep the last record per key, a null value is a
// tombstone) leaves exactly the coordinator's state:
//
//   offset key  : int16 1, string group, string topic, int32 partition
//   group key   : int16 2, string group
//
// Strings are int16 length + UTF-8 bytes. Values start with an int16 version
// (1); see encode_offset_value / encode_group_value for their layout.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace holdfast::coordinator {

constexpr int16_t kOffsetKeyVersion = 1;
constexpr int16_t kGroupKeyVersion = 2;
constexpr int16_t kOffsetValueVersion = 1;
constexpr int16_t kGroupValueVersion = 1;

struct OffsetKey {
  std::string group;
  std::string topic;
  int32_t partition = 0;
  friend bool operator==(const OffsetKey&, const OffsetKey&) = default;
};

struct GroupKey {
  std::string group;
  friend bool operator==(const GroupKey&, const GroupKey&) = default;
};

using RecordKey = std::variant<OffsetKey, GroupKey>;

struct OffsetValue {
  int64_t offset = 0;
  int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  int64_t commit_timestamp_ms = 0;
  int64_t expire_timestamp_ms = -1;  // -1: per offsets.retention.minutes
  friend bool operator==(const OffsetValue&, const OffsetValue&) = default;
};

struct StoredMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t rebalance_timeout_ms = 0;
  int32_t session_timeout_ms = 0;
  Bytes subscription;  // the metadata for the group's selected protocol
  Bytes assignment;
  friend bool operator==(const StoredMember&, const StoredMember&) = default;
};

struct GroupValue {
  std::string protocol_type;
  int32_t generation = 0;
  std::optional<std::string> protocol_name;
  std::optional<std::string> leader;
  int64_t state_timestamp_ms = 0;  // when the group last changed state (became empty)
  std::vector<StoredMember> members;
  friend bool operator==(const GroupValue&, const GroupValue&) = default;
};

enum class RecordErrc { malformed, unknown_version };

std::string encode_key(const RecordKey& key);
std::string encode_offset_value(const OffsetValue& value);
std::string encode_group_value(const GroupValue& value);

Result<RecordKey, RecordErrc> decode_key(std::span<const uint8_t> data);
Result<OffsetValue, RecordErrc> decode_offset_value(std::span<const uint8_t> data);
Result<GroupValue, RecordErrc> decode_group_value(std::span<const uint8_t> data);

// Java's String.hashCode over the UTF-16 code units of `utf8`, and Kafka's
// partition for a group: abs(hashCode) % partitions (abs(MIN_VALUE) = 0).
int32_t java_string_hash(std::string_view utf8);
int32_t partition_for_group(std::string_view group_id, int32_t partitions);

}  // namespace holdfast::coordinator
