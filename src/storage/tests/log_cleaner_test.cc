// The log cleaner (cleanup.policy=compact): last value per key, tombstones,
// offsets kept, reads and index lookups across the gaps, the active segment
// and everything at/above the high watermark untouched, recovery accepting
// cleaned segments, and power loss at every step of the segment swap.
#include "storage/log_cleaner.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "io/fault_injection_file_system.h"
#include "storage/format.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::storage {
namespace {

using namespace testing;

struct Rec {
  int64_t offset;
  int64_t timestamp;
  std::optional<std::string> key;
  std::optional<std::string> value;
};
using KV = std::pair<std::optional<std::string>, std::optional<std::string>>;

Bytes keyed_batch(const std::vector<KV>& records, int64_t ts) {
  record::BatchBuilder builder;
  for (size_t i = 0; i < records.size(); ++i) {
    std::optional<std::string_view> k, v;
    if (records[i].first) k = *records[i].first;
    if (records[i].second) v = *records[i].second;
    builder.add(k, v, ts + int64_t(i));
  }
  return builder.build();
}

std::vector<Rec> read_all(PartitionLog* log) {
  std::vector<Rec> out;
  int64_t offset = log->log_start_offset();
  const int64_t hw = log->high_watermark();
  while (offset < hw) {
    auto r = log->read(offset, 1 << 20, true, hw);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) break;
    auto batches = split_batches(r->records);
    if (batches.empty()) break;
    for (const auto& b : batches) {
      auto h = record::parse_batch_header(b);
      auto recs = record::decode_records(b);
      EXPECT_TRUE(recs.ok());
      if (!recs.ok()) return out;
      for (const auto& x : *recs) {
        EXPECT_TRUE(out.empty() || x.offset > out.back().offset);
        EXPECT_GE(x.offset, h->base_offset);
        EXPECT_LE(x.offset, h->last_offset());
        out.push_back({x.offset, x.timestamp,
                       x.key ? std::optional<std::string>(x.key->to_string()) : std::nullopt,
                       x.value ? std::optional<std::string>(x.value->to_string()) : std::nullopt});
      }
      offset = h->last_offset() + 1;
    }
  }
  return out;
}

// What a replay (the group coordinator's) derives: the last value per key,
// a null value deleting it.
std::map<std::string, std::string> replay(const std::vector<Rec>& recs) {
  std::map<std::string, std::string> state;
  for (const auto& r : recs) {
    if (!r.key) continue;
    if (r.value) {
      state[*r.key] = *r.value;
    } else {
      state.erase(*r.key);
    }
  }
  return state;
}

LogConfig compact_config() {
  LogConfig c;
  c.segment_bytes = 700;
  c.index_interval_bytes = 128;
  c.compact = true;
  c.min_cleanable_dirty_ratio = 0.01;
  c.delete_retention_ms = 1000;
  c.retention_ms = -1;
  return c;
}

struct Fixture {
  io::testing::TempDir dir;
  io::PosixFileSystem posix;
  io::FaultInjectionFileSystem fs{posix};
  ManualClock clock;
  LogConfig config = compact_config();
  std::unique_ptr<LogManager> manager;
  PartitionLog* log = nullptr;
  std::map<int64_t, Rec> appended;  // every record ever appended, by offset

  void open(bool create) {
    LogManagerOptions options;
    options.log_cleaner_enable = false;
    manager = std::make_unique<LogManager>(fs, dir.path(), options);
    manager->set_clock(clock.fn());
    ASSERT_TRUE(manager->open([&](const std::string&) { return config; }).ok());
    if (create) {
      auto l = manager->create("t", 0, config);
      ASSERT_TRUE(l.ok());
      log = *l;
    } else {
      log = manager->get("t", 0);
      ASSERT_NE(log, nullptr);
    }
  }
  void append(const std::vector<KV>& kvs) {
    auto batch = keyed_batch(kvs, clock.now->load());
    auto r = log->append(batch.span(), header_of(batch), 0);
    ASSERT_TRUE(r.ok());
    for (size_t i = 0; i < kvs.size(); ++i) {
      int64_t o = r->base_offset + int64_t(i);
      appended[o] = {o, clock.now->load() + int64_t(i), kvs[i].first, kvs[i].second};
    }
    clock.advance(int64_t(kvs.size()));  // timestamps increase with offsets
  }
  void flush() { log->flush(false); }
  // Every record read must be an original one, at its original offset.
  void expect_original(const std::vector<Rec>& recs) {
    for (const auto& r : recs) {
      auto it = appended.find(r.offset);
      ASSERT_NE(it, appended.end()) << r.offset;
      EXPECT_EQ(r.key, it->second.key) << r.offset;
      EXPECT_EQ(r.value, it->second.value) << r.offset;
      EXPECT_EQ(r.timestamp, it->second.timestamp) << r.offset;
    }
  }
  std::vector<uint8_t> active_bytes() {
    auto r = log->read(log->log_end_offset() - 1, 1 << 20, true, INT64_MAX);
    EXPECT_TRUE(r.ok());
    return std::vector<uint8_t>(r->records.data(), r->records.data() + r->records.size());
  }
};

void fill(Fixture& f, std::mt19937& rng, int batches, int keys) {
  for (int i = 0; i < batches; ++i) {
    std::vector<KV> kvs;
    int n = 1 + int(rng() % 4);
    for (int j = 0; j < n; ++j) {
      std::string key = "k" + std::to_string(rng() % keys);
      if (rng() % 10 == 0) {
        kvs.push_back({key, std::nullopt});  // tombstone
      } else if (rng() % 40 == 0) {
        kvs.push_back({std::nullopt, "nokey-" + std::to_string(i)});
      } else {
        kvs.push_back({key, "v" + std::to_string(i) + "-" + std::to_string(j)});
      }
    }
    f.append(kvs);
  }
  f.flush();
}

TEST(LogCleanerTest, KeepsLastValuePerKeyAcrossSegmentsAndLeavesActiveAlone) {
  Fixture f;
  f.open(true);
  std::mt19937 rng(1);
  fill(f, rng, 300, 15);
  auto before = read_all(f.log);
  size_t segments = f.log->segment_count();
  ASSERT_GT(segments, 10u);
  int64_t size_before = f.log->size_bytes();
  int64_t end = f.log->log_end_offset();
  auto active = f.active_bytes();

  auto stats = LogCleaner::clean(*f.log, f.clock.now->load());
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_GT(stats->segments_rewritten, 0);
  EXPECT_GT(stats->records_removed, 0);

  auto after = read_all(f.log);
  EXPECT_LT(after.size(), before.size());
  EXPECT_LT(f.log->size_bytes(), size_before);
  EXPECT_EQ(replay(after), replay(before));
  f.expect_original(after);
  EXPECT_EQ(f.log->segment_count(), segments);
  EXPECT_EQ(f.log->log_end_offset(), end);
  EXPECT_EQ(f.active_bytes(), active);  // the active segment is untouched
  // Records without a key are all still there.
  size_t nokey_before = 0, nokey_after = 0;
  for (const auto& r : before) nokey_before += !r.key;
  for (const auto& r : after) nokey_after += !r.key;
  EXPECT_EQ(nokey_before, nokey_after);

  // A second pass with nothing new is a no-op (dirty ratio 0).
  auto again = LogCleaner::clean(*f.log, f.clock.now->load());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->segments_rewritten, 0);

  // Restart without a clean shutdown (full recovery of every segment): the
  // cleaned segments pass recovery, nothing is cut.
  f.manager.reset();
  f.open(false);
  EXPECT_EQ(f.log->log_end_offset(), end);
  EXPECT_EQ(f.log->segment_count(), segments);
  auto reloaded = read_all(f.log);
  ASSERT_EQ(reloaded.size(), after.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(reloaded[i].offset, after[i].offset);
  // And after a clean shutdown (index files trusted).
  ASSERT_TRUE(f.manager->shutdown().ok());
  f.manager.reset();
  f.open(false);
  EXPECT_EQ(read_all(f.log).size(), after.size());
}

TEST(LogCleanerTest, ReadsAndIndexLookupsAcrossGaps) {
  Fixture f;
  f.open(true);
  std::mt19937 rng(2);
  fill(f, rng, 200, 5);
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  auto after = read_all(f.log);
  std::vector<int64_t> kept;
  for (const auto& r : after) kept.push_back(r.offset);
  int gaps = 0;
  for (int64_t o = 0; o < f.log->high_watermark(); ++o) {
    auto r = f.log->read(o, 1, true, f.log->high_watermark());
    ASSERT_TRUE(r.ok());
    auto batches = split_batches(r->records);
    ASSERT_EQ(batches.size(), 1u) << o;
    auto h = record::parse_batch_header(batches[0]);
    auto next = *std::lower_bound(kept.begin(), kept.end(), o);
    if (next != o) ++gaps;
    // The batch holding the next kept record at or after o.
    EXPECT_GE(next, h->base_offset) << o;
    EXPECT_LE(next, h->last_offset()) << o;
    EXPECT_GE(h->last_offset(), o);
  }
  EXPECT_GT(gaps, 50);
  // Time index: timestamps are offsets + a constant, each record's own.
  for (const auto& r : after) {
    auto found = f.log->offset_for_timestamp(r.timestamp);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->offset, r.offset);
    EXPECT_EQ(found->timestamp, r.timestamp);
  }
}

TEST(LogCleanerTest, TombstonesGoAfterDeleteRetention) {
  Fixture f;
  f.config.delete_retention_ms = 10'000;
  f.open(true);
  f.append({{"a", "1"}, {"b", "1"}});
  f.append({{"a", std::nullopt}, {"c", "1"}});
  f.append({{"x", "1"}});  // the last batch of a segment is kept whole: not the tombstone's
  f.append({{"pad", std::string(800, 'x')}});  // rolls
  f.append({{"d", "1"}});                        // rolls: the segments above are non-active
  f.flush();
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  auto recs = read_all(f.log);
  auto has = [&](int64_t offset) {
    return std::any_of(recs.begin(), recs.end(), [&](const Rec& r) { return r.offset == offset; });
  };
  EXPECT_FALSE(has(0));  // a=1 superseded
  EXPECT_TRUE(has(1));   // b=1
  EXPECT_TRUE(has(2));   // tombstone, young
  // Much later, with new dirty data, the tombstone goes.
  f.clock.advance(20'000);
  f.append({{"e", std::string(800, 'y')}});
  f.append({{"f", "1"}});
  f.flush();
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  recs = read_all(f.log);
  EXPECT_FALSE(has(0));
  EXPECT_TRUE(has(1));
  EXPECT_FALSE(has(2));
  EXPECT_TRUE(has(3));
  std::map<std::string, std::string> want{{"b", "1"}, {"c", "1"}, {"x", "1"}, {"pad", std::string(800, 'x')},
                                          {"d", "1"}, {"e", std::string(800, 'y')}, {"f", "1"}};
  EXPECT_EQ(replay(recs), want);
}

TEST(LogCleanerTest, NothingAtOrAboveTheHighWatermarkAndLagRespected) {
  Fixture f;
  f.open(true);
  std::mt19937 rng(3);
  for (int i = 0; i < 100; ++i) f.append({{"k" + std::to_string(i % 3), "v" + std::to_string(i)}});
  // Not flushed: rolled segments are not durable, the high watermark is 0.
  ASSERT_EQ(f.log->high_watermark(), 0);
  auto stats = LogCleaner::clean(*f.log, f.clock.now->load());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->segments_rewritten, 0);
  f.flush();
  // min.compaction.lag.ms: nothing is old enough yet.
  auto c = f.config;
  c.min_compaction_lag_ms = 60'000;
  f.log->update_config(c);
  stats = LogCleaner::clean(*f.log, f.clock.now->load());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->segments_rewritten, 0);
  f.clock.advance(61'000);
  stats = LogCleaner::clean(*f.log, f.clock.now->load());
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->segments_rewritten, 0);
  // Not compacted: nothing happens.
  c.compact = false;
  f.log->update_config(c);
  for (int i = 0; i < 50; ++i) f.append({{"k1", "w" + std::to_string(i)}});
  f.flush();
  stats = LogCleaner::clean(*f.log, f.clock.now->load());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->segments_rewritten, 0);
}

TEST(LogCleanerTest, RunCompactionNowFromTheManager) {
  Fixture f;
  f.open(true);
  std::mt19937 rng(4);
  fill(f, rng, 150, 4);
  auto before = replay(read_all(f.log));
  auto n = f.manager->run_compaction_now();
  ASSERT_TRUE(n.ok());
  EXPECT_GT(*n, 0);
  EXPECT_EQ(replay(read_all(f.log)), before);
}

TEST(LogCleanerTest, IdempotentProducerKeepsItsLastBatchAndState) {
  Fixture f;
  f.open(true);
  const int64_t pid = 77;
  for (int i = 0; i < 60; ++i) {
    record::BatchBuilder b;
    b.set_producer(pid, 0, i);
    b.add(std::string_view("k"), std::string_view("v" + std::to_string(i)), 1000 + i);
    auto batch = b.build();
    ASSERT_TRUE(f.log->append(batch.span(), header_of(batch), 0).ok());
  }
  // Then plain batches so the producer's batches are all non-active.
  for (int i = 0; i < 40; ++i) f.append({{"z", std::string(50, 'z')}});
  f.flush();
  auto state = f.log->producer_state(pid);
  ASSERT_TRUE(state.has_value());
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  auto recs = read_all(f.log);
  // The last "k" (offset 59) is there; the producer's last batch is it.
  EXPECT_EQ(replay(recs)["k"], "v59");
  // Crash + reload with only the log (no snapshots): same last sequence.
  f.manager.reset();
  auto names = f.fs.list_dir(io::join_path(f.dir.path(), "t-0"));
  ASSERT_TRUE(names.ok());
  for (const auto& n : *names) {
    if (n.ends_with(".snapshot")) (void)f.fs.remove(io::join_path(f.dir.path(), "t-0/" + n));
  }
  f.open(false);
  auto reloaded = f.log->producer_state(pid);
  ASSERT_TRUE(reloaded.has_value());
  ASSERT_FALSE(reloaded->batches.empty());
  EXPECT_EQ(reloaded->batches.back().last_sequence, 59);
  // A retry of the last batch is still recognised as a duplicate.
  record::BatchBuilder b;
  b.set_producer(pid, 0, 59);
  b.add(std::string_view("k"), std::string_view("v59"), 1059);
  auto batch = b.build();
  auto r = f.log->append(batch.span(), header_of(batch), 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate);
  EXPECT_EQ(r->base_offset, 59);
}

// Power loss at every step of every segment swap of a pass: after recovery
// the log replays to the same state, every record is an original one at its
// original offset, and no .cleaned/.swap file is left.
TEST(LogCleanerTest, PowerLossAtEveryStepOfTheSwap) {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    for (int crash_at = 0;; ++crash_at) {
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " crash at step " << crash_at);
      Fixture f;
      f.open(true);
      std::mt19937 rng(seed);
      fill(f, rng, 80 + int(rng() % 60), 3 + int(rng() % 10));
      const auto want = replay(read_all(f.log));
      const int64_t end = f.log->log_end_offset();
      int steps = 0;
      auto stats = LogCleaner::clean(*f.log, f.clock.now->load(), [&](std::string_view) {
        if (steps++ == crash_at) f.fs.halt();
      });
      const bool crashed = steps > crash_at;
      if (!crashed) {
        ASSERT_TRUE(stats.ok());
        ASSERT_GT(crash_at, 5);  // the loop went through real swaps
        break;
      }
      f.manager.reset();  // no shutdown: a crash
      f.fs.simulate_power_loss();
      f.open(false);
      EXPECT_EQ(f.log->log_end_offset(), end);
      auto recs = read_all(f.log);
      EXPECT_EQ(replay(recs), want);
      f.expect_original(recs);
      auto names = f.fs.list_dir(io::join_path(f.dir.path(), "t-0"));
      ASSERT_TRUE(names.ok());
      for (const auto& n : *names) {
        EXPECT_FALSE(n.ends_with(format::kCleanedSuffix)) << n;
        EXPECT_FALSE(n.ends_with(format::kSwapSuffix)) << n;
      }
      // And the cleaner finishes the job after the restart.
      auto again = LogCleaner::clean(*f.log, f.clock.now->load());
      ASSERT_TRUE(again.ok()) << again.error().message;
      EXPECT_EQ(replay(read_all(f.log)), want);
    }
  }
}

// Regression (issue 8 item 11): a tombstone expired by its client timestamp,
// so one written with an old timestamp went at the first cleaning. Now it is
// kept for delete.retention.ms after the cleaner first kept it (KIP-534's
// delete horizon, stamped into the batch).
TEST(LogCleanerTest, TombstoneWithOldClientTimestampSurvivesDeleteRetentionAfterFirstCleaning) {
  Fixture f;
  f.config.delete_retention_ms = 10'000;
  f.open(true);
  const int64_t ten_days = 10LL * 24 * 3600 * 1000;
  f.append({{"a", "1"}, {"b", "1"}});
  {
    // The client's clock is ten days behind.
    auto batch = keyed_batch({{"a", std::nullopt}, {"c", "1"}}, f.clock.now->load() - ten_days);
    auto r = f.log->append(batch.span(), header_of(batch), 0);
    ASSERT_TRUE(r.ok());
    f.appended[r->base_offset] = {r->base_offset, f.clock.now->load() - ten_days, "a",
                                  std::nullopt};
    f.appended[r->base_offset + 1] = {r->base_offset + 1, f.clock.now->load() - ten_days + 1, "c",
                                      "1"};
  }
  f.append({{"x", "1"}});  // the last batch of a segment is kept whole: not the tombstone's
  f.append({{"pad", std::string(800, 'x')}});  // rolls
  f.append({{"d", "1"}});                      // rolls: the segments above are non-active
  f.flush();
  auto has = [&](int64_t offset) {
    auto recs = read_all(f.log);
    return std::any_of(recs.begin(), recs.end(), [&](const Rec& r) { return r.offset == offset; });
  };
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  EXPECT_FALSE(has(0));  // a=1 superseded
  EXPECT_TRUE(has(2)) << "the tombstone went at the first cleaning";
  f.expect_original(read_all(f.log));  // its timestamp is still the client's

  // 9 s later, with new dirty data: still within delete.retention.ms.
  f.clock.advance(9'000);
  f.append({{"e", std::string(800, 'y')}});
  f.append({{"f", "1"}});
  f.flush();
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  EXPECT_TRUE(has(2));

  // The horizon is in the segment: it survives a restart.
  f.manager.reset();
  f.open(false);
  EXPECT_TRUE(has(2));

  // Past the horizon, the next pass drops it.
  f.clock.advance(2'000);
  f.append({{"g", std::string(800, 'z')}});
  f.append({{"h", "1"}});
  f.flush();
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  EXPECT_FALSE(has(2));
  auto recs = read_all(f.log);
  f.expect_original(recs);
  EXPECT_EQ(replay(recs).count("a"), 0u);
  EXPECT_EQ(replay(recs).at("b"), "1");
}

// A tombstone must not go while an older value of its key survives in a
// batch kept whole (the last batch of a segment): the value would come back.
TEST(LogCleanerTest, TombstoneStaysWhileAnOlderValueIsKeptInAWholeBatch) {
  Fixture f;
  f.config.delete_retention_ms = 1'000;
  f.open(true);
  f.append({{"a", "1"}});
  f.append({{"pad", std::string(800, 'x')}, {"a", "old"}});  // last batch of its segment; rolls
  f.append({{"a", std::nullopt}, {"b", "1"}});
  f.append({{"y", "1"}});
  f.append({{"pad2", std::string(800, 'x')}});  // rolls
  f.append({{"z", "1"}});
  f.flush();
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  f.clock.advance(5'000);
  f.append({{"w", std::string(800, 'w')}});
  f.append({{"v", "1"}});
  f.flush();
  ASSERT_TRUE(LogCleaner::clean(*f.log, f.clock.now->load()).ok());
  EXPECT_EQ(replay(read_all(f.log)).count("a"), 0u) << "a deleted key came back";
}

std::set<int64_t> offsets_of(const std::vector<Rec>& recs) {
  std::set<int64_t> out;
  for (const auto& r : recs) out.insert(r.offset);
  return out;
}

// The key map bound (log.cleaner.dedupe.buffer.size): a map that holds a few
// keys cleans the same log in several rounds to the same result as an
// unbounded one.
TEST(LogCleanerTest, KeyMapBoundedToAFewKeysCompactsCorrectlyInSeveralRounds) {
  Fixture bounded, unbounded;
  bounded.open(true);
  unbounded.open(true);
  std::mt19937 rng_a(9), rng_b(9);
  fill(bounded, rng_a, 150, 12);
  fill(unbounded, rng_b, 150, 12);
  const auto before = read_all(bounded.log);
  ASSERT_EQ(offsets_of(before), offsets_of(read_all(unbounded.log)));

  LogCleaner::Options options;
  options.dedupe_buffer_bytes = 3 * (LogCleaner::kKeyMapEntryOverhead + 3);  // three keys
  auto stats = LogCleaner::clean(*bounded.log, bounded.clock.now->load(), options);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_GT(stats->rounds, 3);
  EXPECT_GT(stats->records_removed, 0);
  auto reference = LogCleaner::clean(*unbounded.log, unbounded.clock.now->load());
  ASSERT_TRUE(reference.ok());
  EXPECT_EQ(reference->rounds, 1);

  const auto after = read_all(bounded.log);
  EXPECT_EQ(replay(after), replay(before));
  bounded.expect_original(after);
  EXPECT_EQ(offsets_of(after), offsets_of(read_all(unbounded.log)));
  EXPECT_LT(after.size(), before.size());

  // And the result survives a restart (full recovery).
  bounded.manager.reset();
  bounded.open(false);
  EXPECT_EQ(offsets_of(read_all(bounded.log)), offsets_of(after));
}

// Regression (issue 8 item 10): a whole cleaning pass held the log's cleaner
// mutex, so DeleteRecords (and close) on a network thread waited for it.
TEST(LogCleanerTest, DeleteRecordsCompletesWhileACleaningPassIsInProgress) {
  Fixture f;
  f.open(true);
  std::mt19937 rng(5);
  fill(f, rng, 200, 6);
  ASSERT_GT(f.log->segment_count(), 8u);
  const int64_t cut = f.log->high_watermark() / 2;
  const auto before = read_all(f.log);

  std::mutex mu;
  std::condition_variable cv;
  bool held = false, release = false;
  LogCleaner::Options options;
  options.hook = [&](std::string_view step) {
    if (step != "cleaned_written") return;
    std::unique_lock lock(mu);
    if (held) return;  // hold the first segment only
    held = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  std::optional<StorageResult<LogCleaner::Stats>> cleaned;
  std::thread cleaner([&] { cleaned = LogCleaner::clean(*f.log, f.clock.now->load(), options); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return held; }));
  }
  // The pass is held mid-way, with a cleaned copy of a segment below `cut` written.
  auto deleted = std::async(std::launch::async, [&] { return f.log->delete_records_before(cut); });
  const bool completed = deleted.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  cleaner.join();
  ASSERT_TRUE(completed) << "DeleteRecords waited for the cleaning pass";
  auto start = deleted.get();
  ASSERT_TRUE(start.ok()) << start.error().message;
  EXPECT_EQ(*start, cut);
  ASSERT_TRUE(cleaned.has_value());
  ASSERT_TRUE(cleaned->ok()) << (*cleaned).error().message;

  // Nothing below the log start came back, no cleaner file is left, and the
  // log holds the same state from the log start on.
  auto check = [&] {
    auto names = f.fs.list_dir(io::join_path(f.dir.path(), "t-0"));
    ASSERT_TRUE(names.ok());
    std::vector<int64_t> bases;
    for (const auto& n : *names) {
      EXPECT_FALSE(n.ends_with(format::kCleanedSuffix)) << n;
      EXPECT_FALSE(n.ends_with(format::kSwapSuffix)) << n;
      if (auto base = format::parse_segment_file_name(n, format::kLogSuffix))
        bases.push_back(*base);
    }
    ASSERT_FALSE(bases.empty());
    EXPECT_GT(*std::min_element(bases.begin(), bases.end()), 0) << "a deleted segment came back";
    EXPECT_EQ(f.log->log_start_offset(), cut);
    std::vector<Rec> tail;
    for (const auto& r : before) {
      if (r.offset >= cut) tail.push_back(r);
    }
    std::vector<Rec> recs;
    for (const auto& r : read_all(f.log)) {
      if (r.offset >= cut) recs.push_back(r);  // the batch holding `cut` may start below it
    }
    EXPECT_EQ(replay(recs), replay(tail));
    f.expect_original(recs);
  };
  check();
  f.manager.reset();
  f.open(false);
  check();
}

}  // namespace
}  // namespace holdfast::storage
