// The metadata records and the image: today's (pre-assignment) records and
// snapshots still load, every record and image round-trips through its JSON
// form, and records that do not fit the image are refused with
// invalid_record.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/bytes.h"
#include "base/crc32c.h"
#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "metadata/metadata_log.h"
#include "metadata/metadata_store.h"
#include "metadata/tests/metadata_test_util.h"

namespace holdfast::metadata {
namespace {

using namespace testing;  // NOLINT: the helpers in metadata_test_util.h

// Records exactly as single-node Holdfast wrote them before partitions had
// state (no "partition_states" member).
const char* const kTodaysRecords[] = {
    R"({"configs":{"retention.ms":"1000"},"id":"000102030405060708090a0b0c0d0e0f","name":"orders","partitions":2,"type":"topic_created"})",
    R"({"name":"orders","partitions":3,"type":"partitions_added"})",
    R"({"configs":{},"id":"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff","name":"gone","partitions":1,"type":"topic_created"})",
    R"({"configs":{"cleanup.policy":"compact"},"name":"orders","type":"topic_configs_replaced"})",
    R"({"name":"gone","type":"topic_deleted"})",
};

// A version-1 snapshot as encode_image wrote it before.
const char* const kVersion1Snapshot =
    R"({"last_record_index":4,"topics":[{"configs":{"cleanup.policy":"compact"},"id":"000102030405060708090a0b0c0d0e0f","name":"orders","partitions":3,"type":"topic_created"}],"version":1})";

void write_metadata_log(const std::string& data_dir) {
  std::filesystem::create_directories(data_dir + "/__metadata");
  std::ofstream out(data_dir + "/__metadata/metadata.log", std::ios::binary);
  for (const char* payload : kTodaysRecords) {
    const size_t size = std::strlen(payload);
    uint8_t header[8];
    store_be32(header, uint32_t(size));
    store_be32(header + 4, crc32c(reinterpret_cast<const uint8_t*>(payload), size));
    out.write(reinterpret_cast<const char*>(header), 8);
    out.write(payload, std::streamsize(size));
  }
}

void expect_on_sole_node(const TopicInfo& topic, int32_t node) {
  ASSERT_EQ(topic.partitions.size(), size_t(topic.partition_count));
  for (const PartitionState& p : topic.partitions) {
    EXPECT_EQ(p.replicas, std::vector<int32_t>{node});
    EXPECT_EQ(p.leader, node);
    EXPECT_EQ(p.isr, std::vector<int32_t>{node});
    EXPECT_EQ(p.leader_epoch, 0);
    EXPECT_EQ(p.partition_epoch, 0);
  }
}

TEST(MetadataRecordsOfToday, AMetadataLogWithoutAssignmentsLoadsOntoTheLocalNode) {
  io::testing::TempDir dir;
  write_metadata_log(dir.path());
  io::PosixFileSystem fs;
  auto store = MetadataStore::open(fs, dir.path(), /*node_id=*/3);
  ASSERT_TRUE(store) << store.error().message;
  ImagePtr image = (*store)->current();
  EXPECT_EQ(image->last_record_index, 4);
  ASSERT_EQ(image->topics.size(), 1u);
  const TopicInfo& orders = image->topics.at("orders");
  EXPECT_EQ(orders.partition_count, 3);
  EXPECT_EQ(orders.configs, (ConfigMap{{"cleanup.policy", "compact"}}));
  expect_on_sole_node(orders, 3);
  // And such records re-encode byte for byte as they were written.
  for (const char* payload : kTodaysRecords) {
    auto record = decode_record(payload);
    ASSERT_TRUE(record) << record.error().message;
    EXPECT_EQ(encode_record(*record), payload);
  }
  // Appending today's kind of record still works on the local file.
  ASSERT_TRUE((*store)->append(TopicCreated{"more", random_id(), 2, {}}));
  expect_on_sole_node(*(*store)->current()->find_topic("more"), 3);
}

TEST(MetadataRecordsOfToday, AVersion1SnapshotLoadsOntoTheSoleNodeAndNeedsOne) {
  auto image = decode_image(kVersion1Snapshot, /*sole_node_id=*/5);
  ASSERT_TRUE(image) << image.error().message;
  EXPECT_EQ((*image)->last_record_index, 4);
  expect_on_sole_node((*image)->topics.at("orders"), 5);
  // Re-encoded as version 2 with explicit states (replicas naming node 5,
  // which is a broker only as the sole node).
  auto again = decode_image(encode_image(**image), 5);
  ASSERT_TRUE(again) << again.error().message;
  expect_on_sole_node((*again)->topics.at("orders"), 5);
  // A cluster (no sole node) cannot place the unassigned partitions.
  EXPECT_EQ(decode_image(kVersion1Snapshot, -1).code(), Errc::corrupt);
}

TEST(MetadataRecordsOfToday, ATopicWithoutAssignmentIsInvalidWithoutASoleNode) {
  MetadataImage cluster;  // sole_node_id -1, as in a Raft log
  auto refused = apply_record(cluster, TopicCreated{"t", random_id(), 1, {}}, 0);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Errc::invalid_record);
}

// An image with brokers 1..3 registered and unfenced, and topic "t" with one
// partition on all three, led by 1.
class ImageRules : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int32_t id = 1; id <= 3; ++id) {
      apply(test_broker(id, "rack-" + std::to_string(id)));
      apply(BrokerUnfenced{id, 1});
    }
    apply(TopicCreated{"t", id_, 1, {}, {PartitionState{{1, 2, 3}, 1, {1, 2, 3}, 0, 0}}});
  }

  void apply(const MetadataRecord& record) {
    auto next = apply_record(*image_, record, image_->last_record_index + 1);
    ASSERT_TRUE(next) << next.error().message;
    image_ = *next;
  }
  // The record is refused with invalid_record, and its reason mentions `why`.
  void expect_refused(const MetadataRecord& record, const std::string& why) {
    auto next = apply_record(*image_, record, image_->last_record_index + 1);
    ASSERT_FALSE(next) << encode_record(record) << " was accepted";
    EXPECT_EQ(next.code(), Errc::invalid_record);
    EXPECT_NE(next.error().message.find(why), std::string::npos) << next.error().message;
  }
  const PartitionState& partition() const { return image_->topics.at("t").partitions[0]; }

  TopicId id_ = random_id();
  ImagePtr image_ = std::make_shared<MetadataImage>();
};

TEST_F(ImageRules, BrokersRegisterFencedAndUnfenceWithTheirEpoch) {
  const BrokerInfo* b = image_->find_broker(2);
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(b->fenced);
  EXPECT_EQ(b->rack, "rack-2");
  apply(BrokerFenced{2, 1});
  EXPECT_TRUE(image_->find_broker(2)->fenced);
  // A restart: new incarnation, higher epoch, fenced until unfenced again.
  BrokerRegistered again = test_broker(2);
  again.epoch = 2;
  again.incarnation[1] = 9;
  apply(again);
  EXPECT_EQ(image_->find_broker(2)->epoch, 2);
  EXPECT_TRUE(image_->find_broker(2)->fenced);
  EXPECT_EQ(image_->find_broker(2)->registered_index, image_->last_record_index);
}

TEST_F(ImageRules, BrokerRecordsThatDoNotFitAreRefused) {
  expect_refused(BrokerFenced{7, 1}, "unknown broker 7");
  expect_refused(BrokerFenced{2, 0}, "stale epoch");
  expect_refused(BrokerUnfenced{2, 1}, "already unfenced");
  BrokerRegistered same_epoch = test_broker(2);
  same_epoch.incarnation[1] = 9;
  expect_refused(same_epoch, "not above");
  BrokerRegistered same_incarnation = test_broker(2);
  same_incarnation.epoch = 5;
  expect_refused(same_incarnation, "incarnation already registered");
  BrokerRegistered no_endpoint = test_broker(4);
  no_endpoint.endpoints.clear();
  expect_refused(no_endpoint, "no endpoint");
  BrokerRegistered twice = test_broker(4);
  twice.endpoints.push_back(twice.endpoints[0]);
  expect_refused(twice, "duplicate endpoint");
}

TEST_F(ImageRules, NewPartitionsMustFitTheBrokers) {
  expect_refused(TopicCreated{"u", random_id(), 1, {}, {PartitionState{{1, 9}, 1, {1, 9}, 0, 0}}},
                 "unknown broker");
  expect_refused(TopicCreated{"u", random_id(), 1, {}, {PartitionState{{1, 2}, 3, {1, 2}, 0, 0}}},
                 "not in the ISR");
  expect_refused(TopicCreated{"u", random_id(), 1, {}, {PartitionState{{1, 2}, 1, {1, 3}, 0, 0}}},
                 "not a replica");
  expect_refused(TopicCreated{"u", random_id(), 1, {}, {PartitionState{{1, 1}, 1, {1}, 0, 0}}},
                 "listed twice");
  expect_refused(TopicCreated{"u", random_id(), 1, {}, {PartitionState{{1}, 1, {1}, 2, 0}}},
                 "epochs 0");
  expect_refused(TopicCreated{"u", random_id(), 2, {}, {PartitionState{{1}, 1, {1}, 0, 0}}},
                 "1 partition states for 2");
  apply(BrokerFenced{3, 1});
  expect_refused(TopicCreated{"u", random_id(), 1, {}, {PartitionState{{3}, 3, {3}, 0, 0}}},
                 "fenced");
  expect_refused(PartitionsAdded{"t", 2, {PartitionState{{1, 9}, 1, {1}, 0, 0}}}, "unknown broker");
  apply(PartitionsAdded{"t", 3, {PartitionState{{2, 1}, 2, {2, 1}, 0, 0}, PartitionState{{1}, 1, {1}, 0, 0}}});
  EXPECT_EQ(image_->topics.at("t").partitions.size(), 3u);
  EXPECT_EQ(image_->topics.at("t").partitions[1].leader, 2);
}

TEST_F(ImageRules, PartitionChangesApplyOnlyOnTopOfTheCurrentEpochs) {
  // ISR shrink by the leader: partition epoch bumps, leader epoch does not.
  apply(PartitionChanged{"t", id_, 0, 1, {1, 2}, 0, 1});
  EXPECT_EQ(partition(), (PartitionState{{1, 2, 3}, 1, {1, 2}, 0, 1}));
  // The same change again is stale.
  expect_refused(PartitionChanged{"t", id_, 0, 1, {1, 2}, 0, 1}, "stale partition epoch");
  // A new leader must bump the leader epoch by exactly one.
  expect_refused(PartitionChanged{"t", id_, 0, 2, {2}, 0, 2}, "leader epoch");
  expect_refused(PartitionChanged{"t", id_, 0, 2, {2}, 2, 2}, "leader epoch");
  expect_refused(PartitionChanged{"t", id_, 0, 1, {1}, 1, 2}, "leader epoch");
  expect_refused(PartitionChanged{"t", id_, 0, 3, {1, 2}, 1, 2}, "not in the ISR");
  expect_refused(PartitionChanged{"t", id_, 0, 1, {}, 0, 2}, "empty ISR");
  expect_refused(PartitionChanged{"t", random_id(), 0, 1, {1}, 0, 2}, "unknown topic");
  expect_refused(PartitionChanged{"t", id_, 1, 1, {1}, 0, 2}, "unknown partition");
  apply(BrokerFenced{3, 1});
  expect_refused(PartitionChanged{"t", id_, 0, 1, {1, 2, 3}, 0, 2}, "cannot join the ISR");
  apply(PartitionChanged{"t", id_, 0, 2, {2}, 1, 2});
  EXPECT_EQ(partition(), (PartitionState{{1, 2, 3}, 2, {2}, 1, 2}));
  // Offline: no leader, the last ISR member kept.
  apply(PartitionChanged{"t", id_, 0, kNoLeader, {2}, 2, 3});
  EXPECT_EQ(partition().leader, kNoLeader);
  expect_refused(PartitionChanged{"t", id_, 0, 3, {3}, 3, 4}, "fenced and cannot lead");
}

TEST_F(ImageRules, EveryRecordAndTheImageRoundTrip) {
  apply(BrokerFenced{3, 1});
  apply(PartitionChanged{"t", id_, 0, 1, {1, 2}, 0, 1});
  apply(TopicConfigsReplaced{"t", {{"unclean.leader.election.enable", "true"}}});
  const std::vector<MetadataRecord> records = {
      test_broker(4, "r"), BrokerFenced{4, 1}, BrokerUnfenced{4, 1},
      PartitionChanged{"t", id_, 0, kNoLeader, {2}, 5, 9},
      TopicCreated{"u", random_id(), 2, {{"a", "b"}}, on_node(1, 2)},
      PartitionsAdded{"u", 3, on_node(2, 1)}, TopicConfigsReplaced{"u", {}}, TopicDeleted{"u"}};
  for (const auto& record : records) {
    const std::string encoded = encode_record(record);
    auto decoded = decode_record(encoded);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(decoded->index(), record.index());
    EXPECT_EQ(encode_record(*decoded), encoded);
  }
  const std::string encoded = encode_image(*image_);
  auto decoded = decode_image(encoded, -1);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(encode_image(**decoded), encoded);
  EXPECT_EQ((*decoded)->brokers.size(), 3u);
  EXPECT_TRUE((*decoded)->brokers.at(3).fenced);
  EXPECT_EQ((*decoded)->brokers.at(2).registered_index, image_->brokers.at(2).registered_index);
  EXPECT_EQ((*decoded)->brokers.at(1).endpoints, image_->brokers.at(1).endpoints);
  EXPECT_EQ((*decoded)->topics.at("t").partitions, image_->topics.at("t").partitions);
  EXPECT_EQ((*decoded)->topics.at("t").configs, image_->topics.at("t").configs);
  EXPECT_EQ((*decoded)->last_record_index, image_->last_record_index);
}

TEST(MetadataImageCodec, RejectsGarbageUnknownVersionsAndImpossibleStates) {
  EXPECT_EQ(decode_image("not json", -1).code(), Errc::corrupt);
  EXPECT_EQ(decode_image(R"({"version":3,"last_record_index":0,"brokers":[],"topics":[]})", -1).code(),
            Errc::corrupt);
  EXPECT_EQ(decode_image(R"({"version":1,"last_record_index":0,"topics":[{"type":"topic_deleted","name":"a"}]})", 1)
                .code(),
            Errc::corrupt);
  // A replica that is not among the snapshot's brokers.
  EXPECT_EQ(decode_image(R"({"version":2,"last_record_index":0,"brokers":[],"topics":[{"configs":{},"id":"000102030405060708090a0b0c0d0e0f","name":"x","partitions":1,"partition_states":[{"replicas":[4],"leader":4,"isr":[4],"leader_epoch":0,"partition_epoch":0}],"type":"topic_created"}]})",
                         -1)
                .code(),
            Errc::corrupt);
  EXPECT_EQ(decode_record(R"({"type":"broker_fenced","node_id":1})").code(), Errc::corrupt);
}

}  // namespace
}  // namespace holdfast::metadata
