// Transactions at the partition level: the last stable offset is never above
// the high watermark and waits for a marker to be replicated; read_committed
// reads stop at it; a follower rebuilds ongoing and aborted transactions from
// the batches it replicates, so as the new leader it has the same LSO.
#include <gtest/gtest.h>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "replication/partition.h"
#include "replication/replica_manager.h"
#include "storage/tests/storage_test_util.h"
#include "storage/txn_index.h"

namespace holdfast::replication {
namespace {

constexpr int32_t kSelf = 1;

Bytes txn_batch(int64_t id, int32_t seq) {
  record::BatchBuilder builder;
  builder.set_producer(id, 0, seq).set_transactional(true);
  builder.add(std::nullopt, "t" + std::to_string(seq), 1000);
  return builder.build();
}

Bytes marker(int64_t id, bool commit) {
  return storage::make_control_batch(
      id, 0, {commit ? storage::ControlType::commit : storage::ControlType::abort, 0}, 1000);
}

record::BatchHeader parsed(const Bytes& batch) { return *record::parse_batch_header(batch.span()); }

class PartitionTxnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.path());
    ASSERT_TRUE(logs_->open([](const std::string&) { return storage::LogConfig{}; }).ok());
    replicas_ = std::make_unique<ReplicaManager>(*logs_, kSelf, [this] { return int64_t(10'000); });
    storage::LogConfig config;
    config.flush_mode = storage::FlushMode::never;  // the followers alone hold the HW back
    auto made = replicas_->create("t", 0, config);
    ASSERT_TRUE(made.ok());
    partition_ = *made;
    logs_->start();
  }
  void TearDown() override {
    ASSERT_TRUE(logs_->shutdown().ok());
    replicas_.reset();
  }
  int64_t append(const Bytes& batch) {
    auto appended = partition_->append(batch.span(), parsed(batch));
    EXPECT_TRUE(appended.ok()) << (appended.ok() ? "" : appended.error().message);
    return appended.ok() ? appended->base_offset : -1;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<ReplicaManager> replicas_;
  std::shared_ptr<Partition> partition_;
};

TEST_F(PartitionTxnTest, TheLsoIsNeverAboveTheHwAndWaitsForTheMarkerToBeReplicated) {
  partition_->become_leader(1, 0, {1, 2}, {1, 2});
  append(storage::testing::make_batch("plain", 2, 1000));  // 0-1
  const int64_t first = append(txn_batch(7, 0));           // 2
  append(storage::testing::make_batch("plain", 1, 1000));  // 3
  EXPECT_EQ(partition_->last_stable_offset(), 0) << "HW 0";
  ASSERT_TRUE(partition_->record_follower_fetch(2, 4, 10'000).ok());
  EXPECT_EQ(partition_->high_watermark(), 4);
  EXPECT_EQ(partition_->last_stable_offset(), first);
  // read_committed stops at the LSO, read_uncommitted at the HW.
  auto committed = partition_->read_committed(0, 1 << 20, true);
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(committed->last_stable_offset, first);
  EXPECT_EQ(storage::testing::split_batches(committed->records).size(), 1u);
  auto all = partition_->read(0, 1 << 20, true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(storage::testing::split_batches(all->records).size(), 3u);
  // The commit marker: the transaction stays unstable until the HW passes it.
  const int64_t m = append(marker(7, true));
  EXPECT_EQ(partition_->last_stable_offset(), first);
  ASSERT_TRUE(partition_->record_follower_fetch(2, m, 10'000).ok());
  EXPECT_EQ(partition_->last_stable_offset(), first);
  ASSERT_TRUE(partition_->record_follower_fetch(2, m + 1, 10'000).ok());
  EXPECT_EQ(partition_->last_stable_offset(), m + 1);
}

TEST_F(PartitionTxnTest, AFollowerRebuildsTransactionsAndLeadsWithTheSameLso) {
  // The batches as a leader stored them: stamped with offsets and epoch 0.
  std::vector<Bytes> batches = {txn_batch(1, 0), txn_batch(2, 0), marker(1, false),
                                storage::testing::make_batch("plain", 1, 1000)};
  partition_->become_follower(2, 1, 1, {1, 2}, {1, 2});
  int64_t offset = 0;
  for (const auto& b : batches) {
    auto bytes = storage::testing::stamped(b, offset, 0);
    auto header = *record::parse_batch_header(bytes);
    ASSERT_TRUE(partition_->append_replicated(bytes, header).ok());
    offset = header.last_offset() + 1;
  }
  partition_->set_follower_high_watermark(offset);
  EXPECT_TRUE(partition_->become_leader(2, 2, {1, 2}, {1, 2}));
  EXPECT_EQ(partition_->last_stable_offset(), 1) << "producer 2's transaction is open";
  auto aborted = partition_->aborted_txns(0, offset);
  ASSERT_EQ(aborted.size(), 1u);
  EXPECT_EQ(aborted[0].producer_id, 1);
  EXPECT_EQ(aborted[0].first_offset, 0);
  EXPECT_EQ(aborted[0].last_offset, 2);
  // Its marker, written by the new leader, releases it.
  const int64_t m = append(marker(2, true));
  ASSERT_TRUE(partition_->record_follower_fetch(2, m + 1, 10'000).ok());
  EXPECT_EQ(partition_->last_stable_offset(), m + 1);
}

}  // namespace
}  // namespace holdfast::replication
