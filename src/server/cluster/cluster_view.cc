#include "server/cluster/cluster_view.h"

#include "server/broker.h"

namespace holdfast::server::cluster {

std::optional<BrokerAddress> registered_broker_address(const metadata::MetadataImage& image,
                                                       int32_t node) {
  const auto* info = image.find_broker(node);
  if (info == nullptr) return std::nullopt;
  for (const auto& e : info->endpoints) {
    if (e.listener != kControllerListener) return BrokerAddress{node, e.host, e.port, info->rack};
  }
  return std::nullopt;
}

std::optional<BrokerAddress> registered_listener_address(const metadata::MetadataImage& image,
                                                         int32_t node, const std::string& listener) {
  const auto* info = image.find_broker(node);
  if (info == nullptr || listener == kControllerListener) return std::nullopt;
  for (const auto& e : info->endpoints) {
    if (e.listener == listener) return BrokerAddress{node, e.host, e.port, info->rack};
  }
  return std::nullopt;
}

namespace {

std::optional<BrokerAddress> self_address(Broker& broker, const std::string& listener) {
  auto advertised = broker.advertised_listener(listener);
  if (!advertised) return std::nullopt;
  return BrokerAddress{broker.node_id(), advertised->host, advertised->port,
                       broker.config().broker_rack};
}

const std::string& listener_name(Broker& broker, const std::string& listener) {
  return listener.empty() ? broker.config().listen_name : listener;
}

}  // namespace

std::vector<BrokerAddress> client_brokers(Broker& broker, const metadata::MetadataImage& image,
                                          const std::string& listener) {
  if (!broker.cluster_mode()) {
    auto self = self_address(broker, listener);
    return self ? std::vector<BrokerAddress>{*self} : std::vector<BrokerAddress>{};
  }
  const std::string& name = listener_name(broker, listener);
  std::vector<BrokerAddress> out;
  for (const auto& [id, info] : image.brokers) {
    if (info.fenced) continue;
    if (auto address = registered_listener_address(image, id, name)) out.push_back(*address);
  }
  return out;
}

std::optional<BrokerAddress> client_address(Broker& broker, const metadata::MetadataImage& image,
                                            int32_t node, const std::string& listener) {
  if (node == broker.node_id()) return self_address(broker, listener);
  return registered_listener_address(image, node, listener_name(broker, listener));
}

std::optional<BrokerAddress> broker_address(Broker& broker, const metadata::MetadataImage& image,
                                            int32_t node) {
  if (node == broker.node_id()) return self_address(broker, broker.inter_broker_listener());
  return registered_broker_address(image, node);
}

}  // namespace holdfast::server::cluster
