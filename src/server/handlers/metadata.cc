#include <algorithm>
#include <set>

#include "base/log.h"
#include "replication/replica_manager.h"
#include "server/broker.h"
#include "server/cluster/broker_registrar.h"
#include "server/cluster/cluster_view.h"
#include "server/cluster/forwarding.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"
#include "server/security/access.h"
#include "server/topic_config.h"
#include "server/topic_manager.h"

namespace holdfast::server {
namespace {

using protocol::MetadataRequest;
using protocol::MetadataResponse;

// A fenced broker (cluster/broker_registrar.h: cut off from the controller
// quorum, or fenced by it) has stepped down from its leaderships, and its
// image may be stale: it names no leader where the image says it leads, so a
// client asks elsewhere instead of retrying here until the partition heals.
bool fenced(Broker& broker) {
  return broker.registrar() != nullptr && broker.registrar()->fenced();
}

// Registered, unfenced brokers that clients of this listener cannot be sent
// to (they have no endpoint for it): a partition they lead is answered
// LISTENER_NOT_FOUND with no leader, as Kafka does (LEADER_NOT_AVAILABLE
// before v6, which has no such error).
struct Unreachable {
  std::set<int32_t> nodes;
  KafkaError error = KafkaError::listener_not_found;
};

MetadataResponse::MetadataResponseTopic describe(Broker& broker, const metadata::TopicInfo& info,
                                                 const Unreachable& unreachable) {
  MetadataResponse::MetadataResponseTopic topic;
  topic.error_code = code(KafkaError::none);
  topic.name = info.name;
  topic.is_internal = is_internal_topic(info.name);
  for (int32_t p = 0; p < info.partition_count; ++p) {
    MetadataResponse::MetadataResponsePartition partition;
    partition.error_code = code(KafkaError::none);
    partition.partition_index = p;
    if (broker.cluster_mode() && p < static_cast<int32_t>(info.partitions.size())) {
      // Leader, replicas, ISR and epoch as the controller last set them.
      const auto& state = info.partitions[p];
      partition.leader_id = state.leader;
      partition.leader_epoch = state.leader_epoch;
      partition.replica_nodes = state.replicas;
      partition.isr_nodes = state.isr;
      if (state.leader == broker.node_id() && fenced(broker)) {
        partition.leader_id = metadata::kNoLeader;
      }
      if (partition.leader_id == metadata::kNoLeader) {
        partition.error_code = code(KafkaError::leader_not_available);
      } else if (unreachable.nodes.count(partition.leader_id) != 0) {
        partition.leader_id = metadata::kNoLeader;
        partition.error_code = code(unreachable.error);
      }
      topic.partitions.push_back(std::move(partition));
      continue;
    }
    partition.leader_id = broker.node_id();
    // The epoch the log stamps on new batches (0 until replication sets one).
    auto replica = broker.replicas().get(info.name, p);
    partition.leader_epoch = replica ? replica->leader_epoch() : 0;
    partition.replica_nodes = {broker.node_id()};
    partition.isr_nodes = {broker.node_id()};
    topic.partitions.push_back(std::move(partition));
  }
  return topic;
}

MetadataResponse::MetadataResponseTopic topic_error(const std::string& name, KafkaError error) {
  MetadataResponse::MetadataResponseTopic topic;
  topic.error_code = code(error);
  topic.name = name;
  return topic;
}

}  // namespace

Awaitable<Response> handle_metadata(RequestContext& ctx) {
  auto request = decode_request<MetadataRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  // Cut off from the controller quorum for a session: this broker's image is
  // stale and it cannot tell who leads. It closes the connection rather than
  // answer: a client that asks it (librdkafka asks a broker it is connected
  // to, and may be connected to this one alone) then asks another broker,
  // where an answer naming no leader would keep it asking here until the
  // partition heals.
  if (broker.registrar() != nullptr && broker.registrar()->cut_off()) {
    co_return close_connection();
  }

  MetadataResponse response;
  auto image = broker.topics().image();
  // A single node: this broker alone. A cluster: the registered, unfenced
  // brokers with an endpoint for the listener this request came through
  // (cluster_view.h); the others' partitions are `unreachable`.
  Unreachable unreachable;
  if (ctx.api_version < 6) unreachable.error = KafkaError::leader_not_available;
  const auto listed = cluster::client_brokers(broker, *image, ctx.listener);
  if (broker.cluster_mode()) {
    for (const auto& [id, info] : image->brokers) {
      if (info.fenced) continue;
      const bool has = std::any_of(listed.begin(), listed.end(),
                                   [id = id](const cluster::BrokerAddress& b) { return b.node_id == id; });
      if (!has) unreachable.nodes.insert(id);
    }
  }
  for (const auto& b : listed) {
    MetadataResponse::MetadataResponseBroker out;
    out.node_id = b.node_id;
    out.host = b.host;
    out.port = b.port;
    if (!b.rack.empty()) out.rack = b.rack;
    response.brokers.push_back(std::move(out));
  }
  response.cluster_id = broker.cluster_id();
  response.controller_id = broker.active_controller_id();

  // v0: an empty list means every topic. v1+: null means every topic and an
  // empty list means none (librdkafka asks for brokers only that way).
  bool all_topics = !request->topics.has_value() ||
                    (ctx.api_version == 0 && request->topics->empty());
  if (all_topics) {
    for (const auto& [name, info] : image->topics) {
      // Topics the principal may not describe are left out, as in Kafka.
      if (check_access(ctx, Access::metadata_topic, name) != KafkaError::none) continue;
      response.topics.push_back(describe(broker, info, unreachable));
    }
    co_return make_response(ctx, response);
  }

  const bool allow_auto_create =
      broker.config().auto_create_topics &&
      (ctx.api_version < 4 || request->allow_auto_topic_creation);
  for (const auto& requested : *request->topics) {
    const std::string& name = requested.name;
    if (KafkaError denied = check_access(ctx, Access::metadata_topic, name); denied != KafkaError::none) {
      response.topics.push_back(topic_error(name, denied));
      continue;
    }
    if (const auto* info = image->find_topic(name)) {
      response.topics.push_back(describe(broker, *info, unreachable));
      continue;
    }
    if (!is_valid_topic_name(name)) {
      response.topics.push_back(topic_error(name, KafkaError::invalid_topic_exception));
      continue;
    }
    if (!allow_auto_create) {
      response.topics.push_back(topic_error(name, KafkaError::unknown_topic_or_partition));
      continue;
    }
    if (KafkaError denied = check_access(ctx, Access::metadata_auto_create, name); denied != KafkaError::none) {
      response.topics.push_back(topic_error(name, denied));
      continue;
    }
    TopicOutcome outcome;
    if (broker.cluster_mode()) {
      // The active controller creates it (this node may be it), with the
      // replication factor capped at the live brokers (logged when it is).
      int16_t rf = broker.topics().auto_create_replication(
          name, broker.config().effective_default_replication_factor());
      std::string topic_name = name;
      metadata::ConfigMap no_overrides;
      const int32_t default_partitions = -1;
      outcome = co_await cluster::create_topic_via_controller(broker, topic_name, default_partitions,
                                                              rf, no_overrides);
    } else {
      outcome = broker.topics().create_topic(name, -1, -1, {}, false);
    }
    if (!outcome.ok() && outcome.error != KafkaError::topic_already_exists) {
      // No controller yet (a cluster restarting, an election) or no quorum
      // within the wait: the topic may well exist and this broker has not
      // applied it yet. LEADER_NOT_AVAILABLE is what clients retry;
      // NOT_CONTROLLER as a topic error is not (librdkafka drops the
      // partition and fails the producer's queued messages).
      const bool transient = outcome.error == KafkaError::not_controller ||
                             outcome.error == KafkaError::request_timed_out;
      response.topics.push_back(
          topic_error(name, transient ? KafkaError::leader_not_available : outcome.error));
      continue;
    }
    image = broker.topics().image();
    if (const auto* info = image->find_topic(name)) {
      HF_INFO("auto-created topic {} for {}", name, ctx.client());
      response.topics.push_back(describe(broker, *info, unreachable));
    } else {
      response.topics.push_back(topic_error(name, KafkaError::leader_not_available));
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
