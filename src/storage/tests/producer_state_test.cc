// Idempotent producer state: the sequence / epoch rules (Kafka 2.5+ with
// KIP-360), the five-batch window, and its persistence (snapshots at roll,
// replay at load, power loss mid-snapshot).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <limits>
#include <mutex>

#include "io/fault_injection_file_system.h"
#include "storage/format.h"
#include "storage/producer_state.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::storage {
namespace {

using namespace testing;

constexpr int32_t kMaxSeq = std::numeric_limits<int32_t>::max();

// A client batch of `count` records from producer (id, epoch) starting at `seq`.
Bytes producer_batch(int64_t id, int16_t epoch, int32_t seq, int count = 1,
                     const std::string& tag = "m", int64_t ts = 1000) {
  record::BatchBuilder builder;
  builder.set_producer(id, epoch, seq);
  for (int i = 0; i < count; ++i) builder.add(std::nullopt, tag + "-" + std::to_string(i), ts + i);
  return builder.build();
}

// ---------------------------------------------------------------- rules (table only)

class ProducerRulesTest : public ::testing::Test {
 protected:
  // Checks and, if new, records the batch at the next offset. Returns the
  // check's outcome.
  StorageResult<std::optional<ProducerBatch>> offer(int16_t epoch, int32_t seq, int count = 1,
                                                    int64_t id = 7) {
    auto header = header_of(producer_batch(id, epoch, seq, count));
    auto checked = table_.check(header);
    if (checked && !checked->has_value()) {
      header.base_offset = next_offset_;
      table_.record(header, 5000);
      next_offset_ += count;
    }
    return checked;
  }
  bool accepted(int16_t epoch, int32_t seq, int count = 1) {
    auto r = offer(epoch, seq, count);
    return r.ok() && !r->has_value();
  }

  ProducerStateTable table_;
  int64_t next_offset_ = 0;
};

TEST_F(ProducerRulesTest, InSequenceBatchesAreAcceptedAndRemembered) {
  EXPECT_TRUE(accepted(0, 0, 3));
  EXPECT_TRUE(accepted(0, 3, 2));
  EXPECT_TRUE(accepted(0, 5, 1));
  const ProducerEntry* e = table_.find(7);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->epoch, 0);
  EXPECT_EQ(e->last_sequence(), 5);
  ASSERT_EQ(e->batches.size(), 3u);
  EXPECT_EQ(e->batches[1], (ProducerBatch{3, 4, 3, 4, 1001}));
}

TEST_F(ProducerRulesTest, RetryOfAnyOfTheLastFiveIsADuplicateWithItsOriginalOffsets) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(accepted(0, i * 2, 2));
  for (int i = 0; i < 5; ++i) {
    auto r = offer(0, i * 2, 2);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->has_value()) << "batch " << i;
    EXPECT_EQ((*r)->base_offset, i * 2);
    EXPECT_EQ((*r)->last_offset, i * 2 + 1);
  }
  EXPECT_EQ(next_offset_, 10);  // nothing recorded twice
}

TEST_F(ProducerRulesTest, SixthOldestRetryIsNotDeduplicatedButOutOfOrder) {
  // Kafka keeps five batches; a retry of an older one cannot be told from a
  // gap: OUT_OF_ORDER_SEQUENCE_NUMBER (never a silent re-append).
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(accepted(0, i));
  auto oldest = offer(0, 0);
  ASSERT_FALSE(oldest.ok());
  EXPECT_EQ(oldest.code(), Errc::out_of_order_sequence);
  auto fifth = offer(0, 1);  // still in the window
  ASSERT_TRUE(fifth.ok());
  ASSERT_TRUE(fifth->has_value());
  EXPECT_EQ((*fifth)->base_offset, 1);
}

TEST_F(ProducerRulesTest, DuplicateNeedsTheExactSequenceRange) {
  ASSERT_TRUE(accepted(0, 0, 4));
  auto overlapping = offer(0, 0, 2);  // same first sequence, different last
  ASSERT_FALSE(overlapping.ok());
  EXPECT_EQ(overlapping.code(), Errc::out_of_order_sequence);
}

TEST_F(ProducerRulesTest, GapIsOutOfOrder) {
  ASSERT_TRUE(accepted(0, 0));
  auto gap = offer(0, 2);
  ASSERT_FALSE(gap.ok());
  EXPECT_EQ(gap.code(), Errc::out_of_order_sequence);
  EXPECT_TRUE(accepted(0, 1));  // the gap did not change anything
}

TEST_F(ProducerRulesTest, OlderEpochIsInvalidProducerEpochEvenForARetry) {
  ASSERT_TRUE(accepted(0, 0));
  ASSERT_TRUE(accepted(1, 0));
  auto old = offer(0, 1);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.code(), Errc::invalid_producer_epoch);
  auto old_retry = offer(0, 0);  // was written under epoch 0, but epoch 1 replaced it
  ASSERT_FALSE(old_retry.ok());
  EXPECT_EQ(old_retry.code(), Errc::invalid_producer_epoch);
}

TEST_F(ProducerRulesTest, NewEpochMustStartAtZeroAndForgetsTheOldBatches) {
  ASSERT_TRUE(accepted(0, 0));
  ASSERT_TRUE(accepted(0, 1));
  auto bad = offer(1, 2);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), Errc::out_of_order_sequence);
  ASSERT_TRUE(accepted(1, 0));
  EXPECT_EQ(table_.find(7)->batches.size(), 1u);
  EXPECT_TRUE(accepted(1, 1));
}

TEST_F(ProducerRulesTest, SequenceWrapsFromIntMaxToZero) {
  EXPECT_EQ(increment_sequence(kMaxSeq, 1), 0);
  EXPECT_EQ(increment_sequence(kMaxSeq - 1, 3), 1);
  EXPECT_EQ(increment_sequence(5, 3), 8);
  // Unknown producer: any first sequence (KIP-360); then the chain wraps.
  ASSERT_TRUE(accepted(0, kMaxSeq - 2, 2));  // kMax-2 .. kMax-1
  ASSERT_TRUE(accepted(0, kMaxSeq, 2));      // kMax .. 0: a batch spanning the wrap
  EXPECT_EQ(table_.find(7)->last_sequence(), 0);
  auto retry = offer(0, kMaxSeq, 2);
  ASSERT_TRUE(retry.ok());
  ASSERT_TRUE(retry->has_value());
  EXPECT_EQ((*retry)->base_offset, 2);
  ASSERT_TRUE(accepted(0, 1));
  auto stale = offer(0, kMaxSeq - 5);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.code(), Errc::out_of_order_sequence);
}

TEST_F(ProducerRulesTest, LastSequenceIntMaxIsFollowedOnlyByZero) {
  ASSERT_TRUE(accepted(0, kMaxSeq - 1, 2));  // ends at kMax
  auto big = offer(0, kMaxSeq);  // "kMax + 1" without the wrap
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.code(), Errc::out_of_order_sequence);
  EXPECT_TRUE(accepted(0, 0));
}

TEST_F(ProducerRulesTest, UnknownProducerMayStartAnywhere) {
  // KIP-360 (Kafka 2.5+): no state → any sequence, no UNKNOWN_PRODUCER_ID.
  EXPECT_TRUE(accepted(3, 1234));
  EXPECT_TRUE(accepted(3, 1235));
}

TEST_F(ProducerRulesTest, ProducersAreIndependent) {
  ASSERT_TRUE(accepted(0, 0));
  auto other = offer(0, 0, 1, /*id=*/8);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  EXPECT_EQ(table_.size(), 2u);
}

TEST_F(ProducerRulesTest, ExpirationSparesTheLatestBatchsProducer) {
  ASSERT_TRUE(accepted(0, 0));              // producer 7, recorded at t=5000
  ASSERT_TRUE(offer(0, 0, 1, 8).ok());      // producer 8, also t=5000
  EXPECT_EQ(table_.expire(5000 + 999, 1000, 8), 0u);  // not idle long enough
  EXPECT_EQ(table_.expire(5000 + 1000, 1000, 8), 1u);
  EXPECT_EQ(table_.find(7), nullptr);
  EXPECT_NE(table_.find(8), nullptr);       // its batch is the latest in the log
  // After expiry the producer is unknown again: any sequence is accepted.
  EXPECT_TRUE(accepted(0, 42));
}

TEST_F(ProducerRulesTest, SnapshotRoundTripsAndRejectsCorruption) {
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(accepted(0, i, 1));
  ASSERT_TRUE(offer(2, 0, 3, 99).ok());
  auto bytes = table_.encode_snapshot(next_offset_);
  auto decoded = ProducerStateTable::decode_snapshot(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->offset, next_offset_);
  ASSERT_NE(decoded->table.find(7), nullptr);
  EXPECT_EQ(*decoded->table.find(7), *table_.find(7));
  EXPECT_EQ(*decoded->table.find(99), *table_.find(99));
  for (size_t cut : {size_t(0), size_t(5), bytes.size() - 1}) {
    auto torn = ProducerStateTable::decode_snapshot(std::span(bytes).first(cut));
    EXPECT_FALSE(torn.ok()) << "cut at " << cut;
  }
  auto flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  EXPECT_EQ(ProducerStateTable::decode_snapshot(flipped).code(), Errc::corrupt);
}

// ---------------------------------------------------------------- in the log

class IdempotentLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.segment_bytes = 1024;  // a roll every few batches
    config_.index_interval_bytes = 128;
    reopen();
  }

  void reopen(bool clean = false) {
    log_ = nullptr;
    if (manager_ && clean) {
      ASSERT_TRUE(manager_->shutdown().ok());
    }
    manager_.reset();
    LogManagerOptions options;
    options.producer_id_expiration_ms = 1000;
    options.producer_id_expiration_check_interval_ms = 1LL << 40;  // by hand only
    manager_ = std::make_unique<LogManager>(*fs_, dir_.path(), options);
    manager_->set_clock(clock_.fn());
    auto r = manager_->open([this](const std::string&) { return config_; });
    ASSERT_TRUE(r.ok()) << r.error().message;
    manager_->start();
    log_ = manager_->get("t", 0);
    if (!log_) {
      auto created = manager_->create("t", 0, config_);
      ASSERT_TRUE(created.ok()) << created.error().message;
      log_ = *created;
    }
  }

  StorageResult<AppendResult> send(int64_t id, int16_t epoch, int32_t seq, int count = 1,
                                   const std::string& tag = "m") {
    auto batch = producer_batch(id, epoch, seq, count, tag + std::to_string(seq));
    auto r = log_->append(batch.span(), header_of(batch), 0);
    if (r.ok()) {
      auto durable = wait_durable_sync(*manager_, log_, r->last_offset + 1);
      if (!durable.ok()) return durable.error();
    }
    return r;
  }
  // Sends seq [0, n) one record each and returns nothing; asserts success.
  void send_many(int64_t id, int16_t epoch, int32_t from, int32_t to) {
    for (int32_t s = from; s < to; ++s) {
      auto r = send(id, epoch, s);
      ASSERT_TRUE(r.ok()) << r.error().message;
      ASSERT_FALSE(r->duplicate);
    }
  }
  std::vector<std::string> snapshot_files() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "t-0")) {
      if (e.path().extension() == ".snapshot") out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem posix_;
  io::FileSystem* fs_ = &posix_;
  ManualClock clock_;
  LogConfig config_;
  std::unique_ptr<LogManager> manager_;
  PartitionLog* log_ = nullptr;
};

TEST_F(IdempotentLogTest, DuplicateIsNotWrittenAndGetsTheOriginalOffsets) {
  ASSERT_TRUE(send(1, 0, 0, 3).ok());
  auto first = send(1, 0, 3, 2);
  ASSERT_TRUE(first.ok());
  int64_t end = log_->log_end_offset();
  auto again = send(1, 0, 3, 2);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->base_offset, first->base_offset);
  EXPECT_EQ(again->last_offset, first->last_offset);
  EXPECT_EQ(log_->log_end_offset(), end);
  auto gap = send(1, 0, 9);
  ASSERT_FALSE(gap.ok());
  EXPECT_EQ(gap.code(), Errc::out_of_order_sequence);
  EXPECT_EQ(log_->log_end_offset(), end);
}

TEST_F(IdempotentLogTest, NonIdempotentBatchesAreNeverDeduplicated) {
  auto batch = make_batch("plain", 2, 1000);
  auto a = log_->append(batch.span(), header_of(batch), 0);
  auto b = log_->append(batch.span(), header_of(batch), 0);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(b->duplicate);
  EXPECT_EQ(b->base_offset, 2);
}

TEST_F(IdempotentLogTest, StateSurvivesDeleteRecordsLikeKafka) {
  // KAFKA-7190 / KIP-360: the broker keeps the producer's state when its
  // batches are deleted, so the producer continues without any error and a
  // retry is still recognised. (Kafka < 2.4 answered UNKNOWN_PRODUCER_ID here.)
  send_many(1, 0, 0, 30);
  ASSERT_GT(log_->segment_count(), 2u);
  auto deleted = log_->delete_records_before(-1);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, log_->log_end_offset());
  auto retry = send(1, 0, 29);
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->base_offset, 29);
  auto gap = send(1, 0, 31);
  ASSERT_FALSE(gap.ok());
  EXPECT_EQ(gap.code(), Errc::out_of_order_sequence);
  auto next = send(1, 0, 30);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_FALSE(next->duplicate);
  // ... and it survives a restart too: the snapshot at the first remaining
  // segment holds it.
  reopen();
  auto after = send(1, 0, 31);
  ASSERT_TRUE(after.ok()) << after.error().message;
  auto gap2 = send(1, 0, 40);
  EXPECT_EQ(gap2.code(), Errc::out_of_order_sequence);
}

TEST_F(IdempotentLogTest, StateSurvivesRetentionAndExpiresOnlyByTime) {
  config_.retention_ms = 10;
  log_->update_config(config_);
  send_many(1, 0, 0, 20);
  send_many(2, 0, 0, 1);  // producer 2 wrote the latest batch
  clock_.advance(1'000'000'000);  // everything is past retention
  ASSERT_TRUE(manager_->run_retention_now().ok());
  EXPECT_GT(log_->log_start_offset(), 0);
  ASSERT_TRUE(log_->producer_state(1).has_value());  // retention did not drop it
  // Idle beyond producer.id.expiration.ms: producer 1 goes, producer 2 (the
  // latest batch in the log) stays.
  EXPECT_EQ(manager_->expire_producers_now(), 1u);
  EXPECT_FALSE(log_->producer_state(1).has_value());
  EXPECT_TRUE(log_->producer_state(2).has_value());
  // Lost state (Kafka 2.5+): the next sequence is simply accepted.
  auto r = send(1, 0, 20);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->duplicate);
}

TEST_F(IdempotentLogTest, StateIsRebuiltByReplayWithoutSnapshots) {
  config_.segment_bytes = 1 << 20;  // no roll, so no snapshot
  log_->update_config(config_);
  send_many(1, 0, 0, 8);
  send_many(2, 3, 100, 103);
  ASSERT_TRUE(snapshot_files().empty());
  auto before1 = log_->producer_state(1);
  reopen();  // crash: no clean-shutdown snapshot
  EXPECT_TRUE(snapshot_files().empty());
  auto after1 = log_->producer_state(1);
  ASSERT_TRUE(after1.has_value());
  EXPECT_EQ(after1->batches, before1->batches);
  auto dup = send(2, 3, 102);
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, 10);
  EXPECT_EQ(send(1, 0, 2).code(), Errc::out_of_order_sequence);  // 6th oldest
  EXPECT_TRUE(send(1, 0, 8).ok());
}

TEST_F(IdempotentLogTest, SnapshotsAtRollLimitTheReplayAndGiveTheSameState) {
  send_many(1, 0, 0, 40);
  send_many(2, 1, 0, 5);
  // Snapshots are written by the flusher after each rolled segment is synced.
  auto files = snapshot_files();
  ASSERT_GE(files.size(), 2u);
  for (const auto& f : files) {
    auto offset = format::parse_segment_file_name(f, format::kSnapshotSuffix);
    ASSERT_TRUE(offset.has_value()) << f;
    EXPECT_TRUE(std::filesystem::exists(
        dir_ / ("t-0/" + format::segment_file_name(*offset, format::kLogSuffix))))
        << "a snapshot is taken exactly at a segment roll: " << f;
  }
  auto before1 = log_->producer_state(1);
  auto before2 = log_->producer_state(2);
  reopen();
  EXPECT_EQ(log_->producer_state(1)->batches, before1->batches);
  EXPECT_EQ(log_->producer_state(2)->batches, before2->batches);
  EXPECT_EQ(log_->producer_state(2)->epoch, 1);
  // A clean shutdown writes a snapshot at the log end: nothing to replay.
  reopen(/*clean=*/true);
  auto end_name = format::segment_file_name(log_->log_end_offset(), format::kSnapshotSuffix);
  auto names = snapshot_files();
  EXPECT_NE(std::find(names.begin(), names.end(), end_name), names.end());
  EXPECT_EQ(log_->producer_state(1)->batches, before1->batches);
  auto dup = send(1, 0, 39);
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, 39);
}

TEST_F(IdempotentLogTest, CorruptOrFutureSnapshotsAreIgnoredAndTheLogIsReplayed) {
  send_many(1, 0, 0, 40);
  auto before = log_->producer_state(1);
  auto files = snapshot_files();
  ASSERT_FALSE(files.empty());
  // Damage the newest snapshot and plant one beyond the log end.
  {
    std::string newest = dir_ / ("t-0/" + files.back());
    auto size = std::filesystem::file_size(newest);
    std::filesystem::resize_file(newest, size - 3);
    std::filesystem::copy_file(dir_ / ("t-0/" + files.front()),
                               dir_ / ("t-0/" + format::segment_file_name(
                                                    1'000'000, format::kSnapshotSuffix)));
  }
  reopen();
  EXPECT_EQ(log_->producer_state(1)->batches, before->batches);
  auto names = snapshot_files();
  EXPECT_EQ(std::find(names.begin(), names.end(), files.back()), names.end())
      << "the corrupt snapshot is removed";
  EXPECT_EQ(std::find(names.begin(), names.end(),
                      format::segment_file_name(1'000'000, format::kSnapshotSuffix)),
            names.end());
  EXPECT_TRUE(send(1, 0, 40).ok());
}

// Forwards to a FaultInjectionFileSystem and, once armed, halts it at one
// step of writing a producer snapshot of offset >= the armed offset: 0 before
// creating the .tmp file, 1 before appending to it, 2 before syncing it, 3
// before renaming it into place, 4 before syncing the directory. The test waits
// until the halt happened, so every step is hit deterministically (no sleeps).
class SnapshotStepTrap final : public io::FileSystem {
 public:
  explicit SnapshotStepTrap(io::FaultInjectionFileSystem& inner) : inner_(inner) {}

  void arm(int step, int64_t min_offset) {
    std::lock_guard lock(mu_);
    step_ = step;
    min_offset_ = min_offset;
    armed_ = true;
  }
  bool wait_sprung(std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [this] { return sprung_; });
  }

  io::IoResult<std::unique_ptr<io::File>> open(const std::string& path,
                                               io::OpenMode mode) override {
    bool watched = false;
    {
      std::lock_guard lock(mu_);
      if (armed_ && is_target_tmp(path)) {
        target_ = path;
        watched = true;
      }
    }
    if (watched) spring_at(0);
    auto file = inner_.open(path, mode);
    if (!file) return file.error();
    return std::unique_ptr<io::File>(new TrappedFile(*this, std::move(*file), watched));
  }
  io::IoResult<void> rename(const std::string& from, const std::string& to) override {
    bool watched;
    {
      std::lock_guard lock(mu_);
      watched = armed_ && from == target_;
      if (watched) renamed_dir_ = io::parent_dir(to);
    }
    if (watched) spring_at(3);
    return inner_.rename(from, to);
  }
  io::IoResult<void> sync_dir(const std::string& path) override {
    bool watched;
    {
      std::lock_guard lock(mu_);
      watched = armed_ && !renamed_dir_.empty() && path == renamed_dir_;
    }
    if (watched) spring_at(4);
    return inner_.sync_dir(path);
  }
  io::IoResult<void> remove(const std::string& path) override { return inner_.remove(path); }
  io::IoResult<void> remove_dir(const std::string& path) override {
    return inner_.remove_dir(path);
  }
  io::IoResult<std::vector<std::string>> list_dir(const std::string& path) override {
    return inner_.list_dir(path);
  }
  io::IoResult<void> create_dir(const std::string& path) override {
    return inner_.create_dir(path);
  }
  bool exists(const std::string& path) override { return inner_.exists(path); }
  bool is_directory(const std::string& path) override { return inner_.is_directory(path); }
  io::IoResult<uint64_t> file_size(const std::string& path) override {
    return inner_.file_size(path);
  }

 private:
  class TrappedFile final : public io::File {
   public:
    TrappedFile(SnapshotStepTrap& trap, std::unique_ptr<io::File> inner, bool watched)
        : trap_(trap), inner_(std::move(inner)), watched_(watched) {}
    const std::string& path() const override { return inner_->path(); }
    io::IoResult<size_t> read_at(uint64_t offset, std::span<uint8_t> out) const override {
      return inner_->read_at(offset, out);
    }
    io::IoResult<void> append(std::span<const uint8_t> data) override {
      if (watched_) trap_.spring_at(1);
      return inner_->append(data);
    }
    io::IoResult<void> sync_data() override {
      if (watched_) trap_.spring_at(2);
      return inner_->sync_data();
    }
    io::IoResult<void> sync() override {
      if (watched_) trap_.spring_at(2);
      return inner_->sync();
    }
    io::IoResult<void> truncate(uint64_t size) override { return inner_->truncate(size); }
    uint64_t size() const override { return inner_->size(); }

   private:
    SnapshotStepTrap& trap_;
    std::unique_ptr<io::File> inner_;
    bool watched_;
  };

  bool is_target_tmp(const std::string& path) const {
    const std::string suffix = std::string(format::kSnapshotSuffix) + ".tmp";
    std::string name = std::filesystem::path(path).filename().string();
    if (name.size() <= suffix.size() || !name.ends_with(suffix)) return false;
    return std::stoll(name.substr(0, name.size() - suffix.size())) >= min_offset_;
  }
  // Halts the disk if `step` is the armed one (before the call it precedes).
  void spring_at(int step) {
    {
      std::lock_guard lock(mu_);
      if (!armed_ || step != step_) return;
      armed_ = false;
    }
    inner_.halt();
    {
      std::lock_guard lock(mu_);
      sprung_ = true;
    }
    cv_.notify_all();
  }

  io::FaultInjectionFileSystem& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool sprung_ = false;
  int step_ = -1;
  int64_t min_offset_ = 0;
  std::string target_;       // the armed snapshot's .tmp file
  std::string renamed_dir_;  // set once it was renamed into place
};

// Power loss while a snapshot is being written (torn write, failed sync, or
// the disk stopping at each step of a roll's snapshot): the state after the
// restart is exactly what the durable log says.
class SnapshotPowerLossTest : public IdempotentLogTest,
                              public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    faulty_ = std::make_unique<io::FaultInjectionFileSystem>(posix_);
    trap_ = std::make_unique<SnapshotStepTrap>(*faulty_);
    fs_ = trap_.get();
    IdempotentLogTest::SetUp();
  }
  void TearDown() override {
    log_ = nullptr;
    manager_.reset();
  }
  std::unique_ptr<io::FaultInjectionFileSystem> faulty_;
  std::unique_ptr<SnapshotStepTrap> trap_;
};

TEST_P(SnapshotPowerLossTest, RestartAfterAFailedTornOrRacingSnapshotKeepsExactState) {
  const int fault = GetParam();
  send_many(1, 0, 0, 12);
  if (fault == 0) {
    // The snapshot's fsync fails: no snapshot, and the power goes.
    faulty_->fail_next_sync(1);
    EXPECT_FALSE(log_->write_producer_snapshot().ok());
  } else if (fault == 1) {
    // A good snapshot, later acknowledged batches, then a power loss that
    // tears the last (unacknowledged) write.
    ASSERT_TRUE(log_->write_producer_snapshot().ok());
    send_many(1, 0, 12, 14);
    auto batch = producer_batch(1, 0, 14, 3, "unacked");
    ASSERT_TRUE(log_->append(batch.span(), header_of(batch), 0).ok());
    faulty_->halt();
    faulty_->tear_last_write(20);
  } else {
    // A roll's snapshot is being written by the flusher when the power goes:
    // the disk stops at step fault - 2 of writing it (see SnapshotStepTrap).
    trap_->arm(fault - 2, log_->log_end_offset());
    size_t segments = log_->segment_count();
    for (int32_t seq = 12; log_->segment_count() == segments; ++seq) {
      ASSERT_TRUE(send(1, 0, seq).ok());
    }
    ASSERT_TRUE(trap_->wait_sprung(std::chrono::seconds(10)))
        << "the roll's snapshot never reached step " << fault - 2;
  }
  faulty_->halt();
  log_ = nullptr;
  manager_.reset();
  faulty_->simulate_power_loss();
  reopen();
  auto state = log_->producer_state(1);
  ASSERT_TRUE(state.has_value());
  // The durable log decides: its last batch is the producer's last sequence.
  int64_t end = log_->log_end_offset();
  EXPECT_EQ(state->last_offset(), end - 1);
  EXPECT_EQ(state->last_sequence(), int32_t(end - 1));
  if (fault == 1) {
    EXPECT_EQ(end, 14) << "the torn unacknowledged batch is gone";
  }
  auto retry = send(1, 0, int32_t(end - 1));
  ASSERT_TRUE(retry.ok()) << retry.error().message;
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(send(1, 0, int32_t(end + 1)).code(), Errc::out_of_order_sequence);
  auto next = send(1, 0, int32_t(end));
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_FALSE(next->duplicate);
}

INSTANTIATE_TEST_SUITE_P(Faults, SnapshotPowerLossTest, ::testing::Values(0, 1, 2, 3, 4, 5, 6));

}  // namespace
}  // namespace holdfast::storage
