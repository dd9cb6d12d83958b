// Leader epochs in PartitionLog: stamping, the cache kept on append,
// DeleteRecords/retention, restart, a torn tail cut, a lost or damaged
// leader-epoch-checkpoint.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "storage/checkpoint.h"
#include "storage/format.h"
#include "storage/leader_epoch_cache.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::storage {
namespace {

using namespace testing;
using Entries = std::vector<EpochEntry>;

class LeaderEpochLogTest : public ::testing::Test {
 protected:
  void SetUp() override { open_manager(); }

  void open_manager() {
    manager_ = std::make_unique<LogManager>(fs_, dir_.path(), LogManagerOptions{});
    manager_->set_clock(clock_.fn());
    auto r = manager_->open([this](const std::string&) { return config_; });
    ASSERT_TRUE(r.ok()) << r.error().message;
    manager_->start();
  }
  void crash() { manager_.reset(); }
  void restart_cleanly() {
    ASSERT_TRUE(manager_->shutdown().ok());
    manager_.reset();
    open_manager();
  }
  PartitionLog* log() { return manager_->get("t", 0); }

  // Appends a 2-record batch in the log's current epoch and waits until it
  // is durable; returns its base offset.
  int64_t append(int i) {
    auto batch = make_batch("v" + std::to_string(i), 2, 1000 + i, record::Compression::none, 30);
    auto r = log()->append(batch.span(), header_of(batch));
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return -1;
    EXPECT_TRUE(wait_durable_sync(*manager_, log(), r->last_offset + 1).ok());
    return r->base_offset;
  }

  std::string checkpoint_path() const {
    return dir_ / ("t-0/" + std::string(format::kLeaderEpochCheckpointFile));
  }
  std::string checkpoint_text() const {
    std::ifstream in(checkpoint_path(), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::vector<int32_t> batch_epochs() {
    auto r = log()->read(log()->log_start_offset(), 1 << 30, true, log()->high_watermark());
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<int32_t> out;
    if (!r.ok()) return out;
    for (const auto& b : split_batches(r->records)) {  // checks every CRC
      out.push_back(record::parse_batch_header(b)->partition_leader_epoch);
    }
    return out;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  ManualClock clock_;
  LogConfig config_;
  std::unique_ptr<LogManager> manager_;
};

TEST_F(LeaderEpochLogTest, BatchesCarryTheLogsLeaderEpochAndTheCacheFollows) {
  ASSERT_TRUE(manager_->create("t", 0, config_).ok());
  EXPECT_EQ(log()->leader_epoch(), 0);
  EXPECT_EQ(append(0), 0);
  EXPECT_EQ(append(1), 2);
  ASSERT_TRUE(log()->set_leader_epoch(3).ok());
  EXPECT_EQ(log()->leader_epoch(), 3);
  EXPECT_EQ(append(2), 4);
  ASSERT_TRUE(log()->set_leader_epoch(5).ok());
  EXPECT_EQ(append(3), 6);
  EXPECT_EQ(batch_epochs(), (std::vector<int32_t>{0, 0, 3, 5}));
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{0, 0}, {3, 4}, {5, 6}}));
  // OffsetForLeaderEpoch answers.
  EXPECT_EQ(*log()->end_offset_for_epoch(0), (EpochEndOffset{0, 4}));
  EXPECT_EQ(*log()->end_offset_for_epoch(4), (EpochEndOffset{3, 6}));
  EXPECT_EQ(*log()->end_offset_for_epoch(5), (EpochEndOffset{5, 8}));
  EXPECT_TRUE(log()->end_offset_for_epoch(6)->undefined());
  // Epochs never go back; a stale leader's append is refused.
  auto lower = log()->set_leader_epoch(4);
  ASSERT_FALSE(lower.ok());
  EXPECT_EQ(lower.code(), Errc::invalid_argument);
  auto batch = make_batch("stale", 1, 1);
  auto stale = log()->append(batch.span(), header_of(batch), 4);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.code(), Errc::invalid_argument);
  EXPECT_EQ(log()->log_end_offset(), 8);
  // The epoch's entry reached the disk before its batch was acknowledged.
  EXPECT_EQ(checkpoint_text(), "0\n3\n0 0\n3 4\n5 6\n");
}

TEST_F(LeaderEpochLogTest, ANewEpochWithoutBatchesStartsAtTheLogEnd) {
  ASSERT_TRUE(manager_->create("t", 0, config_).ok());
  append(0);
  ASSERT_TRUE(log()->set_leader_epoch(2).ok());
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{0, 0}, {2, 2}}));
  EXPECT_EQ(*log()->end_offset_for_epoch(0), (EpochEndOffset{0, 2}));
  // Two elections with no batch between them: the later epoch replaces it.
  ASSERT_TRUE(log()->set_leader_epoch(4).ok());
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{0, 0}, {4, 2}}));
  // Kept across a restart.
  restart_cleanly();
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{0, 0}, {4, 2}}));
  EXPECT_EQ(log()->leader_epoch(), 4);
  EXPECT_EQ(append(1), 2);
  EXPECT_EQ(batch_epochs(), (std::vector<int32_t>{0, 4}));
}

TEST_F(LeaderEpochLogTest, EpochsSurviveACleanRestartAndACrash) {
  ASSERT_TRUE(manager_->create("t", 0, config_).ok());
  append(0);
  ASSERT_TRUE(log()->set_leader_epoch(1).ok());
  append(1);
  append(2);
  ASSERT_TRUE(log()->set_leader_epoch(7).ok());
  append(3);
  const Entries expected{{0, 0}, {1, 2}, {7, 6}};
  EXPECT_EQ(log()->leader_epoch_entries(), expected);
  restart_cleanly();
  EXPECT_EQ(log()->leader_epoch_entries(), expected);
  EXPECT_EQ(log()->leader_epoch(), 7);  // never lower than what the log holds
  EXPECT_EQ(batch_epochs(), (std::vector<int32_t>{0, 1, 1, 7}));
  crash();
  open_manager();
  EXPECT_EQ(log()->leader_epoch_entries(), expected);
  EXPECT_EQ(log()->leader_epoch(), 7);
  append(4);
  EXPECT_EQ(batch_epochs(), (std::vector<int32_t>{0, 1, 1, 7, 7}));
}

TEST_F(LeaderEpochLogTest, AMissingOrDamagedCheckpointIsRebuiltFromTheBatches) {
  ASSERT_TRUE(manager_->create("t", 0, config_).ok());
  append(0);
  ASSERT_TRUE(log()->set_leader_epoch(2).ok());
  append(1);
  ASSERT_TRUE(log()->set_leader_epoch(3).ok());
  append(2);
  const Entries expected{{0, 0}, {2, 2}, {3, 4}};
  const std::string good = checkpoint_text();
  for (const std::string& damaged : {std::string("missing"), std::string("0\n3\n0 0\n2 2\n3"),
                                    std::string("0\n2\n2 2\n0 0\n"), std::string("garbage")}) {
    SCOPED_TRACE(damaged);
    restart_cleanly();  // clean: no segment is walked, only the file is trusted
    ASSERT_TRUE(manager_->shutdown().ok());
    manager_.reset();
    if (damaged == "missing") {
      std::filesystem::remove(checkpoint_path());
    } else {
      write_text(checkpoint_path(), damaged);
    }
    open_manager();
    ASSERT_FALSE(log()->offline());
    EXPECT_EQ(log()->leader_epoch_entries(), expected);
    EXPECT_EQ(log()->leader_epoch(), 3);
    EXPECT_EQ(checkpoint_text(), good);  // written back
  }
}

TEST_F(LeaderEpochLogTest, EpochsPastTheRecoveryPointMissingFromTheFileAreReplayed) {
  ASSERT_TRUE(manager_->create("t", 0, config_).ok());
  append(0);
  append(1);
  ASSERT_TRUE(manager_->checkpoint_now().ok());  // recovery point 4
  ASSERT_TRUE(log()->set_leader_epoch(6).ok());
  append(2);
  crash();
  // As if the process died between the batch and the file write.
  write_text(checkpoint_path(), "0\n1\n0 0\n");
  open_manager();
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{0, 0}, {6, 4}}));
  EXPECT_EQ(log()->leader_epoch(), 6);
  EXPECT_EQ(checkpoint_text(), "0\n2\n0 0\n6 4\n");
}

TEST_F(LeaderEpochLogTest, ATornTailCutTrimsTheCache) {
  ASSERT_TRUE(manager_->create("t", 0, config_).ok());
  ASSERT_TRUE(log()->set_leader_epoch(1).ok());
  append(0);
  append(1);
  ASSERT_TRUE(manager_->checkpoint_now().ok());  // recovery point 4
  ASSERT_TRUE(log()->set_leader_epoch(2).ok());
  append(2);  // offsets 4-5
  ASSERT_TRUE(log()->set_leader_epoch(3).ok());
  append(3);  // offsets 6-7
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{1, 0}, {2, 4}, {3, 6}}));
  crash();
  // The power went before the last two batches reached the disk: the file
  // ends inside the batch at offset 4.
  const std::string segment = dir_ / ("t-0/" + format::segment_file_name(0, format::kLogSuffix));
  auto opened = fs_.open(segment, io::OpenMode::open_existing);
  ASSERT_TRUE(opened.ok());
  std::vector<uint64_t> positions;
  BatchWalker walker(**opened, segment, 0, (*opened)->size(), 0, 0, true);
  for (auto b = walker.next(); b.ok() && *b; b = walker.next()) positions.push_back((*b)->position);
  ASSERT_EQ(positions.size(), 4u);
  opened->reset();
  std::filesystem::resize_file(segment, positions[2] + 20);
  open_manager();
  ASSERT_FALSE(log()->offline());
  EXPECT_EQ(log()->log_end_offset(), 4);
  // Epoch 3's batches are gone; epoch 2 began where the log now ends.
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{1, 0}, {2, 4}}));
  EXPECT_EQ(checkpoint_text(), "0\n2\n1 0\n2 4\n");
  EXPECT_EQ(*log()->end_offset_for_epoch(1), (EpochEndOffset{1, 4}));
  EXPECT_TRUE(log()->end_offset_for_epoch(3)->undefined());
}

TEST_F(LeaderEpochLogTest, DeleteRecordsAndRetentionShrinkTheCacheFromTheStart) {
  config_.segment_bytes = 250;  // about two batches per segment
  ASSERT_TRUE(manager_->create("t", 0, config_).ok());
  append(0);
  ASSERT_TRUE(log()->set_leader_epoch(1).ok());
  append(1);  // 2-3
  append(2);  // 4-5
  ASSERT_TRUE(log()->set_leader_epoch(2).ok());
  append(3);  // 6-7
  append(4);  // 8-9
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{0, 0}, {1, 2}, {2, 6}}));
  ASSERT_EQ(*log()->delete_records_before(3), 3);
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{1, 3}, {2, 6}}));
  EXPECT_EQ(checkpoint_text(), "0\n2\n1 3\n2 6\n");
  EXPECT_EQ(*log()->end_offset_for_epoch(0), (EpochEndOffset{0, 3}));
  crash();
  open_manager();
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{1, 3}, {2, 6}}));

  // Retention by size: the log start moves to a later segment's base.
  LogConfig small = config_;
  small.retention_bytes = 1;
  log()->update_config(small);
  ASSERT_TRUE(manager_->run_retention_now().ok());
  const int64_t start = log()->log_start_offset();
  ASSERT_GT(start, 6);
  EXPECT_EQ(log()->leader_epoch_entries(), (Entries{{2, start}}));
  EXPECT_EQ(checkpoint_text(), "0\n1\n2 " + std::to_string(start) + "\n");
}

}  // namespace
}  // namespace holdfast::storage
