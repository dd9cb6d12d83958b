// Transactions on the partition side: control batches, ongoing transactions
// in the producer state, the last stable offset's input (first unstable
// offset), the aborted-transaction index (.txnindex) and its recovery,
// snapshots v2 (and v1 still loading), truncation and retention.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/crc32c.h"
#include "storage/format.h"
#include "storage/tests/storage_test_util.h"
#include "storage/txn_index.h"

namespace holdfast::storage {
namespace {

using testing::ManualClock;
using testing::wait_durable_sync;

Bytes txn_batch(int64_t id, int16_t epoch, int32_t seq, int count = 1,
                bool transactional = true) {
  record::BatchBuilder builder;
  builder.set_producer(id, epoch, seq).set_transactional(transactional);
  for (int i = 0; i < count; ++i) builder.add(std::nullopt, "v" + std::to_string(seq + i), 1000 + i);
  return builder.build();
}

Bytes marker(int64_t id, int16_t epoch, bool commit, int32_t coordinator_epoch = 0) {
  return make_control_batch(id, epoch,
                            {commit ? ControlType::commit : ControlType::abort, coordinator_epoch},
                            2000);
}

TEST(TxnIndexTest, EntryIsKafkasThirtyFourByteLayout) {
  std::vector<uint8_t> bytes;
  encode_aborted_txn({0x0102030405060708, 0x10, 0x20, 0x21}, bytes);
  const std::vector<uint8_t> expected = {
      0x00, 0x00,                                      // version 0
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // producer id
      0, 0, 0, 0, 0, 0, 0, 0x10,                       // first offset
      0, 0, 0, 0, 0, 0, 0, 0x20,                       // last offset
      0, 0, 0, 0, 0, 0, 0, 0x21};                      // last stable offset
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ(bytes.size(), kTxnIndexEntrySize);
  auto decoded = decode_txn_index(bytes);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_EQ((*decoded)[0], (AbortedTxn{0x0102030405060708, 0x10, 0x20, 0x21}));
  bytes[1] = 1;  // unknown version
  EXPECT_EQ(decode_txn_index(bytes).code(), Errc::corrupt);
}

TEST(TxnIndexTest, ControlBatchHasKafkasMarkerLayout) {
  Bytes batch = marker(42, 3, /*commit=*/true, 7);
  auto header = record::check_batch(batch.span());
  ASSERT_TRUE(header.ok()) << header.error().message;  // CRC valid
  EXPECT_TRUE(header->is_control());
  EXPECT_TRUE(header->is_transactional());
  EXPECT_EQ(header->producer_id, 42);
  EXPECT_EQ(header->producer_epoch, 3);
  EXPECT_EQ(header->records_count, 1);
  auto records = record::decode_records(batch.span());
  ASSERT_TRUE(records.ok());
  const std::vector<uint8_t> key = {0, 0, 0, 1};          // version 0, type COMMIT
  const std::vector<uint8_t> value = {0, 0, 0, 0, 0, 7};  // version 0, coordinator epoch 7
  EXPECT_EQ(std::vector<uint8_t>((*records)[0].key->span().begin(), (*records)[0].key->span().end()), key);
  EXPECT_EQ(std::vector<uint8_t>((*records)[0].value->span().begin(), (*records)[0].value->span().end()),
            value);
  auto parsed = parse_control_batch(batch.span());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->type, ControlType::commit);
  EXPECT_EQ(parsed->coordinator_epoch, 7);
  // A client may not send it.
  EXPECT_FALSE(record::validate_produced_batch(batch.span(), {1 << 20, true}).ok());
}

// ---------------------------------------------------------------- snapshots

TEST(TxnSnapshotTest, OngoingTransactionRoundTrips) {
  ProducerStateTable table;
  auto h = *record::parse_batch_header(txn_batch(5, 1, 0).span());
  h.base_offset = 10;
  table.record(h, 100);
  auto bytes = table.encode_snapshot(20);
  auto decoded = ProducerStateTable::decode_snapshot(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->version, format::kSnapshotVersion);
  ASSERT_NE(decoded->table.find(5), nullptr);
  EXPECT_EQ(decoded->table.find(5)->current_txn_first_offset, 10);
  EXPECT_EQ(*decoded->table.find(5), *table.find(5));
  EXPECT_EQ(decoded->table.first_ongoing_offset(), 10);
}

TEST(TxnSnapshotTest, VersionOneStillLoads) {
  // A v1 snapshot (before transactions): one producer with one batch.
  std::vector<uint8_t> v1(2 + 4);
  store_be16(v1.data(), 1);
  auto put = [&](uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) v1.push_back(uint8_t(v >> (8 * i)));
  };
  put(50, 8);   // offset
  put(1, 4);    // count
  put(9, 8);    // producer id
  put(2, 2);    // epoch
  put(123, 8);  // last update ms
  put(1, 1);    // batches
  put(0, 4), put(4, 4), put(40, 8), put(44, 8), put(999, 8);
  store_be32(v1.data() + 2, crc32c(v1.data() + 6, v1.size() - 6));
  auto decoded = ProducerStateTable::decode_snapshot(v1);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->version, 1);
  const ProducerEntry* e = decoded->table.find(9);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->epoch, 2);
  EXPECT_EQ(e->last_sequence(), 4);
  EXPECT_EQ(e->current_txn_first_offset, -1);
  EXPECT_EQ(e->coordinator_epoch, -1);
}

// ---------------------------------------------------------------- in the log

class TxnLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.segment_bytes = 400;  // a roll every few batches
    config_.index_interval_bytes = 64;
    reopen();
  }

  void reopen(bool clean = false) {
    log_ = nullptr;
    if (manager_ && clean) ASSERT_TRUE(manager_->shutdown().ok());
    manager_.reset();
    LogManagerOptions options;
    options.producer_id_expiration_ms = 1000;
    options.producer_id_expiration_check_interval_ms = 1LL << 40;
    manager_ = std::make_unique<LogManager>(fs_, dir_.path(), options);
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

  StorageResult<AppendResult> append(const Bytes& batch, PartitionLog* log = nullptr) {
    if (!log) log = log_;
    auto header = record::parse_batch_header(batch.span());
    EXPECT_TRUE(header.ok());
    auto r = log->append(batch.span(), *header, 0);
    if (r.ok()) {
      auto durable = wait_durable_sync(*manager_, log, r->last_offset + 1);
      if (!durable.ok()) return durable.error();
    }
    return r;
  }
  int64_t at(const Bytes& batch) {
    auto r = append(batch);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->base_offset : -1;
  }
  std::optional<int64_t> unstable() { return log_->first_unstable_offset(log_->high_watermark()); }
  std::filesystem::path partition_dir() { return std::filesystem::path(dir_.path()) / "t-0"; }
  std::vector<std::string> files_with(const std::string& ext) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(partition_dir())) {
      if (e.path().extension() == ext) out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  ManualClock clock_;
  LogConfig config_;
  std::unique_ptr<LogManager> manager_;
  PartitionLog* log_ = nullptr;
};

TEST_F(TxnLogTest, FirstUnstableOffsetFollowsOngoingTransactions) {
  EXPECT_EQ(unstable(), std::nullopt);
  at(testing::make_batch("plain", 2, 1000));                 // 0-1
  const int64_t t1 = at(txn_batch(1, 0, 0, 2));              // 2-3
  at(testing::make_batch("plain", 1, 1000));                 // 4
  const int64_t t2 = at(txn_batch(2, 0, 0));                 // 5
  at(txn_batch(1, 0, 2));                                    // 6: extends producer 1's
  EXPECT_EQ(t1, 2);
  EXPECT_EQ(unstable(), t1);
  EXPECT_EQ(log_->producer_state(1)->current_txn_first_offset, t1);
  // Producer 1 commits: producer 2's transaction is now the first.
  const int64_t commit = at(marker(1, 0, true));
  // Until the HW passes the marker, producer 1's transaction still counts.
  EXPECT_EQ(log_->first_unstable_offset(commit), t1);
  EXPECT_EQ(unstable(), t2);
  EXPECT_EQ(log_->producer_state(1)->current_txn_first_offset, -1);
  at(marker(2, 0, false));
  EXPECT_EQ(unstable(), std::nullopt);
  // Only the abort is indexed.
  auto aborted = log_->aborted_txns(0, log_->log_end_offset());
  ASSERT_EQ(aborted.size(), 1u);
  EXPECT_EQ(aborted[0].producer_id, 2);
  EXPECT_EQ(aborted[0].first_offset, t2);
  EXPECT_EQ(aborted[0].last_stable_offset, aborted[0].last_offset + 1);
  // The next transaction of producer 1 starts at its own first batch.
  const int64_t t3 = at(txn_batch(1, 0, 3));
  EXPECT_EQ(unstable(), t3);
}

TEST_F(TxnLogTest, MarkerChecksAreKafkas) {
  at(txn_batch(1, 3, 0));
  // An older producer epoch is refused.
  auto stale = append(marker(1, 2, true));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.code(), Errc::invalid_producer_epoch);
  // A newer coordinator epoch is fine, an older one after it is fenced.
  ASSERT_TRUE(append(marker(1, 3, false, 5)).ok());
  auto fenced = append(marker(1, 3, false, 4));
  ASSERT_FALSE(fenced.ok());
  EXPECT_EQ(fenced.code(), Errc::coordinator_fenced);
  // A marker for a producer without an ongoing transaction (or unknown) is written.
  EXPECT_TRUE(append(marker(1, 3, true, 5)).ok());
  EXPECT_TRUE(append(marker(77, 0, false)).ok());
  // A marker with a bumped epoch (a timeout abort): the producer continues
  // in that epoch from sequence 0.
  ASSERT_TRUE(append(marker(1, 4, false, 5)).ok());
  EXPECT_TRUE(append(txn_batch(1, 4, 0)).ok());
  EXPECT_FALSE(append(txn_batch(1, 3, 1)).ok());
}

TEST_F(TxnLogTest, AbortIsIndexedOnDiskAndRecoveryRebuildsEverything) {
  std::vector<AbortedTxn> expected;
  for (int round = 0; round < 6; ++round) {
    const int64_t first = at(txn_batch(1, 0, round * 2, 2));
    at(testing::make_batch("plain", 3, 1000));
    const int64_t m = at(marker(1, 0, round % 2 == 1));  // odd rounds commit
    if (round % 2 == 0) expected.push_back({1, first, m, m + 1});
  }
  const int64_t open_first = at(txn_batch(2, 0, 0));  // left ongoing
  at(testing::make_batch("plain", 1, 1000));
  ASSERT_GT(log_->segment_count(), 2u);
  EXPECT_EQ(log_->aborted_txns(0, log_->log_end_offset()), expected);
  auto files = files_with(".txnindex");
  ASSERT_FALSE(files.empty());
  size_t bytes = 0;
  for (const auto& f : files) bytes += std::filesystem::file_size(partition_dir() / f);
  EXPECT_EQ(bytes, expected.size() * kTxnIndexEntrySize);
  // A crash (no clean shutdown), a clean restart, and a restart without any
  // snapshot or .txnindex file: the same state each time.
  for (int how = 0; how < 3; ++how) {
    if (how == 2) {
      for (const auto& f : files_with(".snapshot")) std::filesystem::remove(partition_dir() / f);
      for (const auto& f : files_with(".txnindex")) std::filesystem::remove(partition_dir() / f);
    }
    reopen(/*clean=*/how == 1);
    EXPECT_EQ(log_->aborted_txns(0, log_->log_end_offset()), expected) << "restart " << how;
    EXPECT_EQ(unstable(), open_first) << "restart " << how;
    EXPECT_EQ(log_->producer_state(2)->current_txn_first_offset, open_first);
  }
  size_t rebuilt = 0;
  for (const auto& f : files_with(".txnindex")) rebuilt += std::filesystem::file_size(partition_dir() / f);
  EXPECT_EQ(rebuilt, expected.size() * kTxnIndexEntrySize) << "the files are written back";
  // The range query: only transactions overlapping [from, upper).
  auto some = log_->aborted_txns(expected[1].first_offset, expected[1].first_offset + 1);
  ASSERT_EQ(some.size(), 1u);
  EXPECT_EQ(some[0], expected[1]);
}

TEST_F(TxnLogTest, TruncationRemovesMarkersAboveThePoint) {
  const int64_t first = at(txn_batch(1, 0, 0));
  at(testing::make_batch("plain", 2, 1000));
  const int64_t m = at(marker(1, 0, false));
  ASSERT_EQ(log_->aborted_txns(0, log_->log_end_offset()).size(), 1u);
  ASSERT_TRUE(log_->truncate_to(m).ok());
  EXPECT_TRUE(log_->aborted_txns(0, log_->log_end_offset()).empty());
  EXPECT_EQ(unstable(), first) << "the transaction is open again";
  EXPECT_TRUE(files_with(".txnindex").empty());
  reopen();
  EXPECT_TRUE(log_->aborted_txns(0, log_->log_end_offset()).empty());
  EXPECT_EQ(unstable(), first);
}

TEST_F(TxnLogTest, RetentionNeverPassesAnOngoingTransaction) {
  config_.retention_ms = 10;
  log_->update_config(config_);
  at(testing::make_batch("old", 3, 1000));
  const int64_t first = at(txn_batch(1, 0, 0));
  for (int i = 0; i < 20; ++i) at(testing::make_batch("later", 3, 1000));
  ASSERT_GT(log_->segment_count(), 3u);
  clock_.advance(1'000'000'000);
  ASSERT_TRUE(manager_->run_retention_now().ok());
  EXPECT_LE(log_->log_start_offset(), first);
  EXPECT_GT(log_->segment_count(), 3u);
  // Idle producers with an ongoing transaction are not expired either.
  manager_->expire_producers_now();
  ASSERT_TRUE(log_->producer_state(1).has_value());
  at(marker(1, 0, true));
  at(testing::make_batch("last", 1, 1000));
  ASSERT_TRUE(manager_->run_retention_now().ok());
  EXPECT_GT(log_->log_start_offset(), first);
}

TEST_F(TxnLogTest, FollowerRebuildsTransactionsFromReplicatedBatches) {
  const int64_t a = at(txn_batch(1, 0, 0));
  const int64_t b = at(txn_batch(2, 0, 0));
  at(marker(1, 0, false));
  at(txn_batch(3, 0, 0));
  at(marker(3, 0, true));
  auto follower = manager_->create("t", 1, config_);
  ASSERT_TRUE(follower.ok());
  auto read = log_->read(0, 1 << 20, true, log_->log_end_offset());
  ASSERT_TRUE(read.ok());
  for (const auto& batch : testing::split_batches(read->records)) {
    auto header = record::parse_batch_header(batch);
    ASSERT_TRUE(header.ok());
    ASSERT_TRUE((*follower)->append_replicated(batch, *header).ok());
  }
  const int64_t end = log_->log_end_offset();
  EXPECT_EQ((*follower)->first_unstable_offset(end), b);
  EXPECT_EQ((*follower)->aborted_txns(0, end), log_->aborted_txns(0, end));
  ASSERT_EQ((*follower)->aborted_txns(0, end).size(), 1u);
  EXPECT_EQ((*follower)->aborted_txns(0, end)[0].first_offset, a);
}

}  // namespace
}  // namespace holdfast::storage
