// Cluster mode (follow_leadership): the coordinator serves a partition only
// while this broker leads it, loads it on becoming leader, unloads it on
// becoming follower, discards a load whose partition moved meanwhile, and
// answers a write only once the high watermark passes it (acks=all with
// min.insync.replicas). The replicas are real replication::Partition objects
// of node 1; the test plays follower 2 with record_follower_fetch and moves
// leadership by hand, as the lifecycle and the broker's listener would.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "coordinator/group_coordinator.h"
#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "replication/replica_manager.h"

namespace holdfast::coordinator {
namespace {

using replication::Partition;
using replication::Role;

constexpr int32_t kSelf = 1;
constexpr int32_t kFollower = 2;
constexpr int kPartitions = 2;

// A callback's answer, delivered from any thread; waited for with a bound.
template <typename T>
struct Answer {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<T> value;

  std::function<void(T)> callback(std::shared_ptr<Answer> self) {
    return [self](T v) {
      {
        std::lock_guard lock(self->mu);
        self->value = std::move(v);
      }
      self->cv.notify_all();
    };
  }
  bool done() {
    std::lock_guard lock(mu);
    return value.has_value();
  }
  T get() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [this] { return value.has_value(); });
    EXPECT_TRUE(value.has_value()) << "no answer within 10 s";
    return value.value_or(T{});
  }
};

class GroupLeadershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.path());
    ASSERT_TRUE(logs_->open([](const std::string&) { return storage::LogConfig{}; }).ok());
    replicas_ = std::make_unique<replication::ReplicaManager>(*logs_, kSelf,
                                                              [this] { return now_.load(); });
    // flush.policy=never: this replica's own durability is immediate, so
    // only the follower holds the high watermark back.
    storage::LogConfig config;
    config.flush_mode = storage::FlushMode::never;
    for (int p = 0; p < kPartitions; ++p) {
      auto made = replicas_->create(kOffsetsTopic, p, config);
      ASSERT_TRUE(made.ok());
      partitions_.push_back(*made);
      // As a broker starts in a cluster: a follower of no one.
      (*made)->become_follower(-1, 0, -1, {}, {});
    }
    logs_->start();
  }
  void TearDown() override {
    coordinator_.reset();
    ASSERT_TRUE(logs_->shutdown().ok());
    replicas_.reset();
  }
  void make_coordinator(std::function<void(int32_t)> after_replay = {}) {
    GroupCoordinatorOptions o;
    o.num_partitions = kPartitions;
    o.initial_rebalance_delay_ms = 100;
    o.min_session_timeout_ms = 10;
    o.start_timer_thread = false;
    o.clock = [this] { return now_.load(); };
    o.follow_leadership = true;
    o.min_insync_replicas = [this] { return min_insync_.load(); };
    o.after_replay_for_test = std::move(after_replay);
    coordinator_ = std::make_unique<GroupCoordinator>(*logs_, o);
    coordinator_->start();
  }
  int32_t partition_of(const std::string& group) { return coordinator_->partition_for(group); }
  std::shared_ptr<Partition> replica_of(const std::string& group) {
    return partitions_[partition_of(group)];
  }
  // This broker leads the group's partition in `epoch` with `isr`; the
  // coordinator is told as the broker's role-change listener tells it.
  void lead(const std::string& group, int32_t epoch, std::vector<int32_t> isr,
            bool wait_loaded = true) {
    auto replica = replica_of(group);
    replica->become_leader(epoch, epoch, {kSelf, kFollower}, std::move(isr));
    coordinator_->became_leader(replica);
    if (wait_loaded) await_serving(partition_of(group));
  }
  void follow(const std::string& group, int32_t epoch) {
    auto replica = replica_of(group);
    replica->become_follower(kFollower, epoch, epoch, {kSelf, kFollower}, {kSelf, kFollower});
    coordinator_->became_follower(replica);
  }
  void await_serving(int32_t partition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!coordinator_->serving(partition) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(coordinator_->serving(partition)) << "partition " << partition << " not loaded";
  }
  // The follower has fetched everything the leader has (so it is on its disk).
  void follower_catches_up(const std::string& group) {
    auto replica = replica_of(group);
    ASSERT_TRUE(replica->record_follower_fetch(kFollower, replica->log_end_offset(), now_.load()).ok());
  }
  std::shared_ptr<Answer<CommitResult>> commit(const std::string& group, int64_t offset) {
    auto answer = std::make_shared<Answer<CommitResult>>();
    OffsetCommitEntry entry;
    entry.tp = {"orders", 0};
    entry.offset = offset;
    coordinator_->commit({group, -1, "", std::nullopt, {entry}}, answer->callback(answer));
    return answer;
  }
  GroupErrc commit_error(const std::shared_ptr<Answer<CommitResult>>& answer) {
    auto result = answer->get();
    return result.errors.empty() ? GroupErrc::storage_error : result.errors[0];
  }
  OffsetFetchResult fetch(const std::string& group, bool require_stable = false) {
    return coordinator_->fetch_offsets(group, std::vector<TopicPartitionKey>{{"orders", 0}},
                                       require_stable);
  }
  int64_t committed(const std::string& group) {
    auto r = fetch(group);
    EXPECT_EQ(r.error, GroupErrc::none);
    return r.offsets.empty() ? -2 : r.offsets[0].offset;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  std::atomic<int64_t> now_{10'000};
  std::atomic<int32_t> min_insync_{1};
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<replication::ReplicaManager> replicas_;
  std::vector<std::shared_ptr<Partition>> partitions_;
  std::unique_ptr<GroupCoordinator> coordinator_;
};

TEST_F(GroupLeadershipTest, APartitionNotLedHereAnswersNotCoordinator) {
  make_coordinator();
  EXPECT_EQ(fetch("g").error, GroupErrc::not_coordinator);
  EXPECT_EQ(coordinator_->heartbeat("g", "m", std::nullopt, 1), GroupErrc::not_coordinator);
  EXPECT_EQ(commit_error(commit("g", 5)), GroupErrc::not_coordinator);
  EXPECT_EQ(coordinator_->describe("g").error, GroupErrc::not_coordinator);
  // Nothing was written to a partition this broker does not lead.
  EXPECT_EQ(replica_of("g")->log_end_offset(), 0);
  // The coordinator does not load a replica that does not lead.
  coordinator_->became_leader(replica_of("g"));
  EXPECT_FALSE(coordinator_->serving(partition_of("g")));
}

TEST_F(GroupLeadershipTest, BecomingLeaderLoadsThePartitionAndBecomingFollowerUnloadsIt) {
  make_coordinator();
  lead("g", 1, {kSelf, kFollower});
  auto first = commit("g", 7);
  follower_catches_up("g");
  ASSERT_EQ(commit_error(first), GroupErrc::none);
  EXPECT_EQ(committed("g"), 7);

  follow("g", 2);
  EXPECT_FALSE(coordinator_->serving(partition_of("g")));
  EXPECT_EQ(fetch("g").error, GroupErrc::not_coordinator);

  // Leading again (a later epoch): the groups come back from the log.
  lead("g", 3, {kSelf, kFollower});
  EXPECT_EQ(committed("g"), 7);
}

TEST_F(GroupLeadershipTest, UnloadingAnswersAWaitingJoinWithNotCoordinator) {
  make_coordinator();
  lead("g", 1, {kSelf});
  auto join = std::make_shared<Answer<JoinResult>>();
  JoinParams p;
  p.group_id = "g";
  p.client_id = "c";
  p.session_timeout_ms = 1000;
  p.rebalance_timeout_ms = 5000;
  p.protocol_type = "consumer";
  p.protocols.push_back({"range", Bytes::copy_of(std::string_view("x"))});
  coordinator_->join(std::move(p), join->callback(join));  // waits for the initial delay
  ASSERT_FALSE(join->done());
  follow("g", 2);
  EXPECT_EQ(join->get().error, GroupErrc::not_coordinator);
}

TEST_F(GroupLeadershipTest, ACommitIsAnsweredOnlyOnceTheHighWatermarkPassesIt) {
  min_insync_ = 2;
  make_coordinator();
  lead("g", 1, {kSelf, kFollower});
  auto answer = commit("g", 11);
  // Appended and applied, but the follower does not have it yet.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (replica_of("g")->waiting_for_followers() == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(replica_of("g")->waiting_for_followers(), 1u);
  EXPECT_FALSE(answer->done());
  auto unstable = fetch("g", /*require_stable=*/true);
  ASSERT_EQ(unstable.offsets.size(), 1u);
  EXPECT_EQ(unstable.offsets[0].error, GroupErrc::unstable_offset_commit);

  follower_catches_up("g");
  EXPECT_EQ(commit_error(answer), GroupErrc::none);
  auto stable = fetch("g", /*require_stable=*/true);
  ASSERT_EQ(stable.offsets.size(), 1u);
  EXPECT_EQ(stable.offsets[0].error, GroupErrc::none);
  EXPECT_EQ(stable.offsets[0].offset, 11);
}

TEST_F(GroupLeadershipTest, ACommitWaitingForFollowersFailsWithNotCoordinatorWhenLeadershipMoves) {
  make_coordinator();
  lead("g", 1, {kSelf, kFollower});
  auto answer = commit("g", 11);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (replica_of("g")->waiting_for_followers() == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_FALSE(answer->done());
  follow("g", 2);
  EXPECT_EQ(commit_error(answer), GroupErrc::not_coordinator);
}

TEST_F(GroupLeadershipTest, TooFewInSyncReplicasRefusesTheCommitWithoutAppending) {
  min_insync_ = 2;
  make_coordinator();
  lead("g", 1, {kSelf});  // the follower is out of the ISR
  EXPECT_EQ(commit_error(commit("g", 3)), GroupErrc::coordinator_not_available);
  EXPECT_EQ(replica_of("g")->log_end_offset(), 0);
  EXPECT_EQ(committed("g"), -1);
}

TEST_F(GroupLeadershipTest, ALoadWhosePartitionWasUnloadedMeanwhileIsDiscarded) {
  // Group "g" committed 7 while led here in epoch 1.
  std::atomic<bool> move_now{false};
  std::atomic<int32_t> moved_partition{-1};
  make_coordinator([&](int32_t partition) {
    if (partition != moved_partition.load() || !move_now.exchange(false)) return;
    // The read is done; before it is installed the partition moves away.
    follow("g", 3);
  });
  lead("g", 1, {kSelf});
  ASSERT_EQ(commit_error(commit("g", 7)), GroupErrc::none);
  follow("g", 2);

  moved_partition = partition_of("g");
  move_now = true;
  lead("g", 2, {kSelf}, /*wait_loaded=*/false);
  // The loader runs loads in order: once the other partition is loaded, the
  // stale one was handled.
  const std::string other = partition_of("a") != partition_of("g") ? "a" : "b";
  ASSERT_NE(partition_of(other), partition_of("g"));
  lead(other, 1, {kSelf});
  EXPECT_FALSE(move_now.load()) << "the hook did not run";
  EXPECT_FALSE(coordinator_->serving(partition_of("g")));
  EXPECT_EQ(fetch("g").error, GroupErrc::not_coordinator);
}

TEST_F(GroupLeadershipTest, ALoadForAnEpochTheReplicaNoLongerLeadsIsDiscarded) {
  std::atomic<bool> move_now{false};
  std::atomic<int32_t> moved_partition{-1};
  make_coordinator([&](int32_t partition) {
    if (partition != moved_partition.load() || !move_now.exchange(false)) return;
    // A new leadership (epoch 5) of the replica, not yet told to the
    // coordinator: the load made for epoch 4 must not be served.
    replica_of("g")->become_leader(5, 5, {kSelf, kFollower}, {kSelf});
  });
  moved_partition = partition_of("g");
  move_now = true;
  lead("g", 4, {kSelf}, /*wait_loaded=*/false);
  const std::string other = partition_of("a") != partition_of("g") ? "a" : "b";
  lead(other, 1, {kSelf});
  EXPECT_FALSE(move_now.load()) << "the hook did not run";
  EXPECT_FALSE(coordinator_->serving(partition_of("g")));
  EXPECT_EQ(fetch("g").error, GroupErrc::coordinator_load_in_progress);
  // The listener then tells the coordinator about epoch 5: loaded for it.
  coordinator_->became_leader(replica_of("g"));
  await_serving(partition_of("g"));
  EXPECT_EQ(committed("g"), -1);
}

}  // namespace
}  // namespace holdfast::coordinator
