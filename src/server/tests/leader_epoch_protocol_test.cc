// Leader epochs on the wire: OffsetForLeaderEpoch (key 23, v0-4), the KIP-320
// current_leader_epoch check, Metadata v9's per-partition leader_epoch.
#include <gtest/gtest.h>

#include "record/batch.h"
#include "server/broker.h"
#include "server/handlers/leader_epoch_check.h"
#include "replication/replica_manager.h"
#include "server/tests/broker_fixture.h"
#include "server/topic_manager.h"

namespace holdfast::server {
namespace {

using testing::TestClient;

TEST(LeaderEpochCheck, MapsKip320Outcomes) {
  EXPECT_EQ(check_current_leader_epoch(-1, 5), KafkaError::none);  // no check
  EXPECT_EQ(check_current_leader_epoch(5, 5), KafkaError::none);
  EXPECT_EQ(check_current_leader_epoch(4, 5), KafkaError::fenced_leader_epoch);
  EXPECT_EQ(check_current_leader_epoch(6, 5), KafkaError::unknown_leader_epoch);
  EXPECT_EQ(code(KafkaError::fenced_leader_epoch), 74);
  EXPECT_EQ(code(KafkaError::unknown_leader_epoch), 75);
}

class LeaderEpochProtocolTest : public testing::BrokerFixture {
 protected:
  void produce(TestClient& client, std::initializer_list<std::string> values) {
    record::BatchBuilder builder;
    for (const auto& v : values) builder.add(std::nullopt, v, 1000);
    protocol::ProduceRequest request;
    request.acks = -1;
    request.timeout_ms = 5000;
    auto& t = request.topic_data.emplace_back();
    t.name = "t";
    auto& p = t.partition_data.emplace_back();
    p.index = 0;
    p.records = builder.build();
    auto r = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(request, 7);
    ASSERT_EQ(r.responses.at(0).partition_responses.at(0).error_code, 0);
  }

  struct Ask {
    std::string topic = "t";
    int32_t partition = 0;
    int32_t leader_epoch = 0;
    int32_t current_leader_epoch = -1;
  };
  protocol::OffsetForLeaderEpochResponse::EpochEndOffset ask(TestClient& client, int16_t version,
                                                             const Ask& a) {
    protocol::OffsetForLeaderEpochRequest request;
    request.replica_id = -1;
    auto& t = request.topics.emplace_back();
    t.topic = a.topic;
    auto& p = t.partitions.emplace_back();
    p.partition = a.partition;
    p.leader_epoch = a.leader_epoch;
    p.current_leader_epoch = a.current_leader_epoch;
    auto r = client.call<protocol::OffsetForLeaderEpochRequest,
                         protocol::OffsetForLeaderEpochResponse>(request, version);
    EXPECT_EQ(r.topics.size(), 1u);
    EXPECT_EQ(r.topics.at(0).topic, a.topic);
    EXPECT_EQ(r.topics.at(0).partitions.size(), 1u);
    EXPECT_EQ(r.topics[0].partitions.at(0).partition, a.partition);
    return r.topics[0].partitions[0];
  }

  storage::PartitionLog* log() {
    auto replica = broker_->replicas().get("t", 0);
    return replica ? &replica->log() : nullptr;
  }

  int32_t metadata_leader_epoch(TestClient& client) {
    protocol::MetadataRequest request;
    request.topics.emplace().emplace_back().name = "t";
    auto r = client.call<protocol::MetadataRequest, protocol::MetadataResponse>(request, 9);
    EXPECT_EQ(r.topics.size(), 1u);
    EXPECT_EQ(r.topics.at(0).partitions.size(), 1u);
    return r.topics[0].partitions.at(0).leader_epoch;
  }
};

TEST_F(LeaderEpochProtocolTest, OffsetForLeaderEpochAnswersFromTheEpochCacheInEveryVersion) {
  TestClient client(port());
  create_topic(client, "t", 1);
  produce(client, {"a", "b", "c"});  // epoch 0: offsets 0-2
  ASSERT_TRUE(log()->set_leader_epoch(2).ok());
  produce(client, {"d", "e"});  // epoch 2: offsets 3-4
  for (int16_t v = 0; v <= 4; ++v) {
    SCOPED_TRACE("version " + std::to_string(v));
    auto e0 = ask(client, v, {.leader_epoch = 0});
    EXPECT_EQ(e0.error_code, 0);
    EXPECT_EQ(e0.end_offset, 3);  // where epoch 2 starts
    EXPECT_EQ(e0.leader_epoch, v >= 1 ? 0 : -1);
    auto e1 = ask(client, v, {.leader_epoch = 1});  // unknown: epoch 0 ended at 3
    EXPECT_EQ(e1.end_offset, 3);
    EXPECT_EQ(e1.leader_epoch, v >= 1 ? 0 : -1);
    auto e2 = ask(client, v, {.leader_epoch = 2});  // the latest: the log end
    EXPECT_EQ(e2.end_offset, 5);
    EXPECT_EQ(e2.leader_epoch, v >= 1 ? 2 : -1);
    auto e3 = ask(client, v, {.leader_epoch = 3});  // above the latest: undefined
    EXPECT_EQ(e3.error_code, 0);
    EXPECT_EQ(e3.end_offset, -1);
    EXPECT_EQ(e3.leader_epoch, -1);
    EXPECT_EQ(ask(client, v, {.topic = "nope"}).error_code, 3);  // UNKNOWN_TOPIC_OR_PARTITION
    EXPECT_EQ(ask(client, v, {.partition = 5}).error_code, 3);
  }
  // The batches carry their epochs.
  protocol::FetchRequest fetch;
  fetch.replica_id = -1;
  fetch.max_bytes = 1 << 20;
  auto& ft = fetch.topics.emplace_back();
  ft.topic = "t";
  auto& fp = ft.partitions.emplace_back();
  fp.fetch_offset = 0;
  fp.partition_max_bytes = 1 << 20;
  auto fetched = client.call<protocol::FetchRequest, protocol::FetchResponse>(fetch, 11);
  const Bytes& records = *fetched.responses.at(0).partitions.at(0).records;
  std::vector<int32_t> epochs;
  for (size_t pos = 0; pos < records.size();) {
    auto h = record::check_batch(records.span().subspan(pos));
    ASSERT_TRUE(h.ok());
    epochs.push_back(h->partition_leader_epoch);
    pos += h->size_in_bytes();
  }
  EXPECT_EQ(epochs, (std::vector<int32_t>{0, 2}));
}

TEST_F(LeaderEpochProtocolTest, FetchChecksCurrentLeaderEpochFromV9On) {
  TestClient client(port());
  create_topic(client, "t", 1);
  produce(client, {"a"});
  ASSERT_TRUE(log()->set_leader_epoch(4).ok());
  auto fetch_with = [&](int32_t current_leader_epoch, int16_t version) {
    protocol::FetchRequest fetch;
    fetch.replica_id = -1;
    fetch.max_bytes = 1 << 20;
    auto& ft = fetch.topics.emplace_back();
    ft.topic = "t";
    auto& fp = ft.partitions.emplace_back();
    fp.fetch_offset = 0;
    fp.partition_max_bytes = 1 << 20;
    fp.current_leader_epoch = current_leader_epoch;
    auto r = client.call<protocol::FetchRequest, protocol::FetchResponse>(fetch, version);
    const auto& p = r.responses.at(0).partitions.at(0);
    return std::make_pair(p.error_code, p.records ? p.records->size() : size_t(0));
  };
  for (int16_t v = 9; v <= 11; ++v) {
    SCOPED_TRACE("version " + std::to_string(v));
    EXPECT_EQ(fetch_with(3, v).first, 74);  // FENCED_LEADER_EPOCH: the fetcher is behind
    EXPECT_EQ(fetch_with(3, v).second, 0u);
    EXPECT_EQ(fetch_with(5, v).first, 75);  // UNKNOWN_LEADER_EPOCH: we are behind
    EXPECT_EQ(fetch_with(4, v).first, 0);
    EXPECT_GT(fetch_with(4, v).second, 0u);
    EXPECT_EQ(fetch_with(-1, v).first, 0);  // no check
  }
  // Before v9 the field does not exist on the wire: no check.
  EXPECT_EQ(fetch_with(3, 8).first, 0);
}

TEST_F(LeaderEpochProtocolTest, CurrentLeaderEpochIsFencedFromV2On) {
  TestClient client(port());
  create_topic(client, "t", 1);
  produce(client, {"a"});
  ASSERT_TRUE(log()->set_leader_epoch(4).ok());
  for (int16_t v = 2; v <= 4; ++v) {
    SCOPED_TRACE("version " + std::to_string(v));
    auto stale = ask(client, v, {.leader_epoch = 0, .current_leader_epoch = 3});
    EXPECT_EQ(stale.error_code, 74);  // FENCED_LEADER_EPOCH
    EXPECT_EQ(stale.end_offset, -1);
    EXPECT_EQ(ask(client, v, {.leader_epoch = 0, .current_leader_epoch = 5}).error_code,
              75);  // UNKNOWN_LEADER_EPOCH
    auto current = ask(client, v, {.leader_epoch = 0, .current_leader_epoch = 4});
    EXPECT_EQ(current.error_code, 0);
    EXPECT_EQ(current.end_offset, 1);
    EXPECT_EQ(ask(client, v, {.leader_epoch = 0, .current_leader_epoch = -1}).error_code, 0);
  }
  // v0/v1 carry no current epoch: never fenced.
  EXPECT_EQ(ask(client, 1, {.leader_epoch = 0, .current_leader_epoch = 3}).error_code, 0);
}

TEST_F(LeaderEpochProtocolTest, MetadataV9AdvertisesTheLogsLeaderEpochAcrossARestart) {
  TestClient client(port());
  create_topic(client, "t", 1);
  EXPECT_EQ(metadata_leader_epoch(client), 0);
  ASSERT_TRUE(log()->set_leader_epoch(6).ok());
  EXPECT_EQ(metadata_leader_epoch(client), 6);
  restart();
  TestClient again(port());
  EXPECT_EQ(metadata_leader_epoch(again), 6);
  // ApiVersions advertises Metadata up to v9 and OffsetForLeaderEpoch v0-4.
  auto versions = again.call<protocol::ApiVersionsRequest, protocol::ApiVersionsResponse>(
      protocol::ApiVersionsRequest{}, 3);
  bool metadata = false, epochs = false;
  for (const auto& k : versions.api_keys) {
    if (k.api_key == 3) metadata = k.max_version == 9;
    if (k.api_key == 23) epochs = k.min_version == 0 && k.max_version == 4;
  }
  EXPECT_TRUE(metadata);
  EXPECT_TRUE(epochs);
}

}  // namespace
}  // namespace holdfast::server

namespace holdfast::server {
namespace {

class ListOffsetsEpochTest : public LeaderEpochProtocolTest {
 protected:
  protocol::ListOffsetsResponse::ListOffsetsPartitionResponse list(TestClient& client,
                                                                   int16_t version,
                                                                   int64_t timestamp,
                                                                   int32_t current_leader_epoch) {
    protocol::ListOffsetsRequest request;
    request.replica_id = -1;
    auto& t = request.topics.emplace_back();
    t.name = "t";
    auto& p = t.partitions.emplace_back();
    p.partition_index = 0;
    p.timestamp = timestamp;
    p.current_leader_epoch = current_leader_epoch;
    auto r = client.call<protocol::ListOffsetsRequest, protocol::ListOffsetsResponse>(request,
                                                                                     version);
    EXPECT_EQ(r.topics.size(), 1u);
    EXPECT_EQ(r.topics.at(0).partitions.size(), 1u);
    return r.topics[0].partitions.at(0);
  }
};

// KIP-320 in ListOffsets (v4+): current_leader_epoch is checked like Fetch's,
// and the answer carries the leader epoch of the offset it returns.
TEST_F(ListOffsetsEpochTest, ChecksCurrentLeaderEpochAndAnswersWithTheOffsetsEpoch) {
  TestClient client(port());
  create_topic(client, "t", 1);
  produce(client, {"a", "b"});  // epoch 0: offsets 0-1, timestamp 1000
  ASSERT_TRUE(log()->set_leader_epoch(3).ok());
  produce(client, {"c"});  // epoch 3: offset 2
  for (int16_t v = 4; v <= 5; ++v) {
    SCOPED_TRACE("version " + std::to_string(v));
    EXPECT_EQ(list(client, v, -1, 2).error_code, code(KafkaError::fenced_leader_epoch));
    EXPECT_EQ(list(client, v, -1, 4).error_code, code(KafkaError::unknown_leader_epoch));
    auto latest = list(client, v, -1, 3);
    EXPECT_EQ(latest.error_code, 0);
    EXPECT_EQ(latest.offset, 3);
    EXPECT_EQ(latest.leader_epoch, 3);
    auto earliest = list(client, v, -2, -1);  // -1: no check
    EXPECT_EQ(earliest.error_code, 0);
    EXPECT_EQ(earliest.offset, 0);
    EXPECT_EQ(earliest.leader_epoch, 0);
    auto by_time = list(client, v, 1000, 3);
    EXPECT_EQ(by_time.error_code, 0);
    EXPECT_EQ(by_time.offset, 0);
    EXPECT_EQ(by_time.leader_epoch, 0);
  }
  // Below v4 there is no epoch on the wire: no check.
  auto v3 = list(client, 3, -1, -1);
  EXPECT_EQ(v3.error_code, 0);
  EXPECT_EQ(v3.offset, 3);
}

}  // namespace
}  // namespace holdfast::server
