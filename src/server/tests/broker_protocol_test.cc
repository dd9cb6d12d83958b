// Protocol-level tests of a running broker (in process, on a loopback port):
// the behaviours real clients depend on and the error paths they rarely hit.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "io/posix_file_system.h"
#include "record/batch.h"
#include "server/broker.h"
#include "server/request.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using namespace std::chrono_literals;
using testing::TestClient;

class BrokerProtocolTest : public testing::BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override { config.socket_request_max_bytes = 1 << 20; }

  static protocol::ProduceRequest produce_request(const std::string& topic, int32_t partition,
                                                  Bytes batch, int16_t acks) {
    protocol::ProduceRequest request;
    request.acks = acks;
    request.timeout_ms = 5000;
    auto& t = request.topic_data.emplace_back();
    t.name = topic;
    auto& p = t.partition_data.emplace_back();
    p.index = partition;
    p.records = std::move(batch);
    return request;
  }

  static Bytes batch_of(std::initializer_list<std::string> values, int64_t timestamp = 1000) {
    record::BatchBuilder builder;
    for (const auto& v : values) builder.add(std::nullopt, v, timestamp);
    return builder.build();
  }

  protocol::FetchResponse fetch(TestClient& client, const std::string& topic, int32_t partition,
                                int64_t offset, int32_t max_wait_ms = 0,
                                int32_t partition_max_bytes = 1 << 20) {
    protocol::FetchRequest request;
    request.replica_id = -1;
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    auto& t = request.topics.emplace_back();
    t.topic = topic;
    auto& p = t.partitions.emplace_back();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = partition_max_bytes;
    return client.call<protocol::FetchRequest, protocol::FetchResponse>(request, 11);
  }

  static std::vector<std::string> values_in(const protocol::FetchResponse& response) {
    std::vector<std::string> out;
    for (const auto& t : response.responses) {
      for (const auto& p : t.partitions) {
        if (!p.records) continue;
        auto data = p.records->span();
        while (!data.empty()) {
          auto header = record::check_batch(data);
          EXPECT_TRUE(header);
          if (!header) break;
          auto records = record::decode_records(data.subspan(0, header->size_in_bytes()));
          EXPECT_TRUE(records);
          for (const auto& r : *records) out.push_back(r.value ? r.value->to_string() : "<null>");
          data = data.subspan(header->size_in_bytes());
        }
      }
    }
    return out;
  }

};

TEST_F(BrokerProtocolTest, ApiVersionsAdvertisesTheRegistry) {
  TestClient client(port());
  protocol::ApiVersionsRequest request;
  request.client_software_name = "test";
  request.client_software_version = "1";
  auto response =
      client.call<protocol::ApiVersionsRequest, protocol::ApiVersionsResponse>(request, 3);
  EXPECT_EQ(response.error_code, 0);
  // Every handler but the inter-broker ones (BrokerRegistration 62,
  // BrokerHeartbeat 63, AlterPartition 56), which Kafka does not advertise
  // to clients either, and the cluster-only ones (DescribeQuorum 55): this
  // is a single node.
  std::vector<ApiHandler> advertised;
  for (const auto& h : api_handlers()) {
    if (h.api_key == 55) EXPECT_TRUE(h.cluster_only);
    if (h.advertised && !h.cluster_only) advertised.push_back(h);
    if (h.api_key == 56 || h.api_key == 62 || h.api_key == 63) EXPECT_FALSE(h.advertised);
  }
  ASSERT_EQ(response.api_keys.size(), advertised.size());
  for (size_t i = 0; i < response.api_keys.size(); ++i) {
    EXPECT_EQ(response.api_keys[i].api_key, advertised[i].api_key);
    EXPECT_EQ(response.api_keys[i].min_version, advertised[i].min_version);
    EXPECT_EQ(response.api_keys[i].max_version, advertised[i].max_version);
  }
}

TEST_F(BrokerProtocolTest, ControllerApisOnASingleNodeAnswerNotController) {
  // A single node has no controller service: the inter-broker controller
  // APIs are served (decoded) and refused with NOT_CONTROLLER (41).
  TestClient client(port());
  protocol::BrokerHeartbeatRequest heartbeat;
  heartbeat.broker_id = 7;
  heartbeat.broker_epoch = 1;
  auto hb = client.call<protocol::BrokerHeartbeatRequest, protocol::BrokerHeartbeatResponse>(
      heartbeat, 0);
  EXPECT_EQ(hb.error_code, 41);
  protocol::BrokerRegistrationRequest registration;
  registration.broker_id = 7;
  auto reg = client.call<protocol::BrokerRegistrationRequest,
                         protocol::BrokerRegistrationResponse>(registration, 0);
  EXPECT_EQ(reg.error_code, 41);
  protocol::AlterPartitionRequest alter;
  auto ap = client.call<protocol::AlterPartitionRequest, protocol::AlterPartitionResponse>(alter, 1);
  EXPECT_EQ(ap.error_code, 41);
}

TEST_F(BrokerProtocolTest, DescribeClusterOnASingleNodeNamesThisBroker) {
  TestClient client(port());
  protocol::DescribeClusterRequest request;
  auto response = client.call<protocol::DescribeClusterRequest, protocol::DescribeClusterResponse>(
      request, 0);
  EXPECT_EQ(response.error_code, 0);
  EXPECT_FALSE(response.cluster_id.empty());
  EXPECT_EQ(response.controller_id, 0);
  ASSERT_EQ(response.brokers.size(), 1u);
  EXPECT_EQ(response.brokers[0].broker_id, 0);
  EXPECT_EQ(response.brokers[0].port, port());
}

TEST_F(BrokerProtocolTest, UnsupportedApiVersionsVersionGetsV0ErrorBody) {
  TestClient client(port());
  // A future ApiVersions version with a body we cannot know: KIP-511 says
  // answer UNSUPPORTED_VERSION in v0 format with our supported range.
  protocol::Writer w;
  w.put_int32(0);
  w.put_int16(18);
  w.put_int16(99);
  w.put_int32(7);
  w.put_int16(-1);
  w.put_raw(std::vector<uint8_t>{0xde, 0xad});
  w.patch_int32(0, static_cast<int32_t>(w.size() - 4));
  client.send_raw(w.release());
  auto response = client.receive<protocol::ApiVersionsResponse>(18, 0, 7);
  EXPECT_EQ(response.error_code, 35);
  ASSERT_EQ(response.api_keys.size(), 1u);
  EXPECT_EQ(response.api_keys[0].api_key, 18);
  EXPECT_EQ(response.api_keys[0].max_version, 3);
}

TEST_F(BrokerProtocolTest, MetadataNullVersusEmptyAndAutoCreate) {
  TestClient client(port());
  create_topic(client, "existing", 2);

  protocol::MetadataRequest all;  // v1+: null topics = every topic
  all.topics.reset();
  auto everything = client.call<protocol::MetadataRequest, protocol::MetadataResponse>(all, 5);
  // Every topic includes the internal __consumer_offsets (is_internal), as in Kafka.
  std::erase_if(everything.topics, [](const auto& t) { return t.is_internal; });
  ASSERT_EQ(everything.topics.size(), 1u);
  EXPECT_EQ(everything.topics[0].partitions.size(), 2u);
  EXPECT_EQ(everything.controller_id, 0);
  ASSERT_TRUE(everything.cluster_id.has_value());
  EXPECT_EQ(everything.brokers.size(), 1u);
  EXPECT_EQ(everything.brokers[0].port, port());

  protocol::MetadataRequest none;  // v1+: empty list = no topics
  none.topics.emplace();
  auto brokers_only = client.call<protocol::MetadataRequest, protocol::MetadataResponse>(none, 5);
  EXPECT_TRUE(brokers_only.topics.empty());

  protocol::MetadataRequest unknown;
  unknown.topics.emplace();
  unknown.topics->emplace_back().name = "fresh";
  unknown.allow_auto_topic_creation = false;
  auto not_created =
      client.call<protocol::MetadataRequest, protocol::MetadataResponse>(unknown, 5);
  ASSERT_EQ(not_created.topics.size(), 1u);
  EXPECT_EQ(not_created.topics[0].error_code, 3);  // UNKNOWN_TOPIC_OR_PARTITION

  unknown.allow_auto_topic_creation = true;
  auto created = client.call<protocol::MetadataRequest, protocol::MetadataResponse>(unknown, 5);
  ASSERT_EQ(created.topics.size(), 1u);
  EXPECT_EQ(created.topics[0].error_code, 0);
  EXPECT_EQ(created.topics[0].partitions.size(), 4u);  // num.partitions

  protocol::MetadataRequest bad;
  bad.topics.emplace();
  bad.topics->emplace_back().name = "bad name!";
  bad.allow_auto_topic_creation = true;
  auto invalid = client.call<protocol::MetadataRequest, protocol::MetadataResponse>(bad, 5);
  EXPECT_EQ(invalid.topics[0].error_code, 17);  // INVALID_TOPIC_EXCEPTION
}

TEST_F(BrokerProtocolTest, ProduceThenFetchRoundTripAndMidBatchFetch) {
  TestClient client(port());
  create_topic(client, "t", 1);
  auto first = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
      produce_request("t", 0, batch_of({"a", "b", "c"}), -1), 7);
  ASSERT_EQ(first.responses[0].partition_responses[0].error_code, 0);
  EXPECT_EQ(first.responses[0].partition_responses[0].base_offset, 0);
  auto second = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
      produce_request("t", 0, batch_of({"d", "e"}), 1), 7);
  EXPECT_EQ(second.responses[0].partition_responses[0].base_offset, 3);

  auto all = fetch(client, "t", 0, 0);
  EXPECT_EQ(all.responses[0].partitions[0].high_watermark, 5);
  EXPECT_EQ(values_in(all), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  // An offset inside the first batch returns that whole batch; the client skips.
  auto mid = fetch(client, "t", 0, 1);
  EXPECT_EQ(values_in(mid), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  auto second_batch = fetch(client, "t", 0, 4);
  EXPECT_EQ(values_in(second_batch), (std::vector<std::string>{"d", "e"}));
  // A tiny partition limit still returns the first batch whole (KIP-74).
  auto tiny = fetch(client, "t", 0, 0, 0, 1);
  EXPECT_EQ(values_in(tiny), (std::vector<std::string>{"a", "b", "c"}));
  auto out_of_range = fetch(client, "t", 0, 99);
  EXPECT_EQ(out_of_range.responses[0].partitions[0].error_code, 1);
}

TEST_F(BrokerProtocolTest, BadBatchesGetKafkaErrorsAndNothingIsStored) {
  TestClient client(port());
  create_topic(client, "t", 1);
  Bytes good = batch_of({"x"});
  std::vector<uint8_t> corrupt(good.span().begin(), good.span().end());
  corrupt.back() ^= 0xff;  // breaks the CRC
  auto crc = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
      produce_request("t", 0, Bytes(corrupt), -1), 7);
  EXPECT_EQ(crc.responses[0].partition_responses[0].error_code, 2);  // CORRUPT_MESSAGE
  auto unknown = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
      produce_request("nope", 0, batch_of({"x"}), -1), 7);
  EXPECT_EQ(unknown.responses[0].partition_responses[0].error_code, 3);
  auto empty = fetch(client, "t", 0, 0);
  EXPECT_EQ(empty.responses[0].partitions[0].high_watermark, 0);
}

TEST_F(BrokerProtocolTest, PipelinedResponsesComeBackInRequestOrderAndAcksZeroIsSilent) {
  TestClient client(port());
  create_topic(client, "t", 1);
  std::vector<uint8_t> burst;
  std::vector<int32_t> expected;
  for (int32_t i = 0; i < 20; ++i) {
    int32_t corr = 100 + i;
    std::vector<uint8_t> f;
    if (i % 3 == 0) {
      protocol::MetadataRequest m;
      f = TestClient::frame(m, 5, corr);
      expected.push_back(corr);
    } else if (i % 3 == 1) {
      f = TestClient::frame(produce_request("t", 0, batch_of({"p" + std::to_string(i)}), 0), 7,
                            corr);  // acks=0: no response
    } else {
      f = TestClient::frame(produce_request("t", 0, batch_of({"q" + std::to_string(i)}), -1), 7,
                            corr);
      expected.push_back(corr);
    }
    burst.insert(burst.end(), f.begin(), f.end());
  }
  client.send_raw(burst);
  for (int32_t corr : expected) {
    auto f = client.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(static_cast<int32_t>(load_be32(f->data())), corr);
  }
  // Every produce (acks 0 and -1) landed, in request order. The last one is
  // acks=0, so nothing says when its fsync (and so its visibility) happened:
  // read until it shows up, bounded.
  std::vector<std::string> want;
  for (int32_t i = 0; i < 20; ++i) {
    if (i % 3 == 1) want.push_back("p" + std::to_string(i));
    if (i % 3 == 2) want.push_back("q" + std::to_string(i));
  }
  std::vector<std::string> got;
  for (int attempt = 0; attempt < 50 && got.size() < want.size(); ++attempt) {
    got = values_in(fetch(client, "t", 0, 0, /*max_wait_ms=*/100));
  }
  EXPECT_EQ(got, want);
}

TEST_F(BrokerProtocolTest, MalformedFramesCloseOnlyThatConnection) {
  TestClient bystander(port());
  {
    TestClient oversized(port());
    oversized.send_raw({0x7f, 0xff, 0xff, 0xff});  // beyond socket.request.max.bytes
    EXPECT_TRUE(oversized.closed_by_peer());
  }
  {
    TestClient unknown_key(port());
    unknown_key.send_raw({0, 0, 0, 8, 0x03, 0xe7, 0, 0, 0, 0, 0, 1});  // api key 999
    EXPECT_TRUE(unknown_key.closed_by_peer());
  }
  {
    TestClient truncated_body(port());
    // A Metadata v5 whose topic array claims more entries than bytes remain.
    truncated_body.send_raw({0, 0, 0, 14, 0, 3, 0, 5, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff,
                             0xff});
    EXPECT_TRUE(truncated_body.closed_by_peer());
  }
  {
    TestClient old_produce(port());
    old_produce.send(produce_request("t", 0, batch_of({"x"}), -1), 7);
    auto f = old_produce.read_frame();  // v7 is fine
    EXPECT_TRUE(f);
    protocol::ProduceRequest legacy = produce_request("t", 0, batch_of({"x"}), -1);
    old_produce.send(legacy, 2);  // below our range: closed, as Kafka does
    EXPECT_TRUE(old_produce.closed_by_peer());
  }
  protocol::MetadataRequest m;
  auto still_fine = bystander.call<protocol::MetadataRequest, protocol::MetadataResponse>(m, 1);
  EXPECT_EQ(still_fine.brokers.size(), 1u);
}

TEST_F(BrokerProtocolTest, LongPollFetchWakesWhenDataArrives) {
  TestClient consumer(port());
  create_topic(consumer, "t", 1);
  bool parked = false;
  std::thread producer([this, &parked] {
    // Produce once the fetch is parked in the broker, waiting for data.
    parked = eventually([this] { return broker_->fetch_waiters().waiting() > 0; });
    TestClient client(port());
    client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request("t", 0, batch_of({"late"}), -1), 7);
  });
  auto start = std::chrono::steady_clock::now();
  auto response = fetch(consumer, "t", 0, 0, /*max_wait_ms=*/20000);
  auto waited = std::chrono::steady_clock::now() - start;
  producer.join();
  EXPECT_TRUE(parked) << "the fetch never waited for data";
  EXPECT_EQ(values_in(response), std::vector<std::string>{"late"});
  // Woken by the produce, not by the 20 s deadline.
  EXPECT_LT(waited, 15s);
}

TEST_F(BrokerProtocolTest, ListOffsetsEarliestLatestAndByTimestamp) {
  TestClient client(port());
  create_topic(client, "t", 1);
  client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
      produce_request("t", 0, batch_of({"a", "b"}, 1000), -1), 7);
  client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
      produce_request("t", 0, batch_of({"c"}, 5000), -1), 7);
  int64_t last_timestamp = 0;
  auto query = [&](int64_t ts) {
    protocol::ListOffsetsRequest request;
    request.replica_id = -1;
    auto& t = request.topics.emplace_back();
    t.name = "t";
    auto& p = t.partitions.emplace_back();
    p.partition_index = 0;
    p.timestamp = ts;
    auto r = client.call<protocol::ListOffsetsRequest, protocol::ListOffsetsResponse>(request, 2);
    last_timestamp = r.topics[0].partitions[0].timestamp;
    return r.topics[0].partitions[0].offset;
  };
  EXPECT_EQ(query(-2), 0);
  EXPECT_EQ(query(-1), 3);
  EXPECT_EQ(query(3000), 2);
  EXPECT_EQ(last_timestamp, 5000);  // the found record's timestamp
  EXPECT_EQ(query(9000), -1);
}

TEST_F(BrokerProtocolTest, AcknowledgedDataAndTopicsSurviveRestart) {
  {
    TestClient client(port());
    create_topic(client, "kept", 2);
    auto r = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request("kept", 1, batch_of({"one", "two"}), -1), 7);
    ASSERT_EQ(r.responses[0].partition_responses[0].error_code, 0);
  }
  restart();
  TestClient client(port());
  auto all = fetch(client, "kept", 1, 0);
  EXPECT_EQ(values_in(all), (std::vector<std::string>{"one", "two"}));
}

TEST_F(BrokerProtocolTest, TopicAdminErrors) {
  TestClient client(port());
  create_topic(client, "t", 1);
  protocol::CreateTopicsRequest again;
  auto& dup = again.topics.emplace_back();
  dup.name = "t";
  dup.num_partitions = 1;
  dup.replication_factor = 1;
  auto r = client.call<protocol::CreateTopicsRequest, protocol::CreateTopicsResponse>(again, 4);
  EXPECT_EQ(r.topics[0].error_code, 36);  // TOPIC_ALREADY_EXISTS

  protocol::CreateTopicsRequest bad_config;
  auto& bc = bad_config.topics.emplace_back();
  bc.name = "u";
  bc.num_partitions = 1;
  bc.replication_factor = 1;
  auto& cfg = bc.configs.emplace_back();
  cfg.name = "retention.ms";
  cfg.value = "forever";
  auto r2 =
      client.call<protocol::CreateTopicsRequest, protocol::CreateTopicsResponse>(bad_config, 4);
  EXPECT_EQ(r2.topics[0].error_code, 40);  // INVALID_CONFIG
  ASSERT_TRUE(r2.topics[0].error_message);
  EXPECT_NE(r2.topics[0].error_message->find("retention.ms"), std::string::npos);

  protocol::CreatePartitionsRequest shrink;
  auto& s = shrink.topics.emplace_back();
  s.name = "t";
  s.count = 1;
  auto r3 =
      client.call<protocol::CreatePartitionsRequest, protocol::CreatePartitionsResponse>(shrink, 1);
  EXPECT_EQ(r3.results[0].error_code, 37);  // INVALID_PARTITIONS

  // Groups map to __consumer_offsets partitions by hash of the group id: a
  // new partition count would move groups away from their committed offsets.
  protocol::CreatePartitionsRequest grow_offsets;
  auto& g = grow_offsets.topics.emplace_back();
  g.name = "__consumer_offsets";
  g.count = 200;
  auto r5 = client.call<protocol::CreatePartitionsRequest, protocol::CreatePartitionsResponse>(
      grow_offsets, 1);
  EXPECT_EQ(r5.results[0].error_code, 17);  // INVALID_TOPIC_EXCEPTION
  ASSERT_TRUE(r5.results[0].error_message);
  EXPECT_NE(r5.results[0].error_message->find("__consumer_offsets"), std::string::npos);

  protocol::DeleteTopicsRequest del;
  del.topic_names = {"t", "missing"};
  auto r4 = client.call<protocol::DeleteTopicsRequest, protocol::DeleteTopicsResponse>(del, 1);
  EXPECT_EQ(r4.responses[0].error_code, 0);
  EXPECT_EQ(r4.responses[1].error_code, 3);
}

}  // namespace
}  // namespace holdfast::server
