// What a client was told is durable survives a power loss taken the moment
// the response arrives: the broker runs on a file system that forgets every
// byte and directory entry not fsynced (FaultInjectionFileSystem), the disk
// stops right after the response, the broker dies, the power goes, and a new
// broker on what survived must still have the produced records, the committed
// offset and the group member with its generation.
//
// The negative control runs the same steps with flush.policy=never (acks
// without fsync, as Kafka does by default) and shows all three lost, so a
// broken fault injection or a test that reads the wrong thing cannot pass.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/fault_injection_file_system.h"
#include "record/batch.h"
#include "server/broker.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using testing::TestClient;

constexpr int16_t kNone = 0;
constexpr int16_t kUnknownMemberId = 25;

class AckedPowerLossTest : public testing::BrokerFixture,
                           public ::testing::WithParamInterface<FlushPolicyKind> {
 protected:
  void configure(BrokerConfig& config) override {
    config.flush_policy = FlushPolicy{GetParam(), 0};
    config.flush_policy_explicit = true;
    config.offsets_topic_num_partitions = 1;
    config.group_initial_rebalance_delay_ms = 0;
  }
  void after_start() override { ASSERT_TRUE(broker_->groups().wait_until_loaded(10000)); }
  io::FileSystem& file_system() override { return faulty_; }

  bool durable() const { return GetParam() == FlushPolicyKind::always; }

  // The disk stops the moment the response is in, the process dies (its
  // shutdown can write nothing), the power goes, and a broker starts on what
  // the disk kept.
  void power_loss_and_restart() {
    faulty_.halt();
    broker_.reset();
    faulty_.simulate_power_loss();
    start();
  }

  static protocol::ProduceResponse produce(TestClient& client, const std::string& topic,
                                           std::vector<std::string> values) {
    record::BatchBuilder builder;
    for (const auto& v : values) builder.add(std::nullopt, v, 1000);
    protocol::ProduceRequest request;
    request.acks = -1;
    request.timeout_ms = 5000;
    auto& t = request.topic_data.emplace_back();
    t.name = topic;
    auto& p = t.partition_data.emplace_back();
    p.index = 0;
    p.records = builder.build();
    return client.call<protocol::ProduceRequest, protocol::ProduceResponse>(request, 7);
  }

  // Every value in partition 0 of `topic`, from offset 0; the partition's
  // error code goes to *error.
  static std::vector<std::string> read_all(TestClient& client, const std::string& topic,
                                           int16_t* error) {
    auto response = client.fetch_from(topic);
    std::vector<std::string> out;
    *error = response.responses.at(0).partitions.at(0).error_code;
    const auto& records = response.responses.at(0).partitions.at(0).records;
    if (!records) return out;
    auto data = records->span();
    while (!data.empty()) {
      auto header = record::check_batch(data);
      if (!header) break;  // a partial batch at the end of the response
      auto decoded = record::decode_records(data.first(header->size_in_bytes()));
      EXPECT_TRUE(decoded.ok());
      if (!decoded) break;
      for (const auto& r : *decoded) out.push_back(r.value ? r.value->to_string() : "<null>");
      data = data.subspan(header->size_in_bytes());
    }
    return out;
  }

  static int16_t commit(TestClient& client, const std::string& group, int32_t generation,
                        const std::string& member_id, int64_t offset) {
    protocol::OffsetCommitRequest request;
    request.group_id = group;
    request.generation_id = generation;
    request.member_id = member_id;
    auto& t = request.topics.emplace_back();
    t.name = "t";
    auto& part = t.partitions.emplace_back();
    part.partition_index = 0;
    part.committed_offset = offset;
    part.committed_metadata = "m";
    return client.call<protocol::OffsetCommitRequest, protocol::OffsetCommitResponse>(request, 7)
        .topics.at(0)
        .partitions.at(0)
        .error_code;
  }

  static int64_t committed(TestClient& client, const std::string& group) {
    protocol::OffsetFetchRequest request;
    request.group_id = group;
    request.topics.emplace();
    request.topics->push_back({"t", {0}});
    auto response =
        client.call<protocol::OffsetFetchRequest, protocol::OffsetFetchResponse>(request, 5);
    EXPECT_EQ(response.error_code, kNone);
    return response.topics.at(0).partitions.at(0).committed_offset;
  }

  // JoinGroup (v5: MEMBER_ID_REQUIRED first) and SyncGroup as the leader: the
  // SyncGroup response is what says the member and generation are stored.
  static std::pair<std::string, int32_t> join_and_sync(TestClient& client,
                                                        const std::string& group) {
    protocol::JoinGroupRequest join;
    join.group_id = group;
    join.session_timeout_ms = 30000;
    join.rebalance_timeout_ms = 5000;
    join.protocol_type = "consumer";
    join.protocols.push_back({"range", Bytes::copy_of(std::string_view("meta"))});
    auto first = client.call<protocol::JoinGroupRequest, protocol::JoinGroupResponse>(join, 5);
    EXPECT_EQ(first.error_code, 79);  // MEMBER_ID_REQUIRED
    join.member_id = first.member_id;
    auto joined = client.call<protocol::JoinGroupRequest, protocol::JoinGroupResponse>(join, 5);
    EXPECT_EQ(joined.error_code, kNone);
    EXPECT_EQ(joined.leader, joined.member_id);
    protocol::SyncGroupRequest sync;
    sync.group_id = group;
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id;
    sync.assignments.push_back({joined.member_id, Bytes::copy_of(std::string_view("p0"))});
    auto synced = client.call<protocol::SyncGroupRequest, protocol::SyncGroupResponse>(sync, 3);
    EXPECT_EQ(synced.error_code, kNone);
    return {joined.member_id, joined.generation_id};
  }

  static int16_t heartbeat(TestClient& client, const std::string& group,
                           const std::string& member_id, int32_t generation) {
    protocol::HeartbeatRequest request;
    request.group_id = group;
    request.generation_id = generation;
    request.member_id = member_id;
    return client.call<protocol::HeartbeatRequest, protocol::HeartbeatResponse>(request, 3)
        .error_code;
  }

  io::FaultInjectionFileSystem faulty_{fs_};
};

TEST_P(AckedPowerLossTest, ProduceOffsetCommitAndGroupMembershipSurviveExactlyWhenFsynced) {
  {
    TestClient client(port());
    create_topic(client, "t", 1);
  }

  // 1. Produce, acknowledged with acks=all.
  {
    TestClient client(port());
    auto produced = produce(client, "t", {"a1", "a2", "a3"});
    ASSERT_EQ(produced.responses.at(0).partition_responses.at(0).error_code, kNone);
    ASSERT_EQ(produced.responses.at(0).partition_responses.at(0).base_offset, 0);
  }
  power_loss_and_restart();
  {
    TestClient client(port());
    int16_t error = -1;
    auto values = read_all(client, "t", &error);
    if (durable()) {
      EXPECT_EQ(error, kNone);
      EXPECT_EQ(values, (std::vector<std::string>{"a1", "a2", "a3"}));
    } else {
      EXPECT_TRUE(values.empty()) << "flush.policy=never kept " << values.size()
                                  << " records: the power loss dropped nothing";
    }
  }

  // 2. OffsetCommit (a standalone consumer: generation -1).
  {
    TestClient client(port());
    ASSERT_EQ(commit(client, "committer", -1, "", 2), kNone);
    ASSERT_EQ(committed(client, "committer"), 2);
  }
  power_loss_and_restart();
  {
    TestClient client(port());
    EXPECT_EQ(committed(client, "committer"), durable() ? 2 : -1);
  }

  // 3. JoinGroup + SyncGroup: the member and its generation.
  std::string member_id;
  int32_t generation = -1;
  {
    TestClient client(port());
    std::tie(member_id, generation) = join_and_sync(client, "members");
    ASSERT_FALSE(member_id.empty());
    ASSERT_GE(generation, 1);
    ASSERT_EQ(heartbeat(client, "members", member_id, generation), kNone);
  }
  power_loss_and_restart();
  {
    TestClient client(port());
    EXPECT_EQ(heartbeat(client, "members", member_id, generation),
              durable() ? kNone : kUnknownMemberId);
    // What survived one power loss survives the next ones too.
    int16_t error = -1;
    auto values = read_all(client, "t", &error);
    EXPECT_EQ(values.size(), durable() ? 3u : 0u);
    EXPECT_EQ(committed(client, "committer"), durable() ? 2 : -1);
  }
}

INSTANTIATE_TEST_SUITE_P(FlushPolicies, AckedPowerLossTest,
                         ::testing::Values(FlushPolicyKind::always, FlushPolicyKind::never),
                         [](const auto& info) {
                           return info.param == FlushPolicyKind::always ? std::string("Always")
                                                                        : std::string("Never");
                         });

}  // namespace
}  // namespace holdfast::server
