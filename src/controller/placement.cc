#include "controller/placement.h"

#include <map>
#include <set>

namespace holdfast::controller {
namespace {

using metadata::MetadataImage;
using metadata::PartitionState;

std::string rack_of(const MetadataImage& image, int32_t node) {
  const metadata::BrokerInfo* b = image.find_broker(node);
  return b ? b->rack : "";
}

// One broker of each rack in turn (racks in name order, brokers by id).
std::vector<int32_t> rack_alternating(const MetadataImage& image, const std::vector<int32_t>& live) {
  std::map<std::string, std::vector<int32_t>> by_rack;
  for (int32_t node : live) by_rack[rack_of(image, node)].push_back(node);
  std::vector<int32_t> order;
  for (size_t round = 0; order.size() < live.size(); ++round) {
    for (const auto& [rack, nodes] : by_rack) {
      if (round < nodes.size()) order.push_back(nodes[round]);
    }
  }
  return order;
}

int64_t partitions_in(const MetadataImage& image) {
  int64_t total = 0;
  for (const auto& [name, topic] : image.topics) total += topic.partition_count;
  return total;
}

}  // namespace

std::vector<int32_t> live_brokers(const MetadataImage& image) {
  std::vector<int32_t> live;
  for (const auto& [id, broker] : image.brokers) {
    if (!broker.fenced) live.push_back(id);
  }
  if (image.brokers.empty() && image.sole_node_id >= 0) live.push_back(image.sole_node_id);
  return live;
}

Result<std::vector<PartitionState>, Errc> place_partitions(const MetadataImage& image,
                                                          int32_t count,
                                                          int32_t replication_factor) {
  if (count < 1) return make_error(Errc::invalid_partitions, "the partition count must be at least 1");
  const std::vector<int32_t> live = live_brokers(image);
  if (replication_factor < 1 || size_t(replication_factor) > live.size()) {
    return make_error(Errc::invalid_replication_factor,
                      "replication factor " + std::to_string(replication_factor) +
                          " is not between 1 and the " + std::to_string(live.size()) +
                          " live broker" + (live.size() == 1 ? "" : "s"));
  }
  const std::vector<int32_t> order = rack_alternating(image, live);
  const size_t n = order.size();
  const int64_t cursor = partitions_in(image);
  std::vector<PartitionState> out;
  for (int32_t i = 0; i < count; ++i) {
    const int64_t k = cursor + i;
    const size_t leader_pos = size_t(k % int64_t(n));
    std::vector<int32_t> replicas = {order[leader_pos]};
    std::set<std::string> racks_used = {rack_of(image, order[leader_pos])};
    // The other positions, starting `shift` after the leader, each once.
    std::vector<int32_t> candidates;
    if (n > 1) {
      const size_t shift = size_t((k / int64_t(n)) % int64_t(n - 1));
      for (size_t j = 0; j < n - 1; ++j) {
        candidates.push_back(order[(leader_pos + 1 + (shift + j) % (n - 1)) % n]);
      }
    }
    std::vector<bool> taken(candidates.size(), false);
    for (size_t j = 0; j < candidates.size() && replicas.size() < size_t(replication_factor); ++j) {
      if (racks_used.insert(rack_of(image, candidates[j])).second) {
        replicas.push_back(candidates[j]);
        taken[j] = true;
      }
    }
    for (size_t j = 0; j < candidates.size() && replicas.size() < size_t(replication_factor); ++j) {
      if (!taken[j]) replicas.push_back(candidates[j]);
    }
    out.push_back(PartitionState{replicas, replicas[0], replicas, 0, 0});
  }
  return out;
}

Result<AutoCreateReplication, Errc> auto_create_replication(const MetadataImage& image,
                                                            const std::string& topic,
                                                            int16_t default_replication_factor) {
  const size_t live = live_brokers(image).size();
  if (live == 0) {
    return make_error(Errc::invalid_replication_factor,
                      "cannot create topic " + topic + ": no live broker");
  }
  AutoCreateReplication out;
  out.replication_factor = default_replication_factor;
  if (size_t(default_replication_factor) > live) {
    out.replication_factor = int16_t(live);
    out.capped = true;
    out.warning = "auto-created topic " + topic + " gets replication factor " +
                  std::to_string(live) + " instead of the configured " +
                  std::to_string(default_replication_factor) + ": only " + std::to_string(live) +
                  " broker" + (live == 1 ? " is" : "s are") +
                  " live, and the factor is not raised when more join";
  }
  return out;
}

}  // namespace holdfast::controller
