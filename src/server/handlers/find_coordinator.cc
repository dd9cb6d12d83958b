// FindCoordinator: the coordinator of a group (key_type 0) is the leader of
// its __consumer_offsets partition, of a transactional id (key_type 1) the
// leader of its __transaction_state partition (Kafka's abs(hashCode) % the
// partition count for both). On one node that is this broker.
#include <optional>

#include "controller/placement.h"
#include "coordinator/group_coordinator.h"
#include "coordinator/group_records.h"
#include "coordinator/txn_records.h"
#include "server/broker.h"
#include "server/cluster/cluster_view.h"
#include "server/cluster/forwarding.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"
#include "server/kafka_error.h"

namespace holdfast::server {

Awaitable<Response> handle_find_coordinator(RequestContext& ctx) {
  using protocol::FindCoordinatorRequest;
  using protocol::FindCoordinatorResponse;
  auto request = decode_request<FindCoordinatorRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  FindCoordinatorResponse response;
  auto fail = [&](KafkaError e, std::string message) {
    response.error_code = code(e);
    response.error_message = std::move(message);
    response.node_id = -1;
    response.host = "";
    response.port = -1;
  };
  const KafkaError denied =
      request->key_type == 0   ? check_access(ctx, Access::find_coordinator_group, request->key)
      : request->key_type == 1 ? check_access(ctx, Access::find_coordinator_transaction, request->key)
                               : KafkaError::none;
  if (denied != KafkaError::none) {
    fail(denied, "not authorised to describe " + request->key);
  } else if (request->key_type != 0 && request->key_type != 1) {
    fail(KafkaError::invalid_request, "unknown key type " + std::to_string(request->key_type));
  } else if (broker.stopping()) {
    fail(KafkaError::coordinator_not_available, "the broker is shutting down");
  } else if (broker.cluster_mode()) {
    // The internal topic is created (through the controller) on first use.
    const bool txn = request->key_type == 1;
    const std::string topic = txn ? coordinator::kTransactionStateTopic : coordinator::kOffsetsTopic;
    auto image = broker.metadata_log().current();
    const auto* info = image->find_topic(topic);
    if (info == nullptr) {
      const auto& config = broker.config();
      // Kafka's rule for the internal topics: created only once as many
      // brokers as their replication factor are live. Capped to fewer (as a
      // user topic may be), a topic whose min.insync.replicas exceeds its
      // replica count could never be written, and it is never widened later.
      const int16_t rf = txn ? config.effective_transaction_state_log_replication_factor()
                             : config.effective_offsets_topic_replication_factor();
      const size_t live = controller::live_brokers(*image).size();
      if (live < size_t(rf)) {
        fail(KafkaError::coordinator_not_available,
             "waiting for " + std::to_string(rf) + " live brokers to create " + topic + " (" +
                 (txn ? "transaction.state.log.replication.factor"
                      : "offsets.topic.replication.factor") +
                 "=" + std::to_string(rf) + "); " + std::to_string(live) + " live now");
        co_return make_response(ctx, response);
      }
      int32_t partitions =
          txn ? config.transaction_state_log_num_partitions : config.offsets_topic_num_partitions;
      metadata::ConfigMap configs = txn ? broker.topics().transaction_state_topic_configs()
                                        : broker.topics().offsets_topic_configs();
      auto created =
          co_await cluster::create_topic_via_controller(broker, topic, partitions, rf, configs);
      if (!created.ok() && created.error != KafkaError::topic_already_exists) {
        HF_INFO("creating {} for FindCoordinator: {}", topic, created.message);
      }
      image = broker.metadata_log().current();
      info = image->find_topic(topic);
    }
    std::optional<cluster::BrokerAddress> address;
    if (info != nullptr && info->partition_count > 0) {
      int32_t p = coordinator::partition_for_group(request->key, info->partition_count);
      int32_t leader = info->partitions[p].leader;
      if (leader >= 0) address = cluster::client_address(broker, *image, leader, ctx.listener);
    }
    if (!address) {
      fail(KafkaError::coordinator_not_available, "the coordinator is not available yet");
    } else {
      response.error_code = code(KafkaError::none);
      response.node_id = address->node_id;
      response.host = address->host;
      response.port = address->port;
    }
  } else {
    // One node: this broker leads every partition of both internal topics.
    response.error_code = code(KafkaError::none);
    response.node_id = broker.node_id();
    auto self = broker.advertised_listener(ctx.listener);
    response.host = self ? self->host : broker.advertised_host();
    response.port = self ? self->port : broker.advertised_port();
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
