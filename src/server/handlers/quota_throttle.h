// The handlers' side of client quotas (quota_manager.h): one call per
// response to count its bytes and get the throttle time.
#pragma once

#include <cstdint>

#include "server/quota_manager.h"
#include "server/request.h"

namespace holdfast::server {

// Counts `bytes` of `kind` for the request's (user, client id) and returns
// the throttle time in ms for throttle_time_ms and the connection's mute
// (0: no quota applies, or within it). Throttled responses are counted in
// holdfast_throttle_time_seconds.
int32_t record_quota(const RequestContext& ctx, QuotaKind kind, size_t bytes);

// Takes back bytes counted for a response that is answered empty instead
// (a throttled Fetch, as Kafka does).
void unrecord_quota(const RequestContext& ctx, QuotaKind kind, size_t bytes);

// The most record bytes a Fetch of the request's client should ask for under
// its consumer_byte_rate (QuotaManager::window_bytes); none without a quota.
std::optional<size_t> fetch_quota_window_bytes(const RequestContext& ctx);

// The record bytes of a Produce request (what producer_byte_rate counts).
size_t produce_record_bytes(const protocol::ProduceRequest& request);

}  // namespace holdfast::server
