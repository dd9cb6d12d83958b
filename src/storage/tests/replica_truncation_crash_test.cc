// Crash safety of a replica's truncation: the machine loses power after the
// k-th file system operation of truncate_to / truncate_fully_and_start_at,
// for every k. After the restart the log must be online and hold either what
// it held before (the truncation never took effect) or exactly what the
// truncation leaves; once some k gives the truncated log every later k must
// too (removed records never come back); a truncation that returned ok is
// always there.
//
// The fault-injection file system treats truncate() as durable at once. Real
// file systems do not promise that (the new size is metadata, committed with
// the next fsync or journal commit), so this test's file system brings back
// the bytes a truncate() cut from a file's durable part unless that file was
// synced after the cut.
#include <gtest/gtest.h>

#include <map>

#include "io/fault_injection_file_system.h"
#include "storage/format.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::storage {
namespace {

using namespace testing;
using Batches = std::vector<std::vector<uint8_t>>;
using io::IoResult;

class CrashingFileSystem final : public io::FileSystem {
 public:
  explicit CrashingFileSystem(io::FaultInjectionFileSystem& inner) : inner_(inner) {}

  // The first n mutating operations succeed; the machine halts before the next.
  void crash_after(int n) {
    remaining_ = n;
    armed_ = true;
    ops_ = 0;
  }
  void reset_ops() { ops_ = 0; }
  int ops() const { return ops_; }
  // Power loss: the fault-injection model, then cut bytes that no sync made
  // final come back.
  void power_loss() {
    armed_ = false;
    inner_.simulate_power_loss();
    for (const auto& [path, cut] : cuts_) {
      auto size = inner_.file_size(path);
      if (!size || *size != cut.at) continue;
      auto file = inner_.open(path, io::OpenMode::open_existing);
      if (file) (void)(*file)->append(cut.bytes);
    }
    cuts_.clear();
  }

  IoResult<std::unique_ptr<io::File>> open(const std::string& path, io::OpenMode mode) override {
    if (mode != io::OpenMode::open_existing && !inner_.exists(path)) step();
    auto file = inner_.open(path, mode);
    if (!file) return file.error();
    return std::unique_ptr<io::File>(new CrashingFile(this, std::move(*file)));
  }
  IoResult<void> rename(const std::string& from, const std::string& to) override {
    step();
    return inner_.rename(from, to);
  }
  IoResult<void> remove(const std::string& path) override {
    step();
    cuts_.erase(path);
    return inner_.remove(path);
  }
  IoResult<void> remove_dir(const std::string& path) override {
    step();
    return inner_.remove_dir(path);
  }
  IoResult<std::vector<std::string>> list_dir(const std::string& path) override {
    return inner_.list_dir(path);
  }
  IoResult<void> create_dir(const std::string& path) override {
    step();
    return inner_.create_dir(path);
  }
  IoResult<void> sync_dir(const std::string& path) override {
    step();
    return inner_.sync_dir(path);
  }
  bool exists(const std::string& path) override { return inner_.exists(path); }
  bool is_directory(const std::string& path) override { return inner_.is_directory(path); }
  IoResult<uint64_t> file_size(const std::string& path) override { return inner_.file_size(path); }

 private:
  struct Cut {
    uint64_t at;
    std::vector<uint8_t> bytes;  // durable bytes from `at` on before the cut
  };
  class CrashingFile final : public io::File {
   public:
    CrashingFile(CrashingFileSystem* fs, std::unique_ptr<io::File> inner)
        : fs_(fs), inner_(std::move(inner)) {}
    const std::string& path() const override { return inner_->path(); }
    IoResult<size_t> read_at(uint64_t offset, std::span<uint8_t> out) const override {
      return inner_->read_at(offset, out);
    }
    IoResult<void> append(std::span<const uint8_t> data) override {
      fs_->step();
      return inner_->append(data);
    }
    IoResult<void> sync_data() override {
      fs_->step();
      return synced(inner_->sync_data());
    }
    IoResult<void> sync() override {
      fs_->step();
      return synced(inner_->sync());
    }
    IoResult<void> truncate(uint64_t size) override {
      fs_->step();
      uint64_t durable = fs_->inner_.durable_size(path());
      Cut cut{size, {}};
      if (durable > size) {
        cut.bytes.resize(durable - size);
        auto n = inner_->read_at(size, cut.bytes);
        if (!n) return n.error();
        cut.bytes.resize(*n);
        // An earlier unsynced cut at `durable` comes back after these bytes.
        auto earlier = fs_->cuts_.find(path());
        if (earlier != fs_->cuts_.end() && earlier->second.at == durable) {
          cut.bytes.insert(cut.bytes.end(), earlier->second.bytes.begin(),
                           earlier->second.bytes.end());
        }
      } else if (auto earlier = fs_->cuts_.find(path()); earlier != fs_->cuts_.end()) {
        cut = earlier->second;  // nothing durable cut now; the earlier cut still comes back
      }
      auto r = inner_->truncate(size);
      if (r && !cut.bytes.empty()) fs_->cuts_[path()] = std::move(cut);
      return r;
    }
    uint64_t size() const override { return inner_->size(); }

   private:
    IoResult<void> synced(IoResult<void> r) {
      if (r) fs_->cuts_.erase(path());
      return r;
    }
    CrashingFileSystem* fs_;
    std::unique_ptr<io::File> inner_;
  };

  void step() {
    ++ops_;
    if (!armed_) return;
    if (remaining_ == 0) {
      inner_.halt();
      armed_ = false;
      return;
    }
    --remaining_;
  }

  io::FaultInjectionFileSystem& inner_;
  bool armed_ = false;
  int remaining_ = 0;
  int ops_ = 0;
  std::map<std::string, Cut> cuts_;
};

}  // namespace

class ReplicaTruncationCrashTest : public ::testing::Test {
 protected:
  struct Run {
    bool returned_ok = false;
    Batches recovered;
    int64_t log_start = 0;
    int64_t log_end = 0;
    std::vector<EpochEntry> epochs;
    int ops = 0;
  };

  static LogConfig config() {
    LogConfig c;
    c.segment_bytes = 500;
    c.index_interval_bytes = 100;
    return c;
  }

  // 12 batches of 3 records: epoch 1 for the first six, epoch 2 after.
  static Batches history() {
    Batches out;
    for (int i = 0; i < 12; ++i) {
      out.push_back(stamped(make_batch("r" + std::to_string(i), 3, 1000 + 10 * i,
                                       record::Compression::none, 30),
                            3 * i, i < 6 ? 1 : 2));
    }
    return out;
  }

  static Batches read_all(PartitionLog* log) {
    auto r = log->read(log->log_start_offset(), 1 << 30, true, log->log_end_offset());
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? split_batches(r->records) : Batches{};
  }

  // Builds the log, crashes the truncation after `crash_after` operations
  // (-1: never), loses power, reopens.
  Run run(int crash_after, const std::function<StorageResult<void>(PartitionLog*)>& truncate) {
    io::testing::TempDir dir;
    io::PosixFileSystem posix;
    io::FaultInjectionFileSystem faults(posix);
    CrashingFileSystem fs(faults);
    ManualClock clock;
    Run out;
    {
      LogManager manager(fs, dir.path(), LogManagerOptions{});
      manager.set_clock(clock.fn());
      EXPECT_TRUE(manager.open([](const std::string&) { return config(); }).ok());
      auto created = manager.create("f", 0, config());
      EXPECT_TRUE(created.ok());
      PartitionLog* log = *created;
      for (const auto& b : history()) {
        auto r = log->append_replicated(b, *record::parse_batch_header(b));
        EXPECT_TRUE(r.ok()) << r.error().message;
      }
      log->flush(true);  // no flusher thread: everything is synchronous
      EXPECT_EQ(log->durable_offset(), 36);
      EXPECT_TRUE(manager.checkpoint_now().ok());
      fs.reset_ops();
      if (crash_after >= 0) fs.crash_after(crash_after);
      out.returned_ok = truncate(log).ok();
      out.ops = fs.ops();
    }  // the process dies (no clean shutdown)
    fs.power_loss();
    LogManager manager(fs, dir.path(), LogManagerOptions{});
    manager.set_clock(clock.fn());
    auto opened = manager.open([](const std::string&) { return config(); });
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    PartitionLog* log = manager.get("f", 0);
    EXPECT_NE(log, nullptr);
    if (!log) return out;
    EXPECT_FALSE(log->offline()) << "crash after " << crash_after;
    if (log->offline()) return out;
    out.recovered = read_all(log);
    out.log_start = log->log_start_offset();
    out.log_end = log->log_end_offset();
    out.epochs = log->leader_epoch_entries();
    EXPECT_FALSE(fs.exists(dir.path() + "/f-0/" + std::string(format::kTruncationFile)));
    // The log goes on: an append at its end, durable, and a clean restart.
    auto next = stamped(make_batch("next", 2, 5000), out.log_end, 3);
    auto appended = log->append_replicated(next, *record::parse_batch_header(next));
    EXPECT_TRUE(appended.ok()) << appended.error().message;
    log->flush(true);
    EXPECT_EQ(log->durable_offset(), out.log_end + 2);
    if (crash_after >= 0) return out;  // (the restart is checked once, below: it costs many fsyncs)
    EXPECT_TRUE(manager.shutdown().ok());
    LogManager again(fs, dir.path(), LogManagerOptions{});
    EXPECT_TRUE(again.open([](const std::string&) { return config(); }).ok());
    auto reread = read_all(again.get("f", 0));
    Batches expected = out.recovered;
    expected.push_back(next);
    EXPECT_EQ(reread, expected);
    return out;
  }

  // Crashes at every step; `truncated` is what the log holds after the
  // truncation, with `epochs`.
  void crash_everywhere(const std::function<StorageResult<void>(PartitionLog*)>& truncate,
                        const Batches& truncated, int64_t start,
                        const std::vector<EpochEntry>& epochs) {
    const Batches original = history();
    Run full = run(-1, truncate);
    ASSERT_TRUE(full.returned_ok);
    ASSERT_EQ(full.recovered, truncated);
    const int steps = full.ops;
    ASSERT_GT(steps, 5);
    bool seen_truncated = false;
    for (int k = 0; k <= steps; ++k) {
      SCOPED_TRACE("crash after " + std::to_string(k) + " of " + std::to_string(steps) +
                   " operations");
      Run r = run(k, truncate);
      if (r.recovered == original) {
        EXPECT_FALSE(seen_truncated) << "removed records came back";
        EXPECT_FALSE(r.returned_ok);
        EXPECT_EQ(r.log_end, 36);
        EXPECT_EQ(r.epochs, (std::vector<EpochEntry>{{1, 0}, {2, 18}}));
      } else {
        EXPECT_EQ(r.recovered, truncated) << "neither the old log nor the truncated one";
        EXPECT_EQ(r.log_start, start);
        EXPECT_EQ(r.log_end, truncated.empty() ? start : batch_base(truncated.back()) + 3);
        EXPECT_EQ(r.epochs, epochs);
        seen_truncated = true;
      }
      if (::testing::Test::HasFailure()) break;
    }
    EXPECT_TRUE(seen_truncated);
  }
};

TEST_F(ReplicaTruncationCrashTest, TruncateToSurvivesACrashAtEveryStep) {
  Batches original = history();
  // Offset 13 is inside batch 4 ([12, 14]): batches 4.. go, across segments.
  Batches kept(original.begin(), original.begin() + 4);
  crash_everywhere([](PartitionLog* log) { return log->truncate_to(13); }, kept, 0, {{1, 0}});
}

TEST_F(ReplicaTruncationCrashTest, TruncateToInsideTheLastEpochSurvivesACrashAtEveryStep) {
  Batches original = history();
  Batches kept(original.begin(), original.begin() + 10);
  crash_everywhere([](PartitionLog* log) { return log->truncate_to(30); }, kept, 0,
                   {{1, 0}, {2, 18}});
}

TEST_F(ReplicaTruncationCrashTest, TruncateFullySurvivesACrashAtEveryStep) {
  crash_everywhere([](PartitionLog* log) { return log->truncate_fully_and_start_at(100); }, {},
                   100, {});
}

}  // namespace holdfast::storage
