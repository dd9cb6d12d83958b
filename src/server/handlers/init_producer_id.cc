// InitProducerId (v0–4) for idempotent producers.
//
// Without a transactional id Kafka hands out a fresh producer id with epoch 0,
// whatever producer id / epoch a v3+ request carries (KIP-360: an idempotent
// producer that lost track of its sequences simply starts a new id). A v3+
// request with exactly one of producer_id / producer_epoch set is
// INVALID_REQUEST, as in Kafka.
//
// Transactions are not supported yet: a transactional id gets INVALID_REQUEST
// (non-retriable in every client, so init_transactions fails at once instead
// of retrying until it times out). See docs/idempotence.md.
#include "base/log.h"
#include "server/broker.h"
#include "server/handlers/handlers.h"
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
  if (request->transactional_id.has_value()) {
    HF_INFO("InitProducerId from {} with transactional.id '{}': transactions are not supported "
            "yet, answering INVALID_REQUEST",
            ctx.client(), *request->transactional_id);
    response.error_code = code(KafkaError::invalid_request);
    co_return make_response(ctx, response);
  }
  if ((request->producer_id == -1) != (request->producer_epoch == -1)) {
    response.error_code = code(KafkaError::invalid_request);
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
