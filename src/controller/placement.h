// Replica placement for new topics and added partitions (the controller's
// part of CreateTopics, CreatePartitions and auto-creation).
//
// Rules:
//   - RF replicas on distinct live (registered, unfenced) brokers; RF < 1 or
//     RF > live brokers is invalid_replication_factor (Kafka's answer for an
//     explicit RF; auto-creation caps first, see auto_create_replication).
//   - Leaders (the first replica, the preferred leader) spread round-robin
//     over the live brokers, continuing from where the image's existing
//     partitions leave off (the cursor is the number of partitions in the
//     image), so successive topics do not all start on the lowest id.
//   - broker.rack respected when any live broker has one: brokers are taken
//     in rack-alternating order (one per rack in turn), and each partition's
//     followers go to racks it does not use yet while such racks remain, then
//     to any remaining broker. Brokers without a rack count as one rack "".
//   - Followers start at a shift that varies with the partition, so the
//     copies of one broker's leaders do not all land on the same neighbour.
// Deterministic: the same image and request give the same placement on any
// controller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "controller/errc.h"
#include "metadata/metadata_image.h"

namespace holdfast::controller {

// The brokers that may hold new replicas, ascending by id: registered and
// unfenced; in an image with no registered broker, its sole node (single-node
// mode), if any.
std::vector<int32_t> live_brokers(const metadata::MetadataImage& image);

// States for `count` new partitions of one topic (leader = first replica,
// ISR = replicas, epochs 0).
Result<std::vector<metadata::PartitionState>, Errc> place_partitions(
    const metadata::MetadataImage& image, int32_t count, int32_t replication_factor);

// The replication factor for an auto-created topic (Metadata with
// allow_auto_topic_creation, and the internal __consumer_offsets): the
// configured default, capped at the number of live brokers. `capped` says the
// cap applied, and `warning` is the line to log when it did.
struct AutoCreateReplication {
  int16_t replication_factor = 1;
  bool capped = false;
  std::string warning;
};
Result<AutoCreateReplication, Errc> auto_create_replication(const metadata::MetadataImage& image,
                                                            const std::string& topic,
                                                            int16_t default_replication_factor);

}  // namespace holdfast::controller
