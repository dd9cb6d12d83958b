// Protocol-level tests of the idempotent producer (in-process broker, our
// codec): InitProducerId v0–4 and every Produce answer a producer can get.
#include <chrono>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "io/posix_file_system.h"
#include "record/batch.h"
#include "server/broker.h"
#include "server/kafka_error.h"
#include "server/request.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using testing::TestClient;
using PartitionResponse = protocol::ProduceResponse::PartitionProduceResponse;

class IdempotenceProtocolTest : public testing::BrokerFixture {
 protected:
  void create_topic(TestClient& client, const std::string& name) {
    BrokerFixture::create_topic(client, name, 1);
  }

  static protocol::InitProducerIdResponse init_producer_id(
      TestClient& client, int16_t version, std::optional<std::string> transactional_id = {},
      int64_t producer_id = -1, int16_t producer_epoch = -1) {
    protocol::InitProducerIdRequest request;
    request.transactional_id = std::move(transactional_id);
    request.transaction_timeout_ms = 60000;
    request.producer_id = producer_id;
    request.producer_epoch = producer_epoch;
    return client.call<protocol::InitProducerIdRequest, protocol::InitProducerIdResponse>(request,
                                                                                          version);
  }

  static protocol::ProduceRequest produce_request(int64_t id, int16_t epoch, int32_t seq,
                                                  int count, const std::string& tag) {
    record::BatchBuilder builder;
    builder.set_producer(id, epoch, seq);
    for (int i = 0; i < count; ++i) {
      builder.add(std::nullopt, tag + std::to_string(int64_t(seq) + i), 1000);
    }
    protocol::ProduceRequest request;
    request.acks = -1;
    request.timeout_ms = 5000;
    auto& t = request.topic_data.emplace_back();
    t.name = "idem";
    auto& p = t.partition_data.emplace_back();
    p.index = 0;
    p.records = builder.build();
    return request;
  }

  static PartitionResponse produce(TestClient& client, int64_t id, int16_t epoch, int32_t seq,
                                   int count = 1, const std::string& tag = "v") {
    auto response = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request(id, epoch, seq, count, tag), 7);
    return response.responses.at(0).partition_responses.at(0);
  }

  // Every value in the partition, in offset order.
  std::vector<std::string> values(TestClient& client) {
    protocol::FetchRequest request;
    request.replica_id = -1;
    request.max_wait_ms = 0;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    auto& t = request.topics.emplace_back();
    t.topic = "idem";
    auto& p = t.partitions.emplace_back();
    p.partition = 0;
    p.fetch_offset = broker_->replicas().get("idem", 0)->log_start_offset();
    p.partition_max_bytes = 1 << 20;
    auto response = client.call<protocol::FetchRequest, protocol::FetchResponse>(request, 11);
    std::vector<std::string> out;
    const auto& records = response.responses.at(0).partitions.at(0).records;
    if (!records) return out;
    auto data = records->span();
    while (!data.empty()) {
      auto header = record::check_batch(data);
      if (!header) break;
      auto decoded = record::decode_records(data.subspan(0, header->size_in_bytes()));
      for (const auto& r : *decoded) out.push_back(r.value->to_string());
      data = data.subspan(header->size_in_bytes());
    }
    return out;
  }

};

TEST_F(IdempotenceProtocolTest, InitProducerIdEveryVersionGivesANewIdWithEpochZero) {
  TestClient client(port());
  std::set<int64_t> ids;
  for (int16_t v = 0; v <= 4; ++v) {  // v2+ flexible
    auto r = init_producer_id(client, v);
    EXPECT_EQ(r.error_code, 0) << "v" << v;
    EXPECT_GE(r.producer_id, 0);
    EXPECT_EQ(r.producer_epoch, 0);
    EXPECT_TRUE(ids.insert(r.producer_id).second);
  }
  // KIP-360 (v3+): an idempotent producer passing its current id/epoch gets a
  // NEW id with epoch 0, as Kafka does without a transactional id.
  auto bumped = init_producer_id(client, 4, std::nullopt, *ids.begin(), 0);
  EXPECT_EQ(bumped.error_code, 0);
  EXPECT_TRUE(ids.insert(bumped.producer_id).second);
  EXPECT_EQ(bumped.producer_epoch, 0);
}

TEST_F(IdempotenceProtocolTest, InitProducerIdIdsAreNeverReusedAcrossRestarts) {
  std::set<int64_t> ids;
  for (int run = 0; run < 3; ++run) {
    TestClient client(port());
    for (int i = 0; i < 5; ++i) {
      auto r = init_producer_id(client, 4);
      ASSERT_EQ(r.error_code, 0);
      EXPECT_TRUE(ids.insert(r.producer_id).second) << r.producer_id;
    }
    restart();
  }
}

TEST_F(IdempotenceProtocolTest, InitProducerIdInvalidRequests) {
  TestClient client(port());
  // With a transactional id the transaction coordinator answers (one
  // producer id per id, its epoch bumped by each call; the state machine is
  // tested in coordinator/tests/txn_coordinator_test.cc).
  int64_t txn_producer = -1;
  int16_t last_epoch = -1;
  for (int16_t v : {0, 2, 4}) {
    auto txn = init_producer_id(client, v, std::string("my-txn"));
    // COORDINATOR_LOAD_IN_PROGRESS (14) while __transaction_state loads on a
    // busy machine: retriable, as clients treat it (bounded).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (txn.error_code == 14 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      txn = init_producer_id(client, v, std::string("my-txn"));
    }
    EXPECT_EQ(txn.error_code, 0) << "v" << v;
    if (txn_producer < 0) txn_producer = txn.producer_id;
    EXPECT_EQ(txn.producer_id, txn_producer) << "v" << v;
    EXPECT_GT(txn.producer_epoch, last_epoch) << "v" << v;
    last_epoch = txn.producer_epoch;
  }
  // Only one of producer id / epoch set (Kafka: INVALID_REQUEST).
  EXPECT_EQ(init_producer_id(client, 3, std::nullopt, 5, -1).error_code,
            code(KafkaError::invalid_request));
  EXPECT_EQ(init_producer_id(client, 3, std::nullopt, -1, 2).error_code,
            code(KafkaError::invalid_request));
}

TEST_F(IdempotenceProtocolTest, RetryGetsTheOriginalOffsetAndIsStoredOnce) {
  TestClient client(port());
  create_topic(client, "idem");
  auto pid = init_producer_id(client, 4).producer_id;
  EXPECT_EQ(produce(client, pid, 0, 0, 2).base_offset, 0);
  auto second = produce(client, pid, 0, 2, 3);
  ASSERT_EQ(second.error_code, 0);
  EXPECT_EQ(second.base_offset, 2);
  EXPECT_EQ(produce(client, pid, 0, 5).base_offset, 5);
  // Retries of the second batch: success, original offset, nothing appended.
  for (int i = 0; i < 3; ++i) {
    auto retry = produce(client, pid, 0, 2, 3);
    EXPECT_EQ(retry.error_code, 0);
    EXPECT_EQ(retry.base_offset, 2);
  }
  EXPECT_EQ(values(client), (std::vector<std::string>{"v0", "v1", "v2", "v3", "v4", "v5"}));
}

TEST_F(IdempotenceProtocolTest, EachProduceErrorCodeAsKafka) {
  TestClient client(port());
  create_topic(client, "idem");
  auto pid = init_producer_id(client, 4).producer_id;
  for (int s = 0; s < 6; ++s) ASSERT_EQ(produce(client, pid, 0, s).error_code, 0);
  // Sequence gap → OUT_OF_ORDER_SEQUENCE_NUMBER (45).
  auto gap = produce(client, pid, 0, 9);
  EXPECT_EQ(gap.error_code, code(KafkaError::out_of_order_sequence_number));
  EXPECT_EQ(gap.base_offset, -1);
  // The sixth-oldest batch is out of the window: 45 too, never re-appended.
  EXPECT_EQ(produce(client, pid, 0, 0).error_code,
            code(KafkaError::out_of_order_sequence_number));
  EXPECT_EQ(produce(client, pid, 0, 1).base_offset, 1);  // fifth-oldest: duplicate
  // New epoch must start at 0 → 45; epoch 1 from 0 is fine.
  EXPECT_EQ(produce(client, pid, 1, 6).error_code,
            code(KafkaError::out_of_order_sequence_number));
  auto bumped = produce(client, pid, 1, 0);
  EXPECT_EQ(bumped.error_code, 0);
  EXPECT_EQ(bumped.base_offset, 6);
  // Older epoch → INVALID_PRODUCER_EPOCH (47), also for a former duplicate.
  EXPECT_EQ(produce(client, pid, 0, 6).error_code, code(KafkaError::invalid_producer_epoch));
  EXPECT_EQ(produce(client, pid, 0, 5).error_code, code(KafkaError::invalid_producer_epoch));
  // An unknown producer id may start at any sequence (KIP-360, Kafka 2.5+).
  EXPECT_EQ(produce(client, 424242, 0, 77).error_code, 0);
  EXPECT_EQ(values(client).size(), 8u);
}

TEST_F(IdempotenceProtocolTest, SequenceWrapsAtIntMax) {
  TestClient client(port());
  create_topic(client, "idem");
  auto pid = init_producer_id(client, 4).producer_id;
  constexpr int32_t kMax = 0x7fffffff;
  ASSERT_EQ(produce(client, pid, 0, kMax - 1, 1).error_code, 0);
  ASSERT_EQ(produce(client, pid, 0, kMax, 2).error_code, 0);  // kMax, 0
  EXPECT_EQ(produce(client, pid, 0, kMax, 2).base_offset, 1);  // duplicate across the wrap
  EXPECT_EQ(produce(client, pid, 0, 1).error_code, 0);
  EXPECT_EQ(produce(client, pid, 0, 3).error_code, code(KafkaError::out_of_order_sequence_number));
}

TEST_F(IdempotenceProtocolTest, PipelinedBatchesAndARetryAreOrderedAndDeduplicated) {
  TestClient client(port());
  create_topic(client, "idem");
  auto pid = init_producer_id(client, 4).producer_id;
  // Five in flight on one connection, then a retry of all five, then the next.
  std::vector<int32_t> corr;
  for (int round = 0; round < 2; ++round) {
    for (int s = 0; s < 5; ++s) corr.push_back(client.send(produce_request(pid, 0, s * 2, 2, "p"), 7));
  }
  corr.push_back(client.send(produce_request(pid, 0, 10, 1, "p"), 7));
  for (size_t i = 0; i < corr.size(); ++i) {
    auto r = client.receive<protocol::ProduceResponse>(protocol::ProduceRequest::kApiKey, 7, corr[i]);
    const auto& p = r.responses.at(0).partition_responses.at(0);
    EXPECT_EQ(p.error_code, 0) << i;
    EXPECT_EQ(p.base_offset, i < 10 ? int64_t(i % 5) * 2 : 10) << i;
  }
  std::vector<std::string> expected;
  for (int i = 0; i <= 10; ++i) expected.push_back("p" + std::to_string(i));
  EXPECT_EQ(values(client), expected);
}

TEST_F(IdempotenceProtocolTest, StateSurvivesDeleteRecordsAndRestart) {
  TestClient client(port());
  create_topic(client, "idem");
  auto pid = init_producer_id(client, 4).producer_id;
  for (int s = 0; s < 4; ++s) ASSERT_EQ(produce(client, pid, 0, s).error_code, 0);
  protocol::DeleteRecordsRequest del;
  auto& t = del.topics.emplace_back();
  t.name = "idem";
  t.partitions.push_back({0, 4});
  del.timeout_ms = 5000;
  auto deleted =
      client.call<protocol::DeleteRecordsRequest, protocol::DeleteRecordsResponse>(del, 1);
  ASSERT_EQ(deleted.topics.at(0).partitions.at(0).error_code, 0);
  // Kafka 2.4+ (KAFKA-7190) keeps the state: the retry is still recognised and
  // the producer continues without UNKNOWN_PRODUCER_ID.
  EXPECT_EQ(produce(client, pid, 0, 3).base_offset, 3);
  EXPECT_EQ(produce(client, pid, 0, 4).base_offset, 4);
  restart();
  TestClient again(port());
  EXPECT_EQ(produce(again, pid, 0, 4).base_offset, 4);  // rebuilt from the log
  EXPECT_EQ(produce(again, pid, 0, 6).error_code, code(KafkaError::out_of_order_sequence_number));
  EXPECT_EQ(produce(again, pid, 0, 5).base_offset, 5);
  EXPECT_EQ(values(again), (std::vector<std::string>{"v4", "v5"}));
}

}  // namespace
}  // namespace holdfast::server
