// Replica placement: distinct live brokers, round-robin leaders, racks.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "controller/placement.h"
#include "controller/tests/controller_test_util.h"

namespace holdfast::controller {
namespace {

using namespace testing;  // NOLINT: controller_test_util.h

TEST(Placement, ReplicasAreDistinctLiveBrokersAndLeadersGoRoundRobin) {
  ImagePtr image = brokers(3);
  auto placed = place_partitions(*image, 6, 3);
  ASSERT_TRUE(placed) << placed.error().message;
  std::map<int32_t, int> leaders;
  for (const PartitionState& p : *placed) {
    ASSERT_EQ(p.replicas.size(), 3u);
    EXPECT_EQ(std::set<int32_t>(p.replicas.begin(), p.replicas.end()).size(), 3u);
    EXPECT_EQ(p.leader, p.replicas[0]);
    EXPECT_EQ(p.isr, p.replicas);
    EXPECT_EQ(p.leader_epoch, 0);
    EXPECT_EQ(p.partition_epoch, 0);
    ++leaders[p.leader];
  }
  EXPECT_EQ(leaders, (std::map<int32_t, int>{{1, 2}, {2, 2}, {3, 2}}));
  EXPECT_EQ((*placed)[0].leader, 1);
  EXPECT_EQ((*placed)[1].leader, 2);
}

TEST(Placement, TheNextTopicContinuesWhereTheImageLeavesOff) {
  ImagePtr image = brokers(3);
  auto first = place_partitions(*image, 1, 1);
  ASSERT_TRUE(first);
  image = apply_all(image, {metadata::TopicCreated{"a", metadata::TopicId{}, 1, {}, *first}});
  auto second = place_partitions(*image, 1, 1);
  ASSERT_TRUE(second);
  EXPECT_NE((*first)[0].leader, (*second)[0].leader);
}

TEST(Placement, FencedBrokersGetNoReplicasAndTooHighAFactorIsRefused) {
  ImagePtr image = apply_all(brokers(3), {metadata::BrokerFenced{2, 1}});
  auto placed = place_partitions(*image, 4, 2);
  ASSERT_TRUE(placed);
  for (const PartitionState& p : *placed) EXPECT_FALSE(std::count(p.replicas.begin(), p.replicas.end(), 2));
  auto refused = place_partitions(*image, 1, 3);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Errc::invalid_replication_factor);
  EXPECT_EQ(place_partitions(*image, 1, 0).code(), Errc::invalid_replication_factor);
  EXPECT_EQ(place_partitions(*image, 0, 1).code(), Errc::invalid_partitions);
}

TEST(Placement, ReplicasGoToDistinctRacksWhileRacksRemain) {
  // Racks a, a, b, b, c: every partition of RF 3 spans all three racks.
  ImagePtr image = brokers({"a", "a", "b", "b", "c"});
  auto placed = place_partitions(*image, 10, 3);
  ASSERT_TRUE(placed);
  std::map<int32_t, int> leaders;
  for (const PartitionState& p : *placed) {
    std::set<std::string> racks;
    for (int32_t node : p.replicas) racks.insert(image->brokers.at(node).rack);
    EXPECT_EQ(racks.size(), 3u) << "partition on " << p.replicas[0] << "," << p.replicas[1] << ","
                                << p.replicas[2];
    ++leaders[p.leader];
  }
  EXPECT_EQ(leaders.size(), 5u);  // every broker leads some
  // RF 4 over 3 racks: three racks used, then one broker doubles up a rack.
  auto wide = place_partitions(*image, 5, 4);
  ASSERT_TRUE(wide);
  for (const PartitionState& p : *wide) {
    std::set<std::string> racks;
    for (int32_t node : p.replicas) racks.insert(image->brokers.at(node).rack);
    EXPECT_EQ(racks.size(), 3u);
    EXPECT_EQ(std::set<int32_t>(p.replicas.begin(), p.replicas.end()).size(), 4u);
  }
}

TEST(Placement, AutoCreationCapsTheFactorAtTheLiveBrokersAndSaysSo) {
  ImagePtr image = apply_all(brokers(3), {metadata::BrokerFenced{3, 1}});
  auto capped = auto_create_replication(*image, "events", 3);
  ASSERT_TRUE(capped);
  EXPECT_EQ(capped->replication_factor, 2);
  EXPECT_TRUE(capped->capped);
  EXPECT_NE(capped->warning.find("events"), std::string::npos);
  EXPECT_NE(capped->warning.find("instead of the configured 3"), std::string::npos) << capped->warning;
  auto enough = auto_create_replication(*image, "events", 2);
  ASSERT_TRUE(enough);
  EXPECT_EQ(enough->replication_factor, 2);
  EXPECT_FALSE(enough->capped);
  EXPECT_TRUE(enough->warning.empty());
  MetadataImage empty;
  EXPECT_EQ(auto_create_replication(empty, "events", 1).code(), Errc::invalid_replication_factor);
}

TEST(Placement, ASingleNodeImagePlacesOnItsSoleNode) {
  MetadataImage image;
  image.sole_node_id = 4;
  auto placed = place_partitions(image, 2, 1);
  ASSERT_TRUE(placed);
  EXPECT_EQ((*placed)[0], metadata::sole_node_partition(4));
  EXPECT_EQ(place_partitions(image, 1, 3).code(), Errc::invalid_replication_factor);
}

}  // namespace
}  // namespace holdfast::controller
