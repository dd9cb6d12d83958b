// What clients are told about the cluster (Metadata, DescribeCluster,
// FindCoordinator), and where brokers reach each other: brokers and their
// endpoints, read from the image in cluster mode, this node alone on a
// single node.
//
// A broker registers an endpoint per client listener under the listener's
// name, its inter-broker listener's first (security/inter_broker.h), then
// its CONTROLLER endpoint. Clients are told the endpoints of the listener
// they came through (Kafka's per-listener advertising); a broker without
// that listener is not shown to them. Brokers dial each other's first
// endpoint. A registration from before per-listener advertising holds one
// client endpoint, "PLAINTEXT", whatever the listener was called: it serves
// as the inter-broker endpoint and for clients of a listener so named, until
// that broker registers again.
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

inline constexpr const char* kControllerListener = "CONTROLLER";

struct BrokerAddress {
  int32_t node_id = 0;
  std::string host;
  int32_t port = 0;
  std::string rack;  // empty: none
};

// The endpoint the other brokers reach `node` at, as registered in `image`:
// its first client endpoint. None if it is not registered (or registered no
// client endpoint).
std::optional<BrokerAddress> registered_broker_address(const metadata::MetadataImage& image,
                                                       int32_t node);

// The endpoint `node` registered for client listener `listener`; none if it
// is not registered or has no such listener.
std::optional<BrokerAddress> registered_listener_address(const metadata::MetadataImage& image,
                                                         int32_t node, const std::string& listener);

// The brokers clients of `listener` ("" = this broker's first client
// listener) may use: in a cluster the registered, unfenced brokers of
// `image` that have that listener, with its endpoint; on a single node this
// one.
std::vector<BrokerAddress> client_brokers(Broker& broker, const metadata::MetadataImage& image,
                                          const std::string& listener);

// The endpoint of `node` for clients of `listener` ("" = the first), or
// none: this broker's own advertised address for itself (it may not be
// registered yet), else the image's.
std::optional<BrokerAddress> client_address(Broker& broker, const metadata::MetadataImage& image,
                                            int32_t node, const std::string& listener);

// The endpoint this broker dials to reach `node` (its inter-broker
// listener), or none: for itself its own inter-broker listener's advertised
// address, else the image's.
std::optional<BrokerAddress> broker_address(Broker& broker, const metadata::MetadataImage& image,
                                            int32_t node);

}  // namespace holdfast::server::cluster
