// FindCoordinator: on one node every coordinator (group or transaction) is
// this broker, the leader of every __consumer_offsets / __transaction_state
// partition.
#include "server/broker.h"
#include "server/handlers/handlers.h"
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
  if (request->key_type != 0 && request->key_type != 1) {
    fail(KafkaError::invalid_request, "unknown key type " + std::to_string(request->key_type));
  } else if (broker.stopping()) {
    fail(KafkaError::coordinator_not_available, "the broker is shutting down");
  } else {
    // key_type 1 (transactional id): this node will own __transaction_state
    // as well; the transaction APIs answer for themselves.
    response.error_code = code(KafkaError::none);
    response.node_id = broker.node_id();
    response.host = broker.config().effective_advertise_host();
    response.port = broker.config().advertise_port != 0 ? broker.config().advertise_port
                                                        : broker.bound_port();
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
