#include "metadata/metadata_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "io/posix_file_system.h"

namespace holdfast::metadata {
namespace {

class MetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-meta-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
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
