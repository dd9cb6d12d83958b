// Three RaftMetadataLog members in one process on 127.0.0.1 (distinct ports,
// one temp data dir each): replication in one order, leader failover,
// restart and catch-up from the log, and catch-up from a snapshot after the
// leader compacted its log. The consensus itself is the library's; these
// tests check that our FSM, snapshot and threading glue make the members
// agree on one image.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <thread>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "metadata/metadata_store.h"
#include "metadata/raft_metadata_log.h"
#include "metadata/tests/metadata_test_util.h"
#include "metadata/tests/raft_test_cluster.h"

namespace holdfast::metadata {
namespace {

using namespace testing;  // NOLINT: the helpers in metadata_test_util.h and raft_test_cluster.h

TEST_F(RaftClusterTest, RecordsAppendedOnTheLeaderAreAppliedEverywhereInOneOrder) {
  start_all();
  ASSERT_GE(wait_for_leader(), 0);
  std::vector<MetadataRecord> records = live_broker(1);
  for (int n = 0; n < 6; ++n) records.push_back(topic(n));
  records.push_back(PartitionsAdded{"topic-0", 7, on_node(1, 6)});
  records.push_back(TopicDeleted{"topic-1"});
  records.push_back(TopicConfigsReplaced{"topic-2", {{"retention.ms", "5"}}});
  ASSERT_NO_FATAL_FAILURE(append_and_expect_everywhere(records));
  const std::string image = encode_image(*members_[0]->current());
  EXPECT_TRUE(all_running_hold(image));
  EXPECT_EQ(members_[0]->current()->find_topic("topic-0")->partition_count, 7);
  EXPECT_EQ(members_[0]->current()->find_topic("topic-1"), nullptr);
}

TEST_F(RaftClusterTest, ConcurrentAppendsFromManyThreadsLandInOneOrderEverywhere) {
  start_all();
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  ASSERT_NO_FATAL_FAILURE(register_broker());
  constexpr int kThreads = 4, kPerThread = 10;
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kPerThread; ++n) {
        if (append_and_wait(*members_[leader], topic(t * 100 + n))) ++succeeded;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // The leader is stable on an idle test cluster; were it not, some appends
  // would fail with not_leader and the counts below would say so.
  ASSERT_EQ(succeeded.load(), kThreads * kPerThread);
  for (int i = 0; i < kMembers; ++i) {
    ASSERT_TRUE(wait_until([&] { return recorders_[i]->size() == size_t(2 + kThreads * kPerThread); }))
        << "member " << i + 1 << " applied " << recorders_[i]->size();
  }
  EXPECT_EQ(recorders_[1]->records(), recorders_[0]->records());
  EXPECT_EQ(recorders_[2]->records(), recorders_[0]->records());
  EXPECT_EQ(recorders_[0]->indexes().back(), kThreads * kPerThread + 1);
}

TEST_F(RaftClusterTest, AppendAfterStopFailsWithShutDown) {
  start_all();
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  members_[leader]->stop();
  auto refused = append_and_wait(*members_[leader], topic(0));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Errc::shut_down);
  EXPECT_EQ(members_[leader]->status().role, RaftRole::unavailable);
}

TEST_F(RaftClusterTest, FollowerRefusesAppendsWithNotLeader) {
  start_all();
  int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  int follower = (leader + 1) % kMembers;
  auto refused = append_and_wait(*members_[follower], topic(0));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Errc::not_leader);
  EXPECT_NE(refused.error().message.find("the leader is node"), std::string::npos)
      << refused.error().message;
}

TEST_F(RaftClusterTest, StoppedLeaderIsReplacedAndCatchesUpAfterRestart) {
  start_all();
  ASSERT_NO_FATAL_FAILURE(register_broker());
  for (int n = 0; n < 2; ++n) ASSERT_TRUE(append_on_leader(topic(n)));
  const int old_leader = wait_for_leader();
  ASSERT_GE(old_leader, 0);
  stop(old_leader);

  const int new_leader = wait_for_leader(old_leader);
  ASSERT_GE(new_leader, 0) << "no new leader among the two remaining members";
  ASSERT_NE(new_leader, old_leader);
  for (int n = 2; n < 5; ++n) {
    auto appended = append_on_leader(topic(n));
    ASSERT_TRUE(appended) << appended.error().message;
  }
  EXPECT_EQ(members_[new_leader]->current()->topics.size(), 5u);

  ASSERT_NO_FATAL_FAILURE(start(old_leader));  // same data dir, same address
  const std::string image = encode_image(*members_[new_leader]->current());
  EXPECT_TRUE(all_running_hold(image)) << "restarted member did not catch up";
  EXPECT_EQ(members_[old_leader]->current()->topics.size(), 5u);
  // It came back through its own log (no snapshot was taken at this size).
  EXPECT_EQ(members_[old_leader]->status().snapshots_installed, 0u);

  // And the cluster goes on accepting appends with all three.
  ASSERT_TRUE(append_on_leader(topic(5)));
  EXPECT_TRUE(all_running_hold(encode_image(*members_[wait_for_leader()]->current())));
}

TEST_F(RaftClusterTest, RestartedMemberCatchesUpFromASnapshotAfterCompaction) {
  snapshot_threshold_ = 8;
  snapshot_trailing_ = 2;
  start_all();
  ASSERT_NO_FATAL_FAILURE(register_broker());
  ASSERT_TRUE(append_on_leader(topic(0)));
  const int leader = wait_for_leader();
  ASSERT_GE(leader, 0);
  const int behind = (leader + 1) % kMembers;
  ASSERT_TRUE(wait_until([&] { return recorders_[behind]->size() == 3; }));
  // Stopped well before its first snapshot (threshold 8 entries), so all it
  // has on disk is a short log.
  ASSERT_EQ(members_[behind]->status().snapshot_index, 0u);
  stop(behind);

  constexpr int kMore = 30;
  for (int n = 1; n <= kMore; ++n) {
    auto appended = append_on_leader(topic(n));
    ASSERT_TRUE(appended) << appended.error().message;
  }
  // The leader snapshotted and dropped all but 2 entries before its latest
  // snapshot, far past where the stopped member's log ends.
  const int now_leader = wait_for_leader();
  ASSERT_GE(now_leader, 0);
  ASSERT_TRUE(wait_until([&] { return members_[now_leader]->status().snapshot_index >= 16; }))
      << "leader snapshot index " << members_[now_leader]->status().snapshot_index;

  ASSERT_NO_FATAL_FAILURE(start(behind));
  const std::string image = encode_image(*members_[now_leader]->current());
  EXPECT_TRUE(all_running_hold(image)) << "restarted member did not catch up";
  EXPECT_EQ(members_[behind]->current()->topics.size(), size_t(kMore + 1));
  EXPECT_GE(members_[behind]->status().snapshots_installed, 1u);
  // Its subscriber was told the image was replaced as a whole.
  EXPECT_GE(recorders_[behind]->restores(), 1);

  // Records after the snapshot reach it one by one again.
  const size_t before = recorders_[behind]->size();
  ASSERT_TRUE(append_on_leader(topic(kMore + 1)));
  EXPECT_TRUE(wait_until([&] { return recorders_[behind]->size() == before + 1; }));
}

TEST_F(RaftClusterTest, MetadataStoreAndRaftLogAgreeOnTheImage) {
  // The same records through both implementations give byte-identical
  // images: the local file and the cluster are one model.
  start_all();
  io::testing::TempDir local_dir;
  io::PosixFileSystem fs;
  auto store = MetadataStore::open(fs, local_dir.path());
  ASSERT_TRUE(store);
  std::vector<MetadataRecord> records = {
      test_broker(1), BrokerUnfenced{1, 1}, TopicCreated{"a", random_id(), 2, {{"k", "v"}}, on_node(1, 2)},
      PartitionsAdded{"a", 4, on_node(1, 2)}, TopicCreated{"b", random_id(), 1, {}, on_node(1, 1)},
      TopicDeleted{"b"}};
  for (const auto& record : records) {
    ASSERT_TRUE(append_and_wait(**store, record));
    ASSERT_TRUE(append_on_leader(record));
  }
  EXPECT_TRUE(all_running_hold(encode_image(*(*store)->current())));
}

}  // namespace
}  // namespace holdfast::metadata
