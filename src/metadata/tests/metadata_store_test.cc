#include "metadata/metadata_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/fault_injection_file_system.h"
#include "io/posix_file_system.h"

namespace holdfast::metadata {
namespace {

class MetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-meta-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  io::PosixFileSystem fs_;
};

TEST_F(MetadataStoreTest, RecordsSurviveReopenInOrder) {
  {
    auto store = MetadataStore::open(fs_, dir_.string());
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->append(TopicCreated{"orders", random_id(), 4, {{"retention.ms", "1000"}}}));
    ASSERT_TRUE((*store)->append(PartitionsAdded{"orders", 6}));
    ASSERT_TRUE((*store)->append(TopicCreated{"gone", random_id(), 1, {}}));
    ASSERT_TRUE((*store)->append(TopicDeleted{"gone"}));
    ASSERT_TRUE((*store)->append(TopicConfigsReplaced{"orders", {{"retention.ms", "2000"}}}));
  }
  auto store = MetadataStore::open(fs_, dir_.string());
  ASSERT_TRUE(store);
  auto image = (*store)->current();
  ASSERT_EQ(image->topics.size(), 1u);
  const TopicInfo* orders = image->find_topic("orders");
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->partition_count, 6);
  EXPECT_EQ(orders->configs.at("retention.ms"), "2000");
  EXPECT_EQ(image->last_record_index, 4);
}

TEST_F(MetadataStoreTest, InvalidRecordIsRefusedAndNotWritten) {
  auto store = MetadataStore::open(fs_, dir_.string());
  ASSERT_TRUE(store);
  ASSERT_TRUE((*store)->append(TopicCreated{"t", random_id(), 2, {}}));
  EXPECT_FALSE((*store)->append(TopicCreated{"t", random_id(), 2, {}}));
  EXPECT_FALSE((*store)->append(PartitionsAdded{"t", 1}));
  EXPECT_FALSE((*store)->append(TopicDeleted{"nope"}));
  store->reset();
  auto reopened = MetadataStore::open(fs_, dir_.string());
  ASSERT_TRUE(reopened);
  EXPECT_EQ((*reopened)->current()->last_record_index, 0);
}

TEST_F(MetadataStoreTest, TornTailIsCutAtLastGoodRecord) {
  {
    auto store = MetadataStore::open(fs_, dir_.string());
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->append(TopicCreated{"a", random_id(), 1, {}}));
    ASSERT_TRUE((*store)->append(TopicCreated{"b", random_id(), 1, {}}));
  }
  auto path = dir_ / "__metadata" / "metadata.log";
  auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 3);  // tear the last record
  {
    auto store = MetadataStore::open(fs_, dir_.string());
    ASSERT_TRUE(store);
    auto image = (*store)->current();
    EXPECT_NE(image->find_topic("a"), nullptr);
    EXPECT_EQ(image->find_topic("b"), nullptr);
    // Appending after the cut works and survives.
    ASSERT_TRUE((*store)->append(TopicCreated{"c", random_id(), 1, {}}));
  }
  auto store = MetadataStore::open(fs_, dir_.string());
  ASSERT_TRUE(store);
  EXPECT_NE((*store)->current()->find_topic("c"), nullptr);
}

std::vector<char> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::filesystem::path& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// Regression (issue 8 item 2): after a failed fsync the store kept writing,
// and with a kernel that dropped the dirty pages (fsyncgate) later appends
// were acknowledged but never durable.
TEST_F(MetadataStoreTest, FailedFsyncPutsStoreInFailedStateAndNothingAcknowledgedIsLost) {
  io::FaultInjectionFileSystem faulty(fs_);
  {
    auto store = MetadataStore::open(faulty, dir_.string());
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->append(TopicCreated{"a", random_id(), 1, {}}));
    faulty.fail_next_sync(1);
    auto failed = (*store)->append(TopicCreated{"b", random_id(), 1, {}});
    ASSERT_FALSE(failed);
    EXPECT_TRUE((*store)->failed());
    // Later changes are refused with a message that says why, although the
    // next fsync would "succeed".
    auto refused = (*store)->append(TopicCreated{"c", random_id(), 1, {}});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::io_error);
    EXPECT_NE(refused.error().message.find("out of service"), std::string::npos);
    EXPECT_NE(refused.error().message.find("metadata.log"), std::string::npos);
    // Reads keep working and see only what was acknowledged.
    auto image = (*store)->current();
    EXPECT_NE(image->find_topic("a"), nullptr);
    EXPECT_EQ(image->find_topic("b"), nullptr);
    EXPECT_EQ(image->find_topic("c"), nullptr);
  }
  faulty.simulate_power_loss();
  auto store = MetadataStore::open(faulty, dir_.string());
  ASSERT_TRUE(store);
  EXPECT_FALSE((*store)->failed());
  auto image = (*store)->current();
  EXPECT_NE(image->find_topic("a"), nullptr);  // acknowledged: survives
  EXPECT_EQ(image->find_topic("c"), nullptr);  // refused: not there
  EXPECT_TRUE((*store)->append(TopicCreated{"d", random_id(), 1, {}}));
}

TEST_F(MetadataStoreTest, FailedAppendPutsStoreInFailedState) {
  io::FaultInjectionFileSystem faulty(fs_);
  auto store = MetadataStore::open(faulty, dir_.string());
  ASSERT_TRUE(store);
  faulty.halt();
  ASSERT_FALSE((*store)->append(TopicCreated{"a", random_id(), 1, {}}));
  EXPECT_TRUE((*store)->failed());
}

TEST_F(MetadataStoreTest, TornLastEntryOfAFailedWriteIsCutAndReplayWorks) {
  io::FaultInjectionFileSystem faulty(fs_);
  const auto path = dir_ / "__metadata" / "metadata.log";
  uintmax_t good_size = 0;
  {
    auto store = MetadataStore::open(faulty, dir_.string());
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->append(TopicCreated{"a", random_id(), 1, {}}));
    good_size = std::filesystem::file_size(path);
    faulty.fail_next_sync(1);
    ASSERT_FALSE((*store)->append(TopicCreated{"b", random_id(), 1, {}}));
  }
  // The machine stopped while "b" was being written: its header and a few
  // payload bytes reached the disk.
  std::filesystem::resize_file(path, good_size + 13);
  io::FaultInjectionFileSystem rebooted(fs_);  // the next process
  {
    auto store = MetadataStore::open(rebooted, dir_.string());
    ASSERT_TRUE(store);
    EXPECT_EQ(std::filesystem::file_size(path), good_size);
    auto image = (*store)->current();
    EXPECT_NE(image->find_topic("a"), nullptr);
    EXPECT_EQ(image->find_topic("b"), nullptr);
    ASSERT_TRUE((*store)->append(TopicCreated{"c", random_id(), 1, {}}));
  }
  rebooted.simulate_power_loss();  // the cut and "c" were synced
  auto store = MetadataStore::open(rebooted, dir_.string());
  ASSERT_TRUE(store);
  EXPECT_NE((*store)->current()->find_topic("a"), nullptr);
  EXPECT_NE((*store)->current()->find_topic("c"), nullptr);
  EXPECT_EQ((*store)->current()->last_record_index, 1);
}

TEST_F(MetadataStoreTest, ZeroFilledTailIsCutAsTorn) {
  {
    auto store = MetadataStore::open(fs_, dir_.string());
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->append(TopicCreated{"a", random_id(), 1, {}}));
  }
  const auto path = dir_ / "__metadata" / "metadata.log";
  auto bytes = read_bytes(path);
  const auto good_size = bytes.size();
  bytes.resize(good_size + 64, 0);  // blocks allocated, data never written
  write_bytes(path, bytes);
  auto store = MetadataStore::open(fs_, dir_.string());
  ASSERT_TRUE(store);
  EXPECT_NE((*store)->current()->find_topic("a"), nullptr);
  EXPECT_EQ(std::filesystem::file_size(path), good_size);
}

// Regression (issue 8 item 2): any bad entry was taken for a torn tail and
// every later (acknowledged) record was cut off.
class CorruptMiddleEntryTest : public MetadataStoreTest,
                               public ::testing::WithParamInterface<int> {};

TEST_P(CorruptMiddleEntryTest, OpenFailsNamingFileAndOffsetAndLeavesFileUntouched) {
  io::FaultInjectionFileSystem faulty(fs_);
  size_t second_entry = 0;
  const auto path = dir_ / "__metadata" / "metadata.log";
  {
    auto store = MetadataStore::open(faulty, dir_.string());
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->append(TopicCreated{"a", random_id(), 1, {}}));
    second_entry = std::filesystem::file_size(path);
    ASSERT_TRUE((*store)->append(TopicCreated{"b", random_id(), 1, {}}));
    ASSERT_TRUE((*store)->append(TopicCreated{"c", random_id(), 1, {}}));
  }
  auto bytes = read_bytes(path);
  // 0: a length field pointing past the end of the file; 1: a flipped
  // payload byte (CRC mismatch).
  if (GetParam() == 0) {
    bytes[second_entry] = char(0x7f);
  } else {
    bytes[second_entry + 8 + 5] ^= 0x20;
  }
  write_bytes(path, bytes);

  auto store = MetadataStore::open(faulty, dir_.string());
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, Errc::corrupt);
  EXPECT_NE(store.error().message.find(path.string()), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("byte offset " + std::to_string(second_entry)),
            std::string::npos)
      << store.error().message;
  EXPECT_EQ(read_bytes(path), bytes);  // nothing cut
}

INSTANTIATE_TEST_SUITE_P(LengthAndPayload, CorruptMiddleEntryTest, ::testing::Values(0, 1));

TEST_F(MetadataStoreTest, IdentityIsCreatedOnceAndChecked) {
  auto first = load_or_create_identity(fs_, dir_.string(), 1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->cluster_id.size(), 22u);
  auto again = load_or_create_identity(fs_, dir_.string(), 1);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->cluster_id, first->cluster_id);
  auto wrong = load_or_create_identity(fs_, dir_.string(), 2);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("node.id 1"), std::string::npos);
}

}  // namespace
}  // namespace holdfast::metadata
