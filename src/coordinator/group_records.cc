#include "coordinator/group_records.h"

#include <limits>

#include "coordinator/record_codec.h"

namespace holdfast::coordinator {
namespace {
using codec::In;
using codec::Out;
}  // namespace

std::string encode_key(const RecordKey& key) {
  Out out;
  if (const auto* k = std::get_if<OffsetKey>(&key)) {
    out.i16(kOffsetKeyVersion);
    out.str(k->group);
    out.str(k->topic);
    out.i32(k->partition);
  } else {
    out.i16(kGroupKeyVersion);
    out.str(std::get<GroupKey>(key).group);
  }
  return out.take();
}

std::string encode_offset_value(const OffsetValue& v) {
  Out out;
  const std::string metadata = v.metadata.value_or("");
  if (v.expire_timestamp_ms >= 0) {
    // Kafka writes version 1 (no leader epoch) for a commit with an expire
    // timestamp (OffsetCommit v2-4 retention_time_ms).
    out.i16(kOffsetValueVersionExpiring);
    out.i64(v.offset);
    out.str(metadata);
    out.i64(v.commit_timestamp_ms);
    out.i64(v.expire_timestamp_ms);
  } else {
    out.i16(kOffsetValueVersion);
    out.i64(v.offset);
    out.i32(v.leader_epoch);
    out.str(metadata);
    out.i64(v.commit_timestamp_ms);
  }
  return out.take();
}

std::string encode_group_value(const GroupValue& v) {
  Out out;
  out.i16(kGroupValueVersion);
  out.str(v.protocol_type);
  out.i32(v.generation);
  out.nullable_str(v.protocol_name);
  out.nullable_str(v.leader);
  out.i64(v.state_timestamp_ms);
  out.i32(static_cast<int32_t>(v.members.size()));
  for (const auto& m : v.members) {
    out.str(m.member_id);
    out.nullable_str(m.group_instance_id);
    out.str(m.client_id);
    out.str(m.client_host);
    out.i32(m.rebalance_timeout_ms);
    out.i32(m.session_timeout_ms);
    out.bytes(m.subscription);
    out.bytes(m.assignment);
  }
  return out.take();
}

Result<RecordKey, RecordErrc> decode_key(std::span<const uint8_t> data) {
  In in(data);
  int16_t version = in.i16();
  if (!in.ok()) return make_error(RecordErrc::malformed, "key shorter than its version");
  RecordKey key;
  if (version == 0 || version == 1) {
    OffsetKey k;
    k.group = in.str();
    k.topic = in.str();
    k.partition = in.i32();
    key = std::move(k);
  } else if (version == kGroupKeyVersion) {
    key = GroupKey{in.str()};
  } else {
    return make_error(RecordErrc::unknown_version, "unknown key version " + std::to_string(version));
  }
  if (!in.ok() || !in.at_end()) return make_error(RecordErrc::malformed, "malformed key");
  return key;
}

namespace {

// Kafka's OffsetCommitValue at `version` (0..3), after the version field.
std::optional<OffsetValue> read_kafka_offset_value(In in, int16_t version) {
  OffsetValue v;
  v.offset = in.i64();
  if (version >= 3) v.leader_epoch = in.i32();
  v.metadata = in.str();
  v.commit_timestamp_ms = in.i64();
  if (version == 1) v.expire_timestamp_ms = in.i64();
  if (!in.ok() || !in.at_end()) return std::nullopt;
  return v;
}

// The layout of Holdfast releases before Kafka's formats (value version 1):
// offset, leader epoch, int32-length nullable metadata, commit timestamp,
// expire timestamp.
std::optional<OffsetValue> read_legacy_offset_value(In in) {
  OffsetValue v;
  v.offset = in.i64();
  v.leader_epoch = in.i32();
  v.metadata = in.long_nullable_str();
  v.commit_timestamp_ms = in.i64();
  v.expire_timestamp_ms = in.i64();
  if (!in.ok() || !in.at_end()) return std::nullopt;
  return v;
}

// Kafka's GroupMetadataValue at `version` (0..3), after the version field.
// The legacy Holdfast layout (version 1) is exactly Kafka's version 3.
std::optional<GroupValue> read_group_value(In in, int16_t version) {
  GroupValue v;
  v.protocol_type = in.str();
  v.generation = in.i32();
  v.protocol_name = in.nullable_str();
  v.leader = in.nullable_str();
  v.state_timestamp_ms = version >= 2 ? in.i64() : -1;
  int32_t count = in.i32();
  if (!in.ok() || count < 0) return std::nullopt;
  for (int32_t i = 0; i < count && in.ok(); ++i) {
    StoredMember m;
    m.member_id = in.str();
    if (version >= 3) m.group_instance_id = in.nullable_str();
    m.client_id = in.str();
    m.client_host = in.str();
    // Kafka's reader takes the session timeout for the rebalance timeout of v0.
    int32_t rebalance_timeout = version >= 1 ? in.i32() : -1;
    m.session_timeout_ms = in.i32();
    m.rebalance_timeout_ms = version >= 1 ? rebalance_timeout : m.session_timeout_ms;
    m.subscription = in.bytes();
    m.assignment = in.bytes();
    v.members.push_back(std::move(m));
  }
  if (!in.ok() || !in.at_end()) return std::nullopt;
  return v;
}

}  // namespace

Result<OffsetValue, RecordErrc> decode_offset_value(std::span<const uint8_t> data,
                                                    RecordLayout* layout) {
  In in(data);
  int16_t version = in.i16();
  if (!in.ok()) return make_error(RecordErrc::malformed, "offset value shorter than its version");
  if (version < 0 || version > 3) {
    return make_error(RecordErrc::unknown_version,
                      "unknown offset value version " + std::to_string(version));
  }
  if (layout) *layout = RecordLayout::kafka;
  if (auto v = read_kafka_offset_value(in, version)) return *v;
  if (version == 1) {
    if (auto v = read_legacy_offset_value(in)) {
      if (layout) *layout = RecordLayout::holdfast_legacy;
      return *v;
    }
  }
  return make_error(RecordErrc::malformed,
                    "malformed offset value (version " + std::to_string(version) + ")");
}

Result<GroupValue, RecordErrc> decode_group_value(std::span<const uint8_t> data,
                                                  RecordLayout* layout) {
  In in(data);
  int16_t version = in.i16();
  if (!in.ok()) return make_error(RecordErrc::malformed, "group value shorter than its version");
  if (version < 0 || version > 3) {
    return make_error(RecordErrc::unknown_version,
                      "unknown group value version " + std::to_string(version));
  }
  if (layout) *layout = RecordLayout::kafka;
  if (auto v = read_group_value(in, version)) return std::move(*v);
  if (version == 1) {
    if (auto v = read_group_value(in, 3)) {
      if (layout) *layout = RecordLayout::holdfast_legacy;
      return std::move(*v);
    }
  }
  return make_error(RecordErrc::malformed,
                    "malformed group value (version " + std::to_string(version) + ")");
}

int32_t java_string_hash(std::string_view s) {
  uint32_t h = 0;
  auto unit = [&h](uint32_t u) { h = 31 * h + u; };
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = uint8_t(s[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80) {
      cp = c, n = 1;
    } else if ((c >> 5) == 0x6 && i + 1 < s.size()) {
      cp = ((c & 0x1f) << 6) | (uint8_t(s[i + 1]) & 0x3f), n = 2;
    } else if ((c >> 4) == 0xe && i + 2 < s.size()) {
      cp = ((c & 0x0f) << 12) | ((uint8_t(s[i + 1]) & 0x3f) << 6) | (uint8_t(s[i + 2]) & 0x3f);
      n = 3;
    } else if ((c >> 3) == 0x1e && i + 3 < s.size()) {
      cp = ((c & 0x07) << 18) | ((uint8_t(s[i + 1]) & 0x3f) << 12) |
           ((uint8_t(s[i + 2]) & 0x3f) << 6) | (uint8_t(s[i + 3]) & 0x3f);
      n = 4;
    } else {
      cp = 0xfffd, n = 1;  // what Java's decoder substitutes for a bad byte
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      unit(0xd800 + (cp >> 10));
      unit(0xdc00 + (cp & 0x3ff));
    } else {
      unit(cp);
    }
    i += n;
  }
  return int32_t(h);
}

int32_t partition_for_group(std::string_view group_id, int32_t partitions) {
  int32_t h = java_string_hash(group_id);
  int32_t abs = h == std::numeric_limits<int32_t>::min() ? 0 : (h < 0 ? -h : h);
  return abs % partitions;
}

}  // namespace holdfast::coordinator
