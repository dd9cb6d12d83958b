// Hand-written byte-exact frames as real clients send them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/messages.h"

namespace holdfast::protocol {
namespace {

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<uint8_t> str(const std::string& s) { return {s.begin(), s.end()}; }

// The first request librdkafka 2.x sends on every connection: ApiVersions v3,
// flexible request header v2 (client_id still an int16 string), then the
// client software name and version as compact strings.
TEST(Golden, LibrdkafkaApiVersionsV3Request) {
  std::vector<uint8_t> frame = concat({
      {0x00, 0x00, 0x00, 0x24},              // frame size 36
      {0x00, 0x12, 0x00, 0x03},              // api_key 18, api_version 3
      {0x00, 0x00, 0x00, 0x01},              // correlation_id 1
      {0x00, 0x07}, str("rdkafka"),          // client_id (classic nullable string)
      {0x00},                                // header tagged fields
      {0x0b}, str("librdkafka"),             // client_software_name (compact)
      {0x06}, str("2.0.2"),                  // client_software_version (compact)
      {0x00},                                // body tagged fields
  });
  ASSERT_EQ(frame.size(), 4u + 0x24);

  Reader r{Bytes(frame)};
  ASSERT_EQ(*r.read_int32(), 0x24);
  auto header = decode_request_header(r);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->api_key, 18);
  EXPECT_EQ(header->api_version, 3);
  EXPECT_EQ(header->correlation_id, 1);
  EXPECT_EQ(header->client_id, "rdkafka");

  ApiVersionsRequest req;
  auto res = req.decode(r, header->api_version);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(req.client_software_name, "librdkafka");
  EXPECT_EQ(req.client_software_version, "2.0.2");

  EXPECT_EQ(encode_request_frame(*header, req), frame);
}

// KIP-511: the ApiVersions response header is v0 (no tagged fields) even for
// the flexible v3 body.
TEST(Golden, ApiVersionsV3ResponseUsesHeaderV0) {
  ApiVersionsResponse resp;
  resp.error_code = 0;
  resp.api_keys.push_back({18, 0, 3});
  resp.throttle_time_ms = 0;
  std::vector<uint8_t> expected = concat({
      {0x00, 0x00, 0x00, 0x13},          // frame size 19
      {0x00, 0x00, 0x00, 0x07},          // correlation_id 7, header v0: no tag buffer
      {0x00, 0x00},                      // error_code
      {0x02},                            // api_keys: compact array of 1
      {0x00, 0x12, 0x00, 0x00, 0x00, 0x03, 0x00},
      {0x00, 0x00, 0x00, 0x00},          // throttle_time_ms
      {0x00},                            // body tagged fields (features left empty)
  });
  EXPECT_EQ(encode_response_frame(7, 3, resp), expected);
  EXPECT_EQ(response_header_version(18, 3), 0);
  EXPECT_EQ(response_header_version(1, 12), 1);
  EXPECT_EQ(request_header_version(18, 3), 2);
  EXPECT_EQ(request_header_version(18, 2), 1);
}

// Metadata v1+: a null topics array means "all topics", an empty one "none".
TEST(Golden, MetadataV1NullVersusEmptyTopics) {
  std::vector<uint8_t> null_topics = {0xff, 0xff, 0xff, 0xff};
  std::vector<uint8_t> empty_topics = {0x00, 0x00, 0x00, 0x00};

  MetadataRequest all;
  Reader r1{Bytes(null_topics)};
  ASSERT_TRUE(all.decode(r1, 1).ok());
  EXPECT_FALSE(all.topics.has_value());

  MetadataRequest none;
  Reader r2{Bytes(empty_topics)};
  ASSERT_TRUE(none.decode(r2, 1).ok());
  ASSERT_TRUE(none.topics.has_value());
  EXPECT_TRUE(none.topics->empty());

  EXPECT_EQ(encode_message(all, 1), null_topics);
  EXPECT_EQ(encode_message(none, 1), empty_topics);

  // v0 has no null: the all-topics request is the empty array, and a null
  // array on the wire is rejected.
  EXPECT_EQ(encode_message(all, 0), empty_topics);
  MetadataRequest v0;
  Reader r3{Bytes(null_topics)};
  auto res = v0.decode(r3, 0);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().message, "MetadataRequest.topics: invalid_value (null array where not nullable)");
}

// A flexible tagged-field buffer: the known tag is read, an unknown one is
// skipped, and re-encoding keeps only what we understand.
TEST(Golden, UnknownTaggedFieldIsSkipped) {
  std::vector<uint8_t> body = concat({
      {0x04}, str("app"),                 // client_software_name
      {0x02}, str("1"),                   // client_software_version
      {0x01},                             // one tagged field...
      {0x2a, 0x03, 0xde, 0xad, 0xbe},     // ...tag 42, 3 bytes, unknown to us
  });
  ApiVersionsRequest req;
  Reader r{Bytes(body)};
  auto res = req.decode(r, 3);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(req.client_software_name, "app");
  EXPECT_EQ(req.client_software_version, "1");
  std::vector<uint8_t> reencoded = concat({{0x04}, str("app"), {0x02}, str("1"), {0x00}});
  EXPECT_EQ(encode_message(req, 3), reencoded);
}

TEST(Golden, FetchV12KnownAndUnknownTopLevelTags) {
  FetchRequest req;
  req.cluster_id = "c1";
  req.replica_id = -1;
  req.max_wait_ms = 500;
  req.min_bytes = 1;
  std::vector<uint8_t> bytes = encode_message(req, 12);
  // The message ends with: 1 tag, tag 0, size 3, compact string "c1".
  std::vector<uint8_t> tail = {0x01, 0x00, 0x03, 0x03, 'c', '1'};
  ASSERT_GE(bytes.size(), tail.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), bytes.end() - long(tail.size())));

  // Add an unknown tag 9 after the known one (tags ascend) and decode.
  std::vector<uint8_t> with_unknown(bytes.begin(), bytes.end() - long(tail.size()));
  std::vector<uint8_t> new_tail = {0x02, 0x00, 0x03, 0x03, 'c', '1', 0x09, 0x01, 0x00};
  with_unknown.insert(with_unknown.end(), new_tail.begin(), new_tail.end());
  FetchRequest decoded;
  Reader r{Bytes(with_unknown)};
  auto res = decoded.decode(r, 12);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(decoded, req);
}

// Produce v3 as librdkafka sends it: the records come back as a slice of the
// request frame (no copy), and the error path names the failing field.
TEST(Golden, ProduceV3RecordsAreZeroCopy) {
  std::vector<uint8_t> body = concat({
      {0xff, 0xff},                       // transactional_id: null
      {0xff, 0xff},                       // acks -1
      {0x00, 0x00, 0x75, 0x30},           // timeout_ms 30000
      {0x00, 0x00, 0x00, 0x01},           // one topic
      {0x00, 0x01}, str("t"),
      {0x00, 0x00, 0x00, 0x01},           // one partition
      {0x00, 0x00, 0x00, 0x02},           // index 2
      {0x00, 0x00, 0x00, 0x04}, {0xaa, 0xbb, 0xcc, 0xdd},  // records
  });
  Bytes frame(body);
  ProduceRequest req;
  Reader r(frame);
  ASSERT_TRUE(req.decode(r, 3).ok());
  EXPECT_FALSE(req.transactional_id.has_value());
  EXPECT_EQ(req.acks, -1);
  EXPECT_EQ(req.timeout_ms, 30000);
  ASSERT_EQ(req.topic_data.size(), 1u);
  EXPECT_EQ(req.topic_data[0].name, "t");
  ASSERT_EQ(req.topic_data[0].partition_data.size(), 1u);
  const auto& p = req.topic_data[0].partition_data[0];
  EXPECT_EQ(p.index, 2);
  ASSERT_TRUE(p.records.has_value());
  EXPECT_EQ(p.records->size(), 4u);
  EXPECT_EQ(p.records->data(), frame.data() + body.size() - 4);
  EXPECT_EQ(encode_message(req, 3), body);

  // A topic name that claims 10 bytes where only 4 remain.
  std::vector<uint8_t> cut(body.begin(), body.begin() + 12);
  for (uint8_t b : std::vector<uint8_t>{0x00, 0x0a, 'a', 'b', 'c', 'd'}) cut.push_back(b);
  ProduceRequest bad;
  Reader rc{Bytes(cut)};
  auto res = bad.decode(rc, 3);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.code(), Errc::truncated);
  EXPECT_EQ(res.error().message.rfind("ProduceRequest.topic_data[0].name: ", 0), 0u) << res.error().message;
}

TEST(Golden, UnsupportedVersionIsRejected) {
  ProduceRequest req;
  Reader r{Bytes(std::vector<uint8_t>{0, 0})};
  auto res = req.decode(r, 10);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.code(), Errc::unsupported_version);
}

TEST(Golden, RegistryTable) {
  EXPECT_STREQ(api_name(0), "Produce");
  EXPECT_STREQ(api_name(18), "ApiVersions");
  EXPECT_STREQ(api_name(9999), "Unknown");
  EXPECT_TRUE(is_flexible(18, 3));
  EXPECT_TRUE(is_flexible(18, 4));  // newer than our schema, still flexible
  EXPECT_FALSE(is_flexible(0, 8));
  EXPECT_TRUE(is_flexible(0, 9));
  EXPECT_FALSE(is_flexible(47, 0));
  EXPECT_EQ(request_header_version(7, 0), 0);
  bool found_fetch = false;
  for (const auto& a : kApiSchemas) {
    if (a.api_key == 1) {
      found_fetch = true;
      EXPECT_EQ(a.min_version, 0);
      EXPECT_EQ(a.max_version, 12);
      EXPECT_EQ(a.first_flexible_version, 12);
    }
  }
  EXPECT_TRUE(found_fetch);
  EXPECT_EQ(kApiSchemas.size(), 51u);  // + DescribeQuorum, IncrementalAlterConfigs, DescribeLogDirs, ElectLeaders, Alter/ListPartitionReassignments, DescribeProducers, OffsetForLeaderEpoch, AlterPartition, DescribeCluster, BrokerRegistration, BrokerHeartbeat, WriteTxnMarkers, Describe/ListTransactions, Describe/Create/DeleteAcls, Describe/AlterUserScramCredentials, Describe/AlterClientQuotas
}

// OffsetForLeaderEpoch v4 as librdkafka 2.x sends it to validate a consumer's
// position (KIP-320): flexible header v2, replica_id -1 (a consumer), compact
// arrays and strings, tagged-field buffers at every level.
TEST(Golden, OffsetForLeaderEpochV4Request) {
  std::vector<uint8_t> frame = concat({
      {0x00, 0x00, 0x00, 0x29},              // frame size 41
      {0x00, 0x17, 0x00, 0x04},              // api_key 23, api_version 4
      {0x00, 0x00, 0x00, 0x05},              // correlation_id 5
      {0x00, 0x07}, str("rdkafka"),          // client_id (classic nullable string)
      {0x00},                                // header tagged fields
      {0xff, 0xff, 0xff, 0xff},              // replica_id -1
      {0x02},                                // topics: compact array of 1
      {0x02}, str("t"),                      // topic (compact string)
      {0x02},                                // partitions: compact array of 1
      {0x00, 0x00, 0x00, 0x03},              // partition 3
      {0x00, 0x00, 0x00, 0x02},              // current_leader_epoch 2
      {0x00, 0x00, 0x00, 0x01},              // leader_epoch 1
      {0x00},                                // partition tagged fields
      {0x00},                                // topic tagged fields
      {0x00},                                // body tagged fields
  });
  ASSERT_EQ(frame.size(), 4u + 0x29);
  Reader r{Bytes(frame)};
  ASSERT_EQ(*r.read_int32(), 0x29);
  auto header = decode_request_header(r);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->api_key, 23);
  EXPECT_EQ(header->api_version, 4);
  OffsetForLeaderEpochRequest req;
  auto res = req.decode(r, header->api_version);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(req.replica_id, -1);
  ASSERT_EQ(req.topics.size(), 1u);
  EXPECT_EQ(req.topics[0].topic, "t");
  ASSERT_EQ(req.topics[0].partitions.size(), 1u);
  EXPECT_EQ(req.topics[0].partitions[0].partition, 3);
  EXPECT_EQ(req.topics[0].partitions[0].current_leader_epoch, 2);
  EXPECT_EQ(req.topics[0].partitions[0].leader_epoch, 1);
  EXPECT_EQ(encode_request_frame(*header, req), frame);
  EXPECT_TRUE(is_flexible(23, 4));
  EXPECT_FALSE(is_flexible(23, 3));
}

// v0 has neither replica_id nor current_leader_epoch, and its response no
// leader_epoch; v3's response is classic with throttle_time_ms first.
TEST(Golden, OffsetForLeaderEpochClassicVersions) {
  std::vector<uint8_t> v0_body = concat({
      {0x00, 0x00, 0x00, 0x01},              // topics: 1
      {0x00, 0x01}, str("t"),                // topic
      {0x00, 0x00, 0x00, 0x01},              // partitions: 1
      {0x00, 0x00, 0x00, 0x00},              // partition 0
      {0x00, 0x00, 0x00, 0x07},              // leader_epoch 7
  });
  OffsetForLeaderEpochRequest req;
  Reader r{Bytes(v0_body)};
  ASSERT_TRUE(req.decode(r, 0).ok());
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(req.topics.at(0).partitions.at(0).leader_epoch, 7);
  EXPECT_EQ(req.topics[0].partitions[0].current_leader_epoch, -1);  // no check

  OffsetForLeaderEpochResponse resp;
  auto& t = resp.topics.emplace_back();
  t.topic = "t";
  auto& p = t.partitions.emplace_back();
  p.error_code = 0;
  p.partition = 0;
  p.leader_epoch = 7;
  p.end_offset = 42;
  std::vector<uint8_t> v3 = concat({
      {0x00, 0x00, 0x00, 0x25},              // frame size 37
      {0x00, 0x00, 0x00, 0x09},              // correlation_id 9 (header v0)
      {0x00, 0x00, 0x00, 0x00},              // throttle_time_ms
      {0x00, 0x00, 0x00, 0x01},              // topics: 1
      {0x00, 0x01}, str("t"),
      {0x00, 0x00, 0x00, 0x01},              // partitions: 1
      {0x00, 0x00},                          // error_code
      {0x00, 0x00, 0x00, 0x00},              // partition 0
      {0x00, 0x00, 0x00, 0x07},              // leader_epoch 7
      {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a},  // end_offset 42
  });
  EXPECT_EQ(encode_response_frame(9, 3, resp), v3);
  std::vector<uint8_t> v0 = concat({
      {0x00, 0x00, 0x00, 0x1d},              // frame size 29
      {0x00, 0x00, 0x00, 0x09},
      {0x00, 0x00, 0x00, 0x01},              // topics: 1 (no throttle_time_ms)
      {0x00, 0x01}, str("t"),
      {0x00, 0x00, 0x00, 0x01},
      {0x00, 0x00},                          // error_code
      {0x00, 0x00, 0x00, 0x00},              // partition 0 (no leader_epoch)
      {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a},
  });
  EXPECT_EQ(encode_response_frame(9, 0, resp), v0);
}

// DescribeQuorum (55) as Kafka's admin client reads it: flexible from v0
// (response header v1), and v1 (KIP-836) adds two int64 timestamps to each
// ReplicaState, nothing else.
TEST(Golden, DescribeQuorumResponseV0AndV1) {
  DescribeQuorumResponse resp;
  auto& t = resp.topics.emplace_back();
  t.topic_name = "__cluster_metadata";
  auto& p = t.partitions.emplace_back();
  p.leader_id = 1;
  p.leader_epoch = 3;
  p.high_watermark = 42;
  p.current_voters.push_back({1, 42, -1, 5000});
  auto frame = [](int16_t version) {
    const bool v1 = version >= 1;
    std::vector<uint8_t> replica = {0x00, 0x00, 0x00, 0x01,  // replica_id 1
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a};  // log_end_offset 42
    if (v1) {
      replica.insert(replica.end(), 8, 0xff);  // last_fetch_timestamp -1
      for (uint8_t b : {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x88}) replica.push_back(b);  // 5000
    }
    replica.push_back(0x00);  // ReplicaState tagged fields
    return concat({
        {0x00, 0x00, 0x00, uint8_t(v1 ? 0x54 : 0x44)},  // frame size 84 / 68
        {0x00, 0x00, 0x00, 0x07},              // correlation_id 7
        {0x00},                                // header v1 tagged fields
        {0x00, 0x00},                          // error_code
        {0x02},                                // topics: compact array of 1
        {0x13}, str("__cluster_metadata"),     // topic_name (compact)
        {0x02},                                // partitions: 1
        {0x00, 0x00, 0x00, 0x00},              // partition_index 0
        {0x00, 0x00},                          // error_code
        {0x00, 0x00, 0x00, 0x01},              // leader_id 1
        {0x00, 0x00, 0x00, 0x03},              // leader_epoch 3
        {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a},  // high_watermark 42
        {0x02}, replica,                       // current_voters: 1
        {0x01},                                // observers: empty
        {0x00}, {0x00}, {0x00},                // partition, topic, body tagged fields
    });
  };
  EXPECT_EQ(encode_response_frame(7, 0, resp), frame(0));
  EXPECT_EQ(encode_response_frame(7, 1, resp), frame(1));
}

}  // namespace
}  // namespace holdfast::protocol
