#include "server/broker.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"

namespace holdfast::server {

Awaitable<Response> handle_api_versions(RequestContext& ctx) {
  using protocol::ApiVersionsRequest;
  using protocol::ApiVersionsResponse;
  const ApiHandler* self = find_api_handler(ApiVersionsRequest::kApiKey);

  if (ctx.api_version > self->max_version) {
    // KIP-511: the body is not parsed; the answer is a v0 body (header v0)
    // carrying UNSUPPORTED_VERSION and our ApiVersions range, so the client
    // can retry with a version we know.
    ApiVersionsResponse response;
    response.error_code = code(KafkaError::unsupported_version);
    ApiVersionsResponse::ApiVersion own;
    own.api_key = self->api_key;
    own.min_version = self->min_version;
    own.max_version = self->max_version;
    response.api_keys.push_back(own);
    RequestContext v0 = ctx;
    v0.api_version = 0;
    co_return make_response(v0, response);
  }

  auto request = decode_request<ApiVersionsRequest>(ctx);
  if (!request) co_return close_connection();

  ApiVersionsResponse response;
  response.error_code = code(KafkaError::none);
  for (const auto& h : api_handlers()) {
    if (!h.advertised) continue;
    if (h.cluster_only && !ctx.broker.cluster_mode()) continue;
    ApiVersionsResponse::ApiVersion v;
    v.api_key = h.api_key;
    v.min_version = h.min_version;
    v.max_version = h.max_version;
    response.api_keys.push_back(v);
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
