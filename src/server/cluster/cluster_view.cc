#include "server/cluster/cluster_view.h"

#include "server/broker.h"

namespace holdfast::server::cluster {

std::optional<BrokerAddress> registered_client_address(const metadata::MetadataImage& image,
                                                       int32_t node) {
  const auto* info = image.find_broker(node);
  if (info == nullptr) return std::nullopt;
  for (const auto& e : info->endpoints) {
    if (e.listener == kClientListener) return BrokerAddress{node, e.host, e.port, info->rack};
  }
  return std::nullopt;
}

namespace {

BrokerAddress self_address(Broker& broker) {
  return BrokerAddress{broker.node_id(), broker.advertised_host(), broker.advertised_port(),
                       broker.config().broker_rack};
}

}  // namespace

std::vector<BrokerAddress> client_brokers(Broker& broker, const metadata::MetadataImage& image) {
  if (!broker.cluster_mode()) return {self_address(broker)};
  std::vector<BrokerAddress> out;
  for (const auto& [id, info] : image.brokers) {
    if (info.fenced) continue;
    if (auto address = registered_client_address(image, id)) out.push_back(*address);
  }
  return out;
}

std::optional<BrokerAddress> client_address(Broker& broker, const metadata::MetadataImage& image,
                                            int32_t node) {
  if (node == broker.node_id()) return self_address(broker);
  return registered_client_address(image, node);
}

}  // namespace holdfast::server::cluster
