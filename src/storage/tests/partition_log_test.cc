#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "storage/format.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::storage {
namespace {

std::optional<int64_t> offset_of(std::optional<TimestampAndOffset> found) {
  if (!found) return std::nullopt;
  return found->offset;
}

using namespace testing;

class PartitionLogTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  // Crash (no shutdown) unless `clean`, then load again.
  void reopen(bool clean = false) {
    if (manager_ && clean) {
      ASSERT_TRUE(manager_->shutdown().ok());
    }
    manager_.reset();
    manager_ = std::make_unique<LogManager>(fs_, dir_.path(), LogManagerOptions{});
    manager_->set_clock(clock_.fn());
    auto r = manager_->open([this](const std::string&) { return config_; });
    ASSERT_TRUE(r.ok()) << r.error().message;
    manager_->start();
  }

  PartitionLog* create(const std::string& topic = "t", int32_t partition = 0) {
    auto log = manager_->create(topic, partition, config_);
    EXPECT_TRUE(log.ok()) << log.error().message;
    return log.ok() ? *log : nullptr;
  }

  // Appends a batch and waits until it is durable; returns its base offset.
  int64_t append(PartitionLog* log, const Bytes& batch, int32_t epoch = 1) {
    auto r = log->append(batch.span(), header_of(batch), epoch);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return -1;
    auto durable = wait_durable_sync(*manager_, log, r->last_offset + 1);
    EXPECT_TRUE(durable.ok());
    expected_[r->base_offset] = stamped(batch, r->base_offset, epoch);
    return r->base_offset;
  }

  std::vector<std::vector<uint8_t>> read_all(PartitionLog* log, int64_t from = -1) {
    if (from < 0) from = log->log_start_offset();
    auto r = log->read(from, 1 << 30, true, log->high_watermark());
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? split_batches(r->records) : std::vector<std::vector<uint8_t>>{};
  }

  std::string segment_path(const std::string& partition_dir, int64_t base,
                           std::string_view suffix) {
    return dir_ / (partition_dir + "/" + format::segment_file_name(base, suffix));
  }

  std::vector<int64_t> segment_bases(const std::string& partition_dir) {
    std::vector<int64_t> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / partition_dir)) {
      if (auto b =
              format::parse_segment_file_name(e.path().filename().string(), format::kLogSuffix)) {
        out.push_back(*b);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  ManualClock clock_;
  LogConfig config_;
  std::unique_ptr<LogManager> manager_;
  std::map<int64_t, std::vector<uint8_t>> expected_;  // base offset -> stored bytes
};

TEST_F(PartitionLogTest, AppendAssignsOffsetsAndReadReturnsTheStoredBatches) {
  auto* log = create();
  EXPECT_EQ(log->log_end_offset(), 0);
  for (int i = 0; i < 10; ++i) {
    int64_t base = append(log, make_batch("b" + std::to_string(i), 3, 1000 + i), 7);
    EXPECT_EQ(base, i * 3);
  }
  EXPECT_EQ(log->log_end_offset(), 30);
  EXPECT_EQ(log->high_watermark(), 30);
  EXPECT_EQ(log->durable_offset(), 30);
  auto batches = read_all(log);
  ASSERT_EQ(batches.size(), 10u);
  for (const auto& b : batches) EXPECT_EQ(b, expected_[batch_base(b)]);
  auto records = record::decode_records(batches[4]);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ((*records)[0].offset, 12);
  EXPECT_EQ((*records)[2].value->view(), "b4-2");
  auto h = record::parse_batch_header(batches[4]);
  EXPECT_EQ(h->partition_leader_epoch, 7);
  EXPECT_GT(log->size_bytes(), 0);
}

TEST_F(PartitionLogTest, ReadFromAMidBatchOffsetReturnsTheWholeBatch) {
  auto* log = create();
  for (int i = 0; i < 4; ++i) append(log, make_batch("m", 5, 1));
  auto r = log->read(7, 1 << 20, true, log->high_watermark());
  ASSERT_TRUE(r.ok());
  auto batches = split_batches(r->records);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batch_base(batches[0]), 5);
  r = log->read(19, 1 << 20, true, log->high_watermark());
  batches = split_batches(r->records);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batch_base(batches[0]), 15);
}

TEST_F(PartitionLogTest, MaxBytesAndTheFirstBatchException) {
  auto* log = create();
  for (int i = 0; i < 5; ++i) append(log, make_batch("x", 2, 1, record::Compression::none, 500));
  size_t batch_size = expected_.begin()->second.size();
  auto r = log->read(0, batch_size / 2, true, log->high_watermark());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(split_batches(r->records).size(), 1u);  // KIP-74: one whole batch
  r = log->read(0, batch_size / 2, false, log->high_watermark());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->records.empty());
  r = log->read(0, batch_size * 2 + batch_size / 2, true, log->high_watermark());
  EXPECT_EQ(split_batches(r->records).size(), 2u);
  EXPECT_LE(r->records.size(), batch_size * 2 + batch_size / 2);
  r = log->read(0, batch_size * 5, true, log->high_watermark());
  EXPECT_EQ(split_batches(r->records).size(), 5u);
}

TEST_F(PartitionLogTest, UpperBoundAndOutOfRange) {
  auto* log = create();
  for (int i = 0; i < 5; ++i) append(log, make_batch("u", 2, 1));
  auto r = log->read(0, 1 << 20, true, 6);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(split_batches(r->records).size(), 3u);
  EXPECT_EQ(r->high_watermark, 10);
  EXPECT_EQ(r->log_end_offset, 10);
  r = log->read(6, 1 << 20, true, 6);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->records.empty());
  r = log->read(10, 1 << 20, true, 10);  // at the log end: empty, not an error
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->records.empty());
  EXPECT_EQ(log->read(11, 1 << 20, true, 10).code(), Errc::offset_out_of_range);
  EXPECT_EQ(log->read(-1, 1 << 20, true, 10).code(), Errc::offset_out_of_range);
}

TEST_F(PartitionLogTest, HighWatermarkWaitsForTheFsyncUnderFlushAlways) {
  std::atomic<int> notified{0};
  manager_->set_high_watermark_listener([&](PartitionLog*) { notified++; });
  auto* log = create();
  // Without start() nothing is synced, so nothing is visible.
  manager_.reset();
  manager_ = std::make_unique<LogManager>(fs_, dir_.path(), LogManagerOptions{});
  ASSERT_TRUE(manager_->open([this](const std::string&) { return config_; }).ok());
  manager_->set_high_watermark_listener([&](PartitionLog*) { notified++; });
  log = manager_->get("t", 0);
  auto batch = make_batch("h", 3, 1);
  auto r = log->append(batch.span(), header_of(batch), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(log->log_end_offset(), 3);
  EXPECT_EQ(log->high_watermark(), 0);
  auto read = log->read(0, 1 << 20, true, log->high_watermark());
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->records.empty());
  manager_->start();
  ASSERT_TRUE(wait_durable_sync(*manager_, log, 3).ok());
  EXPECT_EQ(log->high_watermark(), 3);
  EXPECT_GE(notified.load(), 1);
}

TEST_F(PartitionLogTest, FlushNeverAndIntervalExposeAtOnceAndAckAtOnce) {
  config_.flush_mode = FlushMode::never;
  auto* log = create();
  auto batch = make_batch("n", 2, 1);
  auto r = log->append(batch.span(), header_of(batch), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(log->high_watermark(), 2);
  EXPECT_TRUE(wait_durable_sync(*manager_, log, 2).ok());
  config_.flush_mode = FlushMode::interval;
  config_.flush_interval_ms = 10;
  log->update_config(config_);
  r = log->append(batch.span(), header_of(batch), 0);
  ASSERT_TRUE(r.ok());
  clock_.advance(20);
  for (int i = 0; i < 200 && log->durable_offset() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(log->durable_offset(), 4);
}

TEST_F(PartitionLogTest, LogAppendTimeIsStampedAndReturned) {
  config_.log_append_time = true;
  auto* log = create();
  auto batch = make_batch("l", 2, 5);
  auto r = log->append(batch.span(), header_of(batch), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->log_append_time_ms, clock_.now->load());
  ASSERT_TRUE(wait_durable_sync(*manager_, log, 2).ok());
  auto batches = read_all(log);
  ASSERT_EQ(batches.size(), 1u);
  auto h = record::check_batch(batches[0]);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->has_log_append_time());
  EXPECT_EQ(h->max_timestamp, clock_.now->load());
}

TEST_F(PartitionLogTest, RollsBySizeAndIndexLookupWorksAcrossManySegments) {
  config_.segment_bytes = 1000;
  config_.index_interval_bytes = 300;
  auto* log = create();
  std::vector<int64_t> bases;
  for (int i = 0; i < 60; ++i)
    bases.push_back(append(log, make_batch("s", 1 + i % 4, i, record::Compression::none, 40)));
  EXPECT_GT(log->segment_count(), 10u);
  EXPECT_GT(segment_bases("t-0").size(), 10u);
  // Every offset finds the batch that contains it.
  for (int64_t offset = 0; offset < log->log_end_offset(); ++offset) {
    auto r = log->read(offset, 1, true, log->high_watermark());
    ASSERT_TRUE(r.ok());
    auto batches = split_batches(r->records);
    ASSERT_EQ(batches.size(), 1u) << offset;
    auto h = record::parse_batch_header(batches[0]);
    EXPECT_LE(h->base_offset, offset);
    EXPECT_GE(h->last_offset(), offset);
  }
  // A large read crosses segment boundaries and returns everything in order.
  auto batches = read_all(log);
  ASSERT_EQ(batches.size(), 60u);
  for (size_t i = 0; i < batches.size(); ++i) EXPECT_EQ(batch_base(batches[i]), bases[i]);
  // Rolled segments got their index files.
  for (int i = 0; i < 100 && !std::filesystem::exists(segment_path("t-0", 0, format::kIndexSuffix));
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(std::filesystem::exists(segment_path("t-0", 0, format::kIndexSuffix)));
  EXPECT_TRUE(std::filesystem::exists(segment_path("t-0", 0, format::kTimeIndexSuffix)));
}

TEST_F(PartitionLogTest, RollsByTime) {
  config_.segment_ms = 1000;
  auto* log = create();
  append(log, make_batch("a", 1, 1));
  append(log, make_batch("b", 1, 1));
  EXPECT_EQ(log->segment_count(), 1u);
  clock_.advance(1000);
  append(log, make_batch("c", 1, 1));
  EXPECT_EQ(log->segment_count(), 2u);
  EXPECT_EQ(segment_bases("t-0"), (std::vector<int64_t>{0, 2}));
}

TEST_F(PartitionLogTest, OffsetForTimestamp) {
  config_.segment_bytes = 600;
  config_.index_interval_bytes = 100;
  auto* log = create();
  // Batch i holds records with timestamps 1000*i + 0..3.
  for (int i = 0; i < 20; ++i) append(log, make_batch("ts", 4, 1000 * i));
  EXPECT_GT(log->segment_count(), 3u);
  EXPECT_EQ(offset_of(log->offset_for_timestamp(0)), 0);
  EXPECT_EQ(offset_of(log->offset_for_timestamp(5000)), 20);
  EXPECT_EQ(offset_of(log->offset_for_timestamp(5002)), 22);  // inside a batch: the record
  EXPECT_EQ(offset_of(log->offset_for_timestamp(5004)), 24);  // between batches: the next one
  // The answer carries the found record's own timestamp, not the one asked for.
  EXPECT_EQ(log->offset_for_timestamp(5004), (TimestampAndOffset{6000, 24}));
  EXPECT_EQ(log->offset_for_timestamp(5002), (TimestampAndOffset{5002, 22}));
  EXPECT_EQ(offset_of(log->offset_for_timestamp(19003)), 79);
  EXPECT_EQ(offset_of(log->offset_for_timestamp(19004)), std::nullopt);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(offset_of(log->offset_for_timestamp(1000 * i + 1)), 4 * i + 1);
}

TEST_F(PartitionLogTest, RetentionByTimeDeletesWholeOldSegments) {
  config_.segment_bytes = 500;
  config_.retention_ms = 10000;
  auto* log = create();
  int64_t now = clock_.now->load();
  for (int i = 0; i < 10; ++i)
    append(log, make_batch("old", 3, now - 20000, record::Compression::none, 50));
  for (int i = 0; i < 10; ++i)
    append(log, make_batch("new", 3, now, record::Compression::none, 50));
  size_t before = log->segment_count();
  auto deleted = manager_->run_retention_now();
  ASSERT_TRUE(deleted.ok());
  EXPECT_GT(*deleted, 0);
  EXPECT_EQ(log->segment_count(), before - size_t(*deleted));
  EXPECT_GT(log->log_start_offset(), 0);
  EXPECT_LE(log->log_start_offset(), 30);  // no new record was deleted
  EXPECT_EQ(log->read(0, 100, true, log->high_watermark()).code(), Errc::offset_out_of_range);
  auto batches = read_all(log);
  EXPECT_EQ(batch_base(batches.front()), log->log_start_offset());
  EXPECT_EQ(batch_base(batches.back()), 57);
  EXPECT_FALSE(std::filesystem::exists(segment_path("t-0", 0, format::kLogSuffix)));
  // Persisted: survives a restart.
  int64_t start = log->log_start_offset();
  reopen();
  EXPECT_EQ(manager_->get("t", 0)->log_start_offset(), start);
}

TEST_F(PartitionLogTest, RetentionBySize) {
  config_.segment_bytes = 500;
  config_.retention_ms = -1;
  config_.retention_bytes = 1500;
  auto* log = create();
  for (int i = 0; i < 30; ++i) append(log, make_batch("s", 2, 1, record::Compression::none, 60));
  ASSERT_GT(log->size_bytes(), 3000);
  ASSERT_TRUE(manager_->run_retention_now().ok());
  EXPECT_LE(log->size_bytes(), 1500 + 500);
  EXPECT_GE(log->size_bytes(), 1500 - 500);
  EXPECT_EQ(log->log_end_offset(), 60);
}

TEST_F(PartitionLogTest, DeleteRecordsAdvancesTheLogStartDurably) {
  config_.segment_bytes = 400;
  auto* log = create();
  for (int i = 0; i < 20; ++i) append(log, make_batch("d", 2, 1, record::Compression::none, 40));
  auto r = log->delete_records_before(13);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 13);
  EXPECT_EQ(log->log_start_offset(), 13);
  EXPECT_EQ(log->read(12, 100, true, 40).code(), Errc::offset_out_of_range);
  auto read = log->read(13, 1 << 20, true, 40);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(batch_base(split_batches(read->records).front()), 12);  // the batch containing 13
  EXPECT_EQ(*log->delete_records_before(5), 13);                    // below the start: no-op
  EXPECT_EQ(log->delete_records_before(41).code(), Errc::offset_out_of_range);
  EXPECT_LT(segment_bases("t-0").front(), 13);
  EXPECT_GT(segment_bases("t-0").front(), 0);
  reopen();  // crash: the checkpoint keeps the start
  log = manager_->get("t", 0);
  EXPECT_EQ(log->log_start_offset(), 13);
  EXPECT_EQ(*log->delete_records_before(-1), 40);  // -1 = high watermark
  reopen(true);
  EXPECT_EQ(manager_->get("t", 0)->log_start_offset(), 40);
  EXPECT_EQ(manager_->get("t", 0)->log_end_offset(), 40);
}

TEST_F(PartitionLogTest, RecoveryCutsATruncatedTail) {
  config_.segment_bytes = 1000;
  auto* log = create();
  for (int i = 0; i < 12; ++i) append(log, make_batch("r", 3, i, record::Compression::lz4, 30));
  int64_t end = log->log_end_offset();
  auto bases = segment_bases("t-0");
  std::string last = segment_path("t-0", bases.back(), format::kLogSuffix);
  auto size = std::filesystem::file_size(last);
  manager_.reset();                              // crash
  std::filesystem::resize_file(last, size - 7);  // a torn last batch
  {
    // ... past the recovery point (a crash before the next checkpoint).
    std::ofstream ckpt(dir_ / std::string(format::kRecoveryPointCheckpointFile), std::ios::trunc);
    ckpt << "0\n1\nt 0 " << bases.back() << "\n";
  }
  reopen();
  log = manager_->get("t", 0);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->log_end_offset(), end - 3);
  auto batches = read_all(log);
  ASSERT_EQ(batches.size(), 11u);
  for (const auto& b : batches) EXPECT_EQ(b, expected_[batch_base(b)]);
  // Appends continue from the recovered end.
  EXPECT_EQ(append(log, make_batch("again", 1, 1)), end - 3);
}

// Damaged segments other than a torn tail: recovery_test.cc.

TEST_F(PartitionLogTest, CleanShutdownSkipsRecoveryAndTheMarkerIsRemoved) {
  config_.segment_bytes = 1000;
  auto* log = create();
  for (int i = 0; i < 20; ++i)
    append(log, make_batch("k", 2, 100 + i, record::Compression::none, 30));
  reopen(true);
  std::string marker = dir_ / std::string(format::kCleanShutdownFile);
  EXPECT_FALSE(std::filesystem::exists(marker));  // open() removed it
  log = manager_->get("t", 0);
  EXPECT_EQ(log->log_end_offset(), 40);
  auto batches = read_all(log);
  ASSERT_EQ(batches.size(), 20u);
  for (const auto& b : batches) EXPECT_EQ(b, expected_[batch_base(b)]);
  EXPECT_EQ(offset_of(log->offset_for_timestamp(110)), 19);  // batch 9 holds 109 and 110
  // Every segment has index files after a clean shutdown.
  for (auto base : segment_bases("t-0")) {
    EXPECT_TRUE(std::filesystem::exists(segment_path("t-0", base, format::kIndexSuffix)));
  }
  // With the marker the tail is trusted (no CRC scan): a corrupted byte in a
  // payload goes unnoticed, as in Kafka. Without it, recovery finds it, below
  // the recovery point: a disk fault, so the partition goes offline and
  // nothing is cut (recovery_test.cc).
  ASSERT_TRUE(manager_->shutdown().ok());
  manager_.reset();
  ASSERT_TRUE(std::filesystem::exists(marker));
  auto bases = segment_bases("t-0");
  std::string last = segment_path("t-0", bases.back(), format::kLogSuffix);
  auto size = std::filesystem::file_size(last);
  {
    std::fstream f(last, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(size - 2));
    f.put('!');
  }
  reopen();
  EXPECT_EQ(manager_->get("t", 0)->log_end_offset(), 40);
  manager_.reset();  // crash: no marker now
  reopen();
  EXPECT_TRUE(manager_->get("t", 0)->offline());
  EXPECT_EQ(std::filesystem::file_size(last), size);
}

TEST_F(PartitionLogTest, CreateRemoveAndReload) {
  auto* a = create("alpha", 0);
  create("alpha", 1);
  create("my-topic", 3);
  EXPECT_EQ(manager_->create("alpha", 0, config_).code(), Errc::already_exists);
  EXPECT_EQ(manager_->create("bad/name", 0, config_).code(), Errc::invalid_argument);
  append(a, make_batch("x", 1, 1));
  EXPECT_EQ(manager_->all().size(), 3u);
  ASSERT_TRUE(manager_->remove("alpha", 1).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "alpha-1"));
  EXPECT_EQ(manager_->get("alpha", 1), nullptr);
  EXPECT_EQ(manager_->remove("alpha", 1).code(), Errc::not_found);
  reopen();
  EXPECT_EQ(manager_->all().size(), 2u);
  ASSERT_NE(manager_->get("my-topic", 3), nullptr);
  EXPECT_EQ(manager_->get("alpha", 0)->log_end_offset(), 1);
}

TEST_F(PartitionLogTest, ConcurrentReadsDuringAppendsRollsAndRetention) {
  config_.segment_bytes = 3000;
  config_.retention_bytes = 20000;
  config_.retention_ms = -1;
  config_.index_interval_bytes = 256;
  config_.flush_mode = FlushMode::never;
  auto* log = create();
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    std::mt19937 rng(1);
    while (!done.load()) {
      int64_t start = log->log_start_offset();
      int64_t hw = log->high_watermark();
      if (hw <= start) continue;
      int64_t offset = start + int64_t(rng() % uint64_t(hw - start));
      auto r = log->read(offset, 1 + rng() % 5000, true, hw);
      if (!r.ok()) {
        // Retention may delete the segment between the two calls.
        ASSERT_EQ(r.code(), Errc::offset_out_of_range);
        continue;
      }
      auto batches = split_batches(r->records);
      ASSERT_FALSE(batches.empty());
      auto first = record::parse_batch_header(batches[0]);
      ASSERT_LE(first->base_offset, offset);
      ASSERT_GE(first->last_offset(), offset);
      int64_t next = first->base_offset;
      for (const auto& b : batches) {
        auto h = record::parse_batch_header(b);
        ASSERT_EQ(h->base_offset, next);  // contiguous, no gaps
        ASSERT_LT(h->base_offset, hw);
        next = h->last_offset() + 1;
      }
      reads++;
    }
  });
  std::thread retention([&] {
    while (!done.load()) {
      (void)manager_->run_retention_now();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (int i = 0; i < 3000; ++i) {
    auto batch = make_batch("c", 1 + i % 3, i, record::Compression::none, 20 + i % 50);
    ASSERT_TRUE(log->append(batch.span(), header_of(batch), 0).ok());
    if (i == 1500) {
      // Halfway, let the reader catch up with the appends (on a loaded
      // machine it may not have been scheduled yet), so that reads really
      // overlap appends, rolls and retention.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (reads.load() < 10 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  done = true;
  reader.join();
  retention.join();
  EXPECT_GT(reads.load(), 0);
  // Rolled segments become deletable once the flusher synced them.
  for (int i = 0; i < 500 && log->size_bytes() > 20000 + 3000; ++i) {
    ASSERT_TRUE(manager_->run_retention_now().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(log->log_start_offset(), 0);
  EXPECT_LE(log->size_bytes(), 20000 + 3000);
}

}  // namespace
}  // namespace holdfast::storage
