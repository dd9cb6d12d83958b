// One request as a handler sees it, and the response it produces.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/log.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "server/async.h"

namespace holdfast::server {

class Broker;

struct RequestContext {
  Broker& broker;
  int16_t api_key = 0;
  int16_t api_version = 0;
  int32_t correlation_id = 0;
  std::optional<std::string> client_id;
  Bytes body;        // the request body after the header
  std::string peer;  // "ip:port" of the client, for log lines
  std::string principal = "User:ANONYMOUS";  // Kafka's principal string; set by SASL authentication
  std::shared_ptr<ClientGone> client_gone;  // the connection's; null in tests that call handlers directly
  // The listener the request came through ("" = the first client listener,
  // as for requests made in-process): Metadata, FindCoordinator and
  // DescribeCluster answer with that listener's endpoints.
  std::string listener;

  std::string client() const { return peer + " (client.id " + client_id.value_or("-") + ")"; }
};

// What goes back on the connection.
struct Response {
  std::vector<uint8_t> frame;   // size prefix + header + body; empty when !send
  bool send = true;             // false: acks=0 produce, no response at all
  bool close_connection = false;  // close after this (and every earlier) response
  // Client quotas (KIP-219): read nothing more from the connection for this
  // long once the response is ready (sent or not); the "mute".
  int32_t throttle_ms = 0;
};

inline Response no_response() { return Response{{}, false, false}; }
inline Response close_connection() { return Response{{}, false, true}; }
// `response` with the connection muted for `throttle_ms` after it.
inline Response throttled(Response response, int32_t throttle_ms) {
  response.throttle_ms = throttle_ms;
  return response;
}

// The most a frame can hold after its int32 size prefix.
inline constexpr size_t kMaxFrameBodyBytes = INT32_MAX;

// Patches the size prefix of the frame built in `w` (which starts with a
// 4-byte placeholder) and returns it. A frame longer than `max_body` cannot be
// described by the prefix: the request fails with a logged error and the
// connection is closed, rather than sending a frame whose size is wrong.
inline Response finish_response(const RequestContext& ctx, protocol::Writer& w,
                                size_t max_body = kMaxFrameBodyBytes) {
  const size_t body = w.size() - 4;
  if (body > max_body) {
    HF_ERROR("closing connection from {}: the {} v{} response is {} bytes, more than a frame "
             "can hold ({}); no response sent",
             ctx.client(), protocol::api_name(ctx.api_key), ctx.api_version, body, max_body);
    return close_connection();
  }
  w.patch_int32(0, static_cast<int32_t>(body));
  return Response{w.release(), true, false};
}

// Encodes `message` as the response to `ctx` (frame size, response header of
// the right version, body).
template <typename Message>
Response make_response(const RequestContext& ctx, const Message& message,
                       size_t max_body = kMaxFrameBodyBytes) {
  protocol::Writer w;
  w.put_int32(0);  // frame size, patched by finish_response
  w.put_int32(ctx.correlation_id);
  if (protocol::response_header_version(ctx.api_key, ctx.api_version) >= 1) {
    w.put_uvarint(0);  // empty tagged fields
  }
  message.encode(w, ctx.api_version);
  return finish_response(ctx, w, max_body);
}

// Decodes the body as `Message`; on failure logs one line naming the client
// and the reason and returns nullopt (the caller closes the connection, as
// Kafka does for a request it cannot parse).
template <typename Message>
std::optional<Message> decode_request(const RequestContext& ctx) {
  Message message;
  protocol::Reader r(ctx.body);
  auto decoded = message.decode(r, ctx.api_version);
  if (!decoded) {
    HF_WARN("closing connection from {}: malformed {} v{} request: {}", ctx.client(),
            protocol::api_name(ctx.api_key), ctx.api_version, decoded.error().message);
    return std::nullopt;
  }
  return message;
}

using HandlerFn = Awaitable<Response> (*)(RequestContext&);

struct ApiHandler {
  int16_t api_key;
  int16_t min_version;
  int16_t max_version;
  HandlerFn handle;
  // Inter-broker APIs (BrokerRegistration, BrokerHeartbeat, AlterPartition)
  // are served but not advertised to clients in ApiVersions, as in Kafka.
  bool advertised = true;
  // Served meaningfully only in cluster mode (DescribeQuorum): advertised in
  // ApiVersions only by a cluster node; a single node answers it with an error.
  bool cluster_only = false;
};

// The one registry of implemented APIs and their version ranges; ApiVersions
// advertises exactly this table. Sorted by api key.
const std::vector<ApiHandler>& api_handlers();
const ApiHandler* find_api_handler(int16_t api_key);

}  // namespace holdfast::server
