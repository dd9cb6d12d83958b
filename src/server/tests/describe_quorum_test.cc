// DescribeQuorum (55): the answer from a given view of the quorum (leader,
// follower, wrong partition, single node), and a single-node broker end to
// end (not advertised, answered UNSUPPORTED_VERSION).
#include <gtest/gtest.h>

#include "server/handlers/describe_quorum.h"
#include "server/kafka_error.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using metadata::MemberRole;
using protocol::DescribeQuorumRequest;
using protocol::DescribeQuorumResponse;

DescribeQuorumRequest ask(const std::string& topic = kMetadataTopic, int32_t partition = 0) {
  DescribeQuorumRequest request;
  auto& t = request.topics.emplace_back();
  t.topic_name = topic;
  t.partitions.emplace_back().partition_index = partition;
  return request;
}

// Node 1 leads term 7 with voters 1..3 and standby 4; its image is at record
// 42. Broker 2 reported 42 (caught up), broker 4 reported 40; broker 3 has
// not heartbeated to this controller.
QuorumView leader_view() {
  QuorumView view;
  view.cluster_mode = true;
  view.active_controller = true;
  view.node_id = 1;
  view.now_wall_ms = 5000;
  view.applied_record_index = 42;
  view.status.role = metadata::RaftRole::leader;
  view.status.leader_id = 1;
  view.status.term = 7;
  view.status.commit_index = 60;  // a Raft index: not what the response reports
  view.status.members = {{1, "h:1", MemberRole::voter},
                         {2, "h:2", MemberRole::voter},
                         {3, "h:3", MemberRole::voter},
                         {4, "h:4", MemberRole::standby}};
  view.progress[2] = {42, 4900, 4900};
  view.progress[4] = {40, 4950, 3000};
  return view;
}

const DescribeQuorumResponse::PartitionData& only_partition(const DescribeQuorumResponse& r) {
  EXPECT_EQ(r.topics.size(), 1u);
  EXPECT_EQ(r.topics.at(0).partitions.size(), 1u);
  return r.topics.at(0).partitions.at(0);
}

TEST(DescribeQuorum, TheActiveControllerDescribesVotersAndObservers) {
  auto response = describe_quorum(ask(), leader_view());
  EXPECT_EQ(response.error_code, 0);
  const auto& p = only_partition(response);
  EXPECT_EQ(response.topics[0].topic_name, "__cluster_metadata");
  EXPECT_EQ(p.error_code, 0);
  EXPECT_EQ(p.leader_id, 1);
  EXPECT_EQ(p.leader_epoch, 7);
  EXPECT_EQ(p.high_watermark, 42);  // the applied record index, not the Raft index
  ASSERT_EQ(p.current_voters.size(), 3u);
  ASSERT_EQ(p.observers.size(), 1u);
  // The leader: its own index, caught up now, no fetch time (Kafka's rule).
  EXPECT_EQ(p.current_voters[0].replica_id, 1);
  EXPECT_EQ(p.current_voters[0].log_end_offset, 42);
  EXPECT_EQ(p.current_voters[0].last_fetch_timestamp, -1);
  EXPECT_EQ(p.current_voters[0].last_caught_up_timestamp, 5000);
  // A follower as its last heartbeat reported it.
  EXPECT_EQ(p.current_voters[1].replica_id, 2);
  EXPECT_EQ(p.current_voters[1].log_end_offset, 42);
  EXPECT_EQ(p.current_voters[1].last_fetch_timestamp, 4900);
  EXPECT_EQ(p.current_voters[1].last_caught_up_timestamp, 4900);
  // Unknown: -1 everywhere.
  EXPECT_EQ(p.current_voters[2].replica_id, 3);
  EXPECT_EQ(p.current_voters[2].log_end_offset, -1);
  EXPECT_EQ(p.current_voters[2].last_fetch_timestamp, -1);
  EXPECT_EQ(p.current_voters[2].last_caught_up_timestamp, -1);
  // The standby is an observer, behind.
  EXPECT_EQ(p.observers[0].replica_id, 4);
  EXPECT_EQ(p.observers[0].log_end_offset, 40);
  EXPECT_EQ(p.observers[0].last_caught_up_timestamp, 3000);
}

TEST(DescribeQuorum, AFollowerAnswersNotLeaderNamingTheLeader) {
  QuorumView view = leader_view();
  view.node_id = 2;
  view.active_controller = false;
  view.status.role = metadata::RaftRole::follower;
  view.progress.clear();
  auto response = describe_quorum(ask(), view);
  EXPECT_EQ(response.error_code, 0);
  const auto& p = only_partition(response);
  EXPECT_EQ(p.error_code, int16_t(KafkaError::not_leader_or_follower));
  EXPECT_EQ(p.leader_id, 1);
  EXPECT_EQ(p.leader_epoch, 7);
  EXPECT_TRUE(p.current_voters.empty());
  // No leader known (an election): -1.
  view.status.leader_id = -1;
  EXPECT_EQ(only_partition(describe_quorum(ask(), view)).leader_id, -1);
}

TEST(DescribeQuorum, AnyOtherPartitionIsUnknown) {
  for (auto request : {ask("__consumer_offsets", 0), ask(kMetadataTopic, 1)}) {
    auto response = describe_quorum(request, leader_view());
    const auto& p = only_partition(response);
    EXPECT_EQ(p.error_code, int16_t(KafkaError::unknown_topic_or_partition));
    EXPECT_TRUE(p.current_voters.empty());
  }
}

TEST(DescribeQuorum, ASingleNodeHasNoQuorum) {
  QuorumView view;  // cluster_mode false
  auto response = describe_quorum(ask(), view);
  EXPECT_EQ(response.error_code, int16_t(KafkaError::unsupported_version));
  EXPECT_TRUE(response.topics.empty());
}

class DescribeQuorumSingleNode : public testing::BrokerFixture {};

TEST_F(DescribeQuorumSingleNode, NotAdvertisedAndAnsweredUnsupportedVersion) {
  testing::TestClient client(port());
  protocol::ApiVersionsRequest versions;
  auto advertised =
      client.call<protocol::ApiVersionsRequest, protocol::ApiVersionsResponse>(versions, 3);
  ASSERT_EQ(advertised.error_code, 0);
  bool describe_cluster = false;
  for (const auto& api : advertised.api_keys) {
    EXPECT_NE(api.api_key, 55) << "DescribeQuorum advertised by a single node";
    describe_cluster |= api.api_key == 60;
  }
  EXPECT_TRUE(describe_cluster);  // the list is not just empty
  for (int16_t version : {0, 1}) {
    auto response = client.call<DescribeQuorumRequest, DescribeQuorumResponse>(ask(), version);
    EXPECT_EQ(response.error_code, int16_t(KafkaError::unsupported_version)) << version;
  }
}

}  // namespace
}  // namespace holdfast::server
