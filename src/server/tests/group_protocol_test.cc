// Protocol-level tests of consumer groups and committed offsets against the
// in-process broker: the error paths real clients rely on (stale generation,
// unknown member, rebalance in progress, fenced static member, bad session
// timeout, MEMBER_ID_REQUIRED), commit metadata round trips, and recovery of
// the coordinator's state from __consumer_offsets after a restart.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
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
using protocol::JoinGroupRequest;
using protocol::JoinGroupResponse;

constexpr int16_t kNone = 0;

class GroupProtocolTest : public testing::BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override {
    config.offsets_topic_num_partitions = 3;
    config.group_initial_rebalance_delay_ms = 0;
    config.group_min_session_timeout_ms = 100;
    config.log_segment_bytes = segment_bytes_;
    config.offsets_topic_segment_bytes = segment_bytes_;
  }
  void after_start() override { ASSERT_TRUE(broker_->groups().wait_until_loaded(10000)); }

  static JoinGroupResponse join(TestClient& client, const std::string& group,
                                const std::string& member_id, int16_t version = 5,
                                std::vector<std::string> protocols = {"range"},
                                int32_t session_timeout_ms = 10000,
                                std::optional<std::string> instance = std::nullopt,
                                const std::string& metadata = "meta") {
    JoinGroupRequest request;
    request.group_id = group;
    request.session_timeout_ms = session_timeout_ms;
    request.rebalance_timeout_ms = 5000;
    request.member_id = member_id;
    request.group_instance_id = instance;
    request.protocol_type = "consumer";
    for (const auto& p : protocols) {
      request.protocols.push_back({p, Bytes::copy_of(std::string_view(metadata + ":" + p))});
    }
    return client.call<JoinGroupRequest, JoinGroupResponse>(request, version);
  }

  // Joins a new member through the v4+ MEMBER_ID_REQUIRED round trip.
  static JoinGroupResponse join_new(TestClient& client, const std::string& group,
                                    std::vector<std::string> protocols = {"range"},
                                    int32_t session_timeout_ms = 10000) {
    auto first = join(client, group, "", 5, protocols, session_timeout_ms);
    EXPECT_EQ(first.error_code, 79);  // MEMBER_ID_REQUIRED
    EXPECT_FALSE(first.member_id.empty());
    return join(client, group, first.member_id, 5, protocols, session_timeout_ms);
  }

  static protocol::SyncGroupResponse sync(
      TestClient& client, const std::string& group, int32_t generation,
      const std::string& member_id,
      std::vector<std::pair<std::string, std::string>> assignments = {},
      std::optional<std::string> instance = std::nullopt) {
    protocol::SyncGroupRequest request;
    request.group_id = group;
    request.generation_id = generation;
    request.member_id = member_id;
    request.group_instance_id = instance;
    for (auto& [m, a] : assignments) {
      request.assignments.push_back({m, Bytes::copy_of(std::string_view(a))});
    }
    return client.call<protocol::SyncGroupRequest, protocol::SyncGroupResponse>(request, 3);
  }

  static int16_t heartbeat(TestClient& client, const std::string& group, int32_t generation,
                           const std::string& member_id,
                           std::optional<std::string> instance = std::nullopt) {
    protocol::HeartbeatRequest request;
    request.group_id = group;
    request.generation_id = generation;
    request.member_id = member_id;
    request.group_instance_id = instance;
    return client.call<protocol::HeartbeatRequest, protocol::HeartbeatResponse>(request, 3)
        .error_code;
  }

  static protocol::OffsetCommitResponse commit(
      TestClient& client, const std::string& group, int32_t generation,
      const std::string& member_id, const std::string& topic,
      std::vector<std::tuple<int32_t, int64_t, std::optional<std::string>>> offsets,
      int16_t version = 7) {
    protocol::OffsetCommitRequest request;
    request.group_id = group;
    request.generation_id = generation;
    request.member_id = member_id;
    auto& t = request.topics.emplace_back();
    t.name = topic;
    for (auto& [p, o, m] : offsets) {
      auto& part = t.partitions.emplace_back();
      part.partition_index = p;
      part.committed_offset = o;
      part.committed_metadata = m;
    }
    return client.call<protocol::OffsetCommitRequest, protocol::OffsetCommitResponse>(request,
                                                                                     version);
  }

  static protocol::OffsetFetchResponse fetch_offsets(TestClient& client, const std::string& group,
                                                     const std::string& topic,
                                                     std::vector<int32_t> partitions,
                                                     int16_t version = 7) {
    protocol::OffsetFetchRequest request;
    request.group_id = group;
    request.topics.emplace();
    request.topics->push_back({topic, partitions});
    request.require_stable = version >= 7;
    return client.call<protocol::OffsetFetchRequest, protocol::OffsetFetchResponse>(request,
                                                                                   version);
  }

  protocol::DescribeGroupsResponse::DescribedGroup describe(TestClient& client,
                                                            const std::string& group) {
    protocol::DescribeGroupsRequest request;
    request.groups = {group};
    auto response =
        client.call<protocol::DescribeGroupsRequest, protocol::DescribeGroupsResponse>(request, 4);
    return response.groups.at(0);
  }

  int64_t segment_bytes_ = 1LL << 30;
};

TEST_F(GroupProtocolTest, FindCoordinatorAnswersThisNodeForGroupsAndTransactions) {
  TestClient client(port());
  for (int16_t version = 0; version <= 2; ++version) {
    for (int8_t key_type : {0, 1}) {
      if (version == 0 && key_type == 1) continue;
      protocol::FindCoordinatorRequest request;
      request.key = "some-group";
      request.key_type = key_type;
      auto response =
          client.call<protocol::FindCoordinatorRequest, protocol::FindCoordinatorResponse>(
              request, version);
      EXPECT_EQ(response.error_code, kNone);
      EXPECT_EQ(response.node_id, broker_->node_id());
      EXPECT_EQ(response.port, port());
      EXPECT_EQ(response.host, "127.0.0.1");
    }
  }
  protocol::FindCoordinatorRequest bad;
  bad.key = "g";
  bad.key_type = 7;
  auto response = client.call<protocol::FindCoordinatorRequest, protocol::FindCoordinatorResponse>(
      bad, 2);
  EXPECT_EQ(response.error_code, 42);  // INVALID_REQUEST
}

TEST_F(GroupProtocolTest, MemberIdRequiredThenJoinLeadsWithOwnMetadata) {
  TestClient client(port());
  auto first = join(client, "g", "", 4);
  EXPECT_EQ(first.error_code, 79);
  ASSERT_FALSE(first.member_id.empty());
  EXPECT_EQ(first.member_id.rfind("holdfast-test-", 0), 0u) << first.member_id;
  auto joined = join(client, "g", first.member_id, 4);
  ASSERT_EQ(joined.error_code, kNone);
  EXPECT_EQ(joined.generation_id, 1);
  EXPECT_EQ(joined.leader, first.member_id);
  EXPECT_EQ(joined.protocol_name, "range");
  ASSERT_EQ(joined.members.size(), 1u);
  EXPECT_EQ(joined.members[0].metadata.to_string(), "meta:range");

  // v3 has no MEMBER_ID_REQUIRED step: a new member joins at once.
  auto old = join(client, "g-v3", "", 3);
  EXPECT_EQ(old.error_code, kNone);
  EXPECT_FALSE(old.member_id.empty());
}

TEST_F(GroupProtocolTest, SessionTimeoutOutsideBrokerLimitsIsRejected) {
  TestClient client(port());
  EXPECT_EQ(join(client, "g", "", 5, {"range"}, 50).error_code, 26);
  EXPECT_EQ(join(client, "g", "", 5, {"range"}, 1800001).error_code, 26);
}

TEST_F(GroupProtocolTest, RebalanceGenerationsStaleGenerationAndUnknownMember) {
  TestClient a(port());
  TestClient b(port());
  auto a1 = join_new(a, "g");
  ASSERT_EQ(a1.error_code, kNone);
  ASSERT_EQ(a1.generation_id, 1);
  auto s1 = sync(a, "g", 1, a1.member_id, {{a1.member_id, "all-partitions"}});
  ASSERT_EQ(s1.error_code, kNone);
  EXPECT_EQ(s1.assignment.to_string(), "all-partitions");
  EXPECT_EQ(heartbeat(a, "g", 1, a1.member_id), kNone);

  // B joins: its join waits until A rejoins; meanwhile A's heartbeat says
  // REBALANCE_IN_PROGRESS.
  auto b_first = join(b, "g", "", 5);
  ASSERT_EQ(b_first.error_code, 79);
  auto b_join = std::async(std::launch::async, [&] { return join(b, "g", b_first.member_id); });
  ASSERT_EQ(b_join.wait_for(300ms), std::future_status::timeout);
  EXPECT_EQ(heartbeat(a, "g", 1, a1.member_id), 27);
  // A commit from the old generation during the rebalance is still accepted
  // (consumers commit what they processed before giving partitions up).
  TestClient c(port());
  create_topic(c, "t", 2);
  EXPECT_EQ(commit(a, "g", 1, a1.member_id, "t", {{0, 5, ""}}).topics[0].partitions[0].error_code,
            kNone);

  auto a2 = join(a, "g", a1.member_id);
  auto b2 = b_join.get();
  ASSERT_EQ(a2.error_code, kNone);
  ASSERT_EQ(b2.error_code, kNone);
  EXPECT_EQ(a2.generation_id, 2);
  EXPECT_EQ(b2.generation_id, 2);
  EXPECT_EQ(a2.leader, a1.member_id);  // the first joiner keeps leading
  EXPECT_EQ(b2.leader, a1.member_id);
  EXPECT_EQ(a2.members.size(), 2u);  // the leader gets everyone's metadata
  EXPECT_TRUE(b2.members.empty());

  // CompletingRebalance: a follower's sync waits for the leader's.
  auto b_sync = std::async(std::launch::async, [&] { return sync(b, "g", 2, b_first.member_id); });
  ASSERT_EQ(b_sync.wait_for(200ms), std::future_status::timeout);
  EXPECT_EQ(commit(a, "g", 2, a1.member_id, "t", {{0, 6, ""}}).topics[0].partitions[0].error_code,
            27);  // REBALANCE_IN_PROGRESS until the assignment is stored
  auto a_sync = sync(a, "g", 2, a1.member_id, {{a1.member_id, "p0"}, {b_first.member_id, "p1"}});
  EXPECT_EQ(a_sync.error_code, kNone);
  EXPECT_EQ(a_sync.assignment.to_string(), "p0");
  auto b_synced = b_sync.get();
  EXPECT_EQ(b_synced.error_code, kNone);
  EXPECT_EQ(b_synced.assignment.to_string(), "p1");

  // Stale generation, unknown member.
  EXPECT_EQ(heartbeat(a, "g", 1, a1.member_id), 22);
  EXPECT_EQ(sync(a, "g", 1, a1.member_id).error_code, 22);
  EXPECT_EQ(commit(a, "g", 1, a1.member_id, "t", {{0, 7, ""}}).topics[0].partitions[0].error_code,
            22);
  EXPECT_EQ(heartbeat(a, "g", 2, "nobody"), 25);
  EXPECT_EQ(commit(a, "g", 2, "nobody", "t", {{0, 7, ""}}).topics[0].partitions[0].error_code, 25);
  EXPECT_EQ(heartbeat(a, "no-such-group", 1, a1.member_id), 25);
  EXPECT_EQ(join(a, "g", "nobody").error_code, 25);
  EXPECT_EQ(heartbeat(a, "g", 2, a1.member_id), kNone);

  auto d = describe(c, "g");
  EXPECT_EQ(d.group_state, "Stable");
  EXPECT_EQ(d.protocol_type, "consumer");
  EXPECT_EQ(d.protocol_data, "range");
  ASSERT_EQ(d.members.size(), 2u);
  EXPECT_EQ(d.members[0].member_assignment.to_string(), "p0");
  EXPECT_EQ(d.members[0].client_host, "/127.0.0.1");

  // B leaves: A is told to rejoin and forms generation 3 alone.
  protocol::LeaveGroupRequest leave;
  leave.group_id = "g";
  leave.members.push_back({b_first.member_id, std::nullopt});
  auto left = b.call<protocol::LeaveGroupRequest, protocol::LeaveGroupResponse>(leave, 3);
  EXPECT_EQ(left.error_code, kNone);
  ASSERT_EQ(left.members.size(), 1u);
  EXPECT_EQ(left.members[0].error_code, kNone);
  EXPECT_EQ(heartbeat(a, "g", 2, a1.member_id), 27);
  auto a3 = join(a, "g", a1.member_id);
  EXPECT_EQ(a3.generation_id, 3);
  EXPECT_EQ(a3.members.size(), 1u);
}

TEST_F(GroupProtocolTest, InconsistentProtocolsAreRejectedAndTheCommonOneIsChosen) {
  TestClient a(port());
  TestClient b(port());
  auto a1 = join_new(a, "g", {"roundrobin", "range"});
  ASSERT_EQ(a1.error_code, kNone);
  EXPECT_EQ(a1.protocol_name, "roundrobin");
  EXPECT_EQ(join(b, "g", "", 3, {"cooperative-sticky"}).error_code, 23);
  // A second member that only has "range" moves the group to "range".
  auto b_join = std::async(std::launch::async, [&] { return join(b, "g", "", 3, {"range"}); });
  // A's rejoin must come after B's join has started the rebalance.
  TestClient watcher(port());
  ASSERT_TRUE(eventually([&] {
    auto d = describe(watcher, "g");
    return d.group_state == "PreparingRebalance" && d.members.size() == 2;
  })) << "B's join never reached the coordinator";
  auto a2 = join(a, "g", a1.member_id, 5, {"roundrobin", "range"});
  auto b2 = b_join.get();
  ASSERT_EQ(a2.error_code, kNone);
  EXPECT_EQ(a2.protocol_name, "range");
  EXPECT_EQ(b2.protocol_name, "range");
}

TEST_F(GroupProtocolTest, StaticMemberRejoinFencesTheOldMemberId) {
  TestClient client(port());
  auto first = join(client, "g", "", 5, {"range"}, 10000, "instance-1");
  ASSERT_EQ(first.error_code, kNone);  // static members skip MEMBER_ID_REQUIRED
  ASSERT_EQ(sync(client, "g", first.generation_id, first.member_id,
                 {{first.member_id, "mine"}}, "instance-1")
                .error_code,
            kNone);
  // The same instance restarts (no member id): it replaces the old member
  // without a rebalance and keeps its assignment.
  auto second = join(client, "g", "", 5, {"range"}, 10000, "instance-1");
  ASSERT_EQ(second.error_code, kNone);
  EXPECT_NE(second.member_id, first.member_id);
  EXPECT_EQ(second.generation_id, first.generation_id);
  auto synced =
      sync(client, "g", second.generation_id, second.member_id, {}, std::string("instance-1"));
  EXPECT_EQ(synced.error_code, kNone);
  EXPECT_EQ(synced.assignment.to_string(), "mine");
  // The old incarnation is fenced everywhere.
  EXPECT_EQ(heartbeat(client, "g", first.generation_id, first.member_id, "instance-1"), 82);
  EXPECT_EQ(sync(client, "g", first.generation_id, first.member_id, {}, "instance-1").error_code,
            82);
  EXPECT_EQ(join(client, "g", first.member_id, 5, {"range"}, 10000, "instance-1").error_code, 82);
  EXPECT_EQ(heartbeat(client, "g", second.generation_id, second.member_id, "instance-1"), kNone);
}

TEST_F(GroupProtocolTest, CommitMetadataRoundTripsExactlyInEveryVersion) {
  TestClient client(port());
  create_topic(client, "t", 4);
  const std::string tricky = std::string("ctl\x01\x02\x1f\x7f\n\t\"quote\" ") + "\xc3\xa9\xe2\x82\xac" +
                             std::string(3000, 'x');
  int16_t commit_versions[] = {0, 1, 2, 3, 4, 5, 6, 7};
  for (int16_t v : commit_versions) {
    std::string group = "meta-v" + std::to_string(v);
    auto committed = commit(client, group, -1, "", "t",
                            {{0, 100 + v, tricky}, {1, 7, std::string()}, {2, 9, std::nullopt}}, v);
    for (const auto& p : committed.topics[0].partitions) {
      EXPECT_EQ(p.error_code, kNone) << "commit v" << v;
    }
    for (int16_t fv : {1, 2, 5, 6, 7}) {
      auto fetched = fetch_offsets(client, group, "t", {0, 1, 2, 3}, fv);
      ASSERT_EQ(fetched.topics.size(), 1u);
      auto& ps = fetched.topics[0].partitions;
      ASSERT_EQ(ps.size(), 4u);
      EXPECT_EQ(ps[0].committed_offset, 100 + v);
      EXPECT_EQ(ps[0].metadata.value_or("<null>"), tricky) << "commit v" << v << " fetch v" << fv;
      EXPECT_EQ(ps[1].committed_offset, 7);
      EXPECT_EQ(ps[1].metadata.value_or("<null>"), "");
      EXPECT_EQ(ps[2].committed_offset, 9);
      EXPECT_EQ(ps[2].metadata.value_or("<null>"), "");  // Kafka stores null as ""
      EXPECT_EQ(ps[3].committed_offset, -1);             // nothing committed
      for (const auto& p : ps) EXPECT_EQ(p.error_code, kNone);
    }
  }
  // Metadata above offset.metadata.max.bytes (4096) is refused per partition.
  auto too_large = commit(client, "g", -1, "", "t", {{0, 1, std::string(5000, 'm')}, {1, 2, "ok"}});
  EXPECT_EQ(too_large.topics[0].partitions[0].error_code, 12);
  EXPECT_EQ(too_large.topics[0].partitions[1].error_code, kNone);
  // Unknown topics and partitions.
  auto unknown = commit(client, "g", -1, "", "no-such-topic", {{0, 1, ""}});
  EXPECT_EQ(unknown.topics[0].partitions[0].error_code, 3);
  auto bad_partition = commit(client, "g", -1, "", "t", {{9, 1, ""}});
  EXPECT_EQ(bad_partition.topics[0].partitions[0].error_code, 3);
}

TEST_F(GroupProtocolTest, ManualAssignmentCommitsWithGenerationMinusOne) {
  TestClient client(port());
  create_topic(client, "t", 2);
  auto committed = commit(client, "manual", -1, "", "t", {{0, 42, "m"}, {1, 43, "n"}}, 2);
  EXPECT_EQ(committed.topics[0].partitions[0].error_code, kNone);
  auto fetched = fetch_offsets(client, "manual", "t", {0, 1}, 1);
  EXPECT_EQ(fetched.topics[0].partitions[0].committed_offset, 42);
  EXPECT_EQ(fetched.topics[0].partitions[1].committed_offset, 43);
  // A generation >= 0 for a group that does not exist is ILLEGAL_GENERATION.
  EXPECT_EQ(commit(client, "nope", 3, "m", "t", {{0, 1, ""}}).topics[0].partitions[0].error_code,
            22);
  // OffsetFetch v2+ with null topics lists everything committed.
  protocol::OffsetFetchRequest all;
  all.group_id = "manual";
  auto listed = client.call<protocol::OffsetFetchRequest, protocol::OffsetFetchResponse>(all, 5);
  ASSERT_EQ(listed.topics.size(), 1u);
  EXPECT_EQ(listed.topics[0].partitions.size(), 2u);
  // ListGroups shows it (no protocol type), DescribeGroups says Empty.
  auto groups = client.call<protocol::ListGroupsRequest, protocol::ListGroupsResponse>({}, 4);
  ASSERT_EQ(groups.error_code, kNone);
  bool found = false;
  for (const auto& g : groups.groups) found |= g.group_id == "manual" && g.group_state == "Empty";
  EXPECT_TRUE(found);
  EXPECT_EQ(describe(client, "manual").group_state, "Empty");
  EXPECT_EQ(describe(client, "never-existed").group_state, "Dead");
}

TEST_F(GroupProtocolTest, SessionExpiryRemovesAMemberAndEmptiesTheGroup) {
  TestClient client(port());
  auto joined = join_new(client, "g", {"range"}, 300);
  ASSERT_EQ(joined.error_code, kNone);
  ASSERT_EQ(sync(client, "g", 1, joined.member_id).error_code, kNone);
  // The broker's timer thread expires the 300 ms session (the coordinator's
  // unit tests drive expiry with a manual clock; here the real timer runs).
  EXPECT_TRUE(eventually([&] { return describe(client, "g").group_state == "Empty"; }))
      << describe(client, "g").group_state;
  EXPECT_EQ(heartbeat(client, "g", 1, joined.member_id), 25);
}

TEST_F(GroupProtocolTest, DeleteGroupsOffsetDeleteAndDeletedTopicsDropOffsets) {
  TestClient client(port());
  create_topic(client, "t", 2);
  create_topic(client, "u", 1);
  ASSERT_EQ(commit(client, "g", -1, "", "t", {{0, 1, ""}, {1, 2, ""}}).topics[0].partitions[0]
                .error_code,
            kNone);
  ASSERT_EQ(commit(client, "g", -1, "", "u", {{0, 3, ""}}).topics[0].partitions[0].error_code,
            kNone);

  protocol::OffsetDeleteRequest od;
  od.group_id = "g";
  auto& odt = od.topics.emplace_back();
  odt.name = "t";
  odt.partitions.push_back({1});
  auto odr = client.call<protocol::OffsetDeleteRequest, protocol::OffsetDeleteResponse>(od, 0);
  EXPECT_EQ(odr.error_code, kNone);
  EXPECT_EQ(odr.topics.at(0).partitions.at(0).error_code, kNone);
  EXPECT_EQ(fetch_offsets(client, "g", "t", {0, 1}).topics[0].partitions[1].committed_offset, -1);

  protocol::DeleteTopicsRequest dt;
  dt.topic_names = {"u"};
  dt.timeout_ms = 5000;
  auto dtr = client.call<protocol::DeleteTopicsRequest, protocol::DeleteTopicsResponse>(dt, 1);
  ASSERT_EQ(dtr.responses.at(0).error_code, kNone);
  EXPECT_EQ(fetch_offsets(client, "g", "u", {0}).topics[0].partitions[0].committed_offset, -1);
  EXPECT_EQ(fetch_offsets(client, "g", "t", {0}).topics[0].partitions[0].committed_offset, 1);

  // A group with members cannot be deleted.
  auto joined = join_new(client, "busy");
  protocol::DeleteGroupsRequest dg;
  dg.groups_names = {"g", "busy", "missing"};
  auto dgr = client.call<protocol::DeleteGroupsRequest, protocol::DeleteGroupsResponse>(dg, 1);
  ASSERT_EQ(dgr.results.size(), 3u);
  EXPECT_EQ(dgr.results[0].error_code, kNone);
  EXPECT_EQ(dgr.results[1].error_code, 68);  // NON_EMPTY_GROUP
  EXPECT_EQ(dgr.results[2].error_code, 69);  // GROUP_ID_NOT_FOUND
  EXPECT_EQ(fetch_offsets(client, "g", "t", {0}).topics[0].partitions[0].committed_offset, -1);

  // Deletions survive a restart (tombstones replayed).
  restart();
  TestClient again(port());
  EXPECT_EQ(fetch_offsets(again, "g", "t", {0}).topics[0].partitions[0].committed_offset, -1);
  EXPECT_EQ(describe(again, "g").group_state, "Dead");
}

TEST_F(GroupProtocolTest, InternalTopicIsReportedProtectedAndNotWritable) {
  TestClient client(port());
  protocol::MetadataRequest md;
  md.topics.emplace();
  md.topics->push_back({"__consumer_offsets"});
  auto mr = client.call<protocol::MetadataRequest, protocol::MetadataResponse>(md, 4);
  ASSERT_EQ(mr.topics.size(), 1u);
  EXPECT_EQ(mr.topics[0].error_code, kNone);
  EXPECT_TRUE(mr.topics[0].is_internal);
  EXPECT_EQ(mr.topics[0].partitions.size(), 3u);

  protocol::ProduceRequest produce;
  produce.acks = 1;
  produce.timeout_ms = 5000;
  auto& t = produce.topic_data.emplace_back();
  t.name = "__consumer_offsets";
  auto& p = t.partition_data.emplace_back();
  p.index = 0;
  record::BatchBuilder builder;
  builder.add(std::string_view("k"), std::string_view("v"), 1);
  p.records = builder.build();
  auto pr = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(produce, 7);
  EXPECT_EQ(pr.responses.at(0).partition_responses.at(0).error_code, 17);

  protocol::DeleteTopicsRequest dt;
  dt.topic_names = {"__consumer_offsets"};
  dt.timeout_ms = 5000;
  auto dtr = client.call<protocol::DeleteTopicsRequest, protocol::DeleteTopicsResponse>(dt, 1);
  EXPECT_EQ(dtr.responses.at(0).error_code, 17);
  EXPECT_TRUE(broker_->topics().image()->find_topic("__consumer_offsets"));
}

class GroupRecoveryTest : public GroupProtocolTest {
 protected:
  void SetUp() override {
    segment_bytes_ = 2048;  // many segment rolls in __consumer_offsets
    GroupProtocolTest::SetUp();
  }
};

TEST_F(GroupRecoveryTest, CoordinatorStateIsRebuiltFromTheLogAfterRestartAndSegmentRolls) {
  TestClient client(port());
  create_topic(client, "t", 4);
  auto joined = join_new(client, "g");
  ASSERT_EQ(joined.error_code, kNone);
  ASSERT_EQ(sync(client, "g", 1, joined.member_id, {{joined.member_id, "everything"}}).error_code,
            kNone);
  // Enough commits to roll the partition's segment many times; the last one wins.
  for (int i = 0; i < 200; ++i) {
    auto r = commit(client, "g", 1, joined.member_id, "t",
                    {{i % 4, 1000 + i, "m-" + std::to_string(i)}});
    ASSERT_EQ(r.topics[0].partitions[0].error_code, kNone);
  }
  ASSERT_EQ(commit(client, "manual", -1, "", "t", {{0, 5, "x"}}).topics[0].partitions[0].error_code,
            kNone);
  auto offsets = broker_->replicas().get("__consumer_offsets", broker_->groups().partition_for("g"));
  ASSERT_NE(offsets, nullptr);
  EXPECT_GT(offsets->log().segment_count(), 5u);

  restart();
  TestClient again(port());
  auto fetched = fetch_offsets(again, "g", "t", {0, 1, 2, 3});
  ASSERT_EQ(fetched.error_code, kNone);
  for (int p = 0; p < 4; ++p) {
    const auto& part = fetched.topics[0].partitions[p];
    EXPECT_EQ(part.committed_offset, 1000 + 196 + p);
    EXPECT_EQ(part.metadata.value_or(""), "m-" + std::to_string(196 + p));
  }
  EXPECT_EQ(fetch_offsets(again, "manual", "t", {0}).topics[0].partitions[0].committed_offset, 5);
  // The group itself came back: same generation, member and assignment, so
  // the consumer carries on without a rebalance.
  auto d = describe(again, "g");
  EXPECT_EQ(d.group_state, "Stable");
  ASSERT_EQ(d.members.size(), 1u);
  EXPECT_EQ(d.members[0].member_id, joined.member_id);
  EXPECT_EQ(d.members[0].member_assignment.to_string(), "everything");
  EXPECT_EQ(heartbeat(again, "g", 1, joined.member_id), kNone);
  EXPECT_EQ(heartbeat(again, "g", 0, joined.member_id), 22);
  // Generations keep counting from where they were.
  auto rejoined = join(again, "g", joined.member_id, 5, {"range"}, 10000, std::nullopt, "changed");
  EXPECT_EQ(rejoined.generation_id, 2);

  // A second restart after more history still converges (later records win).
  ASSERT_EQ(commit(again, "g", 2, joined.member_id, "t", {{0, 1, "late"}}).topics[0].partitions[0]
                .error_code,
            27);  // CompletingRebalance until synced
  ASSERT_EQ(sync(again, "g", 2, joined.member_id, {{joined.member_id, "new"}}).error_code, kNone);
  ASSERT_EQ(commit(again, "g", 2, joined.member_id, "t", {{0, 1, "late"}}).topics[0].partitions[0]
                .error_code,
            kNone);
  restart();
  TestClient third(port());
  auto last = fetch_offsets(third, "g", "t", {0});
  EXPECT_EQ(last.topics[0].partitions[0].committed_offset, 1);
  EXPECT_EQ(last.topics[0].partitions[0].metadata.value_or(""), "late");
  EXPECT_EQ(describe(third, "g").members.at(0).member_assignment.to_string(), "new");
}

}  // namespace
}  // namespace holdfast::server
