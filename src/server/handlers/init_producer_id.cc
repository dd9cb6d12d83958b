// InitProducerId (v0–4) for idempotent producers.
//
// Without a transactional id Kafka hands out a fresh producer id with epoch 0,
// whatever producer id / epoch a v3+ request carries (KIP-360: an idempotent
// producer that lost track of its sequences simply starts a new id). A v3+
// request with exactly one of producer_id / producer_epoch set is
// INVALID_REQUEST, as in Kafka.
//
// With a transactional id the transaction coordinator answers (epoch bump,
// fencing of the previous instance, abort of its open transaction,
// CONCURRENT_TRANSACTIONS while one completes, the timeout checked against
// transaction.max.timeout.ms); see coordinator/txn_coordinator.h.
#include "base/log.h"
#include "server/broker.h"
#include "server/handlers/handlers.h"
#include "server/handlers/txn_errors.h"
#include "server/security/access.h"
#include "server/kafka_error.h"

namespace holdfast::server {

Awaitable<Response> handle_init_producer_id(RequestContext& ctx) {
  auto request = decode_request<protocol::InitProducerIdRequest>(ctx);
  if (!request) co_return close_connection();
  protocol::InitProducerIdResponse response;
  response.producer_id = -1;
  response.producer_epoch = -1;

  const KafkaError denied =
      request->transactional_id
          ? check_access(ctx, Access::init_producer_id_transactional, *request->transactional_id)
          : check_access(ctx, Access::init_producer_id_idempotent);
  if (denied != KafkaError::none) {
    response.error_code = code(denied);
    co_return make_response(ctx, response);
  }
  if ((request->producer_id == -1) != (request->producer_epoch == -1)) {
    response.error_code = code(KafkaError::invalid_request);
    co_return make_response(ctx, response);
  }
  if (request->transactional_id.has_value()) {
    auto& txns = ctx.broker.transactions();
    auto result = co_await await_callback<coordinator::InitProducerIdResult>(
        [&](std::function<void(coordinator::InitProducerIdResult)> done) {
          txns.init_producer_id(*request->transactional_id, request->transaction_timeout_ms,
                                request->producer_id, request->producer_epoch, std::move(done));
        });
    response.error_code = txn_error_code(result.error, ctx.api_version >= 4);
    response.producer_id = result.producer_id;
    response.producer_epoch = result.producer_epoch;
    HF_DEBUG("InitProducerId from {} for transactional.id '{}': {} (producer {} epoch {})",
             ctx.client(), *request->transactional_id, coordinator::to_string(result.error),
             result.producer_id, result.producer_epoch);
    co_return make_response(ctx, response);
  }
  // Reserving a new block writes and fsyncs one small file, once per 1000
  // ids; everything else is a counter under a mutex.
  auto id = ctx.broker.producer_ids().next_producer_id();
  if (!id) {
    HF_ERROR("InitProducerId from {}: {}", ctx.client(), id.error().message);
    response.error_code = code(KafkaError::unknown_server_error);
    co_return make_response(ctx, response);
  }
  response.error_code = code(KafkaError::none);
  response.producer_id = *id;
  response.producer_epoch = 0;
  HF_DEBUG("InitProducerId from {}: producer id {} epoch 0", ctx.client(), *id);
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
