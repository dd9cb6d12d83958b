// The records the group coordinator writes to `__consumer_offsets-N`, in
// Kafka's own formats (docs/storage-format.md, "Consumer offsets and group
// metadata"), so that tools reading that topic directly (Burrow, Kafka's
// console consumer with its formatters) understand them.
//
// Each record is an ordinary record in a v2 batch; its key says what it is
// about, so that compaction (keep the last record per key, a null value is a
// tombstone) leaves exactly the coordinator's state. Keys and values start
// with an int16 version; the fields are Kafka's OffsetCommitKey/Value and
// GroupMetadataKey/Value schemas (non-flexible versions):
//
//   offset key  v0/v1 : string group, string topic, int32 partition
//   group key   v2    : string group
//   offset value v0   : int64 offset, string metadata, int64 commit timestamp
//               v1    : v0 + int64 expire timestamp
//               v2    : same as v0
//               v3    : int64 offset, int32 leader epoch, string metadata,
//                       int64 commit timestamp
//   group value v0..v3: see encode_group_value
//
// We write offset keys at v1, offset values at v3 (v1 when the commit carries
// an expire timestamp, as Kafka does), group keys at v2, group values at v3.
//
// Holdfast releases before this one wrote offset and group values at version
// 1 in a layout of their own (RecordLayout::holdfast_legacy). The decoders
// still read it; the coordinator rewrites such records in Kafka's layout when
// it loads a partition (group_store.cc).
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

constexpr int16_t kOffsetKeyVersion = 1;           // written; 0 is read too (same layout)
constexpr int16_t kGroupKeyVersion = 2;
constexpr int16_t kOffsetValueVersion = 3;         // written when there is no expire timestamp
constexpr int16_t kOffsetValueVersionExpiring = 1;  // written when there is one
constexpr int16_t kGroupValueVersion = 3;
// Kafka's metadata field is an int16-length string.
constexpr size_t kMaxOffsetMetadataBytes = 32767;

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
  // Kafka stores a null commit metadata as the empty string; so do we. Only
  // a record of the legacy layout can decode to nullopt.
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
  int64_t state_timestamp_ms = 0;  // when the group last changed state (became empty); -1: unknown (v0, v1)
  std::vector<StoredMember> members;
  friend bool operator==(const GroupValue&, const GroupValue&) = default;
};

enum class RecordErrc { malformed, unknown_version };

// Which layout a value was read in: Kafka's, or the one of Holdfast releases
// before Kafka's formats (version 1, a layout of its own).
enum class RecordLayout { kafka, holdfast_legacy };

std::string encode_key(const RecordKey& key);
// Requires metadata of at most kMaxOffsetMetadataBytes (the commit path
// enforces offset.metadata.max.bytes, capped at that).
std::string encode_offset_value(const OffsetValue& value);
std::string encode_group_value(const GroupValue& value);

// Every decoder consumes the whole input: trailing bytes are malformed. A
// value at version 1 is read in Kafka's layout when it parses as such, else
// in the legacy Holdfast layout; `layout` (optional) says which.
Result<RecordKey, RecordErrc> decode_key(std::span<const uint8_t> data);
Result<OffsetValue, RecordErrc> decode_offset_value(std::span<const uint8_t> data,
                                                    RecordLayout* layout = nullptr);
Result<GroupValue, RecordErrc> decode_group_value(std::span<const uint8_t> data,
                                                  RecordLayout* layout = nullptr);

// Java's String.hashCode over the UTF-16 code units of `utf8`, and Kafka's
// partition for a group: abs(hashCode) % partitions (abs(MIN_VALUE) = 0).
int32_t java_string_hash(std::string_view utf8);
int32_t partition_for_group(std::string_view group_id, int32_t partitions);

}  // namespace holdfast::coordinator
