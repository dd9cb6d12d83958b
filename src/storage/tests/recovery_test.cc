// Start-up recovery on damaged segments (issue 8, item 1): only a torn tail
// past the recovery point is ever cut; any other damage takes the partition
// offline and leaves every file byte for byte as it was.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "storage/batch_walker.h"
#include "storage/checkpoint.h"
#include "storage/format.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::storage {
namespace {

using namespace testing;
using Files = std::map<std::string, std::vector<uint8_t>>;

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.index_interval_bytes = 100;
    open_manager();
  }

  void open_manager() {
    manager_ = std::make_unique<LogManager>(fs_, dir_.path(), options_);
    manager_->set_clock(clock_.fn());
    auto r = manager_->open([this](const std::string&) { return config_; });
    ASSERT_TRUE(r.ok()) << r.error().message;
    manager_->start();
  }
  // The process dies: no flush, no checkpoint, no clean-shutdown marker.
  void crash() { manager_.reset(); }

  LogManagerOptions options_;

  PartitionLog* create(const std::string& topic) {
    auto log = manager_->create(topic, 0, config_);
    EXPECT_TRUE(log.ok()) << log.error().message;
    return log.ok() ? *log : nullptr;
  }

  // Appends a 2-record batch and waits until it is durable.
  void append(PartitionLog* log, int i) {
    auto batch = make_batch("v" + std::to_string(i), 2, 1000 + i, record::Compression::none, 30);
    auto r = log->append(batch.span(), header_of(batch), 1);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(wait_durable_sync(*manager_, log, r->last_offset + 1).ok());
  }

  std::string path(const std::string& topic, int64_t base) {
    return dir_ / (topic + "-0/" + format::segment_file_name(base, format::kLogSuffix));
  }

  std::vector<int64_t> segment_bases(const std::string& topic) {
    std::vector<int64_t> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / (topic + "-0"))) {
      auto b = format::parse_segment_file_name(e.path().filename().string(), format::kLogSuffix);
      if (b) out.push_back(*b);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Byte positions of the batches of a segment file (walked while it is good).
  std::vector<uint64_t> batch_positions(const std::string& file) {
    auto opened = fs_.open(file, io::OpenMode::open_existing);
    EXPECT_TRUE(opened.ok());
    std::vector<uint64_t> out;
    BatchWalker walker(**opened, file, 0, (*opened)->size(), 0, 0, true);
    for (auto b = walker.next(); b.ok() && *b; b = walker.next()) out.push_back((*b)->position);
    return out;
  }

  // Every file under the partition directory, with its bytes.
  Files files(const std::string& topic) {
    Files out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ / (topic + "-0"))) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      out[e.path().string()] = {std::istreambuf_iterator<char>(in), {}};
    }
    return out;
  }

  static void xor_byte(const std::string& file, uint64_t position, uint8_t mask) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(std::streamoff(position));
    char c;
    f.get(c);
    f.seekp(std::streamoff(position));
    f.put(char(c ^ mask));
  }
  static void write_be32(const std::string& file, uint64_t position, uint32_t value) {
    uint8_t bytes[4];
    store_be32(bytes, value);
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(position));
    f.write(reinterpret_cast<const char*>(bytes), 4);
  }
  static uint32_t read_be32(const std::string& file, uint64_t position) {
    uint8_t bytes[4];
    std::ifstream f(file, std::ios::binary);
    f.seekg(std::streamoff(position));
    f.read(reinterpret_cast<char*>(bytes), 4);
    return load_be32(bytes);
  }

  void set_recovery_points(const CheckpointEntries& entries) {
    ASSERT_TRUE(write_checkpoint(fs_,
                                 dir_ / std::string(format::kRecoveryPointCheckpointFile), entries)
                    .ok());
  }

  // The partition is offline, says where the damage is, and refuses work.
  void expect_offline(const std::string& topic, const std::string& file, uint64_t position) {
    PartitionLog* log = manager_->get(topic, 0);
    ASSERT_NE(log, nullptr);
    EXPECT_TRUE(log->offline());
    auto online = log->check_online();
    ASSERT_FALSE(online.ok());
    EXPECT_EQ(online.code(), Errc::io_error);
    EXPECT_NE(online.error().message.find(file), std::string::npos) << online.error().message;
    EXPECT_NE(online.error().message.find("at byte " + std::to_string(position)),
              std::string::npos)
        << online.error().message;
    auto batch = make_batch("late", 1, 1);
    auto appended = log->append(batch.span(), header_of(batch), 1);
    ASSERT_FALSE(appended.ok());
    EXPECT_EQ(appended.code(), Errc::io_error);
    auto read = log->read(0, 1 << 20, true, 1 << 30);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.code(), Errc::io_error);
    EXPECT_EQ(log->delete_records_before(-1).code(), Errc::io_error);
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  ManualClock clock_;
  LogConfig config_;
  std::unique_ptr<LogManager> manager_;
};

TEST_F(RecoveryTest, CorruptLengthInAnOldRolledSegmentTakesThePartitionOfflineAndChangesNothing) {
  config_.segment_bytes = 1000;
  auto* log = create("t");
  for (int i = 0; i < 30; ++i) append(log, i);
  ASSERT_TRUE(manager_->checkpoint_now().ok());  // recovery point = end of log
  auto bases = segment_bases("t");
  ASSERT_GE(bases.size(), 3u);
  crash();
  // The length field of the last batch of the oldest segment, a trusted
  // rolled segment: its index is checked against the batch it ends on and
  // the framing after the last index entry is walked.
  std::string oldest = path("t", bases[0]);
  uint64_t position = batch_positions(oldest).back();
  write_be32(oldest, position + record::kLengthOffset,
             read_be32(oldest, position + record::kLengthOffset) + 10);
  Files before = files("t");
  open_manager();
  expect_offline("t", oldest, position);
  EXPECT_EQ(files("t"), before);
  // The offsets the checkpoints held survive a restart: still offline, still untouched.
  ASSERT_TRUE(manager_->shutdown().ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ / std::string(format::kCleanShutdownFile)));
  crash();
  open_manager();
  expect_offline("t", oldest, position);
  EXPECT_EQ(files("t"), before);
}

TEST_F(RecoveryTest, BitFlipBelowTheRecoveryPointInTheActiveSegmentTakesThePartitionOffline) {
  auto* log = create("t");
  for (int i = 0; i < 10; ++i) append(log, i);
  ASSERT_TRUE(manager_->checkpoint_now().ok());  // recovery point 20, inside the active segment
  crash();
  std::string file = path("t", 0);
  uint64_t position = batch_positions(file).at(4);
  xor_byte(file, position + record::kBatchHeaderSize + 5, 0x20);  // a payload byte
  Files before = files("t");
  open_manager();
  expect_offline("t", file, position);
  EXPECT_EQ(files("t"), before);
}

TEST_F(RecoveryTest, DamageFollowedByGoodBatchesIsNoTornTailAndOtherPartitionsServe) {
  auto* log = create("t");
  auto* other = create("u");
  for (int i = 0; i < 10; ++i) {
    append(log, i);
    append(other, i);
  }
  crash();
  // No recovery point at all: every batch counts as past it, yet the damage
  // has good batches after it, so it is no torn write.
  std::filesystem::remove(dir_ / std::string(format::kRecoveryPointCheckpointFile));
  std::string file = path("t", 0);
  auto positions = batch_positions(file);
  uint64_t position = positions.at(3);
  write_be32(file, position + record::kLengthOffset, 0x00ffffff);  // runs past the end
  Files before = files("t");
  open_manager();
  expect_offline("t", file, position);
  EXPECT_EQ(files("t"), before);
  // The other partition recovered and serves, reads and writes.
  other = manager_->get("u", 0);
  ASSERT_FALSE(other->offline());
  EXPECT_EQ(other->log_end_offset(), 20);
  auto read = other->read(0, 1 << 20, true, other->high_watermark());
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(split_batches(read->records).size(), 10u);
  append(other, 10);
  EXPECT_EQ(other->log_end_offset(), 22);
}

TEST_F(RecoveryTest, ALogEndingBeforeTheRecoveryPointTakesThePartitionOffline) {
  auto* log = create("t");
  for (int i = 0; i < 10; ++i) append(log, i);
  ASSERT_TRUE(manager_->checkpoint_now().ok());  // recovery point 20
  crash();
  // Flushed batches gone at a clean batch boundary: nothing looks torn.
  std::string file = path("t", 0);
  uint64_t position = batch_positions(file).at(8);
  std::filesystem::resize_file(file, position);
  Files before = files("t");
  open_manager();
  expect_offline("t", file, position);
  EXPECT_EQ(files("t"), before);
}

// A crash between a roll and the sync of the rolled segment: its end is torn
// and the segments after it hold bytes written later, none acknowledged
// (the recovery point moves past a rolled segment before any later offset
// is acknowledged).
TEST_F(RecoveryTest, ATornEndOfARolledSegmentPastTheRecoveryPointIsCutWithTheSegmentsAfterIt) {
  config_.segment_bytes = 1000;
  auto* log = create("t");
  for (int i = 0; i < 30; ++i) append(log, i);
  auto bases = segment_bases("t");
  ASSERT_GE(bases.size(), 3u);
  crash();
  int64_t torn = bases[bases.size() - 2];
  set_recovery_points({{{"t", 0}, torn}});
  std::string file = path("t", torn);
  auto positions = batch_positions(file);
  std::filesystem::resize_file(file, positions.back() + 30);
  open_manager();
  log = manager_->get("t", 0);
  ASSERT_FALSE(log->offline());
  EXPECT_EQ(std::filesystem::file_size(file), positions.back());
  EXPECT_EQ(segment_bases("t").back(), torn);
  EXPECT_EQ(log->log_end_offset(), torn + 2 * int64_t(positions.size() - 1));
}

TEST_F(RecoveryTest, ATornTailPastTheRecoveryPointIsCut) {
  auto* log = create("t");
  for (int i = 0; i < 10; ++i) append(log, i);
  ASSERT_TRUE(manager_->checkpoint_now().ok());  // recovery point 20
  append(log, 10);
  append(log, 11);
  crash();
  std::string file = path("t", 0);
  auto positions = batch_positions(file);
  ASSERT_EQ(positions.size(), 12u);
  // A torn last write: the batch at offset 22 lost its last bytes.
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 7);
  open_manager();
  log = manager_->get("t", 0);
  ASSERT_FALSE(log->offline());
  EXPECT_EQ(log->log_end_offset(), 22);
  EXPECT_EQ(std::filesystem::file_size(file), positions.back());
  append(log, 12);  // appends go on right after the cut
  EXPECT_EQ(log->log_end_offset(), 24);
  // Zeros after the end (blocks allocated, data never written): cut as well.
  crash();
  auto size = std::filesystem::file_size(file);
  std::filesystem::resize_file(file, size + 300);
  open_manager();
  log = manager_->get("t", 0);
  ASSERT_FALSE(log->offline());
  EXPECT_EQ(log->log_end_offset(), 24);
  EXPECT_EQ(std::filesystem::file_size(file), size);
}

TEST_F(RecoveryTest, TheRecoveryPointIsCheckpointedWhenASegmentRollsBeforeTheAck) {
  config_.segment_bytes = 1000;
  auto* log = create("t");
  std::string checkpoint = dir_ / std::string(format::kRecoveryPointCheckpointFile);
  // No timer checkpoint is due (the clock stands still): only rolls write it.
  for (int i = 0; i < 30; ++i) {
    append(log, i);  // acknowledged
    auto bases = segment_bases("t");
    if (bases.size() < 2) continue;
    auto entries = read_checkpoint(fs_, checkpoint);
    ASSERT_TRUE(entries.ok()) << "no checkpoint after a roll";
    ASSERT_EQ(entries->count({"t", 0}), 1u);
    // So after a crash, recovery walks only the active segment.
    EXPECT_GE(entries->at({"t", 0}), bases.back()) << "after batch " << i;
  }
}

// Issue 13 (restart after kill -9 in under a second): a recovery mark lets
// the recovery after a crash walk with CRCs only the batches written after
// it, not the whole active segment, and replay producer state from its
// snapshot. Counted in bytes (LogManager::last_open_stats), not time.
class RecoveryMarkTest : public RecoveryTest {
 protected:
  void SetUp() override {
    options_.recovery_mark_bytes = 0;  // a mark every interval, as small as these logs are
    RecoveryTest::SetUp();
  }

  // Asks for a mark (as the timer does once recovery_mark_interval_ms
  // passed) and waits until the checkpoint claims the log end.
  void mark(PartitionLog* log) {
    clock_.advance(1000);
    std::string checkpoint = dir_ / std::string(format::kRecoveryPointCheckpointFile);
    std::string snapshot =
        dir_ / ("t-0/" + format::segment_file_name(log->log_end_offset(), format::kSnapshotSuffix));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      ASSERT_TRUE(manager_->write_recovery_marks_now().ok());
      auto entries = read_checkpoint(fs_, checkpoint);
      if (entries.ok() && entries->count({"t", 0}) &&
          entries->at({"t", 0}) == log->log_end_offset() && std::filesystem::exists(snapshot)) {
        return;
      }
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no recovery mark was written";
      std::this_thread::yield();
    }
  }
};

TEST_F(RecoveryMarkTest, AfterAMarkACrashWalksOnlyTheActiveSegmentsTail) {
  config_.segment_bytes = 3000;
  auto* log = create("t");
  for (int i = 0; i < 60; ++i) append(log, i);  // rolls: each rolled segment synced whole
  auto bases = segment_bases("t");
  ASSERT_GE(bases.size(), 3u);
  std::string active = path("t", bases.back());
  ASSERT_GT(std::filesystem::file_size(active), 1000u);
  mark(log);
  const uint64_t marked_size = std::filesystem::file_size(active);
  append(log, 60);  // after the mark: the tail
  append(log, 61);
  const int64_t end = log->log_end_offset();
  const uint64_t tail = std::filesystem::file_size(active) - marked_size;
  crash();
  open_manager();
  log = manager_->get("t", 0);
  ASSERT_FALSE(log->offline());
  EXPECT_EQ(log->log_end_offset(), end);
  auto stats = manager_->last_open_stats();
  // The CRC walk starts at the last index entry below the recovery point
  // (at most one index interval, here one batch, before it): the tail and
  // that batch, not the active segment's ~1000+ bytes.
  const uint64_t one_batch = batch_positions(active).at(1) - batch_positions(active).at(0);
  EXPECT_GT(stats.crc_checked_bytes, 0u);
  EXPECT_LE(stats.crc_checked_bytes, tail + one_batch) << "active segment " << marked_size;
  // Producer state replays from the mark's snapshot: the headers after it.
  EXPECT_LE(stats.header_walked_bytes, tail + 2 * one_batch);
  // Everything is still there and the log goes on.
  auto read = log->read(0, 1 << 20, true, log->high_watermark());
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(split_batches(read->records).size(), 62u);
  append(log, 62);
  EXPECT_EQ(log->log_end_offset(), end + 2);
}

TEST_F(RecoveryMarkTest, BitFlipJustBelowTheMarkedRecoveryPointStillTakesThePartitionOffline) {
  auto* log = create("t");
  for (int i = 0; i < 10; ++i) append(log, i);
  mark(log);  // recovery point 20, inside the active segment, with its index files
  crash();
  std::string file = path("t", 0);
  uint64_t position = batch_positions(file).back();  // the last batch below the recovery point
  xor_byte(file, position + record::kBatchHeaderSize + 5, 0x20);
  Files before = files("t");
  open_manager();
  expect_offline("t", file, position);
  EXPECT_EQ(files("t"), before);
}

// Marks share the disk's journal with the syncs that acknowledge produces,
// so a log that grew by less than recovery_mark_bytes gets one only every
// recovery_mark_max_interval_ms (then a restart walks what that interval wrote).
TEST_F(RecoveryTest, AMarkWaitsForEnoughBytesOrTheLongInterval) {
  crash();
  options_.recovery_mark_bytes = 4000;
  options_.recovery_mark_max_interval_ms = 60000;
  open_manager();
  auto* log = create("t");
  int i = 0;
  append(log, i++);
  auto newest_snapshot = [&] {
    int64_t newest = -1;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ / std::string("t-0"))) {
      auto offset = format::parse_segment_file_name(entry.path().filename().string(),
                                                    format::kSnapshotSuffix);
      if (offset) newest = std::max(newest, *offset);
    }
    return newest;
  };
  // What the timer does after `advance_ms`: ask for a mark where one is
  // due; the append's syncing flush takes a wanted mark; the next round
  // writes it. Returns whether a new mark's snapshot appeared.
  auto tick = [&](int64_t advance_ms) {
    const int64_t before = newest_snapshot();
    clock_.advance(advance_ms);
    EXPECT_TRUE(manager_->write_recovery_marks_now().ok());
    append(log, i++);
    EXPECT_TRUE(manager_->write_recovery_marks_now().ok());
    return newest_snapshot() > before;
  };
  EXPECT_FALSE(tick(1000)) << "one small batch, one second: no mark yet";
  EXPECT_TRUE(tick(60000)) << "the long interval passed: a mark";
  while (i < 100 && log->log_end_offset() < 120) append(log, i++);  // > 4000 bytes
  EXPECT_TRUE(tick(1000)) << "over 4000 bytes since the last mark";
  EXPECT_FALSE(tick(1000)) << "one batch since: no mark";
}

}  // namespace
}  // namespace holdfast::storage
