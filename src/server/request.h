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
  std::shared_ptr<ClientGone> client_gone;  // the connection's; null in tests that call handlers directly

  std::string client() const { return peer + " (client.id " + client_id.value_or("-") + ")"; }
};

// What goes back on the connection.
struct Response {
  std::vector<uint8_t> frame;   // size prefix + header + body; empty when !send
  bool send = true;             // false: acks=0 produce, no response at all
  bool close_connection = false;  // close after this (and every earlier) response
};

// Encodes `message` as the response to `ctx` (frame size, response header of
// the right version, body).
template <typename Message>
Response make_response(const RequestContext& ctx, const Message& message) {
  protocol::Writer w;
  w.put_int32(0);  // frame size, patched below
  w.put_int32(ctx.correlation_id);
  if (protocol::response_header_version(ctx.api_key, ctx.api_version) >= 1) {
    w.put_uvarint(0);  // empty tagged fields
  }
  message.encode(w, ctx.api_version);
  w.patch_int32(0, static_cast<int32_t>(w.size() - 4));
  return Response{w.release(), true, false};
}

inline Response no_response() { return Response{{}, false, false}; }
inline Response close_connection() { return Response{{}, false, true}; }

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
};

// The one registry of implemented APIs and their version ranges; ApiVersions
// advertises exactly this table. Sorted by api key.
const std::vector<ApiHandler>& api_handlers();
const ApiHandler* find_api_handler(int16_t api_key);

}  // namespace holdfast::server
