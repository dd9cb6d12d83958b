// The group coordinator's replay of __consumer_offsets gives the same state
// after the log cleaner compacted the partitions (tombstones included).
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>

#include "coordinator/group_coordinator.h"
#include "io/posix_file_system.h"

namespace holdfast::coordinator {
namespace {

constexpr int kPartitions = 2;

class GroupCompactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-gcompact-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.compact = true;
    config_.segment_bytes = 600;  // many segments
    config_.index_interval_bytes = 128;
    config_.min_cleanable_dirty_ratio = 0.01;
    config_.delete_retention_ms = 0;  // tombstones go at the first pass
    config_.retention_ms = -1;
    open_logs();
    for (int p = 0; p < kPartitions; ++p) ASSERT_TRUE(logs_->create(kOffsetsTopic, p, config_));
    make_coordinator();
  }
  void TearDown() override {
    coordinator_.reset();
    if (logs_) (void)logs_->shutdown();
    logs_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open_logs() {
    storage::LogManagerOptions options;
    options.log_cleaner_enable = false;  // passes run by hand
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.string(), options);
    ASSERT_TRUE(logs_->open([this](const std::string&) { return config_; }));
    logs_->start();
  }
  void make_coordinator() {
    GroupCoordinatorOptions o;
    o.num_partitions = kPartitions;
    o.offsets_retention_ms = 1LL << 40;
    o.offsets_retention_check_interval_ms = 1LL << 40;
    o.start_timer_thread = false;
    o.clock = [this] { return clock_.load(); };
    o.wall_clock = [this] { return wall_.load(); };
    coordinator_ = std::make_unique<GroupCoordinator>(*logs_, o);
    coordinator_->start();
    ASSERT_TRUE(coordinator_->wait_until_loaded(5000));
  }
  void restart() {
    coordinator_.reset();
    ASSERT_TRUE(logs_->shutdown());
    logs_.reset();
    open_logs();
    make_coordinator();
  }
  GroupErrc commit(const std::string& group, const std::string& topic, int32_t partition,
                   int64_t offset) {
    std::promise<CommitResult> promise;
    auto future = promise.get_future();
    coordinator_->commit({group, -1, "", std::nullopt, {{{topic, partition}, offset}}},
                         [&promise](CommitResult r) { promise.set_value(std::move(r)); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    return future.get().errors.at(0);
  }
  int64_t committed(const std::string& group, const std::string& topic, int32_t partition) {
    auto r = coordinator_->fetch_offsets(group, std::vector<TopicPartitionKey>{{topic, partition}},
                                         false);
    return r.offsets.at(0).offset;
  }

  std::filesystem::path dir_;
  io::PosixFileSystem fs_;
  storage::LogConfig config_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<GroupCoordinator> coordinator_;
  std::atomic<int64_t> clock_{1000};
  std::atomic<int64_t> wall_{1700000000000};
};

TEST_F(GroupCompactionTest, ReplayAfterCompactionGivesTheSameOffsets) {
  const std::vector<std::string> groups{"g0", "g1", "g2", "g3"};
  const std::vector<std::string> topics{"t", "u", "w"};
  std::map<std::tuple<std::string, std::string, int32_t>, int64_t> want;
  for (int round = 0; round < 40; ++round) {
    for (const auto& g : groups) {
      for (const auto& t : topics) {
        int32_t p = round % 3;
        int64_t offset = round * 100 + int64_t(t.size()) + int64_t(g.back());
        ASSERT_EQ(commit(g, t, p, offset), GroupErrc::none);
        want[{g, t, p}] = offset;
      }
    }
    if (round == 20) {
      coordinator_->remove_offsets_of_topic("u");  // tombstones
      for (auto it = want.begin(); it != want.end();) {
        it = std::get<1>(it->first) == "u" ? want.erase(it) : std::next(it);
      }
    }
  }
  int64_t bytes_before = 0;
  for (auto* log : logs_->all()) bytes_before += log->size_bytes();
  auto rewritten = logs_->run_compaction_now();
  ASSERT_TRUE(rewritten.ok());
  EXPECT_GT(*rewritten, 0);
  int64_t bytes_after = 0;
  for (auto* log : logs_->all()) bytes_after += log->size_bytes();
  EXPECT_LT(bytes_after, bytes_before / 2);

  restart();
  for (const auto& g : groups) {
    for (const auto& t : topics) {
      for (int32_t p = 0; p < 3; ++p) {
        auto it = want.find({g, t, p});
        EXPECT_EQ(committed(g, t, p), it == want.end() ? -1 : it->second) << g << " " << t << p;
      }
    }
  }
  // A deleted group stays deleted across compaction (tombstone, then nothing).
  std::promise<std::vector<GroupErrc>> deleted;
  coordinator_->delete_groups({"g3"}, [&](std::vector<GroupErrc> e) { deleted.set_value(e); });
  ASSERT_EQ(deleted.get_future().get().at(0), GroupErrc::none);
  for (int i = 0; i < 30; ++i) ASSERT_EQ(commit("g0", "t", 0, 10000 + i), GroupErrc::none);
  ASSERT_TRUE(logs_->run_compaction_now().ok());
  restart();
  EXPECT_EQ(committed("g3", "t", 0), -1);
  EXPECT_EQ(committed("g0", "t", 0), 10029);
  EXPECT_EQ(committed("g1", "w", 1), (want[{"g1", "w", 1}]));
}

}  // namespace
}  // namespace holdfast::coordinator
