// The leader side of data replication over the wire (issue 9, the cluster
// contract's decisions 1, 2 and 5): a partition led by this broker with
// replicas {self, 2, 3}, set up directly through broker.replicas(); the test
// plays followers 2 and 3 with Fetch(replica_id = 2 / 3) and checks what
// producers (acks=all, min.insync.replicas) and consumers see.
#include <gtest/gtest.h>

#include "record/batch.h"
#include "replication/replica_manager.h"
#include "server/broker.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using testing::TestClient;

constexpr int16_t kNotLeaderOrFollower = 6;
constexpr int16_t kNotEnoughReplicas = 19;
constexpr int16_t kNotEnoughReplicasAfterAppend = 20;

class ReplicationProtocolTest : public testing::BrokerFixture {
 protected:
  using ProduceResponsePartition = protocol::ProduceResponse::PartitionProduceResponse;

  int32_t self() const { return broker_->config().node_id; }
  std::shared_ptr<replication::Partition> partition() { return broker_->replicas().get("t", 0); }

  // Topic "t" (one partition) with `configs`, then led here with `isr`
  // among replicas {self, 2, 3}.
  void lead(std::vector<int32_t> isr, std::map<std::string, std::string> configs = {}) {
    TestClient admin(port());
    protocol::CreateTopicsRequest request;
    auto& t = request.topics.emplace_back();
    t.name = "t";
    t.num_partitions = 1;
    t.replication_factor = 1;
    for (const auto& [name, value] : configs) {
      auto& c = t.configs.emplace_back();
      c.name = name;
      c.value = value;
    }
    request.timeout_ms = 5000;
    auto created =
        admin.call<protocol::CreateTopicsRequest, protocol::CreateTopicsResponse>(request, 4);
    ASSERT_EQ(created.topics.at(0).error_code, 0);
    ASSERT_NE(partition(), nullptr);
    partition()->become_leader(1, 1, {self(), 2, 3}, std::move(isr));
  }

  protocol::ProduceRequest produce_request(int16_t acks, const std::string& value) {
    record::BatchBuilder builder;
    builder.add(std::nullopt, value, 1000);
    protocol::ProduceRequest request;
    request.acks = acks;
    request.timeout_ms = 30000;
    auto& t = request.topic_data.emplace_back();
    t.name = "t";
    auto& p = t.partition_data.emplace_back();
    p.index = 0;
    p.records = builder.build();
    return request;
  }
  ProduceResponsePartition produce(TestClient& client, int16_t acks, const std::string& value) {
    auto r = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request(acks, value), 7);
    return r.responses.at(0).partition_responses.at(0);
  }

  // One Fetch of t-0 as follower `replica_id` (or a consumer, -1).
  protocol::FetchRequest fetch_request(int32_t replica_id, int64_t offset, int32_t max_wait_ms = 0) {
    protocol::FetchRequest request;
    request.replica_id = replica_id;
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    auto& t = request.topics.emplace_back();
    t.topic = "t";
    auto& p = t.partitions.emplace_back();
    p.partition = 0;
    p.fetch_offset = offset;
    p.current_leader_epoch = 1;
    p.partition_max_bytes = 1 << 20;
    return request;
  }
  protocol::FetchResponse::PartitionData fetch(TestClient& client, int32_t replica_id,
                                               int64_t offset) {
    auto r = client.call<protocol::FetchRequest, protocol::FetchResponse>(
        fetch_request(replica_id, offset), 11);
    return r.responses.at(0).partitions.at(0);
  }
};

TEST_F(ReplicationProtocolTest, AnAcksAllProduceIsAnsweredOnlyOnceBothFollowersFetchedPastIt) {
  lead({self(), 2, 3});
  TestClient producer(port());
  TestClient consumer(port());
  TestClient follower2(port());
  TestClient follower3(port());
  const int32_t produced = producer.send(produce_request(-1, "replicated"), 7);
  // Appended and durable here; now it waits for the followers.
  ASSERT_TRUE(eventually([&] { return partition()->waiting_for_followers() == 1; }));
  EXPECT_EQ(partition()->log_end_offset(), 1);
  auto seen = fetch(consumer, -1, 0);
  EXPECT_EQ(seen.error_code, 0);
  EXPECT_EQ(seen.high_watermark, 0);
  EXPECT_EQ(seen.records->size(), 0u);

  // Follower 2 reads past the high watermark (up to the log end), then
  // reports that it has the record.
  auto f2 = fetch(follower2, 2, 0);
  ASSERT_EQ(f2.error_code, 0);
  EXPECT_GT(f2.records->size(), 0u);
  EXPECT_EQ(f2.high_watermark, 0);
  EXPECT_EQ(f2.log_start_offset, 0);
  f2 = fetch(follower2, 2, 1);
  ASSERT_EQ(f2.error_code, 0);
  EXPECT_EQ(f2.high_watermark, 0);  // 3 does not have it yet
  EXPECT_EQ(partition()->waiting_for_followers(), 1u);
  EXPECT_EQ(fetch(consumer, -1, 0).records->size(), 0u);

  auto f3 = fetch(follower3, 3, 0);
  ASSERT_EQ(f3.error_code, 0);
  EXPECT_GT(f3.records->size(), 0u);
  f3 = fetch(follower3, 3, 1);
  ASSERT_EQ(f3.error_code, 0);
  EXPECT_EQ(f3.high_watermark, 1);

  auto answer = producer.receive<protocol::ProduceResponse>(protocol::ProduceRequest::kApiKey, 7,
                                                            produced);
  const auto& acked = answer.responses.at(0).partition_responses.at(0);
  EXPECT_EQ(acked.error_code, 0);
  EXPECT_EQ(acked.base_offset, 0);
  seen = fetch(consumer, -1, 0);
  EXPECT_EQ(seen.high_watermark, 1);
  EXPECT_GT(seen.records->size(), 0u);
}

TEST_F(ReplicationProtocolTest, AcksAllWithAnIsrBelowMinInsyncIsRefusedAndNothingIsAppended) {
  lead({self()}, {{"min.insync.replicas", "2"}});
  TestClient producer(port());
  auto refused = produce(producer, -1, "x");
  EXPECT_EQ(refused.error_code, kNotEnoughReplicas);
  EXPECT_EQ(refused.base_offset, -1);
  EXPECT_EQ(partition()->log_end_offset(), 0);
  // acks=1 does not ask for replicas.
  auto leader_only = produce(producer, 1, "y");
  EXPECT_EQ(leader_only.error_code, 0);
  EXPECT_EQ(partition()->log_end_offset(), 1);
}

TEST_F(ReplicationProtocolTest, AnIsrShrunkBelowMinInsyncWhileWaitingIsNotEnoughReplicasAfterAppend) {
  lead({self(), 2, 3}, {{"min.insync.replicas", "2"}});
  TestClient producer(port());
  const int32_t produced = producer.send(produce_request(-1, "x"), 7);
  ASSERT_TRUE(eventually([&] { return partition()->waiting_for_followers() == 1; }));
  // The controller dropped both followers (they never fetched).
  partition()->apply_isr({self()}, 2);
  auto answer = producer.receive<protocol::ProduceResponse>(protocol::ProduceRequest::kApiKey, 7,
                                                            produced);
  EXPECT_EQ(answer.responses.at(0).partition_responses.at(0).error_code,
            kNotEnoughReplicasAfterAppend);
}

TEST_F(ReplicationProtocolTest, AFollowerLongPollWakesOnNewDataNotOnlyOnTheHighWatermark) {
  lead({self(), 2});
  TestClient producer(port());
  TestClient follower(port());
  // The first fetch returns at once (the follower learns the high watermark).
  ASSERT_EQ(fetch(follower, 2, 0).error_code, 0);
  const int32_t polling = follower.send(fetch_request(2, 0, /*max_wait_ms=*/30000), 11);
  ASSERT_TRUE(eventually([&] { return broker_->fetch_waiters().waiting() > 0; }));
  // acks=1: the high watermark does not move (2 has not fetched it), but the
  // follower must get the new record now, not after max_wait.
  EXPECT_EQ(produce(producer, 1, "new").error_code, 0);
  auto woken = follower.receive<protocol::FetchResponse>(protocol::FetchRequest::kApiKey, 11,
                                                         polling);
  const auto& data = woken.responses.at(0).partitions.at(0);
  EXPECT_EQ(data.error_code, 0);
  EXPECT_GT(data.records->size(), 0u);
  EXPECT_EQ(data.high_watermark, 0);
}

TEST_F(ReplicationProtocolTest, OnlyReplicasFetchAsFollowersAndOnlyTheLeaderServes) {
  lead({self(), 2, 3});
  TestClient client(port());
  EXPECT_EQ(fetch(client, 7, 0).error_code, kNotLeaderOrFollower);  // not a replica
  partition()->become_follower(2, 2, 2, {self(), 2, 3}, {self(), 2, 3});
  auto request = fetch_request(-1, 0);
  request.topics[0].partitions[0].current_leader_epoch = -1;
  auto consumer = client.call<protocol::FetchRequest, protocol::FetchResponse>(request, 11);
  EXPECT_EQ(consumer.responses.at(0).partitions.at(0).error_code, kNotLeaderOrFollower);
  request.replica_id = 3;
  auto follower = client.call<protocol::FetchRequest, protocol::FetchResponse>(request, 11);
  EXPECT_EQ(follower.responses.at(0).partitions.at(0).error_code, kNotLeaderOrFollower);
  EXPECT_EQ(produce(client, -1, "x").error_code, kNotLeaderOrFollower);
  EXPECT_EQ(produce(client, 1, "x").error_code, kNotLeaderOrFollower);
  EXPECT_EQ(partition()->log_end_offset(), 0);
}

}  // namespace
}  // namespace holdfast::server
