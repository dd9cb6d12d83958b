#include "coordinator/group_records.h"

#include <gtest/gtest.h>

namespace holdfast::coordinator {
namespace {

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
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
  auto v = decode_offset_value(bytes_of(encode_offset_value(ov)));
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, ov);
  ov.metadata.reset();
  EXPECT_EQ(*decode_offset_value(bytes_of(encode_offset_value(ov))), ov);

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
  auto gd = decode_group_value(bytes_of(encode_group_value(gv)));
  ASSERT_TRUE(gd);
  EXPECT_EQ(*gd, gv);
}

TEST(GroupRecords, MalformedAndUnknownVersionsAreErrors) {
  EXPECT_EQ(decode_key(bytes_of(std::string("\x00\x09", 2))).code(), RecordErrc::unknown_version);
  EXPECT_EQ(decode_key(bytes_of(std::string("\x00\x01\x00\x05" "ab", 6))).code(),
            RecordErrc::malformed);
  auto value = encode_offset_value(OffsetValue{});
  EXPECT_FALSE(decode_offset_value(bytes_of(value.substr(0, value.size() - 1))));
  EXPECT_FALSE(decode_group_value(bytes_of(std::string("\x00\x01\x00", 3))));
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
