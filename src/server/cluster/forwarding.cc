#include "server/cluster/forwarding.h"

#include "base/log.h"
#include "server/broker.h"
#include "server/cluster/cluster_view.h"
#include "server/cluster/controller_service.h"

namespace holdfast::server::cluster {

KafkaError to_kafka_error(ForwardErrc e) {
  switch (e) {
    case ForwardErrc::no_controller: return KafkaError::not_controller;
    case ForwardErrc::network: return KafkaError::request_timed_out;
  }
  return KafkaError::unknown_server_error;
}

std::optional<net::Endpoint> remote_controller(Broker& broker, bool* this_node_is_controller,
                                               std::string* why) {
  *this_node_is_controller = false;
  const int32_t leader = broker.active_controller_id();
  if (leader < 0) {
    *why = "no active controller is known (the metadata quorum is electing one)";
    return std::nullopt;
  }
  if (leader == broker.node_id()) {
    *this_node_is_controller = true;
    *why = "this node is the controller";
    return std::nullopt;
  }
  auto address = registered_broker_address(*broker.metadata_log().current(), leader);
  if (!address) {
    *why = "the controller, node " + std::to_string(leader) + ", has not registered yet";
    return std::nullopt;
  }
  return net::Endpoint{address->host, static_cast<uint16_t>(address->port)};
}

bool forward_needed(Broker& broker) {
  if (!broker.cluster_mode()) return false;
  bool self = false;
  std::string why;
  remote_controller(broker, &self, &why);
  return !self;
}

Awaitable<bool> wait_for_local_image(Broker& broker,
                                     std::function<bool(const metadata::MetadataImage&)> done,
                                     std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto image = broker.metadata_log().current();
    if (done(*image)) {
      std::optional<std::string> failure;
      if (!co_await broker.topics().await_replicas(image->last_record_index, deadline, &failure)) {
        co_return false;
      }
      if (failure) HF_WARN("local replicas behind the metadata image: {}", *failure);
      co_return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    // The record is committed on the controller; this member applies it
    // within a Raft heartbeat or two.
    timer.expires_after(std::chrono::milliseconds(20));
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Awaitable<TopicOutcome> create_topic_via_controller(Broker& broker, std::string name,
                                                    int32_t partitions, int16_t replication,
                                                    metadata::ConfigMap configs) {
  bool self = false;
  std::string why;
  auto endpoint = remote_controller(broker, &self, &why);
  if (self) {
    auto* service = broker.controller_service();
    if (service == nullptr || !service->active()) {
      co_return TopicOutcome{KafkaError::not_controller, "the controller is not ready yet"};
    }
    TopicChangeStart create = [&broker, name, partitions, replication,
                               configs](TopicCallback done) {
      broker.topics().create_topic(name, partitions, replication, configs, false,
                                   std::move(done));
    };
    const std::chrono::milliseconds timeout = kTopicChangeTimeout;
    co_return co_await broker.topics().await_change(create, timeout);
  }
  if (!endpoint) co_return TopicOutcome{KafkaError::not_controller, why};
  protocol::CreateTopicsRequest request;
  auto& topic = request.topics.emplace_back();
  topic.name = name;
  topic.num_partitions = partitions;
  topic.replication_factor = replication;
  for (const auto& [key, value] : configs) {
    auto& c = topic.configs.emplace_back();
    c.name = key;
    c.value = value;
  }
  request.timeout_ms = static_cast<int32_t>(kForwardTimeout.count());
  const int16_t version = 4;
  auto answer =
      co_await forward_to_controller<protocol::CreateTopicsResponse>(broker, request, version);
  if (!answer) co_return TopicOutcome{to_kafka_error(answer.code()), answer.error().message};
  if (answer->topics.size() != 1) {
    co_return TopicOutcome{KafkaError::unknown_server_error, "the controller's answer has no topic"};
  }
  const auto& result = answer->topics[0];
  auto error = static_cast<KafkaError>(result.error_code);
  if (error != KafkaError::none && error != KafkaError::topic_already_exists) {
    co_return TopicOutcome{error, result.error_message.value_or("")};
  }
  std::function<bool(const metadata::MetadataImage&)> has_topic =
      [name](const metadata::MetadataImage& image) { return image.find_topic(name) != nullptr; };
  const std::chrono::milliseconds timeout = kForwardTimeout;
  if (!co_await wait_for_local_image(broker, has_topic, timeout)) {
    co_return TopicOutcome{KafkaError::request_timed_out,
                           "topic '" + name + "' created, but not yet known to this broker"};
  }
  co_return TopicOutcome{error, ""};
}

}  // namespace holdfast::server::cluster
