// The group state machine driven by an injected clock and tick(): initial
// delay, rebalance and session timeouts, offset expiry, load-in-progress, and
// replay of __consumer_offsets (later records win, tombstones delete).
#include "coordinator/group_coordinator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <optional>

#include "io/posix_file_system.h"

namespace holdfast::coordinator {
namespace {

constexpr int kPartitions = 2;

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-coord-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    open_logs();
    for (int p = 0; p < kPartitions; ++p) ASSERT_TRUE(logs_->create(kOffsetsTopic, p, {}));
    make_coordinator();
  }
  void TearDown() override {
    coordinator_.reset();
    if (logs_) (void)logs_->shutdown();
    logs_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open_logs() {
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.string());
    ASSERT_TRUE(logs_->open([](const std::string&) { return storage::LogConfig{}; }));
    logs_->start();
  }
  void make_coordinator(bool start = true) {
    GroupCoordinatorOptions o;
    o.num_partitions = kPartitions;
    o.initial_rebalance_delay_ms = 100;
    o.min_session_timeout_ms = 10;
    o.offsets_retention_ms = 60000;
    o.offsets_retention_check_interval_ms = 1LL << 40;
    o.start_timer_thread = false;
    o.clock = [this] { return clock_.load(); };
    o.wall_clock = [this] { return wall_.load(); };
    coordinator_ = std::make_unique<GroupCoordinator>(*logs_, o);
    if (start) {
      coordinator_->start();
      ASSERT_TRUE(coordinator_->wait_until_loaded(5000));
    }
  }
  // Restarts the coordinator (and the logs, as after a clean broker restart).
  void restart() {
    coordinator_.reset();
    ASSERT_TRUE(logs_->shutdown());
    logs_.reset();
    open_logs();
    make_coordinator();
  }
  void advance(int64_t ms) {
    clock_ += ms;
    wall_ += ms;
    coordinator_->tick();
  }

  struct PendingJoin {
    std::shared_ptr<std::optional<JoinResult>> result = std::make_shared<std::optional<JoinResult>>();
    bool done() const { return result->has_value(); }
    const JoinResult& get() const { return **result; }
  };
  PendingJoin join(const std::string& group, const std::string& member,
                   std::vector<std::string> protocols = {"range"}, int32_t session = 1000,
                   int32_t rebalance = 5000) {
    JoinParams p;
    p.group_id = group;
    p.member_id = member;
    p.client_id = "c";
    p.client_host = "/h";
    p.session_timeout_ms = session;
    p.rebalance_timeout_ms = rebalance;
    p.protocol_type = "consumer";
    for (auto& name : protocols) p.protocols.push_back({name, Bytes::copy_of(std::string_view(name))});
    PendingJoin pending;
    auto slot = pending.result;
    coordinator_->join(std::move(p), [slot](JoinResult r) { *slot = std::move(r); });
    return pending;
  }
  SyncResult sync_now(const std::string& group, int32_t generation, const std::string& member,
                      std::vector<std::pair<std::string, Bytes>> assignments = {}) {
    std::promise<SyncResult> promise;
    auto future = promise.get_future();
    coordinator_->sync({group, generation, member, std::nullopt, std::move(assignments)},
                       [&promise](SyncResult r) { promise.set_value(std::move(r)); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    return future.get();
  }
  std::vector<GroupErrc> commit_now(const std::string& group, int32_t generation,
                                    const std::string& member,
                                    std::vector<OffsetCommitEntry> offsets) {
    std::promise<CommitResult> promise;
    auto future = promise.get_future();
    coordinator_->commit({group, generation, member, std::nullopt, std::move(offsets)},
                         [&promise](CommitResult r) { promise.set_value(std::move(r)); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    return future.get().errors;
  }
  int64_t committed(const std::string& group, const std::string& topic, int32_t partition) {
    auto r = coordinator_->fetch_offsets(group, std::vector<TopicPartitionKey>{{topic, partition}},
                                         false);
    return r.offsets.at(0).offset;
  }

  std::filesystem::path dir_;
  io::PosixFileSystem fs_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<GroupCoordinator> coordinator_;
  std::atomic<int64_t> clock_{1000};
  std::atomic<int64_t> wall_{1700000000000};
};

TEST_F(GroupCoordinatorTest, AnswersLoadInProgressUntilReplayed) {
  coordinator_.reset();
  make_coordinator(/*start=*/false);
  EXPECT_EQ(coordinator_->heartbeat("g", "m", std::nullopt, 1),
            GroupErrc::coordinator_load_in_progress);
  auto j = join("g", "");
  ASSERT_TRUE(j.done());
  EXPECT_EQ(j.get().error, GroupErrc::coordinator_load_in_progress);
  coordinator_->start();
  ASSERT_TRUE(coordinator_->wait_until_loaded(5000));
  EXPECT_EQ(coordinator_->heartbeat("g", "m", std::nullopt, 1), GroupErrc::unknown_member_id);
}

TEST_F(GroupCoordinatorTest, InitialDelayIsExtendedByNewMembersThenEveryoneGetsTheGeneration) {
  auto a = join("g", "");
  advance(60);
  EXPECT_FALSE(a.done());
  auto b = join("g", "");  // extends the delay to now + 100
  advance(60);
  EXPECT_FALSE(a.done());
  EXPECT_FALSE(b.done());
  advance(50);
  ASSERT_TRUE(a.done());
  ASSERT_TRUE(b.done());
  EXPECT_EQ(a.get().error, GroupErrc::none);
  EXPECT_EQ(a.get().generation, 1);
  EXPECT_EQ(b.get().generation, 1);
  EXPECT_EQ(a.get().leader, a.get().member_id);
  EXPECT_EQ(a.get().members.size(), 2u);
  EXPECT_TRUE(b.get().members.empty());
}

TEST_F(GroupCoordinatorTest, MembersThatDoNotRejoinWithinTheRebalanceTimeoutAreDropped) {
  auto a = join("g", "");
  auto b = join("g", "");
  advance(150);
  ASSERT_TRUE(a.done() && b.done());
  std::string ma = a.get().member_id, mb = b.get().member_id;
  // Sync in any order: the follower's sync completes when the leader's is stored.
  std::promise<SyncResult> follower;
  coordinator_->sync({"g", 1, mb, std::nullopt, {}},
                     [&](SyncResult r) { follower.set_value(std::move(r)); });
  auto leader = sync_now("g", 1, ma, {{ma, Bytes::copy_of(std::string_view("A"))},
                                      {mb, Bytes::copy_of(std::string_view("B"))}});
  EXPECT_EQ(leader.assignment.to_string(), "A");
  EXPECT_EQ(follower.get_future().get().assignment.to_string(), "B");

  // B changes its subscription: a rebalance. A keeps heartbeating but never rejoins.
  auto b2 = join("g", mb, {"range", "roundrobin"});
  EXPECT_FALSE(b2.done());
  EXPECT_EQ(coordinator_->heartbeat("g", ma, std::nullopt, 1), GroupErrc::rebalance_in_progress);
  for (int i = 0; i < 9; ++i) {
    advance(500);  // A stays alive (session 1 s) but does not rejoin
    EXPECT_EQ(coordinator_->heartbeat("g", ma, std::nullopt, 1), GroupErrc::rebalance_in_progress);
  }
  EXPECT_FALSE(b2.done());
  advance(501);  // the 5 s rebalance timeout passed
  ASSERT_TRUE(b2.done());
  EXPECT_EQ(b2.get().generation, 2);
  EXPECT_EQ(b2.get().leader, mb);  // the old leader is gone
  EXPECT_EQ(b2.get().members.size(), 1u);
  EXPECT_EQ(coordinator_->heartbeat("g", ma, std::nullopt, 1), GroupErrc::unknown_member_id);
}

TEST_F(GroupCoordinatorTest, SessionExpiryRemovesTheMemberAndTheGroupBecomesEmpty) {
  auto a = join("g", "", {"range"}, 500);
  advance(150);
  ASSERT_TRUE(a.done());
  std::string ma = a.get().member_id;
  ASSERT_EQ(sync_now("g", 1, ma).error, GroupErrc::none);
  advance(400);
  EXPECT_EQ(coordinator_->heartbeat("g", ma, std::nullopt, 1), GroupErrc::none);
  advance(400);  // heartbeat 400 ms ago: still alive
  EXPECT_EQ(coordinator_->describe("g").state, "Stable");
  advance(200);
  EXPECT_EQ(coordinator_->describe("g").state, "Empty");
  EXPECT_EQ(coordinator_->heartbeat("g", ma, std::nullopt, 1), GroupErrc::unknown_member_id);
}

TEST_F(GroupCoordinatorTest, OffsetsExpireOnlyWhileTheGroupIsEmpty) {
  auto a = join("g", "", {"range"}, 100000);
  advance(150);
  std::string ma = a.get().member_id;
  ASSERT_EQ(sync_now("g", 1, ma).error, GroupErrc::none);
  ASSERT_EQ(commit_now("g", 1, ma, {{{"t", 0}, 10}})[0], GroupErrc::none);
  ASSERT_EQ(commit_now("simple", -1, "", {{{"t", 0}, 20}})[0], GroupErrc::none);
  wall_ += 120000;  // past retention, but "g" has a member
  EXPECT_EQ(coordinator_->expire_offsets_now(), 1);  // only the simple group's offset
  EXPECT_EQ(committed("g", "t", 0), 10);
  EXPECT_EQ(committed("simple", "t", 0), -1);
  EXPECT_EQ(coordinator_->describe("simple").state, "Dead");  // removed with its last offset

  std::promise<LeaveResult> left;
  coordinator_->leave("g", {{ma, std::nullopt}}, [&](LeaveResult r) { left.set_value(r); });
  ASSERT_EQ(left.get_future().get().members.at(0), GroupErrc::none);
  EXPECT_EQ(coordinator_->describe("g").state, "Empty");
  wall_ += 30000;
  EXPECT_EQ(coordinator_->expire_offsets_now(), 0);  // empty for 30 s only
  wall_ += 30001;
  EXPECT_EQ(coordinator_->expire_offsets_now(), 1);
  EXPECT_EQ(committed("g", "t", 0), -1);

  restart();  // the tombstones are in the log
  EXPECT_EQ(committed("g", "t", 0), -1);
  EXPECT_EQ(committed("simple", "t", 0), -1);
}

TEST_F(GroupCoordinatorTest, ReplayGivesTheLastValuePerKeyAndHonoursTombstones) {
  ASSERT_EQ(commit_now("g", -1, "", {{{"t", 0}, 1}, {{"t", 1}, 2}, {{"u", 0}, 3}})[0],
            GroupErrc::none);
  ASSERT_EQ(commit_now("g", -1, "", {{{"t", 0}, 11, -1, std::string("m")}})[0], GroupErrc::none);
  coordinator_->remove_offsets_of_topic("u");
  ASSERT_EQ(commit_now("h", -1, "", {{{"t", 0}, 5}})[0], GroupErrc::none);
  std::promise<std::vector<GroupErrc>> deleted;
  coordinator_->delete_groups({"h"}, [&](std::vector<GroupErrc> e) { deleted.set_value(e); });
  ASSERT_EQ(deleted.get_future().get().at(0), GroupErrc::none);
  ASSERT_EQ(commit_now("h", -1, "", {{{"t", 1}, 6}})[0], GroupErrc::none);  // recreated

  restart();
  EXPECT_EQ(committed("g", "t", 0), 11);
  EXPECT_EQ(*coordinator_->fetch_offsets("g", std::nullopt, false).offsets.at(0).metadata, "m");
  EXPECT_EQ(committed("g", "t", 1), 2);
  EXPECT_EQ(committed("g", "u", 0), -1);
  EXPECT_EQ(committed("h", "t", 0), -1);
  EXPECT_EQ(committed("h", "t", 1), 6);
}

TEST_F(GroupCoordinatorTest, StaticMemberThatRestartsKeepsItsAssignmentAcrossCoordinatorRestart) {
  JoinParams p;
  p.group_id = "s";
  p.group_instance_id = "i-1";
  p.client_id = "c";
  p.session_timeout_ms = 10000;
  p.rebalance_timeout_ms = 10000;
  p.protocol_type = "consumer";
  p.protocols.push_back({"range", Bytes::copy_of(std::string_view("x"))});
  std::optional<JoinResult> first;
  coordinator_->join(p, [&](JoinResult r) { first = r; });
  advance(150);
  ASSERT_TRUE(first && first->error == GroupErrc::none);
  ASSERT_EQ(sync_now("s", 1, first->member_id,
                     {{first->member_id, Bytes::copy_of(std::string_view("mine"))}})
                .error,
            GroupErrc::none);
  restart();
  // Answered once the record fencing the old member id is durable.
  std::promise<JoinResult> rejoined;
  coordinator_->join(p, [&](JoinResult r) { rejoined.set_value(std::move(r)); });
  auto rejoined_future = rejoined.get_future();
  ASSERT_EQ(rejoined_future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  std::optional<JoinResult> second = rejoined_future.get();
  EXPECT_EQ(second->error, GroupErrc::none);
  EXPECT_EQ(second->generation, 1);
  EXPECT_EQ(sync_now("s", 1, second->member_id).assignment.to_string(), "mine");
  EXPECT_EQ(coordinator_->heartbeat("s", first->member_id, std::string("i-1"), 1),
            GroupErrc::fenced_instance_id);
}

}  // namespace
}  // namespace holdfast::coordinator
