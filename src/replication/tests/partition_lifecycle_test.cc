// PartitionLifecycle: the local replicas follow applied metadata records,
// over the real local metadata store and over a scripted log whose events the
// test delivers by hand (duplicates, out of order, image replacement).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "metadata/metadata_store.h"
#include "replication/partition_lifecycle.h"
#include "replication/replica_manager.h"
#include "storage/checkpoint.h"
#include "storage/format.h"
#include "storage/tests/storage_test_util.h"

namespace holdfast::replication {
namespace {

using metadata::ConfigMap;
using metadata::MetadataRecord;

// A metadata log whose events the test delivers itself: apply() builds the
// next image and tells the subscriber; deliver() sends any event, even one
// that is stale or repeated.
class ScriptedMetadataLog : public metadata::MetadataLog {
 public:
  metadata::ImagePtr current() const override {
    std::lock_guard lock(mu_);
    return image_;
  }
  void append(MetadataRecord record, metadata::AppendCallback done) override {
    done(apply(record));
  }
  metadata::ImagePtr subscribe(metadata::MetadataListener listener) override {
    std::lock_guard lock(mu_);
    listener_ = std::move(listener);
    return image_;
  }

  // Applies `record` as the next one and delivers it; returns the new image.
  metadata::ImagePtr apply(const MetadataRecord& record) {
    metadata::ImagePtr next;
    {
      std::lock_guard lock(mu_);
      auto applied = metadata::apply_record(*image_, record, image_->last_record_index + 1);
      EXPECT_TRUE(applied.ok()) << (applied.ok() ? "" : applied.error().message);
      if (!applied.ok()) return image_;
      image_ = *applied;
      next = image_;
    }
    deliver(&record, next);
    return next;
  }
  // Replaces the image as a whole (a snapshot install) and says so.
  void replace(metadata::ImagePtr image) {
    {
      std::lock_guard lock(mu_);
      image_ = image;
    }
    deliver(nullptr, image);
  }
  void deliver(const MetadataRecord* record, const metadata::ImagePtr& image) {
    if (listener_) listener_(metadata::MetadataEvent{record, image});
  }

 private:
  mutable std::mutex mu_;
  // A single node's image: records without replica assignments resolve to
  // node 0 (MetadataImage::sole_node_id), as in MetadataStore::open(..., 0).
  metadata::ImagePtr image_ = [] {
    auto image = std::make_shared<metadata::MetadataImage>();
    image->sole_node_id = 0;
    return image;
  }();
  metadata::MetadataListener listener_;
};

metadata::TopicId id_of(uint8_t n) {
  metadata::TopicId id{};
  id[0] = n;
  return id;
}

storage::LogConfig config_for(const ConfigMap& overrides) {
  storage::LogConfig config;
  config.flush_mode = storage::FlushMode::never;  // no fsync cost in these tests
  if (auto it = overrides.find("retention.ms"); it != overrides.end()) {
    config.retention_ms = std::stoll(it->second);
  }
  return config;
}

class PartitionLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.path());
    ASSERT_TRUE(logs_->open([](const std::string&) { return config_for({}); }).ok());
    replicas_ = std::make_unique<ReplicaManager>(*logs_, /*node_id=*/0);
  }
  void TearDown() override {
    if (lifecycle_) lifecycle_->stop();
    ASSERT_TRUE(logs_->shutdown().ok());
  }

  void start(metadata::MetadataLog& log) {
    lifecycle_ = std::make_unique<PartitionLifecycle>(log, *replicas_, config_for);
    lifecycle_->add_topic_deleted_listener([this](const std::string& topic) {
      std::lock_guard lock(deleted_mu_);
      deleted_.push_back(topic);
    });
    ASSERT_TRUE(lifecycle_->start().ok());
  }
  // A clean restart of the storage below the lifecycle (stopped first).
  void restart() {
    if (lifecycle_) lifecycle_->stop();
    lifecycle_.reset();
    ASSERT_TRUE(logs_->shutdown().ok());
    replicas_.reset();
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.path());
    ASSERT_TRUE(logs_->open([](const std::string&) { return config_for({}); }).ok());
    replicas_ = std::make_unique<ReplicaManager>(*logs_, /*node_id=*/0);
  }
  // Waits until the lifecycle handled `image`'s record.
  void settle(const metadata::ImagePtr& image) {
    ASSERT_TRUE(lifecycle_->wait_applied(image->last_record_index).ok());
  }
  std::vector<std::string> deleted() {
    std::lock_guard lock(deleted_mu_);
    return deleted_;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<ReplicaManager> replicas_;
  std::unique_ptr<PartitionLifecycle> lifecycle_;
  std::mutex deleted_mu_;
  std::vector<std::string> deleted_;
};

TEST_F(PartitionLifecycleTest, RecordsOfTheLocalStoreCreateResizeReconfigureAndDeleteReplicas) {
  auto store = metadata::MetadataStore::open(fs_, dir_.path());
  ASSERT_TRUE(store.ok());
  start(**store);

  auto created = (*store)->append(metadata::TopicCreated{"orders", id_of(1), 2, {}});
  ASSERT_TRUE(created.ok());
  settle(*created);
  EXPECT_EQ(replicas_->partitions_of("orders"), (std::vector<int32_t>{0, 1}));
  EXPECT_NE(logs_->get("orders", 1), nullptr);

  auto grown = (*store)->append(metadata::PartitionsAdded{"orders", 4});
  ASSERT_TRUE(grown.ok());
  settle(*grown);
  EXPECT_EQ(replicas_->partitions_of("orders"), (std::vector<int32_t>{0, 1, 2, 3}));

  auto configured =
      (*store)->append(metadata::TopicConfigsReplaced{"orders", {{"retention.ms", "1234"}}});
  ASSERT_TRUE(configured.ok());
  settle(*configured);
  for (int32_t p = 0; p < 4; ++p) EXPECT_EQ(replicas_->get("orders", p)->config().retention_ms, 1234);

  auto removed = (*store)->append(metadata::TopicDeleted{"orders"});
  ASSERT_TRUE(removed.ok());
  settle(*removed);
  EXPECT_TRUE(replicas_->partitions_of("orders").empty());
  EXPECT_EQ(logs_->get("orders", 0), nullptr);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "orders-0"));
  EXPECT_EQ(deleted(), std::vector<std::string>{"orders"});
}

TEST_F(PartitionLifecycleTest, StartReconcilesWithTheImageCreatingMissingAndRemovingStaleReplicas) {
  // A crash between the records and their file work: the image has "kept"
  // (2 partitions) but only partition 0 exists; "gone" is not in the image
  // but its log is still there (it is set aside as a stray: see below).
  ASSERT_TRUE(replicas_->create("kept", 0, config_for({})).ok());
  ASSERT_TRUE(replicas_->create("gone", 0, config_for({})).ok());
  ScriptedMetadataLog log;
  log.apply(metadata::TopicCreated{"kept", id_of(1), 2, {}});  // before anyone subscribes
  start(log);
  EXPECT_EQ(replicas_->partitions_of("kept"), (std::vector<int32_t>{0, 1}));
  EXPECT_TRUE(replicas_->partitions_of("gone").empty());
  EXPECT_EQ(logs_->get("gone", 0), nullptr);
  EXPECT_EQ(lifecycle_->applied_index(), 0);
}

// Regression: start-up deleted every partition directory whose topic the
// image did not have, so a directory the metadata never knew (restored by an
// operator, copied from another broker, left by a broker whose metadata was
// lost) was wiped. Now only a deletion the broker itself started is finished;
// anything else is renamed <dir>.<id>-stray and kept.
TEST_F(PartitionLifecycleTest, AtStartAnUnknownTopicsPartitionIsKeptAsAStrayAndADeletionIsFinished) {
  auto made = replicas_->create("unknown", 0, config_for({}));
  ASSERT_TRUE(made.ok());
  auto batch = storage::testing::make_batch("precious", 3, 1000);
  ASSERT_TRUE((*made)->log().append(batch.span(), storage::testing::header_of(batch), 0).ok());
  ASSERT_TRUE(replicas_->create("deleted", 0, config_for({})).ok());
  // "deleted" was being removed (LogManager::remove) when the broker died:
  // its deletion marker is durable, part of its files may still be there.
  ASSERT_TRUE(io::write_file_atomically(
                  fs_, dir_ / ("deleted-0/" + std::string(storage::format::kDeletionFile)), {})
                  .ok());
  ASSERT_TRUE(logs_->checkpoint_now().ok());  // both still in the checkpoints
  restart();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "deleted-0"));
  EXPECT_EQ(logs_->get("deleted", 0), nullptr);
  ASSERT_NE(logs_->get("unknown", 0), nullptr);

  ScriptedMetadataLog log;  // knows neither topic
  start(log);
  EXPECT_TRUE(replicas_->partitions_of("unknown").empty());
  EXPECT_EQ(logs_->get("unknown", 0), nullptr);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "unknown-0"));
  std::vector<std::string> strays;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    std::string name = e.path().filename().string();
    if (name.starts_with("unknown-0.") && name.ends_with("-stray")) strays.push_back(name);
  }
  ASSERT_EQ(strays.size(), 1u);
  // The data is all there, and a restart neither loads nor deletes it.
  EXPECT_GT(std::filesystem::file_size(dir_ / (strays[0] + "/" +
                                               storage::format::segment_file_name(
                                                   0, storage::format::kLogSuffix))),
            0u);
  auto checkpoint = storage::read_checkpoint(
      fs_, dir_ / std::string(storage::format::kRecoveryPointCheckpointFile));
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_EQ(checkpoint->count({"unknown", 0}), 0u);
  EXPECT_EQ(checkpoint->count({"deleted", 0}), 0u);
  restart();
  EXPECT_TRUE(std::filesystem::exists(dir_ / strays[0]));
  EXPECT_EQ(logs_->all().size(), 0u);
}

TEST_F(PartitionLifecycleTest, ARecordDeliveredTwiceCreatesNothingTwice) {
  ScriptedMetadataLog log;
  start(log);
  const MetadataRecord create = metadata::TopicCreated{"t", id_of(1), 1, {}};
  auto image = log.apply(create);
  settle(image);
  auto* first = logs_->get("t", 0);
  ASSERT_NE(first, nullptr);
  log.deliver(&create, image);  // again
  // Something after it, so the test knows the duplicate was handled.
  settle(log.apply(metadata::TopicConfigsReplaced{"t", {}}));
  EXPECT_EQ(logs_->get("t", 0), first);
  EXPECT_EQ(replicas_->all().size(), 1u);
}

TEST_F(PartitionLifecycleTest, ALateCreationRecordDoesNotResurrectADeletedTopic) {
  ScriptedMetadataLog log;
  start(log);
  const MetadataRecord create = metadata::TopicCreated{"t", id_of(1), 2, {}};
  auto created = log.apply(create);
  settle(created);
  settle(log.apply(metadata::TopicDeleted{"t"}));
  ASSERT_TRUE(replicas_->partitions_of("t").empty());
  // The creation arrives again, late, with the image it came with.
  log.deliver(&create, created);
  const MetadataRecord grow = metadata::PartitionsAdded{"t", 3};
  log.deliver(&grow, created);  // stale too: its index is not past the deletion
  settle(log.apply(metadata::TopicCreated{"other", id_of(2), 1, {}}));
  EXPECT_TRUE(replicas_->partitions_of("t").empty());
  EXPECT_EQ(logs_->get("t", 0), nullptr);
  EXPECT_EQ(replicas_->partitions_of("other"), std::vector<int32_t>{0});
}

TEST_F(PartitionLifecycleTest, AReplacedImageIsReconciledAsAWhole) {
  ScriptedMetadataLog log;
  start(log);
  settle(log.apply(metadata::TopicCreated{"stays", id_of(1), 1, {}}));
  settle(log.apply(metadata::TopicCreated{"goes", id_of(2), 2, {}}));
  settle(log.apply(metadata::TopicCreated{"reused", id_of(3), 2, {}}));
  auto stays_log = logs_->get("stays", 0);

  // A snapshot from a leader that moved on: "goes" deleted, "reused" deleted
  // and created again with a new id and one partition, "fresh" created,
  // "stays" grown. The records in between are never delivered one by one.
  auto next = std::make_shared<metadata::MetadataImage>(*log.current());
  next->topics.erase("goes");
  next->topics["reused"] = metadata::TopicInfo{"reused", id_of(4), 1, {}};
  next->topics["fresh"] = metadata::TopicInfo{"fresh", id_of(5), 1, {}};
  next->topics["stays"].partition_count = 2;
  next->topics["stays"].configs = {{"retention.ms", "77"}};
  next->last_record_index += 10;
  log.replace(next);
  settle(next);

  EXPECT_TRUE(replicas_->partitions_of("goes").empty());
  EXPECT_EQ(replicas_->partitions_of("reused"), std::vector<int32_t>{0});
  EXPECT_EQ(replicas_->partitions_of("fresh"), std::vector<int32_t>{0});
  EXPECT_EQ(replicas_->partitions_of("stays"), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(logs_->get("stays", 0), stays_log);  // kept, not recreated
  EXPECT_EQ(replicas_->get("stays", 0)->config().retention_ms, 77);
  // "reused" partition 0 is a new, empty log, not the old topic's.
  EXPECT_NE(replicas_->get("reused", 0), nullptr);
  auto gone = deleted();
  std::sort(gone.begin(), gone.end());
  EXPECT_EQ(gone, (std::vector<std::string>{"goes", "reused"}));
}

TEST_F(PartitionLifecycleTest, InAClusterOnlyThisNodesReplicasExistAndTheyFollowTheRecordsState) {
  std::mutex mu;
  std::vector<std::string> changes;
  replicas_->set_role_change_listener([&](std::shared_ptr<Partition> p, Role role) {
    std::lock_guard lock(mu);
    changes.push_back(p->topic() + "-" + std::to_string(p->index()) +
                      (role == Role::leader ? " leader" : " follower"));
  });
  auto changed = [&] {
    std::lock_guard lock(mu);
    auto out = changes;
    changes.clear();
    return out;
  };
  ScriptedMetadataLog log;  // this node is 0
  start(log);
  for (int32_t node : {1, 2}) {
    log.apply(metadata::BrokerRegistered{node, 1, id_of(uint8_t(10 + node)),
                                         {{"PLAINTEXT", "127.0.0.1", 9092 + node}}, ""});
    log.apply(metadata::BrokerUnfenced{node, 1});
  }
  const std::vector<metadata::PartitionState> states = {
      {{0, 1}, 0, {0, 1}, 0, 0},  // led here
      {{1, 2}, 1, {1, 2}, 0, 0},  // not ours
      {{1, 0}, 1, {1, 0}, 0, 0},  // followed here
  };
  settle(log.apply(metadata::TopicCreated{"t", id_of(1), 3, {}, states}));
  EXPECT_EQ(replicas_->partitions_of("t"), (std::vector<int32_t>{0, 2}));
  auto led = replicas_->get("t", 0);
  ASSERT_NE(led, nullptr);
  EXPECT_EQ(led->role(), Role::leader);
  EXPECT_EQ(led->replicas(), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(led->isr(), (std::vector<int32_t>{0, 1}));
  auto followed = replicas_->get("t", 2);
  ASSERT_NE(followed, nullptr);
  EXPECT_EQ(followed->role(), Role::follower);
  EXPECT_EQ(followed->leader_id(), 1);
  auto seen = changed();
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"t-0 leader", "t-2 follower"}));

  // The leader of t-0 moves to 1 (epoch 1): this replica follows it.
  settle(log.apply(metadata::PartitionChanged{"t", id_of(1), 0, 1, {1}, 1, 1}));
  EXPECT_EQ(led->role(), Role::follower);
  EXPECT_EQ(led->leader_id(), 1);
  EXPECT_EQ(led->leader_epoch(), 1);
  EXPECT_EQ(led->isr(), std::vector<int32_t>{1});
  EXPECT_EQ(changed(), std::vector<std::string>{"t-0 follower"});

  // An ISR change under the same leader: state only, no role change.
  settle(log.apply(metadata::PartitionChanged{"t", id_of(1), 2, 1, {1}, 0, 1}));
  EXPECT_EQ(followed->isr(), std::vector<int32_t>{1});
  EXPECT_EQ(followed->partition_epoch(), 1);
  EXPECT_TRUE(changed().empty());

  // A snapshot in which t-2 moved off this node: its replica goes.
  auto next = std::make_shared<metadata::MetadataImage>(*log.current());
  next->topics["t"].partitions[2] = {{1, 2}, 1, {1, 2}, 0, 2};
  next->last_record_index += 1;
  log.replace(next);
  settle(next);
  EXPECT_EQ(replicas_->partitions_of("t"), std::vector<int32_t>{0});
  EXPECT_EQ(logs_->get("t", 2), nullptr);
}

TEST_F(PartitionLifecycleTest, AWaiterIsReleasedWhenTheLifecycleStops) {
  ScriptedMetadataLog log;
  start(log);
  std::thread stopper([this] { lifecycle_->stop(); });
  // Index 5 is never applied: the wait ends only because of stop().
  auto waited = lifecycle_->wait_applied(5);
  stopper.join();
  EXPECT_EQ(waited.code(), Errc::shut_down);
}

}  // namespace
}  // namespace holdfast::replication
