// Every coordinator answer that depends on a record is delivered only once
// that record is durable (issue 8 item 4). The test holds the log's fsyncs at
// a gate: while the gate is shut the flusher blocks inside sync, so nothing
// new becomes durable, and an answer that arrives meanwhile was sent too early.
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>

#include "coordinator/group_coordinator.h"
#include "io/posix_file_system.h"

namespace holdfast::coordinator {
namespace {

constexpr int kPartitions = 1;

// Passes everything to the real file system, except that file syncs wait
// while the gate is shut, and fail while fail_syncs is set.
class GatedFileSystem final : public io::FileSystem {
 public:
  explicit GatedFileSystem(io::FileSystem& base) : base_(base) {}

  void shut() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void fail_syncs(bool fail) {
    std::lock_guard lock(mu_);
    fail_ = fail;
  }
  // Waits until a sync is held at the shut gate (bounded: false after 10 s).
  bool wait_for_held_sync() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_ > 0; });
  }

  io::IoResult<std::unique_ptr<io::File>> open(const std::string& path,
                                               io::OpenMode mode) override {
    auto file = base_.open(path, mode);
    if (!file) return file.error();
    return std::unique_ptr<io::File>(new GatedFile(*this, std::move(*file)));
  }
  io::IoResult<void> rename(const std::string& from, const std::string& to) override {
    return base_.rename(from, to);
  }
  io::IoResult<void> remove(const std::string& path) override { return base_.remove(path); }
  io::IoResult<void> remove_dir(const std::string& path) override { return base_.remove_dir(path); }
  io::IoResult<std::vector<std::string>> list_dir(const std::string& path) override {
    return base_.list_dir(path);
  }
  io::IoResult<void> create_dir(const std::string& path) override { return base_.create_dir(path); }
  io::IoResult<void> sync_dir(const std::string& path) override { return base_.sync_dir(path); }
  bool exists(const std::string& path) override { return base_.exists(path); }
  bool is_directory(const std::string& path) override { return base_.is_directory(path); }
  io::IoResult<uint64_t> file_size(const std::string& path) override {
    return base_.file_size(path);
  }

 private:
  class GatedFile final : public io::File {
   public:
    GatedFile(GatedFileSystem& fs, std::unique_ptr<io::File> base)
        : fs_(fs), base_(std::move(base)) {}
    const std::string& path() const override { return base_->path(); }
    io::IoResult<size_t> read_at(uint64_t offset, std::span<uint8_t> out) const override {
      return base_->read_at(offset, out);
    }
    io::IoResult<void> append(std::span<const uint8_t> data) override {
      return base_->append(data);
    }
    io::IoResult<void> sync_data() override {
      if (!fs_.pass()) return make_error(io::Errc::io_error, "injected sync failure");
      return base_->sync_data();
    }
    io::IoResult<void> sync() override {
      if (!fs_.pass()) return make_error(io::Errc::io_error, "injected sync failure");
      return base_->sync();
    }
    io::IoResult<void> truncate(uint64_t size) override { return base_->truncate(size); }
    uint64_t size() const override { return base_->size(); }

   private:
    GatedFileSystem& fs_;
    std::unique_ptr<io::File> base_;
  };

  // Blocks while the gate is shut; false if the sync is to fail.
  bool pass() {
    std::unique_lock lock(mu_);
    if (!open_) {
      ++held_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --held_;
    }
    return !fail_;
  }

  io::FileSystem& base_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  bool fail_ = false;
  int held_ = 0;
};

template <typename T>
struct Pending {
  std::shared_ptr<std::promise<T>> promise = std::make_shared<std::promise<T>>();
  std::shared_future<T> future = promise->get_future().share();
  std::function<void(T)> callback() {
    return [p = promise](T r) { p->set_value(std::move(r)); };
  }
  bool done() const {
    return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
  // Waits for the answer (bounded: fails the test after 10 s).
  const T& get() const {
    EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return future.get();
  }
};

class GroupDurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-coord-durable-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    logs_ = std::make_unique<storage::LogManager>(gated_, dir_.string());
    ASSERT_TRUE(logs_->open([](const std::string&) { return storage::LogConfig{}; }));
    logs_->start();
    for (int p = 0; p < kPartitions; ++p) ASSERT_TRUE(logs_->create(kOffsetsTopic, p, {}));
    GroupCoordinatorOptions o;
    o.num_partitions = kPartitions;
    o.initial_rebalance_delay_ms = 100;
    o.min_session_timeout_ms = 10;
    o.start_timer_thread = false;
    o.clock = [this] { return clock_.load(); };
    o.wall_clock = [this] { return clock_.load() + 1700000000000; };
    coordinator_ = std::make_unique<GroupCoordinator>(*logs_, o);
    coordinator_->start();
    ASSERT_TRUE(coordinator_->wait_until_loaded(5000));
  }
  void TearDown() override {
    gated_.open_gate();
    coordinator_.reset();
    if (logs_) (void)logs_->shutdown();
    logs_.reset();
    std::filesystem::remove_all(dir_);
  }
  void advance(int64_t ms) {
    clock_ += ms;
    coordinator_->tick();
  }

  JoinParams static_member(const std::string& instance) {
    JoinParams p;
    p.group_id = "g";
    p.group_instance_id = instance;
    p.client_id = "c";
    p.session_timeout_ms = 10000;
    p.rebalance_timeout_ms = 10000;
    p.protocol_type = "consumer";
    p.protocols.push_back({"range", Bytes::copy_of(std::string_view("sub"))});
    return p;
  }

  // A stable group of one static member (generation 1); returns its member id.
  std::string stable_static_group() {
    Pending<JoinResult> joined;
    coordinator_->join(static_member("i-1"), joined.callback());
    advance(150);
    EXPECT_EQ(joined.get().error, GroupErrc::none);
    const std::string id = joined.get().member_id;
    Pending<SyncResult> synced;
    coordinator_->sync(
        {"g", 1, id, std::string("i-1"), {{id, Bytes::copy_of(std::string_view("A"))}}},
        synced.callback());
    EXPECT_EQ(synced.get().error, GroupErrc::none);
    return id;
  }

  io::PosixFileSystem posix_;
  GatedFileSystem gated_{posix_};
  std::filesystem::path dir_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<GroupCoordinator> coordinator_;
  std::atomic<int64_t> clock_{1000};
};

// Regression (issue 8 item 4): the rejoin was answered at once, before the
// record fencing the old member id was durable.
TEST_F(GroupDurabilityTest, StaticMemberRejoinIsAnsweredOnlyOnceItsFencingRecordIsDurable) {
  const std::string old_id = stable_static_group();

  gated_.shut();
  Pending<JoinResult> rejoined;
  coordinator_->join(static_member("i-1"), rejoined.callback());
  ASSERT_TRUE(gated_.wait_for_held_sync());  // the record is being synced
  EXPECT_FALSE(rejoined.done()) << "answered before the fencing record was durable";

  gated_.open_gate();
  const JoinResult& r = rejoined.get();
  EXPECT_EQ(r.error, GroupErrc::none);
  EXPECT_EQ(r.generation, 1);
  EXPECT_NE(r.member_id, old_id);
  EXPECT_EQ(coordinator_->heartbeat("g", old_id, std::string("i-1"), 1),
            GroupErrc::fenced_instance_id);
}

TEST_F(GroupDurabilityTest, StaticMemberRejoinWhoseRecordFailsToSyncIsAnsweredWithAnError) {
  stable_static_group();
  gated_.fail_syncs(true);
  Pending<JoinResult> rejoined;
  coordinator_->join(static_member("i-1"), rejoined.callback());
  EXPECT_EQ(rejoined.get().error, GroupErrc::storage_error);
}

TEST_F(GroupDurabilityTest, LeaveThatEmptiesTheGroupIsAnsweredOnlyOnceTheRecordIsDurable) {
  const std::string id = stable_static_group();

  gated_.shut();
  Pending<LeaveResult> left;
  coordinator_->leave("g", {{id, std::string("i-1")}}, left.callback());
  ASSERT_TRUE(gated_.wait_for_held_sync());
  EXPECT_FALSE(left.done()) << "answered before the empty generation was durable";

  gated_.open_gate();
  EXPECT_EQ(left.get().error, GroupErrc::none);
  ASSERT_EQ(left.get().members.size(), 1u);
  EXPECT_EQ(left.get().members[0], GroupErrc::none);
  EXPECT_EQ(coordinator_->describe("g").state, "Empty");
}

TEST_F(GroupDurabilityTest, LeaveThatWritesNothingIsAnsweredAtOnce) {
  Pending<LeaveResult> left;
  coordinator_->leave("g", {{"nobody", std::nullopt}}, left.callback());
  ASSERT_TRUE(left.done());
  EXPECT_EQ(left.get().members.at(0), GroupErrc::unknown_member_id);
}

TEST_F(GroupDurabilityTest, LeadersSyncIsAnsweredOnlyOnceTheAssignmentIsDurable) {
  Pending<JoinResult> joined;
  coordinator_->join(static_member("i-1"), joined.callback());
  advance(150);
  const std::string id = joined.get().member_id;
  gated_.shut();
  Pending<SyncResult> synced;
  coordinator_->sync(
      {"g", 1, id, std::string("i-1"), {{id, Bytes::copy_of(std::string_view("A"))}}},
      synced.callback());
  ASSERT_TRUE(gated_.wait_for_held_sync());
  EXPECT_FALSE(synced.done());
  gated_.open_gate();
  EXPECT_EQ(synced.get().assignment.to_string(), "A");
}

}  // namespace
}  // namespace holdfast::coordinator
