// The controller's inter-broker APIs: BrokerRegistration (62), BrokerHeartbeat
// (63) and AlterPartition (56). Served on the client listener but not
// advertised in ApiVersions (as in Kafka, where they are inter-broker only).
// Only the active controller answers them; every other node (and a single
// node, which has no controller service) answers NOT_CONTROLLER, and the
// sender looks for the controller again. One exception: a node that is not
// the controller forwards a BrokerRegistration to the controller when it
// knows one, because a broker-only node that has not joined the metadata
// quorum yet cannot know the controller; it registers through the brokers in
// holdfast.broker.bootstrap.servers.
#include "base/log.h"
#include "server/broker.h"
#include "server/cluster/cluster_errors.h"
#include "server/cluster/controller_service.h"
#include "server/cluster/forwarding.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"
#include "server/kafka_error.h"

namespace holdfast::server {
namespace {

using cluster::ControllerError;
using cluster::ServiceErrc;
using cluster::ServiceResult;

// The controller service that answers this request, or nullptr after
// setting `response`'s error to NOT_CONTROLLER: a node without the service
// (a single node), or with `require_active` one that is not the active
// controller (otherwise the service itself refuses when not active).
template <typename Response>
cluster::ControllerService* controller_or_refuse(Broker& broker, Response& response,
                                                 bool require_active) {
  auto* service = broker.controller_service();
  if (service == nullptr || (require_active && !service->active())) {
    response.error_code = code(KafkaError::not_controller);
    return nullptr;
  }
  return service;
}

}  // namespace

Awaitable<Response> handle_broker_registration(RequestContext& ctx) {
  using protocol::BrokerRegistrationRequest;
  using protocol::BrokerRegistrationResponse;
  auto request = decode_request<BrokerRegistrationRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<BrokerRegistrationResponse>(ctx, Access::broker_registration)) co_return std::move(*denied);
  Broker& broker = ctx.broker;
  BrokerRegistrationResponse response;
  if (broker.controller_service() != nullptr && !broker.controller_service()->active() &&
      cluster::forward_needed(broker)) {
    auto answer = co_await cluster::forward_to_controller<BrokerRegistrationResponse>(
        broker, *request, ctx.api_version);
    if (!answer) {
      response.error_code = code(cluster::to_kafka_error(answer.code()));
      co_return make_response(ctx, response);
    }
    co_return make_response(ctx, *answer);
  }
  auto* service = controller_or_refuse(broker, response, false);
  if (service == nullptr) co_return make_response(ctx, response);
  if (request->cluster_id != broker.cluster_id()) {
    HF_WARN("refusing registration of broker {} from {}: it belongs to cluster {}, this is {}",
            request->broker_id, ctx.client(), request->cluster_id, broker.cluster_id());
    response.error_code = code(KafkaError::inconsistent_cluster_id);
    co_return make_response(ctx, response);
  }
  controller::BrokerRegistrationRequest registration;
  registration.node_id = request->broker_id;
  registration.incarnation = request->incarnation_id;
  for (const auto& l : request->listeners) {
    registration.endpoints.push_back({l.name, l.host, l.port});
  }
  registration.rack = request->rack.value_or("");
  auto result = co_await await_callback<ServiceResult<int64_t>>(
      [service, &registration](std::function<void(ServiceResult<int64_t>)> done) {
        service->register_broker(registration, std::move(done));
      });
  if (!result) {
    if (result.code().kind == ServiceErrc::rejected) {
      HF_WARN("refusing registration of broker {}: {}", request->broker_id,
              result.error().message);
    }
    response.error_code = code(cluster::to_kafka_error(result.code()));
    co_return make_response(ctx, response);
  }
  response.error_code = code(KafkaError::none);
  response.broker_epoch = *result;
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_broker_heartbeat(RequestContext& ctx) {
  using protocol::BrokerHeartbeatRequest;
  using protocol::BrokerHeartbeatResponse;
  auto request = decode_request<BrokerHeartbeatRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<BrokerHeartbeatResponse>(ctx, Access::broker_heartbeat)) co_return std::move(*denied);
  Broker& broker = ctx.broker;
  BrokerHeartbeatResponse response;
  auto* service = controller_or_refuse(broker, response, false);
  if (service == nullptr) co_return make_response(ctx, response);
  controller::HeartbeatRequest heartbeat;
  heartbeat.node_id = request->broker_id;
  heartbeat.broker_epoch = request->broker_epoch;
  heartbeat.applied_index = request->current_metadata_offset;
  using Outcome = ServiceResult<controller::HeartbeatOutcome>;
  auto result = co_await await_callback<Outcome>(
      [service, &heartbeat](std::function<void(Outcome)> done) {
        service->heartbeat(heartbeat, std::move(done));
      });
  if (!result) {
    response.error_code = code(cluster::to_kafka_error(result.code()));
    co_return make_response(ctx, response);
  }
  response.error_code = code(KafkaError::none);
  response.is_fenced = result->fenced;
  response.is_caught_up = !result->fenced;
  response.should_shut_down = false;
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_alter_partition(RequestContext& ctx) {
  using protocol::AlterPartitionRequest;
  using protocol::AlterPartitionResponse;
  auto request = decode_request<AlterPartitionRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<AlterPartitionResponse>(ctx, Access::alter_partition)) co_return std::move(*denied);
  Broker& broker = ctx.broker;
  AlterPartitionResponse response;
  auto* service = controller_or_refuse(broker, response, true);
  if (service == nullptr) co_return make_response(ctx, response);
  response.error_code = code(KafkaError::none);
  using Outcome = ServiceResult<metadata::PartitionState>;
  for (const auto& topic : request->topics) {
    auto& topic_out = response.topics.emplace_back();
    topic_out.topic_name = topic.topic_name;
    for (const auto& p : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = p.partition_index;
      out.leader_id = -1;
      auto image = broker.metadata_log().current();
      const auto* info = image->find_topic(topic.topic_name);
      if (info == nullptr || p.partition_index < 0 ||
          p.partition_index >= info->partition_count) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      controller::AlterPartitionRequest alter;
      alter.broker_id = request->broker_id;
      alter.broker_epoch = request->broker_epoch;
      alter.topic = topic.topic_name;
      alter.topic_id = info->id;
      alter.partition = p.partition_index;
      alter.leader_epoch = p.leader_epoch;
      alter.partition_epoch = p.partition_epoch;
      alter.new_isr = p.new_isr;
      auto result = co_await await_callback<Outcome>(
          [service, &alter](std::function<void(Outcome)> done) {
            service->alter_partition(alter, std::move(done));
          });
      if (!result) {
        out.error_code = code(cluster::to_kafka_error(result.code()));
        continue;
      }
      out.error_code = code(KafkaError::none);
      out.leader_id = result->leader;
      out.leader_epoch = result->leader_epoch;
      out.isr = result->isr;
      out.partition_epoch = result->partition_epoch;
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
