// replication::Partition with followers (the cluster contract's decisions 2,
// 4 and 5): the high watermark over the ISR, acks=all waiters and
// min.insync.replicas, ISR shrink and expand proposals with the maximal-ISR
// rule, role changes, and the follower's high watermark. The leader is node 1;
// the test plays followers 2 and 3 by calling record_follower_fetch, on a
// clock it moves by hand.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>
#include <mutex>
#include <optional>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "replication/partition.h"
#include "replication/replica_manager.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::replication {
namespace {

using storage::testing::header_of;
using storage::testing::make_batch;

constexpr int32_t kSelf = 1;

// What a wait_for_high_watermark callback reported, once it ran (on the
// flusher thread or the calling one). Shared: the callback may outlive a
// failed test.
struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<void, Errc>> result;

  static Partition::HighWatermarkCallback callback(const std::shared_ptr<Outcome>& outcome) {
    return [outcome](Result<void, Errc> r) {
      {
        std::lock_guard lock(outcome->mu);
        outcome->result = std::move(r);
      }
      outcome->cv.notify_all();
    };
  }
  bool done() {
    std::lock_guard lock(mu);
    return result.has_value();
  }
  // Waits (bounded) for the answer: true if it is ok.
  bool ok() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [this] { return result.has_value(); });
    return result.has_value() && result->ok();
  }
  // Waits (bounded) for the answer: its error, if any.
  std::optional<Errc> error() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [this] { return result.has_value(); });
    if (!result || result->ok()) return std::nullopt;
    return result->code();
  }
};

class PartitionReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.path());
    ASSERT_TRUE(logs_->open([](const std::string&) { return storage::LogConfig{}; }).ok());
    replicas_ = std::make_unique<ReplicaManager>(*logs_, kSelf, [this] { return now_.load(); });
    replicas_->set_isr_change_sink([this](IsrProposal proposal) {
      std::lock_guard lock(proposals_mu_);
      proposals_.push_back(std::move(proposal));
    });
    // flush.policy=never: the log's own acknowledgeable offset is its end, so
    // the followers alone hold the high watermark back.
    storage::LogConfig config;
    config.flush_mode = storage::FlushMode::never;
    auto made = replicas_->create("t", 0, config);
    ASSERT_TRUE(made.ok());
    partition_ = *made;
    partition_->set_replica_lag_time_max_ms(1000);
    logs_->start();
  }
  void TearDown() override {
    ASSERT_TRUE(logs_->shutdown().ok());
    replicas_.reset();
  }

  // Appends `count` records; returns the end offset.
  int64_t append(int count) {
    auto batch = make_batch("v", count, 1000);
    auto appended = partition_->append(batch.span(), header_of(batch));
    EXPECT_TRUE(appended.ok()) << (appended.ok() ? "" : appended.error().message);
    return appended.ok() ? appended->last_offset + 1 : -1;
  }
  void fetch(int32_t follower, int64_t offset) {
    auto recorded = partition_->record_follower_fetch(follower, offset, now_.load());
    ASSERT_TRUE(recorded.ok()) << recorded.error().message;
  }
  // Waits (bounded) until `n` acks=all waiters wait for followers: past
  // that point "not answered yet" means the followers hold it back.
  void await_waiting(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (partition_->waiting_for_followers() != n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_EQ(partition_->waiting_for_followers(), n);
  }
  std::vector<IsrProposal> proposals() {
    std::lock_guard lock(proposals_mu_);
    return proposals_;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  std::atomic<int64_t> now_{10'000};
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<ReplicaManager> replicas_;
  std::shared_ptr<Partition> partition_;
  std::mutex proposals_mu_;
  std::vector<IsrProposal> proposals_;
};

TEST_F(PartitionReplicationTest, AloneItIsTheLeaderOfItsOwnIsrAndTheHighWatermarkIsTheLogs) {
  EXPECT_EQ(partition_->role(), Role::leader);
  EXPECT_EQ(partition_->leader_id(), kSelf);
  EXPECT_EQ(partition_->replicas(), std::vector<int32_t>{kSelf});
  EXPECT_EQ(partition_->isr(), std::vector<int32_t>{kSelf});
  EXPECT_EQ(append(3), 3);
  EXPECT_EQ(partition_->high_watermark(), 3);
  auto acked = std::make_shared<Outcome>();
  partition_->wait_for_high_watermark(3, Outcome::callback(acked), /*min_insync=*/1);
  EXPECT_TRUE(acked->ok());
}

TEST_F(PartitionReplicationTest, TheHighWatermarkIsTheMinimumFetchOffsetOverTheIsrAndNeverGoesBack) {
  partition_->become_leader(1, 0, {1, 2, 3}, {1, 2, 3});
  EXPECT_EQ(partition_->leader_epoch(), 1);
  EXPECT_EQ(append(3), 3);
  EXPECT_EQ(partition_->high_watermark(), 0);  // followers have nothing yet
  fetch(2, 3);
  EXPECT_EQ(partition_->high_watermark(), 0);  // 3 has not fetched
  fetch(3, 2);
  EXPECT_EQ(partition_->high_watermark(), 2);
  fetch(3, 3);
  EXPECT_EQ(partition_->high_watermark(), 3);
  auto progress = partition_->follower_progress(3);
  ASSERT_TRUE(progress.has_value());
  EXPECT_EQ(progress->fetch_offset, 3);
  // A consumer reads up to the high watermark, a follower up to the log end.
  EXPECT_EQ(append(2), 5);
  EXPECT_EQ(partition_->high_watermark(), 3);
  auto consumer = partition_->read(3, 1 << 20, true);
  ASSERT_TRUE(consumer.ok());
  EXPECT_TRUE(consumer->records.empty());
  auto follower = partition_->read_for_follower(3, 1 << 20, true);
  ASSERT_TRUE(follower.ok());
  EXPECT_FALSE(follower->records.empty());
  EXPECT_EQ(follower->high_watermark, 3);
  // Never backwards, whatever a follower reports.
  fetch(2, 1);
  EXPECT_EQ(partition_->high_watermark(), 3);
}

TEST_F(PartitionReplicationTest, AnAcksAllWaiterIsAnsweredOnceEveryIsrFollowerFetchedPastItsBatch) {
  partition_->become_leader(1, 0, {1, 2, 3}, {1, 2, 3});
  const int64_t end = append(2);
  auto acked = std::make_shared<Outcome>();
  partition_->wait_for_high_watermark(end, Outcome::callback(acked), /*min_insync=*/2);
  await_waiting(1);
  EXPECT_FALSE(acked->done());
  fetch(2, end);
  EXPECT_FALSE(acked->done());
  fetch(3, end - 1);
  EXPECT_FALSE(acked->done());
  fetch(3, end);
  EXPECT_TRUE(acked->ok());
}

TEST_F(PartitionReplicationTest, MinInsyncIsCheckedAgainstTheCommittedIsrBeforeAppending) {
  partition_->become_leader(1, 0, {1, 2, 3}, {1});
  EXPECT_TRUE(partition_->check_min_isr(1).ok());
  EXPECT_TRUE(partition_->check_min_isr(0).ok());
  EXPECT_EQ(partition_->check_min_isr(2).code(), Errc::not_enough_replicas);
  partition_->apply_isr({1, 2}, 1);
  EXPECT_TRUE(partition_->check_min_isr(2).ok());
  EXPECT_EQ(partition_->partition_epoch(), 1);
  // An older state does not apply.
  partition_->apply_isr({1}, 0);
  EXPECT_EQ(partition_->isr(), (std::vector<int32_t>{1, 2}));
}

TEST_F(PartitionReplicationTest, AnIsrShrunkBelowMinInsyncWhileWaitingFailsTheWaiterAfterAppend) {
  partition_->become_leader(1, 0, {1, 2, 3}, {1, 2, 3});
  const int64_t end = append(1);
  auto acked = std::make_shared<Outcome>();
  partition_->wait_for_high_watermark(end, Outcome::callback(acked), /*min_insync=*/2);
  await_waiting(1);
  EXPECT_FALSE(acked->done());
  // The controller took both followers out (they stopped fetching).
  partition_->apply_isr({1}, 1);
  EXPECT_EQ(acked->error(), Errc::not_enough_replicas_after_append);
  EXPECT_EQ(partition_->high_watermark(), end);  // the leader alone is the ISR now
}

TEST_F(PartitionReplicationTest, ALaggingFollowerIsProposedOutAndTheHighWatermarkWaitsForItUntilApplied) {
  partition_->become_leader(1, 0, {1, 2, 3}, {1, 2, 3});  // at t=10000
  const int64_t end = append(2);
  now_ = 10'900;
  fetch(2, end);  // 2 caught up; 3 never fetches
  fetch(3, 0);
  replicas_->check_isr_now();
  EXPECT_TRUE(proposals().empty());  // within replica.lag.time.max.ms (1000)
  now_ = 11'500;
  replicas_->check_isr_now();
  ASSERT_EQ(proposals().size(), 1u);
  const IsrProposal proposal = proposals()[0];
  EXPECT_EQ(proposal.topic, "t");
  EXPECT_EQ(proposal.partition, 0);
  EXPECT_EQ(proposal.leader_epoch, 1);
  EXPECT_EQ(proposal.partition_epoch, 0);
  EXPECT_EQ(proposal.new_isr, (std::vector<int32_t>{1, 2}));
  EXPECT_TRUE(partition_->isr_change_pending());
  EXPECT_EQ(partition_->isr(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(partition_->maximal_isr(), (std::vector<int32_t>{1, 2, 3}));
  // Pending: the larger ISR still holds the high watermark back, and no
  // second proposal is made.
  auto acked = std::make_shared<Outcome>();
  partition_->wait_for_high_watermark(end, Outcome::callback(acked), /*min_insync=*/2);
  await_waiting(1);
  EXPECT_EQ(partition_->high_watermark(), 0);
  EXPECT_FALSE(acked->done());
  now_ = 13'000;
  replicas_->check_isr_now();
  EXPECT_EQ(proposals().size(), 1u);
  // The controller's record comes back: the ISR is {1, 2}, which has it all.
  partition_->apply_isr({1, 2}, 1);
  EXPECT_FALSE(partition_->isr_change_pending());
  EXPECT_EQ(partition_->high_watermark(), end);
  EXPECT_TRUE(acked->ok());
}

TEST_F(PartitionReplicationTest, AFollowerThatKeepsUpIsNeverProposedOut) {
  partition_->become_leader(1, 0, {1, 2}, {1, 2});
  for (int i = 0; i < 5; ++i) {
    const int64_t end = append(1);
    now_ += 800;
    fetch(2, end);
    replicas_->check_isr_now();
  }
  EXPECT_TRUE(proposals().empty());
}

TEST_F(PartitionReplicationTest, ARefusedProposalIsForgottenAndMadeAgainAfterABackoff) {
  partition_->become_leader(1, 0, {1, 2}, {1, 2});
  now_ += 5000;
  replicas_->check_isr_now();
  ASSERT_EQ(proposals().size(), 1u);
  EXPECT_EQ(partition_->isr_proposal_failed(), Partition::kIsrRetryBackoffInitialMs);
  EXPECT_FALSE(partition_->isr_change_pending());
  replicas_->check_isr_now();
  EXPECT_EQ(proposals().size(), 1u);  // backing off
  now_ += Partition::kIsrRetryBackoffInitialMs;
  replicas_->check_isr_now();
  EXPECT_EQ(proposals().size(), 2u);
}

// A controller that keeps refusing is asked again after a backoff that
// doubles (500, 1000 ms), capped at replica.lag.time.max.ms (1000 here), not
// at every check; an applied change of the partition's state resets it.
TEST_F(PartitionReplicationTest, RefusedProposalsBackOffDoublingUpToTheLagTimeAndResetOnAnAppliedChange) {
  partition_->become_leader(1, 0, {1, 2, 3}, {1, 2, 3});
  now_ += 5000;  // 2 and 3 never fetched: both lag
  replicas_->check_isr_now();
  ASSERT_EQ(proposals().size(), 1u);
  // Checks every 100 ms, as a busy ISR timer and fetches would; count the
  // proposals made while the controller refuses each one.
  auto run_for = [&](int64_t ms) {
    for (int64_t t = 0; t < ms; t += 100) {
      now_ += 100;
      replicas_->check_isr_now();
      if (partition_->isr_change_pending()) partition_->isr_proposal_failed();
    }
  };
  EXPECT_EQ(partition_->isr_proposal_failed(), 500);
  run_for(500);
  ASSERT_EQ(proposals().size(), 2u);   // retried once the 500 ms passed
  run_for(900);
  EXPECT_EQ(proposals().size(), 2u);   // now 1000 ms
  run_for(100);
  ASSERT_EQ(proposals().size(), 3u);
  run_for(3000);
  EXPECT_EQ(proposals().size(), 6u);   // capped: one per 1000 ms
  // Without the backoff this would have been one proposal per check.

  // The controller's record applies a change: the backoff is gone.
  partition_->apply_isr({1, 2}, 1);
  EXPECT_FALSE(partition_->isr_change_pending());
  const size_t before = proposals().size();
  now_ += 100;
  replicas_->check_isr_now();  // 2 still lags
  ASSERT_EQ(proposals().size(), before + 1);
  EXPECT_EQ(proposals().back().new_isr, (std::vector<int32_t>{1}));
  EXPECT_EQ(partition_->isr_proposal_failed(), 500);  // starts over from the first backoff
}

TEST_F(PartitionReplicationTest, AReplicaThatCaughtUpIsProposedInAndCountsForTheHighWatermarkMeanwhile) {
  partition_->become_leader(1, 0, {1, 2, 3}, {1, 2});
  const int64_t end = append(2);
  fetch(2, end);
  EXPECT_EQ(partition_->high_watermark(), end);
  fetch(3, 1);  // below the high watermark: not yet
  EXPECT_TRUE(proposals().empty());
  fetch(3, end);
  ASSERT_EQ(proposals().size(), 1u);
  EXPECT_EQ(proposals()[0].new_isr, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(partition_->maximal_isr(), (std::vector<int32_t>{1, 2, 3}));
  // While pending, 3 holds the high watermark back with the others.
  const int64_t later = append(1);
  fetch(2, later);
  EXPECT_EQ(partition_->high_watermark(), end);
  fetch(3, later);
  EXPECT_EQ(partition_->high_watermark(), later);
}

TEST_F(PartitionReplicationTest, AFetchFromABrokerThatIsNotAReplicaIsRefused) {
  partition_->become_leader(1, 0, {1, 2}, {1, 2});
  EXPECT_EQ(partition_->record_follower_fetch(7, 0, now_).code(), Errc::not_replica);
  EXPECT_EQ(partition_->record_follower_fetch(kSelf, 0, now_).code(), Errc::not_replica);
}

TEST_F(PartitionReplicationTest, BecomingFollowerFailsWaitersAndRefusesLeaderWork) {
  partition_->become_leader(1, 0, {1, 2}, {1, 2});
  const int64_t end = append(1);
  auto acked = std::make_shared<Outcome>();
  partition_->wait_for_high_watermark(end, Outcome::callback(acked), /*min_insync=*/1);
  await_waiting(1);
  EXPECT_FALSE(acked->done());
  EXPECT_TRUE(partition_->become_follower(2, 1, 1, {1, 2}, {1, 2}));
  EXPECT_EQ(acked->error(), Errc::not_leader);
  EXPECT_EQ(partition_->role(), Role::follower);
  EXPECT_EQ(partition_->leader_id(), 2);
  EXPECT_EQ(partition_->leader_epoch(), 1);
  EXPECT_EQ(partition_->check_min_isr(1).code(), Errc::not_leader);
  auto batch = make_batch("x", 1, 1000);
  EXPECT_EQ(partition_->append(batch.span(), header_of(batch)).code(), storage::Errc::closed);
  EXPECT_EQ(partition_->record_follower_fetch(2, 0, now_).code(), Errc::not_leader);
  // The same leadership again changes nothing.
  EXPECT_FALSE(partition_->become_follower(2, 1, 1, {1, 2}, {1, 2}));
  // A waiter registered before the change whose bytes turn durable after it
  // is not acknowledged either.
  auto late = std::make_shared<Outcome>();
  partition_->wait_for_high_watermark(end, Outcome::callback(late), 1);
  EXPECT_EQ(late->error(), Errc::not_leader);
}

TEST_F(PartitionReplicationTest, AFollowerKeepsTheLeadersHighWatermarkBoundedByItsLogEnd) {
  partition_->become_leader(1, 0, {1, 2}, {1, 2});
  EXPECT_EQ(append(3), 3);
  fetch(2, 1);
  EXPECT_EQ(partition_->high_watermark(), 1);
  partition_->become_follower(2, 1, 1, {1, 2}, {1, 2});
  EXPECT_EQ(partition_->high_watermark(), 1);
  partition_->set_follower_high_watermark(2);
  EXPECT_EQ(partition_->high_watermark(), 2);
  partition_->set_follower_high_watermark(1);  // never backwards
  EXPECT_EQ(partition_->high_watermark(), 2);
  partition_->set_follower_high_watermark(10);  // not past what this log has
  EXPECT_EQ(partition_->high_watermark(), 3);
  // Leading again it starts from there and the followers move it on.
  EXPECT_TRUE(partition_->become_leader(2, 2, {1, 2}, {1, 2}));
  EXPECT_EQ(partition_->leader_epoch(), 2);
  EXPECT_EQ(partition_->high_watermark(), 3);
  EXPECT_EQ(append(1), 4);
  fetch(2, 4);
  EXPECT_EQ(partition_->high_watermark(), 4);
}

TEST_F(PartitionReplicationTest, FollowerWritesAreRefusedWhileLeading) {
  auto batch = make_batch("x", 1, 1000);
  EXPECT_EQ(partition_->append_replicated(batch.span(), header_of(batch)).code(),
            storage::Errc::invalid_argument);
  EXPECT_EQ(partition_->truncate_to(0).code(), storage::Errc::invalid_argument);
  EXPECT_EQ(partition_->truncate_fully_and_start_at(0).code(), storage::Errc::invalid_argument);
}

TEST_F(PartitionReplicationTest, AppendsOfALeaderWithFollowersWakeWaitingFetches) {
  // flush.policy=always with no flusher running: the log itself says nothing
  // until an fsync, but a follower long-polling for new data must wake.
  io::testing::TempDir dir;
  storage::LogManager logs(fs_, dir.path());
  ASSERT_TRUE(logs.open([](const std::string&) { return storage::LogConfig{}; }).ok());
  ReplicaManager replicas(logs, kSelf);
  std::atomic<int> woken{0};
  replicas.set_high_watermark_listener([&](Partition*) { ++woken; });
  auto made = replicas.create("t", 0, storage::LogConfig{});
  ASSERT_TRUE(made.ok());
  auto partition = *made;
  auto batch = make_batch("v", 1, 1000);
  ASSERT_TRUE(partition->append(batch.span(), header_of(batch)).ok());
  EXPECT_EQ(woken.load(), 0);  // alone: consumers wait for the fsync
  partition->become_leader(1, 0, {1, 2}, {1, 2});
  woken = 0;
  ASSERT_TRUE(partition->append(batch.span(), header_of(batch)).ok());
  EXPECT_EQ(woken.load(), 1);
  ASSERT_TRUE(logs.shutdown().ok());
}

TEST_F(PartitionReplicationTest, RemovingTheReplicaFailsItsWaitersAndTellsTheListener) {
  std::vector<std::string> removed;
  replicas_->set_replica_removed_listener(
      [&](const std::string& topic, int32_t p) { removed.push_back(topic + "-" + std::to_string(p)); });
  partition_->become_leader(1, 0, {1, 2}, {1, 2});
  const int64_t end = append(1);
  auto acked = std::make_shared<Outcome>();
  partition_->wait_for_high_watermark(end, Outcome::callback(acked), 1);
  await_waiting(1);
  ASSERT_TRUE(replicas_->remove("t", 0).ok());
  EXPECT_EQ(acked->error(), Errc::log_closed);
  EXPECT_EQ(removed, std::vector<std::string>{"t-0"});
}

}  // namespace
}  // namespace holdfast::replication
