// The follower side of replication in PartitionLog: append_replicated keeps
// the leader's bytes, epochs and producer state; truncate_to and
// truncate_fully_and_start_at cut the log durably (also across power losses
// at every step, see replica_truncation_crash_test.cc).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "storage/format.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::storage {
namespace {

using namespace testing;
using Entries = std::vector<EpochEntry>;
using Batches = std::vector<std::vector<uint8_t>>;

Bytes producer_batch(int64_t producer_id, int16_t epoch, int32_t sequence, int count, int64_t ts) {
  record::BatchBuilder builder;
  builder.set_producer(producer_id, epoch, sequence);
  for (int i = 0; i < count; ++i) builder.add(std::nullopt, "p-" + std::to_string(sequence + i), ts + i);
  return builder.build();
}

class ReplicaLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.segment_bytes = 600;  // a few batches per segment
    config_.index_interval_bytes = 100;
    open_manager();
  }

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
  PartitionLog* leader() { return manager_->get("leader", 0); }
  PartitionLog* follower() { return manager_->get("follower", 0); }
  void create_both() {
    ASSERT_TRUE(manager_->create("leader", 0, config_).ok());
    ASSERT_TRUE(manager_->create("follower", 0, config_).ok());
  }

  // Appends `count` 3-record batches to the leader (epoch `epoch`) and
  // returns their stored bytes.
  Batches lead(int count, int32_t epoch, int first_tag = 0) {
    EXPECT_TRUE(leader()->set_leader_epoch(epoch).ok());
    Batches out;
    for (int i = 0; i < count; ++i) {
      int tag = first_tag + i;
      auto batch = make_batch("v" + std::to_string(tag), 3, 1000 + 10 * tag,
                              record::Compression::none, 40);
      auto r = leader()->append(batch.span(), header_of(batch));
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (!r.ok()) break;
      EXPECT_TRUE(wait_durable_sync(*manager_, leader(), r->last_offset + 1).ok());
      out.push_back(stamped(batch, r->base_offset, epoch));
    }
    return out;
  }
  void replicate(const Batches& batches) {
    for (const auto& b : batches) {
      auto r = follower()->append_replicated(b, *record::parse_batch_header(b));
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(r->base_offset, batch_base(b));
      EXPECT_FALSE(r->duplicate);
    }
    if (!batches.empty()) {
      ASSERT_TRUE(wait_durable_sync(*manager_, follower(), follower()->log_end_offset()).ok());
    }
  }
  // Every stored batch from `from` on, CRCs checked.
  Batches stored(PartitionLog* log, int64_t from = -1) {
    if (from < 0) from = log->log_start_offset();
    auto r = log->read(from, 1 << 30, true, log->log_end_offset());
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return {};
    return split_batches(r->records);
  }
  std::string path(const std::string& name) const { return dir_ / ("follower-0/" + name); }
  std::string checkpoint_text() const {
    std::ifstream in(path(std::string(format::kLeaderEpochCheckpointFile)), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  std::vector<int64_t> segment_files() const {
    std::vector<int64_t> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "follower-0")) {
      if (auto b = format::parse_segment_file_name(e.path().filename().string(), format::kLogSuffix))
        out.push_back(*b);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Reads from every offset in [0, end) and offset_for_timestamp for every
  // batch agree with `expected` (the batches the log must hold).
  void expect_log_is(PartitionLog* log, const Batches& expected) {
    int64_t end = expected.empty() ? log->log_start_offset()
                                   : record::parse_batch_header(expected.back())->last_offset() + 1;
    ASSERT_EQ(log->log_end_offset(), end);
    EXPECT_EQ(stored(log), expected);
    for (size_t i = 0; i < expected.size(); ++i) {
      auto h = *record::parse_batch_header(expected[i]);
      for (int64_t o = h.base_offset; o <= h.last_offset(); ++o) {
        auto got = stored(log, o);
        ASSERT_FALSE(got.empty()) << "offset " << o;
        EXPECT_EQ(got.front(), expected[i]) << "read from offset " << o;
      }
      if (log->high_watermark() > h.last_offset()) {
        auto found = log->offset_for_timestamp(h.base_timestamp);
        ASSERT_TRUE(found.has_value()) << "timestamp " << h.base_timestamp;
        EXPECT_EQ(found->offset, h.base_offset) << "timestamp " << h.base_timestamp;
      }
    }
    // Nothing is found past the end.
    auto past = log->offset_for_timestamp(1000 + 10 * 1000);
    EXPECT_FALSE(past.has_value());
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  ManualClock clock_;
  LogConfig config_;
  std::unique_ptr<LogManager> manager_;
};

// ---------------------------------------------------------------- append_replicated

TEST_F(ReplicaLogTest, AppendReplicatedStoresTheLeadersBytesExactly) {
  config_.log_append_time = true;  // the leader stamps times; the follower must not re-stamp
  create_both();
  Batches all = lead(4, 0);
  clock_.advance(5000);
  auto later = lead(4, 3, 4);
  all.insert(all.end(), later.begin(), later.end());
  auto latest = lead(3, 7, 8);
  all.insert(all.end(), latest.begin(), latest.end());
  Batches leader_bytes = stored(leader());
  ASSERT_EQ(leader_bytes.size(), 11u);
  clock_.advance(60'000);
  replicate(leader_bytes);
  EXPECT_EQ(stored(follower()), leader_bytes);
  EXPECT_GT(follower()->segment_count(), 2u);
  EXPECT_EQ(follower()->log_end_offset(), leader()->log_end_offset());
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{0, 0}, {3, 12}, {7, 24}}));
  EXPECT_EQ(follower()->leader_epoch(), 7);
  // The checkpoint reached the disk before the batches counted as durable.
  EXPECT_EQ(checkpoint_text(), "0\n3\n0 0\n3 12\n7 24\n");
  // And after a restart (index files, recovery) the bytes are the same.
  restart_cleanly();
  EXPECT_EQ(stored(follower()), leader_bytes);
  crash();
  open_manager();
  EXPECT_EQ(stored(follower()), leader_bytes);
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{0, 0}, {3, 12}, {7, 24}}));
}

TEST_F(ReplicaLogTest, AppendReplicatedRefusesAndAppendsNothing) {
  create_both();
  Batches batches = lead(3, 2);
  replicate({batches[0], batches[1]});
  const int64_t end = follower()->log_end_offset();
  const int64_t bytes = follower()->size_bytes();
  auto refused = [&](std::vector<uint8_t> b, const record::BatchHeader& h, const char* what) {
    auto r = follower()->append_replicated(b, h);
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.code(), Errc::invalid_argument) << what;
    EXPECT_EQ(follower()->log_end_offset(), end) << what;
    EXPECT_EQ(follower()->size_bytes(), bytes) << what;
  };
  // Base offset below the log end (a batch it already has).
  refused(batches[1], *record::parse_batch_header(batches[1]), "base offset below the end");
  // A damaged batch: one record byte flipped.
  auto damaged = batches[2];
  damaged.back() ^= 0x55;
  refused(damaged, *record::parse_batch_header(batches[2]), "bad CRC");
  // A header that is not the batch's.
  auto other = *record::parse_batch_header(batches[2]);
  other.base_offset += 1;
  refused(batches[2], other, "header mismatch");
  // An epoch below the epoch of the log's last batch.
  auto stale = batches[2];
  record::stamp_batch(stale.data(), end, 1);
  refused(stale, *record::parse_batch_header(stale), "stale epoch");
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{2, 0}}));
  // The right batch is still accepted.
  replicate({batches[2]});
  EXPECT_EQ(stored(follower()), batches);
}

TEST_F(ReplicaLogTest, AnEpochThisReplicaLedWithoutWritingGivesWayToALowerOne) {
  create_both();
  Batches first = lead(2, 4);
  replicate(first);
  // This replica led epoch 5 without writing, then follows a leader that
  // still has epoch-4 batches it lacks.
  ASSERT_TRUE(follower()->set_leader_epoch(5).ok());
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{4, 0}, {5, 6}}));
  Batches more = lead(1, 4, 2);
  replicate(more);
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{4, 0}}));
  Batches newer = lead(1, 6, 3);
  replicate(newer);
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{4, 0}, {6, 9}}));
}

TEST_F(ReplicaLogTest, AFollowerThatBecomesLeaderRecognisesARetriedBatch) {
  create_both();
  ASSERT_TRUE(leader()->set_leader_epoch(1).ok());
  std::vector<Bytes> client;
  Batches replicated;
  for (int i = 0; i < 3; ++i) {
    client.push_back(producer_batch(77, 0, 2 * i, 2, 5000 + i));
    auto r = leader()->append(client.back().span(), header_of(client.back()));
    ASSERT_TRUE(r.ok()) << r.error().message;
    replicated.push_back(stamped(client.back(), r->base_offset, 1));
  }
  replicate(replicated);
  ASSERT_TRUE(follower()->producer_state(77).has_value());
  EXPECT_EQ(follower()->producer_state(77)->batches, leader()->producer_state(77)->batches);
  // Now leader: the client retries its last two batches and sends the next.
  ASSERT_TRUE(follower()->set_leader_epoch(2).ok());
  for (int i = 1; i < 3; ++i) {
    auto r = follower()->append(client[i].span(), header_of(client[i]));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->duplicate) << "batch " << i;
    EXPECT_EQ(r->base_offset, 2 * i);
    EXPECT_EQ(r->last_offset, 2 * i + 1);
  }
  auto next = producer_batch(77, 0, 6, 2, 6000);
  auto r = follower()->append(next.span(), header_of(next));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->duplicate);
  EXPECT_EQ(r->base_offset, 6);
  // A gap is still refused.
  auto gap = producer_batch(77, 0, 20, 1, 6000);
  EXPECT_EQ(follower()->append(gap.span(), header_of(gap)).code(), Errc::out_of_order_sequence);
}

// ---------------------------------------------------------------- truncate_to

TEST_F(ReplicaLogTest, TruncateInsideTheActiveSegment) {
  config_.segment_bytes = 1 << 20;  // one segment
  create_both();
  Batches batches = lead(2, 0);
  auto more = lead(2, 3, 2);
  batches.insert(batches.end(), more.begin(), more.end());
  replicate(batches);
  const size_t segments = follower()->segment_count();
  // Offset 10 lies inside the last batch [9, 11]: the whole batch goes.
  ASSERT_TRUE(follower()->truncate_to(10).ok());
  Batches kept(batches.begin(), batches.end() - 1);
  expect_log_is(follower(), kept);
  EXPECT_EQ(follower()->segment_count(), segments);
  EXPECT_EQ(segments, 1u);
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{0, 0}, {3, 6}}));
  EXPECT_LE(follower()->high_watermark(), 9);
  EXPECT_LE(follower()->durable_offset(), 9);
  // To the start of epoch 3: its entry goes too, and the file says so.
  ASSERT_TRUE(follower()->truncate_to(6).ok());
  expect_log_is(follower(), Batches(batches.begin(), batches.begin() + 2));
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{0, 0}}));
  EXPECT_EQ(checkpoint_text(), "0\n1\n0 0\n");
  // Appends continue at the new end, in a new epoch, with batches of another
  // size (index entries of the removed batches would now point into the
  // middle of batches) and timestamps below the removed ones.
  // No new index entries from here on: reads must not use the removed ones.
  LogConfig sparse = config_;
  sparse.index_interval_bytes = 1 << 20;
  follower()->update_config(sparse);
  Batches now(batches.begin(), batches.begin() + 2);
  Batches fresh;
  for (int i = 0; i < 6; ++i) {
    fresh.push_back(stamped(make_batch("f" + std::to_string(i), 1, 1013 + i), 6 + i, 9));
  }
  replicate(fresh);
  now.insert(now.end(), fresh.begin(), fresh.end());
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{0, 0}, {9, 6}}));
  expect_log_is(follower(), now);
  EXPECT_FALSE(follower()->offset_for_timestamp(1019).has_value());
  restart_cleanly();
  expect_log_is(follower(), now);
}

TEST_F(ReplicaLogTest, TruncateAcrossSegmentBoundariesDeletesLaterSegments) {
  create_both();
  Batches batches = lead(12, 0);
  replicate(batches);
  auto files = segment_files();
  ASSERT_GE(files.size(), 4u);
  // Into the middle of the second segment.
  const int64_t second = files[1];
  auto target_batch = std::find_if(batches.begin(), batches.end(),
                                   [&](const auto& b) { return batch_base(b) > second; });
  ASSERT_NE(target_batch, batches.end());
  const int64_t target = batch_base(*target_batch) + 1;  // mid-batch
  ASSERT_TRUE(follower()->truncate_to(target).ok());
  Batches kept(batches.begin(), target_batch);
  expect_log_is(follower(), kept);
  EXPECT_EQ(segment_files(), (std::vector<int64_t>{files[0], files[1]}));
  EXPECT_EQ(follower()->segment_count(), 2u);
  EXPECT_FALSE(std::filesystem::exists(path(format::segment_file_name(files[2], format::kIndexSuffix))));
  // Appends continue at the new end (and roll as usual), with timestamps
  // above the kept batches' and below the removed ones' (a segment that
  // still claimed a removed batch's timestamp would hide them).
  Batches fresh;
  const int64_t kept_ts = record::parse_batch_header(kept.back())->base_timestamp;
  for (size_t i = 0; i < 3; ++i) {
    auto b = stamped(make_batch("n" + std::to_string(i), 2, kept_ts + 3 + 2 * int64_t(i),
                                record::Compression::none, 10),
                     batch_base(kept.back()) + 3 + 2 * int64_t(i), 1);
    fresh.push_back(b);
  }
  replicate(fresh);
  Batches now = kept;
  now.insert(now.end(), fresh.begin(), fresh.end());
  expect_log_is(follower(), now);
  // The same after a clean restart (index files) and a crash (recovery).
  restart_cleanly();
  expect_log_is(follower(), now);
  crash();
  open_manager();
  expect_log_is(follower(), now);
}

TEST_F(ReplicaLogTest, TruncateToExactlyASegmentsBaseOffset) {
  create_both();
  Batches batches = lead(10, 0);
  replicate(batches);
  auto files = segment_files();
  ASSERT_GE(files.size(), 3u);
  ASSERT_TRUE(follower()->truncate_to(files[1]).ok());
  Batches kept;
  for (const auto& b : batches)
    if (batch_base(b) < files[1]) kept.push_back(b);
  expect_log_is(follower(), kept);
  // The segment at that base stays, empty, as the active one.
  EXPECT_EQ(segment_files(), (std::vector<int64_t>{files[0], files[1]}));
  crash();
  open_manager();
  expect_log_is(follower(), kept);
  ASSERT_TRUE(follower()->truncate_to(0).ok());
  expect_log_is(follower(), {});
  EXPECT_EQ(follower()->leader_epoch_entries(), Entries{});
}

TEST_F(ReplicaLogTest, TruncateOutsideTheLog) {
  create_both();
  Batches batches = lead(4, 0);
  replicate(batches);
  ASSERT_TRUE(follower()->truncate_to(12).ok());  // the end: no-op
  ASSERT_TRUE(follower()->truncate_to(100).ok());
  expect_log_is(follower(), batches);
  ASSERT_TRUE(follower()->delete_records_before(6).ok());
  EXPECT_EQ(follower()->truncate_to(5).code(), Errc::invalid_argument);
  expect_log_is(follower(), {batches[2], batches[3]});
}

TEST_F(ReplicaLogTest, AProducerWhoseLastBatchWasTruncatedCanResendIt) {
  create_both();
  ASSERT_TRUE(leader()->set_leader_epoch(1).ok());
  std::vector<Bytes> client;
  Batches replicated;
  for (int i = 0; i < 8; ++i) {  // past a segment roll (a producer snapshot)
    client.push_back(producer_batch(42, 0, 3 * i, 3, 5000 + i));
    auto r = leader()->append(client.back().span(), header_of(client.back()));
    ASSERT_TRUE(r.ok()) << r.error().message;
    replicated.push_back(stamped(client.back(), r->base_offset, 1));
  }
  replicate(replicated);
  ASSERT_GT(follower()->segment_count(), 1u);
  ASSERT_TRUE(follower()->truncate_to(batch_base(replicated[6])).ok());
  EXPECT_EQ(follower()->producer_state(42)->last_sequence(), 17);
  // As leader: batch 6 is new again (not a duplicate of what was removed),
  // batch 5 is still a duplicate.
  ASSERT_TRUE(follower()->set_leader_epoch(2).ok());
  auto again = follower()->append(client[6].span(), header_of(client[6]));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->duplicate);
  EXPECT_EQ(again->base_offset, 18);
  auto dup = follower()->append(client[5].span(), header_of(client[5]));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->base_offset, 15);
  // Also after a crash (the state comes back from snapshots and the log).
  ASSERT_TRUE(wait_durable_sync(*manager_, follower(), 21).ok());
  crash();
  open_manager();
  EXPECT_EQ(follower()->producer_state(42)->last_sequence(), 20);
}

// The records a pending durability waiter waits for are removed: it must
// fail, even after new records fill the same offsets and become durable.
TEST_F(ReplicaLogTest, WaitersPastTheNewEndFailWithTruncated) {
  create_both();
  Batches batches = lead(4, 0);
  // A manager whose flusher does not run: waiters stay pending until flush().
  ASSERT_TRUE(manager_->shutdown().ok());
  manager_ = std::make_unique<LogManager>(fs_, dir_.path(), LogManagerOptions{});
  manager_->set_clock(clock_.fn());
  ASSERT_TRUE(manager_->open([this](const std::string&) { return config_; }).ok());
  for (const auto& b : batches) {
    ASSERT_TRUE(follower()->append_replicated(b, *record::parse_batch_header(b)).ok());
  }
  std::vector<std::optional<Result<void, Errc>>> outcomes(3);
  int64_t ends[3] = {6, 9, 12};
  for (int i = 0; i < 3; ++i) {
    follower()->add_waiter(ends[i], [&outcomes, i](Result<void, Errc> r) { outcomes[i] = r; });
  }
  ASSERT_TRUE(follower()->truncate_to(6).ok());
  ASSERT_TRUE(outcomes[1].has_value());
  EXPECT_EQ(outcomes[1]->code(), Errc::truncated);
  ASSERT_TRUE(outcomes[2].has_value());
  EXPECT_EQ(outcomes[2]->code(), Errc::truncated);
  // New records at the same offsets, made durable: the old waiters stay failed,
  // the one at the new end succeeds.
  Batches fresh = {stamped(make_batch("x", 3, 1), 6, 0), stamped(make_batch("y", 3, 1), 9, 0)};
  for (const auto& b : fresh) {
    ASSERT_TRUE(follower()->append_replicated(b, *record::parse_batch_header(b)).ok());
  }
  follower()->flush(true);
  ASSERT_TRUE(outcomes[0].has_value());
  EXPECT_TRUE(outcomes[0]->ok());
  EXPECT_EQ(outcomes[1]->code(), Errc::truncated);
  EXPECT_EQ(outcomes[2]->code(), Errc::truncated);
  EXPECT_EQ(follower()->durable_offset(), 12);
}

// ---------------------------------------------------------------- truncate_fully_and_start_at

TEST_F(ReplicaLogTest, TruncateFullyStartsAnEmptyLogThatSurvivesRestarts) {
  create_both();
  ASSERT_TRUE(leader()->set_leader_epoch(1).ok());
  Batches batches;
  for (int i = 0; i < 12; ++i) {
    auto b = producer_batch(5, 0, 3 * i, 3, 100 + i);
    auto r = leader()->append(b.span(), header_of(b));
    ASSERT_TRUE(r.ok());
    batches.push_back(stamped(b, r->base_offset, 1));
  }
  replicate(batches);
  ASSERT_GT(follower()->segment_count(), 1u);
  std::optional<Result<void, Errc>> waiter;
  ASSERT_TRUE(follower()->truncate_fully_and_start_at(1000).ok());
  EXPECT_EQ(follower()->log_start_offset(), 1000);
  EXPECT_EQ(follower()->log_end_offset(), 1000);
  EXPECT_EQ(follower()->high_watermark(), 1000);
  EXPECT_EQ(follower()->segment_count(), 1u);
  EXPECT_EQ(follower()->leader_epoch_entries(), Entries{});
  EXPECT_EQ(follower()->producer_count(), 0u);
  EXPECT_EQ(segment_files(), std::vector<int64_t>{1000});
  EXPECT_EQ(follower()->read(0, 1000, true, 2000).code(), Errc::offset_out_of_range);
  crash();
  open_manager();
  EXPECT_EQ(follower()->log_start_offset(), 1000);
  EXPECT_EQ(follower()->log_end_offset(), 1000);
  EXPECT_FALSE(follower()->offline());
  EXPECT_EQ(follower()->leader_epoch_entries(), Entries{});
  EXPECT_EQ(follower()->producer_count(), 0u);
  // Appends continue at the new start.
  auto b = stamped(make_batch("z", 2, 1), 1000, 4);
  replicate({b});
  EXPECT_EQ(follower()->leader_epoch_entries(), (Entries{{4, 1000}}));
  restart_cleanly();
  expect_log_is(follower(), {b});
  EXPECT_EQ(follower()->log_start_offset(), 1000);
  // And back down (a new start below the old one works too).
  ASSERT_TRUE(follower()->truncate_fully_and_start_at(3).ok());
  crash();
  open_manager();
  EXPECT_EQ(follower()->log_start_offset(), 3);
  EXPECT_EQ(follower()->log_end_offset(), 3);
  EXPECT_FALSE(follower()->offline());
}

}  // namespace
}  // namespace holdfast::storage
