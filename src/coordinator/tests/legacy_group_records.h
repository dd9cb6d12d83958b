// The value encoders of Holdfast releases before Kafka's record formats (value
// version 1 in a layout of Holdfast's own), kept here only to build data dirs
// "written by the previous release" for the upgrade tests. Keys were already
// Kafka's (offset key v1, group key v2), so encode_key still writes them.
#pragma once

#include <string>

#include "coordinator/group_records.h"

namespace holdfast::coordinator::legacy {

class LegacyOut {
 public:
  void i16(int16_t v) { be(uint16_t(v), 2); }
  void i32(int32_t v) { be(uint32_t(v), 4); }
  void i64(int64_t v) { be(uint64_t(v), 8); }
  void str(const std::string& s) {
    i16(static_cast<int16_t>(s.size()));
    buf.append(s);
  }
  void nullable_str(const std::optional<std::string>& s) {
    if (!s) return i16(-1);
    str(*s);
  }
  void long_nullable_str(const std::optional<std::string>& s) {
    if (!s) return i32(-1);
    i32(static_cast<int32_t>(s->size()));
    buf.append(*s);
  }
  void bytes(const Bytes& b) {
    i32(static_cast<int32_t>(b.size()));
    buf.append(b.view());
  }
  std::string buf;

 private:
  void be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) buf.push_back(char((v >> (8 * i)) & 0xff));
  }
};

// version 1: offset, leader epoch, int32-length nullable metadata, commit
// timestamp, expire timestamp.
inline std::string encode_offset_value(const OffsetValue& v) {
  LegacyOut out;
  out.i16(1);
  out.i64(v.offset);
  out.i32(v.leader_epoch);
  out.long_nullable_str(v.metadata);
  out.i64(v.commit_timestamp_ms);
  out.i64(v.expire_timestamp_ms);
  return out.buf;
}

// version 1: the fields of Kafka's GroupMetadataValue v3, under version 1.
inline std::string encode_group_value(const GroupValue& v) {
  LegacyOut out;
  out.i16(1);
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
  return out.buf;
}

}  // namespace holdfast::coordinator::legacy
