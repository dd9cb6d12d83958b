// What clients are told about the cluster (Metadata, DescribeCluster,
// FindCoordinator): brokers and their client endpoints, read from the image
// in cluster mode, this node alone on a single node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metadata/metadata_image.h"

namespace holdfast::server {
class Broker;
}

namespace holdfast::server::cluster {

// The listener names a broker registers its endpoints under.
inline constexpr const char* kClientListener = "PLAINTEXT";
inline constexpr const char* kControllerListener = "CONTROLLER";

struct BrokerAddress {
  int32_t node_id = 0;
  std::string host;
  int32_t port = 0;
  std::string rack;  // empty: none
};

// The client endpoint of `node` as registered in `image`; none if it is not
// registered (or registered no client listener).
std::optional<BrokerAddress> registered_client_address(const metadata::MetadataImage& image,
                                                       int32_t node);

// The brokers clients may use: in a cluster the registered, unfenced
// brokers of `image` with their client endpoints; on a single node this one.
std::vector<BrokerAddress> client_brokers(Broker& broker, const metadata::MetadataImage& image);

// The client endpoint of `node`, or none: this broker's own address for
// itself (it may not be registered yet), else the image's.
std::optional<BrokerAddress> client_address(Broker& broker, const metadata::MetadataImage& image,
                                            int32_t node);

}  // namespace holdfast::server::cluster
