// Standby (non-voting) members of the Raft metadata quorum: three voters and
// one broker-only member in one process on 127.0.0.1. The glue under test is
// RaftMetadataLog::add_standby (raft_add, then raft_assign(RAFT_STANDBY)) and
// starting a member that is not in controller.quorum.voters (no bootstrap):
// the standby applies every record, a second add changes nothing, an id or
// address clash is refused naming the settings, a voter is never demoted,
// and the standby never counts toward the quorum.
#include <gtest/gtest.h>

#include <array>
#include <future>
#include <thread>

#include "io/tests/temp_dir.h"
#include "metadata/metadata_store.h"
#include "metadata/raft_metadata_log.h"
#include "metadata/tests/metadata_test_util.h"

namespace holdfast::metadata {
namespace {

using namespace testing;  // NOLINT: the helpers in metadata_test_util.h

constexpr int kVoters = 3;
constexpr int kStandby = kVoters;  // index of the broker-only member (node 4)
constexpr int kMembers = kVoters + 1;

Result<void, Errc> add_and_wait(RaftMetadataLog& leader, int32_t id, const std::string& address) {
  auto promise = std::make_shared<std::promise<Result<void, Errc>>>();
  auto future = promise->get_future();
  leader.add_standby(id, address,
                     [promise](Result<void, Errc> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(kWait) != std::future_status::ready) {
    return make_error(Errc::shut_down, "test: add_standby did not complete in time");
  }
  return future.get();
}

std::optional<RaftMember> member(const RaftStatus& status, int32_t id) {
  for (const auto& m : status.members) {
    if (m.id == id) return m;
  }
  return std::nullopt;
}

class RaftStandbyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ports = free_ports(kMembers + 1);
    for (int i = 0; i < kMembers; ++i) addresses_[i] = "127.0.0.1:" + std::to_string(ports[i]);
    spare_address_ = "127.0.0.1:" + std::to_string(ports[kMembers]);
    for (int i = 0; i < kVoters; ++i) voters_.push_back(QuorumVoter{i + 1, addresses_[i]});
  }

  void start(int index) {
    RaftOptions options;
    options.node_id = index + 1;
    options.data_dir = dirs_[index].path();
    options.voters = voters_;
    if (index == kStandby) options.address = addresses_[index];
    options.election_timeout_ms = 300;
    options.heartbeat_timeout_ms = 50;
    options.install_snapshot_timeout_ms = 1000;
    options.segment_size = 1 << 20;
    auto log = RaftMetadataLog::open(options);
    ASSERT_TRUE(log) << log.error().message;
    members_[index] = std::move(*log);
  }

  // The voter that leads with every running voter agreeing, or -1.
  int wait_for_leader(std::chrono::milliseconds timeout = kWait) {
    int leader = -1;
    wait_until(
        [&] {
          leader = -1;
          int agreed = -1;
          for (int i = 0; i < kVoters; ++i) {
            if (!members_[i]) continue;
            RaftStatus s = members_[i]->status();
            if (s.leader_id < 0 || (agreed >= 0 && s.leader_id != agreed)) return false;
            agreed = s.leader_id;
            if (s.role == RaftRole::leader) leader = i;
          }
          return leader >= 0 && leader + 1 == agreed;
        },
        timeout);
    return leader;
  }

  Result<ImagePtr, Errc> append_on_leader(const MetadataRecord& record) {
    return testing::append_on_leader(members_, [this] { return wait_for_leader(); }, record);
  }

  bool all_running_hold(const std::string& image) { return testing::all_running_hold(members_, image); }

  // Three voters elected, broker 1 registered, node 4 started and added.
  void start_with_standby() {
    for (int i = 0; i < kVoters; ++i) ASSERT_NO_FATAL_FAILURE(start(i));
    const int leader = wait_for_leader();
    ASSERT_GE(leader, 0);
    for (const MetadataRecord& record : live_broker(1)) ASSERT_TRUE(append_on_leader(record));
    ASSERT_NO_FATAL_FAILURE(start(kStandby));
    auto added = add_and_wait(*members_[leader], kStandby + 1, addresses_[kStandby]);
    ASSERT_TRUE(added) << added.error().message;
  }

  std::array<io::testing::TempDir, kMembers> dirs_;
  std::array<std::string, kMembers> addresses_;
  std::string spare_address_;
  std::vector<QuorumVoter> voters_;
  std::array<std::unique_ptr<RaftMetadataLog>, kMembers> members_;
};

MetadataRecord topic(int n) {
  return TopicCreated{"topic-" + std::to_string(n), random_id(), 1, {}, on_node(1, 1)};
}

TEST_F(RaftStandbyTest, StandbyStartsWithoutAConfigurationAndAppliesEveryRecordOnceAdded) {
  ASSERT_NO_FATAL_FAILURE(start_with_standby());
  for (int n = 0; n < 5; ++n) ASSERT_TRUE(append_on_leader(topic(n)));
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  EXPECT_TRUE(all_running_hold(encode_image(*members_[leader]->current())))
      << "the standby did not reach the leader's image";
  EXPECT_EQ(members_[kStandby]->current()->topics.size(), 5u);

  RaftStatus leader_status = members_[leader]->status();
  auto standby = member(leader_status, kStandby + 1);
  ASSERT_TRUE(standby);
  EXPECT_EQ(standby->role, MemberRole::standby);
  EXPECT_EQ(standby->address, addresses_[kStandby]);
  ASSERT_TRUE(wait_until([&] {
    auto s = members_[kStandby]->status();
    return !s.voter && s.leader_id == leader + 1 && s.role == RaftRole::follower &&
           member(s, kStandby + 1).has_value();
  }));
}

TEST_F(RaftStandbyTest, AddingAMemberAgainChangesNothingAndAVoterIsNeverDemoted) {
  ASSERT_NO_FATAL_FAILURE(start_with_standby());
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  const auto before = members_[leader]->status().members.size();
  auto again = add_and_wait(*members_[leader], kStandby + 1, addresses_[kStandby]);
  EXPECT_TRUE(again) << again.error().message;
  const int other_voter = (leader + 1) % kVoters;
  auto voter = add_and_wait(*members_[leader], other_voter + 1, addresses_[other_voter]);
  EXPECT_TRUE(voter) << voter.error().message;
  RaftStatus s = members_[leader]->status();
  EXPECT_EQ(s.members.size(), before);
  ASSERT_TRUE(member(s, other_voter + 1));
  EXPECT_EQ(member(s, other_voter + 1)->role, MemberRole::voter);
  EXPECT_EQ(member(s, kStandby + 1)->role, MemberRole::standby);
}

TEST_F(RaftStandbyTest, AnIdOrAddressAlreadyInUseIsRefusedNamingTheSetting) {
  ASSERT_NO_FATAL_FAILURE(start_with_standby());
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  auto moved = add_and_wait(*members_[leader], kStandby + 1, spare_address_);
  ASSERT_FALSE(moved);
  EXPECT_EQ(moved.code(), Errc::invalid_config);
  EXPECT_NE(moved.error().message.find("node.id 4"), std::string::npos) << moved.error().message;
  EXPECT_NE(moved.error().message.find("CONTROLLER"), std::string::npos) << moved.error().message;
  auto stolen = add_and_wait(*members_[leader], 9, addresses_[kStandby]);
  ASSERT_FALSE(stolen);
  EXPECT_EQ(stolen.code(), Errc::invalid_config);
  EXPECT_NE(stolen.error().message.find("listeners"), std::string::npos) << stolen.error().message;
  EXPECT_FALSE(member(members_[leader]->status(), 9));
}

TEST_F(RaftStandbyTest, OnlyTheLeaderAddsMembers) {
  for (int i = 0; i < kVoters; ++i) ASSERT_NO_FATAL_FAILURE(start(i));
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  auto refused = add_and_wait(*members_[(leader + 1) % kVoters], 4, addresses_[kStandby]);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Errc::not_leader);
}

TEST_F(RaftStandbyTest, RestartedStandbyRejoinsFromItsOwnLogAndCatchesUp) {
  ASSERT_NO_FATAL_FAILURE(start_with_standby());
  ASSERT_TRUE(append_on_leader(topic(0)));
  members_[kStandby].reset();
  for (int n = 1; n < 4; ++n) ASSERT_TRUE(append_on_leader(topic(n)));
  ASSERT_NO_FATAL_FAILURE(start(kStandby));  // nobody adds it again
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  EXPECT_TRUE(all_running_hold(encode_image(*members_[leader]->current())))
      << "the restarted standby did not catch up";
  EXPECT_EQ(members_[kStandby]->current()->topics.size(), 4u);
}

TEST_F(RaftStandbyTest, AStandbyNeverCountsTowardTheQuorum) {
  ASSERT_NO_FATAL_FAILURE(start_with_standby());
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  // Stop two voters: one voter and the standby are left, which is no
  // majority of the three voters, so nothing commits and no leader stays.
  const int survivor = (leader + 1) % kVoters;
  for (int i = 0; i < kVoters; ++i) {
    if (i != survivor) members_[i].reset();
  }
  // The survivor notices the leader is gone and campaigns ...
  ASSERT_TRUE(wait_until([&] { return members_[survivor]->status().role == RaftRole::candidate; }));
  // ... but over many election timeouts (300..600 ms) neither it nor the
  // standby wins: the standby's vote does not count (a bounded window for a
  // property that can only be shown by its absence).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_NE(members_[survivor]->status().role, RaftRole::leader);
    ASSERT_NE(members_[kStandby]->status().role, RaftRole::leader);
    ASSERT_NE(members_[kStandby]->status().role, RaftRole::candidate);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto refused = append_and_wait(*members_[survivor], topic(0), std::chrono::seconds(3));
  EXPECT_FALSE(refused);
  // And the standby does not keep reporting the dead leader as the leader.
  EXPECT_TRUE(wait_until([&] { return members_[kStandby]->status().leader_id == -1; }));
  EXPECT_EQ(members_[kStandby]->current()->topics.size(), 0u);
}

}  // namespace
}  // namespace holdfast::metadata
