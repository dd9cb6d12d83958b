// TxnOffsetCommit in the group coordinator (group_txn_offsets.cc): offsets
// are pending until the transaction's marker (complete_txn), invisible to
// OffsetFetch and UNSTABLE_OFFSET_COMMIT with require_stable; KIP-447 member
// and generation checks; the replay honours the markers it finds in the log.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "base/crc32c.h"
#include "coordinator/group_coordinator.h"
#include "coordinator/group_state.h"
#include "io/posix_file_system.h"
#include "record/batch.h"

namespace holdfast::coordinator {
namespace {

constexpr int kPartitions = 2;

// A control batch (commit or abort marker) of `producer_id`: key version 0 +
// type, value version 0 + coordinator epoch. (Given the producer's next
// sequence, so that the log's producer checks take it; a real receiver writes
// markers past those checks.)
Bytes control_batch(int64_t producer_id, int16_t epoch, bool commit, int32_t sequence) {
  record::BatchBuilder builder;
  builder.set_producer(producer_id, epoch, sequence);
  builder.set_transactional(true);
  const char key[4] = {0, 0, 0, char(commit ? 1 : 0)};
  const char value[6] = {0, 0, 0, 0, 0, 0};
  builder.add(std::string_view(key, 4), std::string_view(value, 6), 0);
  Bytes batch = builder.build();
  std::vector<uint8_t> bytes(batch.span().begin(), batch.span().end());
  bytes[22] |= uint8_t(record::kControlBit);  // attributes (int16 at 21), low byte
  const uint32_t crc = crc32c(bytes.data() + 21, bytes.size() - 21);
  for (int i = 0; i < 4; ++i) bytes[17 + i] = uint8_t(crc >> (8 * (3 - i)));
  return Bytes::copy_of(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

class GroupTxnOffsetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-txnoff-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    open_logs();
    for (int p = 0; p < kPartitions; ++p) ASSERT_TRUE(logs_->create(kOffsetsTopic, p, {}));
    make_coordinator();
  }
  void TearDown() override {
    coordinator_.reset();
    if (logs_) (void)logs_->shutdown();
    logs_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open_logs() {
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.string());
    ASSERT_TRUE(logs_->open([](const std::string&) { return storage::LogConfig{}; }));
    logs_->start();
  }
  void make_coordinator() {
    GroupCoordinatorOptions o;
    o.num_partitions = kPartitions;
    o.start_timer_thread = false;
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
  GroupErrc txn_commit(const std::string& group, int64_t pid, int16_t epoch, int64_t offset,
                       const std::string& member = "", int32_t generation = -1) {
    TxnCommitParams p;
    p.group_id = group;
    p.producer_id = pid;
    p.producer_epoch = epoch;
    p.member_id = member;
    p.generation = generation;
    OffsetCommitEntry e;
    e.tp = {"orders", 0};
    e.offset = offset;
    p.offsets.push_back(e);
    std::promise<CommitResult> promise;
    auto future = promise.get_future();
    coordinator_->txn_commit(std::move(p), [&](CommitResult r) { promise.set_value(std::move(r)); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    auto r = future.get();
    return r.errors.empty() ? GroupErrc::storage_error : r.errors[0];
  }
  FetchedOffset fetch(const std::string& group, bool require_stable) {
    auto r = coordinator_->fetch_offsets(group, std::vector<TopicPartitionKey>{{"orders", 0}},
                                         require_stable);
    EXPECT_EQ(r.error, GroupErrc::none);
    return r.offsets.empty() ? FetchedOffset{} : r.offsets[0];
  }
  // The marker as the WriteTxnMarkers receiver writes it (and then tells the
  // coordinator).
  void write_marker(const std::string& group, int64_t pid, int16_t epoch, bool commit) {
    auto* log = logs_->get(kOffsetsTopic, coordinator_->partition_for(group));
    Bytes batch = control_batch(pid, epoch, commit, 1);  // after one TxnOffsetCommit
    auto header = record::parse_batch_header(batch.span());
    ASSERT_TRUE(header.ok());
    ASSERT_TRUE(log->append(batch.span(), *header).ok());
  }

  std::filesystem::path dir_;
  io::PosixFileSystem fs_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<GroupCoordinator> coordinator_;
};

TEST_F(GroupTxnOffsetsTest, OffsetsArePendingUntilTheCommitMarker) {
  ASSERT_EQ(txn_commit("g", 7, 0, 42), GroupErrc::none);
  EXPECT_EQ(fetch("g", false).offset, -1);  // not committed yet
  EXPECT_EQ(fetch("g", true).error, GroupErrc::unstable_offset_commit);
  coordinator_->complete_txn(coordinator_->partition_for("g"), 7, true);
  EXPECT_EQ(fetch("g", true).error, GroupErrc::none);
  EXPECT_EQ(fetch("g", true).offset, 42);
}

TEST_F(GroupTxnOffsetsTest, AnAbortDropsThePendingOffsets) {
  ASSERT_EQ(txn_commit("g", 7, 0, 42), GroupErrc::none);
  coordinator_->complete_txn(coordinator_->partition_for("g"), 7, false);
  EXPECT_EQ(fetch("g", true).error, GroupErrc::none);
  EXPECT_EQ(fetch("g", true).offset, -1);
  // Another producer's marker, or a second one, changes nothing.
  ASSERT_EQ(txn_commit("g", 7, 0, 50), GroupErrc::none);
  coordinator_->complete_txn(coordinator_->partition_for("g"), 8, true);
  EXPECT_EQ(fetch("g", false).offset, -1);
  coordinator_->complete_txn(coordinator_->partition_for("g"), 7, true);
  EXPECT_EQ(fetch("g", false).offset, 50);
}

TEST_F(GroupTxnOffsetsTest, SeveralCommitsInOneTransactionGetConsecutiveSequences) {
  ASSERT_EQ(txn_commit("g", 7, 0, 1), GroupErrc::none);
  ASSERT_EQ(txn_commit("g", 7, 0, 2), GroupErrc::none);  // the log would refuse a bad sequence
  ASSERT_EQ(txn_commit("g", 7, 1, 3), GroupErrc::none);  // a new epoch restarts at 0
  EXPECT_EQ(txn_commit("g", 7, 0, 4), GroupErrc::invalid_producer_epoch);
  coordinator_->complete_txn(coordinator_->partition_for("g"), 7, true);
  EXPECT_EQ(fetch("g", false).offset, 3);
}

TEST_F(GroupTxnOffsetsTest, Kip447ChecksTheMemberAndGeneration) {
  // No such member in the (new, empty) group.
  EXPECT_EQ(txn_commit("g", 7, 0, 1, "someone", 1), GroupErrc::unknown_member_id);
  EXPECT_EQ(txn_commit("g", 7, 0, 1, "", 3), GroupErrc::illegal_generation);
  EXPECT_EQ(txn_commit("g", 7, 0, 1, "", -1), GroupErrc::none);
}

TEST_F(GroupTxnOffsetsTest, TheReplayHonoursTheMarkers) {
  ASSERT_EQ(txn_commit("committed", 7, 0, 10), GroupErrc::none);
  write_marker("committed", 7, 0, true);
  ASSERT_EQ(txn_commit("aborted", 8, 0, 20), GroupErrc::none);
  write_marker("aborted", 8, 0, false);
  ASSERT_EQ(txn_commit("open", 9, 0, 30), GroupErrc::none);
  restart();
  EXPECT_EQ(fetch("committed", true).offset, 10);
  EXPECT_EQ(fetch("aborted", true).offset, -1);
  EXPECT_EQ(fetch("aborted", true).error, GroupErrc::none);
  EXPECT_EQ(fetch("open", true).error, GroupErrc::unstable_offset_commit);
  coordinator_->complete_txn(coordinator_->partition_for("open"), 9, true);
  EXPECT_EQ(fetch("open", true).offset, 30);
}

}  // namespace
}  // namespace holdfast::coordinator
