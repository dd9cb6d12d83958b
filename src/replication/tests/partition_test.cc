// replication::Partition and ReplicaManager in single-node mode: the high
// watermark is the log's acknowledgeable offset (durable under
// flush.policy=always, the log end otherwise), reads stop at it, produce
// waits for it, and the manager finds, adopts and removes replicas.
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "replication/partition.h"
#include "replication/replica_manager.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::replication {
namespace {

using storage::testing::header_of;
using storage::testing::make_batch;

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.path());
    ASSERT_TRUE(logs_->open([](const std::string&) { return storage::LogConfig{}; }).ok());
    replicas_ = std::make_unique<ReplicaManager>(*logs_, /*node_id=*/0);
  }
  void TearDown() override {
    ASSERT_TRUE(logs_->shutdown().ok());  // no listener call after this
    replicas_.reset();
  }

  std::shared_ptr<Partition> create(const std::string& topic, int32_t p,
                                    storage::LogConfig config = {}) {
    auto made = replicas_->create(topic, p, config);
    EXPECT_TRUE(made.ok());
    return made.ok() ? *made : nullptr;
  }

  // Waits (bounded) for wait_for_high_watermark's callback.
  static Result<void, Errc> wait_hw(Partition& partition, int64_t end) {
    auto promise = std::make_shared<std::promise<Result<void, Errc>>>();
    auto future = promise->get_future();
    partition.wait_for_high_watermark(
        end, [promise](Result<void, Errc> r) { promise->set_value(std::move(r)); });
    if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return make_error(Errc::log_failed, "timed out");
    }
    return future.get();
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<ReplicaManager> replicas_;
};

TEST_F(PartitionTest, IsLeaderAtEpochZeroUntilTheImageCarriesEpochs) {
  auto partition = create("t", 0);
  EXPECT_EQ(partition->role(), Role::leader);
  EXPECT_EQ(partition->leader_epoch(), 0);
  ASSERT_TRUE(partition->set_leader_epoch(3).ok());
  EXPECT_EQ(partition->leader_epoch(), 3);
  EXPECT_EQ(partition->topic(), "t");
  EXPECT_EQ(partition->index(), 0);
}

TEST_F(PartitionTest, UnderFlushAlwaysTheHighWatermarkIsTheDurableOffsetAndReadsStopThere) {
  auto partition = create("t", 0);  // flush.policy=always by default
  auto batch = make_batch("a", 3, 1000);
  auto appended = partition->append(batch.span(), header_of(batch));
  ASSERT_TRUE(appended.ok());
  EXPECT_EQ(appended->base_offset, 0);
  EXPECT_EQ(partition->log_end_offset(), 3);
  // No flusher runs (the manager is not started): nothing is durable, so
  // nothing is visible and the produce must wait.
  EXPECT_EQ(partition->high_watermark(), 0);
  EXPECT_FALSE(partition->high_watermark_reached(3));
  auto read = partition->read(0, 1 << 20, true);
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->records.empty());
  EXPECT_EQ(read->high_watermark, 0);
  EXPECT_FALSE(partition->offset_for_timestamp(1000).has_value());
  EXPECT_EQ(partition->delete_records_before(1).code(), storage::Errc::offset_out_of_range);

  logs_->start();
  ASSERT_TRUE(wait_hw(*partition, 3).ok());
  EXPECT_EQ(partition->high_watermark(), 3);
  EXPECT_TRUE(partition->high_watermark_reached(3));
  read = partition->read(0, 1 << 20, true);
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->records.empty());
  EXPECT_EQ(read->high_watermark, 3);
  auto found = partition->offset_for_timestamp(1001);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->offset, 1);
  auto deleted = partition->delete_records_before(-1);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 3);
  EXPECT_EQ(partition->log_start_offset(), 3);
}

TEST_F(PartitionTest, UnderFlushIntervalTheHighWatermarkIsTheLogEndAtOnce) {
  storage::LogConfig interval;
  interval.flush_mode = storage::FlushMode::interval;
  auto partition = create("t", 0, interval);
  auto batch = make_batch("a", 2, 1000);
  ASSERT_TRUE(partition->append(batch.span(), header_of(batch)).ok());
  EXPECT_EQ(partition->high_watermark(), 2);
  EXPECT_TRUE(partition->high_watermark_reached(2));
}

TEST_F(PartitionTest, AnIdempotentRetryReturnsTheOriginalOffsets) {
  auto partition = create("t", 0);
  record::BatchBuilder builder(record::Compression::none);
  builder.add(std::nullopt, "v", 1000);
  builder.set_producer(/*producer_id=*/7, /*epoch=*/0, /*base_sequence=*/0);
  Bytes batch = builder.build();
  auto first = partition->append(batch.span(), header_of(batch));
  ASSERT_TRUE(first.ok());
  auto retry = partition->append(batch.span(), header_of(batch));
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->base_offset, first->base_offset);
  ASSERT_EQ(partition->producer_states().size(), 1u);
  EXPECT_EQ(partition->producer_states()[0].producer_id, 7);
}

TEST_F(PartitionTest, AWaiterOnARemovedPartitionIsToldItIsClosed) {
  auto partition = create("t", 0);
  auto batch = make_batch("a", 1, 1000);
  ASSERT_TRUE(partition->append(batch.span(), header_of(batch)).ok());
  ASSERT_TRUE(replicas_->remove("t", 0).ok());
  EXPECT_EQ(replicas_->get("t", 0), nullptr);
  // The caller's shared_ptr still works; the log answers `closed`.
  EXPECT_EQ(wait_hw(*partition, 1).code(), Errc::log_closed);
}

TEST_F(PartitionTest, TheManagerAdoptsOpenedLogsAndFindsPartitionsByTopic) {
  ASSERT_TRUE(logs_->create("old", 1, {}).ok());  // as if opened at start-up
  ReplicaManager fresh(*logs_, /*node_id=*/0);
  ASSERT_NE(fresh.get("old", 1), nullptr);
  EXPECT_EQ(fresh.get("old", 0), nullptr);
  ASSERT_TRUE(fresh.create("old", 0, {}).ok());
  ASSERT_TRUE(fresh.create("older", 0, {}).ok());
  EXPECT_EQ(fresh.partitions_of("old"), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(fresh.all().size(), 3u);
  // create() of an existing replica returns it unchanged.
  auto again = fresh.create("old", 1, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), fresh.get("old", 1).get());
  EXPECT_TRUE(fresh.remove("absent", 0).ok());
}

TEST_F(PartitionTest, TheHighWatermarkListenerNamesThePartition) {
  std::promise<Partition*> notified;
  std::atomic<bool> once{false};
  auto partition = create("t", 0);
  replicas_->set_high_watermark_listener([&](Partition* p) {
    if (!once.exchange(true)) notified.set_value(p);
  });
  logs_->start();
  auto batch = make_batch("a", 1, 1000);
  ASSERT_TRUE(partition->append(batch.span(), header_of(batch)).ok());
  auto future = notified.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(future.get(), partition.get());
}

}  // namespace
}  // namespace holdfast::replication
