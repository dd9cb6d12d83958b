#include "coordinator/group_records.h"

#include <gtest/gtest.h>

#include "coordinator/tests/legacy_group_records.h"

namespace holdfast::coordinator {
namespace {

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Big-endian bytes, for writing expected records by hand from Kafka's schemas.
struct Wire {
  std::string b;
  Wire& i16(int16_t v) { return be(uint16_t(v), 2); }
  Wire& i32(int32_t v) { return be(uint32_t(v), 4); }
  Wire& i64(int64_t v) { return be(uint64_t(v), 8); }
  Wire& str(std::string_view s) {
    i16(int16_t(s.size()));
    b.append(s);
    return *this;
  }
  Wire& null_str() { return i16(-1); }
  Wire& bytes(std::string_view s) {
    i32(int32_t(s.size()));
    b.append(s);
    return *this;
  }
  Wire& be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) b.push_back(char((v >> (8 * i)) & 0xff));
    return *this;
  }
};

GroupValue sample_group() {
  GroupValue gv;
  gv.protocol_type = "consumer";
  gv.generation = 9;
  gv.protocol_name = "range";
  gv.leader = "m1";
  gv.state_timestamp_ms = 42;
  gv.members.push_back({"m1", "static-1", "client", "/127.0.0.1", 300000, 10000,
                        Bytes::copy_of(std::string_view("sub")),
                        Bytes::copy_of(std::string_view("assign"))});
  gv.members.push_back({"m2", std::nullopt, "c2", "/::1", 1, 2, Bytes(), Bytes()});
  return gv;
}

TEST(GroupRecords, KeysAndValuesRoundTrip) {
  OffsetKey ok{"group-é", "topic.1", 7};
  auto k = decode_key(bytes_of(encode_key(ok)));
  ASSERT_TRUE(k);
  EXPECT_EQ(std::get<OffsetKey>(*k), ok);
  auto g = decode_key(bytes_of(encode_key(GroupKey{"g"})));
  ASSERT_TRUE(g);
  EXPECT_EQ(std::get<GroupKey>(*g).group, "g");

  OffsetValue ov{123456789012, 5, std::string("meta\x01\x00x", 7), 1700000000000, -1};
  RecordLayout layout = RecordLayout::holdfast_legacy;
  auto v = decode_offset_value(bytes_of(encode_offset_value(ov)), &layout);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, ov);
  EXPECT_EQ(layout, RecordLayout::kafka);
  ov.metadata.reset();  // stored as Kafka does: the empty string
  EXPECT_EQ(decode_offset_value(bytes_of(encode_offset_value(ov)))->metadata, "");

  GroupValue gv = sample_group();
  auto gd = decode_group_value(bytes_of(encode_group_value(gv)), &layout);
  ASSERT_TRUE(gd);
  EXPECT_EQ(*gd, gv);
  EXPECT_EQ(layout, RecordLayout::kafka);
}

// The bytes, field by field, of Kafka's OffsetCommitKey/Value and
// GroupMetadataKey/Value schemas (group-coordinator's common/message/*.json).
TEST(GroupRecords, WritesKafkasSchemasByteForByte) {
  EXPECT_EQ(encode_key(OffsetKey{"g", "t", 3}), Wire().i16(1).str("g").str("t").i32(3).b);
  EXPECT_EQ(encode_key(GroupKey{"grp"}), Wire().i16(2).str("grp").b);
  // Version 3: offset, leaderEpoch, metadata, commitTimestamp.
  EXPECT_EQ(encode_offset_value({5, 2, std::string("ab"), 7, -1}),
            Wire().i16(3).i64(5).i32(2).str("ab").i64(7).b);
  // With an expire timestamp, version 1: offset, metadata, commitTimestamp,
  // expireTimestamp (no leader epoch), as Kafka writes it.
  EXPECT_EQ(encode_offset_value({5, 2, std::nullopt, 7, 9}),
            Wire().i16(1).i64(5).str("").i64(7).i64(9).b);
  // GroupMetadataValue v3.
  Wire group;
  group.i16(3).str("consumer").i32(9).str("range").str("m1").i64(42).i32(2);
  group.str("m1").str("static-1").str("client").str("/127.0.0.1").i32(300000).i32(10000);
  group.bytes("sub").bytes("assign");
  group.str("m2").null_str().str("c2").str("/::1").i32(1).i32(2).bytes("").bytes("");
  EXPECT_EQ(encode_group_value(sample_group()), group.b);
  // An empty group (no protocol, no leader, no members).
  GroupValue empty;
  empty.generation = 4;
  empty.state_timestamp_ms = 11;
  EXPECT_EQ(encode_group_value(empty),
            Wire().i16(3).str("").i32(4).null_str().null_str().i64(11).i32(0).b);
}

TEST(GroupRecords, ReadsEveryKafkaVersion) {
  auto key0 = decode_key(bytes_of(Wire().i16(0).str("g").str("t").i32(1).b));
  ASSERT_TRUE(key0);
  EXPECT_EQ(std::get<OffsetKey>(*key0), (OffsetKey{"g", "t", 1}));

  for (int16_t version : {0, 2}) {
    auto v = decode_offset_value(bytes_of(Wire().i16(version).i64(8).str("m").i64(6).b));
    ASSERT_TRUE(v) << version;
    EXPECT_EQ(*v, (OffsetValue{8, -1, std::string("m"), 6, -1})) << version;
  }
  RecordLayout layout = RecordLayout::holdfast_legacy;
  auto v1 = decode_offset_value(bytes_of(Wire().i16(1).i64(8).str("").i64(6).i64(99).b), &layout);
  ASSERT_TRUE(v1);
  EXPECT_EQ(*v1, (OffsetValue{8, -1, std::string(""), 6, 99}));
  EXPECT_EQ(layout, RecordLayout::kafka);

  // Group value v0 (no rebalance timeout: it is the session timeout), v1, v2.
  Wire g0;
  g0.i16(0).str("consumer").i32(1).str("range").str("a").i32(1);
  g0.str("a").str("cid").str("/h").i32(3000).bytes("s").bytes("x");
  auto d0 = decode_group_value(bytes_of(g0.b));
  ASSERT_TRUE(d0);
  EXPECT_EQ(d0->state_timestamp_ms, -1);
  ASSERT_EQ(d0->members.size(), 1u);
  EXPECT_EQ(d0->members[0].rebalance_timeout_ms, 3000);
  EXPECT_EQ(d0->members[0].session_timeout_ms, 3000);
  EXPECT_EQ(d0->members[0].assignment.to_string(), "x");

  Wire g1;
  g1.i16(1).str("consumer").i32(1).str("range").str("a").i32(1);
  g1.str("a").str("cid").str("/h").i32(60000).i32(3000).bytes("s").bytes("x");
  auto d1 = decode_group_value(bytes_of(g1.b), &layout);
  ASSERT_TRUE(d1);
  EXPECT_EQ(layout, RecordLayout::kafka);
  EXPECT_EQ(d1->members.at(0).rebalance_timeout_ms, 60000);
  EXPECT_EQ(d1->members.at(0).group_instance_id, std::nullopt);

  Wire g2;
  g2.i16(2).str("").i32(0).null_str().null_str().i64(77).i32(0);
  auto d2 = decode_group_value(bytes_of(g2.b));
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->state_timestamp_ms, 77);
  EXPECT_TRUE(d2->members.empty());
}

TEST(GroupRecords, ReadsTheLegacyHoldfastLayout) {
  for (OffsetValue ov : {OffsetValue{42, -1, std::nullopt, 1700000000000, -1},
                         OffsetValue{42, 0, std::string("meta"), 1700000000000, -1},
                         OffsetValue{1, 7, std::string(""), 0, 1700000001000}}) {
    RecordLayout layout = RecordLayout::kafka;
    auto v = decode_offset_value(bytes_of(legacy::encode_offset_value(ov)), &layout);
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, ov);
    EXPECT_EQ(layout, RecordLayout::holdfast_legacy);
  }
  GroupValue empty;  // state timestamp 0: still not a Kafka v1 value
  empty.protocol_type = "consumer";
  for (const GroupValue& gv : {sample_group(), empty}) {
    RecordLayout layout = RecordLayout::kafka;
    auto v = decode_group_value(bytes_of(legacy::encode_group_value(gv)), &layout);
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, gv);
    EXPECT_EQ(layout, RecordLayout::holdfast_legacy);
  }
}

TEST(GroupRecords, MalformedAndUnknownVersionsAreErrors) {
  EXPECT_EQ(decode_key(bytes_of(std::string("\x00\x09", 2))).code(), RecordErrc::unknown_version);
  EXPECT_EQ(decode_key(bytes_of(std::string("\x00\x01\x00\x05" "ab", 6))).code(),
            RecordErrc::malformed);
  auto value = encode_offset_value(OffsetValue{});
  EXPECT_FALSE(decode_offset_value(bytes_of(value.substr(0, value.size() - 1))));
  EXPECT_FALSE(decode_offset_value(bytes_of(value + "x")));  // trailing bytes
  EXPECT_EQ(decode_offset_value(bytes_of(Wire().i16(4).i64(1).b)).code(),
            RecordErrc::unknown_version);
  EXPECT_FALSE(decode_group_value(bytes_of(std::string("\x00\x01\x00", 3))));
  EXPECT_EQ(decode_group_value(bytes_of(Wire().i16(-1).b)).code(), RecordErrc::unknown_version);
  // A negative member count or string length.
  EXPECT_FALSE(decode_group_value(
      bytes_of(Wire().i16(3).str("").i32(0).null_str().null_str().i64(0).i32(-1).b)));
  EXPECT_FALSE(decode_offset_value(bytes_of(Wire().i16(3).i64(1).i32(0).i16(-1).i64(0).b)));
}

TEST(GroupRecords, PartitionForGroupIsKafkas) {
  EXPECT_EQ(java_string_hash(""), 0);
  EXPECT_EQ(java_string_hash("hello"), 99162322);
  EXPECT_EQ(java_string_hash("\xc3\xa9"), 233);                  // é: one UTF-16 unit
  EXPECT_EQ(java_string_hash("\xf0\x9f\x98\x80"), 31 * 0xd83d + 0xde00);  // surrogate pair
  // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Kafka's abs() makes it 0.
  EXPECT_EQ(java_string_hash("polygenelubricants"), INT32_MIN);
  EXPECT_EQ(partition_for_group("polygenelubricants", 50), 0);
  EXPECT_EQ(partition_for_group("hello", 50), 99162322 % 50);
  // A negative hash: abs() first.
  int32_t h = java_string_hash("console-consumer-12345");
  EXPECT_EQ(partition_for_group("console-consumer-12345", 50), (h < 0 ? -h : h) % 50);
}

}  // namespace
}  // namespace holdfast::coordinator
