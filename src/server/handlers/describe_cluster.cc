// DescribeCluster (60, KIP-700): the cluster id, the active controller and
// the brokers clients may use (cluster_view.h), as Metadata reports them.
#include "server/broker.h"
#include "server/cluster/cluster_view.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"

namespace holdfast::server {

Awaitable<Response> handle_describe_cluster(RequestContext& ctx) {
  using protocol::DescribeClusterRequest;
  using protocol::DescribeClusterResponse;
  auto request = decode_request<DescribeClusterRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  DescribeClusterResponse response;
  response.endpoint_type = request->endpoint_type;
  response.cluster_id = broker.cluster_id();
  if (request->endpoint_type != 1) {
    // KIP-919's controller endpoints (2) are for admin clients bootstrapping
    // from controllers; every Holdfast node is a broker.
    response.error_code = code(KafkaError::invalid_request);
    response.error_message = "only endpoint type 1 (brokers) is supported";
    co_return make_response(ctx, response);
  }
  response.error_code = code(KafkaError::none);
  response.controller_id = broker.active_controller_id();
  for (const auto& b : cluster::client_brokers(broker, *broker.metadata_log().current(), ctx.listener)) {
    auto& out = response.brokers.emplace_back();
    out.broker_id = b.node_id;
    out.host = b.host;
    out.port = b.port;
    if (!b.rack.empty()) out.rack = b.rack;
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
