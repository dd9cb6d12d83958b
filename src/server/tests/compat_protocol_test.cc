// Protocol tests of what admin tools and UIs call beyond produce/consume:
// DescribeLogDirs, DescribeProducers, the cluster-only APIs answered with an
// error naming the limitation, and compression.type recompression.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "record/batch.h"
#include "server/broker.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using testing::TestClient;

class CompatProtocolTest : public testing::BrokerFixture {
 protected:
  void create_topic_with(TestClient& client, const std::string& name,
                         std::vector<std::pair<std::string, std::string>> configs,
                         int16_t expected_error = 0) {
    protocol::CreateTopicsRequest request;
    auto& t = request.topics.emplace_back();
    t.name = name;
    t.num_partitions = 1;
    t.replication_factor = 1;
    for (auto& [k, v] : configs) {
      auto& c = t.configs.emplace_back();
      c.name = k;
      c.value = v;
    }
    request.timeout_ms = 5000;
    auto response =
        client.call<protocol::CreateTopicsRequest, protocol::CreateTopicsResponse>(request, 4);
    ASSERT_EQ(response.topics.at(0).error_code, expected_error)
        << response.topics[0].error_message.value_or("");
  }

  static protocol::ProduceRequest produce_request(const std::string& topic, Bytes batch) {
    protocol::ProduceRequest request;
    request.acks = -1;
    request.timeout_ms = 5000;
    auto& t = request.topic_data.emplace_back();
    t.name = topic;
    auto& p = t.partition_data.emplace_back();
    p.index = 0;
    p.records = std::move(batch);
    return request;
  }

  static Bytes idempotent_batch(record::Compression codec, int64_t producer_id, int32_t seq,
                                int count) {
    record::BatchBuilder builder(codec);
    builder.set_producer(producer_id, 0, seq);
    for (int i = 0; i < count; ++i) {
      builder.add("k" + std::to_string(i), "value-" + std::to_string(seq + i) +
                                                std::string(100, 'x'),
                  1700000000000 + i);
    }
    return builder.build();
  }

  int64_t new_producer_id(TestClient& client) {
    protocol::InitProducerIdRequest request;
    request.transaction_timeout_ms = 60000;
    request.producer_id = -1;
    request.producer_epoch = -1;
    auto r = client.call<protocol::InitProducerIdRequest, protocol::InitProducerIdResponse>(request,
                                                                                            4);
    EXPECT_EQ(r.error_code, 0);
    return r.producer_id;
  }

  // The stored batches of partition 0 from offset 0.
  std::vector<Bytes> fetch_batches(TestClient& client, const std::string& topic) {
    auto response = client.fetch_from(topic);
    std::vector<Bytes> out;
    const auto& part = response.responses.at(0).partitions.at(0);
    EXPECT_EQ(part.error_code, 0);
    if (!part.records) return out;
    auto data = part.records->span();
    while (!data.empty()) {
      auto header = record::check_batch(data);  // CRC right
      EXPECT_TRUE(header);
      if (!header) break;
      out.push_back(Bytes::copy_of(data.subspan(0, header->size_in_bytes())));
      data = data.subspan(header->size_in_bytes());
    }
    return out;
  }
};

TEST_F(CompatProtocolTest, DescribeLogDirsGivesEachPartitionsSizeInEveryVersion) {
  TestClient client(port());
  create_topic(client, "t", 2);
  auto produced = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
      produce_request("t", idempotent_batch(record::Compression::none, -1, -1, 5)), 7);
  ASSERT_EQ(produced.responses[0].partition_responses[0].error_code, 0);
  const int64_t size0 = broker_->replicas().get("t", 0)->size_bytes();
  ASSERT_GT(size0, 0);

  for (int16_t version = 0; version <= 3; ++version) {
    protocol::DescribeLogDirsRequest request;
    auto& t = request.topics.emplace().emplace_back();
    t.topic = "t";
    t.partitions = {0, 1, 7};  // 7 does not exist: left out, as Kafka does
    auto r = client.call<protocol::DescribeLogDirsRequest, protocol::DescribeLogDirsResponse>(
        request, version);
    EXPECT_EQ(r.error_code, 0);
    ASSERT_EQ(r.results.size(), 1u) << version;
    const auto& dir = r.results[0];
    EXPECT_EQ(dir.error_code, 0);
    EXPECT_EQ(std::filesystem::path(dir.log_dir),
              std::filesystem::absolute(dir_).lexically_normal());
    ASSERT_EQ(dir.topics.size(), 1u);
    EXPECT_EQ(dir.topics[0].name, "t");
    ASSERT_EQ(dir.topics[0].partitions.size(), 2u);
    EXPECT_EQ(dir.topics[0].partitions[0].partition_index, 0);
    EXPECT_EQ(dir.topics[0].partitions[0].partition_size, size0);
    EXPECT_EQ(dir.topics[0].partitions[0].offset_lag, 0);
    EXPECT_FALSE(dir.topics[0].partitions[0].is_future_key);
    EXPECT_EQ(dir.topics[0].partitions[1].partition_index, 1);
  }
  // Null topics: every partition of every topic, the internal one included.
  protocol::DescribeLogDirsRequest all;
  auto r = client.call<protocol::DescribeLogDirsRequest, protocol::DescribeLogDirsResponse>(all, 2);
  std::set<std::string> names;
  for (const auto& t : r.results.at(0).topics) names.insert(t.name);
  EXPECT_TRUE(names.count("t"));
  EXPECT_TRUE(names.count("__consumer_offsets"));
}

TEST_F(CompatProtocolTest, DescribeProducersListsTheIdempotentProducers) {
  TestClient client(port());
  create_topic(client, "t", 1);
  int64_t id = new_producer_id(client);
  for (int32_t seq : {0, 3}) {
    auto r = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request("t", idempotent_batch(record::Compression::none, id, seq, 3)), 7);
    ASSERT_EQ(r.responses[0].partition_responses[0].error_code, 0);
  }
  protocol::DescribeProducersRequest request;
  auto& t = request.topics.emplace_back();
  t.name = "t";
  t.partition_indexes = {0, 5};
  auto& missing = request.topics.emplace_back();
  missing.name = "nope";
  missing.partition_indexes = {0};
  auto r = client.call<protocol::DescribeProducersRequest, protocol::DescribeProducersResponse>(
      request, 0);
  ASSERT_EQ(r.topics.size(), 2u);
  ASSERT_EQ(r.topics[0].partitions.size(), 2u);
  const auto& p0 = r.topics[0].partitions[0];
  EXPECT_EQ(p0.error_code, 0);
  ASSERT_EQ(p0.active_producers.size(), 1u);
  EXPECT_EQ(p0.active_producers[0].producer_id, id);
  EXPECT_EQ(p0.active_producers[0].producer_epoch, 0);
  EXPECT_EQ(p0.active_producers[0].last_sequence, 5);
  EXPECT_EQ(p0.active_producers[0].last_timestamp, 1700000000002);
  EXPECT_EQ(p0.active_producers[0].current_txn_start_offset, -1);
  EXPECT_EQ(r.topics[0].partitions[1].error_code, 3);  // UNKNOWN_TOPIC_OR_PARTITION
  EXPECT_EQ(r.topics[1].partitions.at(0).error_code, 3);
}

TEST_F(CompatProtocolTest, ClusterOnlyApisAnswerInvalidRequestNamingTheLimitation) {
  TestClient client(port());
  create_topic(client, "t", 2);
  for (int16_t version = 0; version <= 2; ++version) {
    protocol::ElectLeadersRequest request;
    auto& tp = request.topic_partitions.emplace().emplace_back();
    tp.topic = "t";
    tp.partitions = {0, 1};
    auto r = client.call<protocol::ElectLeadersRequest, protocol::ElectLeadersResponse>(request,
                                                                                        version);
    if (version >= 1) {
      EXPECT_EQ(r.error_code, 42);
    }
    ASSERT_EQ(r.replica_election_results.size(), 1u);
    ASSERT_EQ(r.replica_election_results[0].partition_result.size(), 2u);
    for (const auto& p : r.replica_election_results[0].partition_result) {
      EXPECT_EQ(p.error_code, 42);
      EXPECT_NE(p.error_message.value_or("").find("single node"), std::string::npos);
    }
  }
  protocol::AlterPartitionReassignmentsRequest alter;
  auto& at = alter.topics.emplace_back();
  at.name = "t";
  at.partitions.emplace_back().partition_index = 0;
  auto ar = client.call<protocol::AlterPartitionReassignmentsRequest,
                        protocol::AlterPartitionReassignmentsResponse>(alter, 0);
  EXPECT_EQ(ar.error_code, 42);
  EXPECT_NE(ar.error_message.value_or("").find("single node"), std::string::npos);
  ASSERT_EQ(ar.responses.at(0).partitions.size(), 1u);
  EXPECT_EQ(ar.responses[0].partitions[0].error_code, 42);

  protocol::ListPartitionReassignmentsRequest list;
  auto lr = client.call<protocol::ListPartitionReassignmentsRequest,
                        protocol::ListPartitionReassignmentsResponse>(list, 0);
  EXPECT_EQ(lr.error_code, 42);
  EXPECT_NE(lr.error_message.value_or("").find("cluster"), std::string::npos);
  // The connection is still open.
  auto again = client.call<protocol::ListPartitionReassignmentsRequest,
                           protocol::ListPartitionReassignmentsResponse>(list, 0);
  EXPECT_EQ(again.error_code, 42);
}

TEST_F(CompatProtocolTest, CompressionTypeRecompressesOnAppendKeepingIdempotence) {
  TestClient client(port());
  create_topic_with(client, "bad", {{"compression.type", "brotli"}}, 40);  // INVALID_CONFIG
  const std::pair<std::string, record::Compression> cases[] = {
      {"uncompressed", record::Compression::none}, {"gzip", record::Compression::gzip},
      {"snappy", record::Compression::snappy},     {"lz4", record::Compression::lz4},
      {"zstd", record::Compression::zstd}};
  for (const auto& [value, codec] : cases) {
    const std::string topic = "c-" + value;
    create_topic_with(client, topic, {{"compression.type", value}});
    int64_t id = new_producer_id(client);
    // Sent in another codec than the topic's.
    auto sent_codec = codec == record::Compression::none ? record::Compression::gzip
                                                         : record::Compression::none;
    Bytes batch = idempotent_batch(sent_codec, id, 0, 4);
    auto first = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request(topic, batch), 7);
    ASSERT_EQ(first.responses[0].partition_responses[0].error_code, 0) << value;
    // A retry of the same batch is a duplicate: same offsets, nothing stored.
    auto retry = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request(topic, batch), 7);
    ASSERT_EQ(retry.responses[0].partition_responses[0].error_code, 0) << value;
    EXPECT_EQ(retry.responses[0].partition_responses[0].base_offset, 0) << value;
    auto next = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request(topic, idempotent_batch(sent_codec, id, 4, 2)), 7);
    EXPECT_EQ(next.responses[0].partition_responses[0].base_offset, 4) << value;

    auto batches = fetch_batches(client, topic);
    ASSERT_EQ(batches.size(), 2u) << value;
    auto header = record::parse_batch_header(batches[0].span());
    ASSERT_TRUE(header);
    EXPECT_EQ(header->compression(), codec) << value;
    EXPECT_EQ(header->producer_id, id);
    EXPECT_EQ(header->base_sequence, 0);
    EXPECT_EQ(header->records_count, 4);
    auto sent = record::decode_records(batch.span());
    auto stored = record::decode_records(batches[0].span());
    ASSERT_TRUE(sent && stored);
    ASSERT_EQ(stored->size(), sent->size());
    for (size_t i = 0; i < sent->size(); ++i) {
      EXPECT_EQ((*stored)[i].value->view(), (*sent)[i].value->view());
      EXPECT_EQ((*stored)[i].timestamp, (*sent)[i].timestamp);
    }
  }
}

}  // namespace
}  // namespace holdfast::server
