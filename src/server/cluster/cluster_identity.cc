#include "server/cluster/cluster_identity.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "metadata/metadata_store.h"

namespace holdfast::server::cluster {
namespace {

// FNV-1a 64 with a seed: stable across builds and platforms (std::hash is not
// promised to be), which a derived cluster id must be.
uint64_t fnv1a(const std::string& text, uint64_t seed) {
  uint64_t h = 14695981039346656037ULL ^ seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

std::string configured_cluster_id(const BrokerConfig& config) {
  if (!config.cluster_id.empty()) return config.cluster_id;
  if (!config.cluster_mode()) return "";
  std::vector<std::string> voters;
  for (const auto& v : config.controller_quorum_voters) {
    voters.push_back(std::to_string(v.id) + "@" + v.address);
  }
  std::sort(voters.begin(), voters.end());
  std::string joined;
  for (const auto& v : voters) joined += v + ",";
  metadata::TopicId bytes{};
  uint64_t a = fnv1a(joined, 0x686f6c6466617374ULL), b = fnv1a(joined, a);
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(a >> (8 * i));
    bytes[8 + i] = static_cast<uint8_t>(b >> (8 * i));
  }
  return metadata::base64_url_id(bytes);
}

std::string cluster_id_mismatch(const BrokerConfig& config, const std::string& recorded) {
  std::string expected = configured_cluster_id(config);
  if (expected.empty() || expected == recorded) return "";
  std::string source = config.cluster_id.empty()
                           ? "derived from controller.quorum.voters (set cluster.id to choose it)"
                           : "from cluster.id";
  return "data directory " + config.data_dir + " belongs to cluster " + recorded +
         ", but this node is configured for cluster " + expected + " (" + source +
         "); point log.dirs at this cluster's directory, or set cluster.id=" + recorded +
         " if the directory is right";
}

}  // namespace holdfast::server::cluster
