#include "server/handlers/quota_throttle.h"

#include <algorithm>

#include "server/broker.h"

namespace holdfast::server {

int32_t record_quota(const RequestContext& ctx, QuotaKind kind, size_t bytes) {
  auto image = ctx.broker.metadata_log().current();
  if (image->client_quotas.empty()) return 0;
  const int64_t throttle =
      ctx.broker.quotas().record(kind, image->client_quotas, quota_user(ctx.principal),
                                 ctx.client_id.value_or(""), double(bytes));
  if (throttle <= 0) return 0;
  ctx.broker.metrics().record_throttle(kind == QuotaKind::produce, throttle);
  return static_cast<int32_t>(std::min<int64_t>(throttle, INT32_MAX));
}

void unrecord_quota(const RequestContext& ctx, QuotaKind kind, size_t bytes) {
  auto image = ctx.broker.metadata_log().current();
  if (image->client_quotas.empty()) return;
  ctx.broker.quotas().unrecord(kind, image->client_quotas, quota_user(ctx.principal),
                               ctx.client_id.value_or(""), double(bytes));
}

std::optional<size_t> fetch_quota_window_bytes(const RequestContext& ctx) {
  auto image = ctx.broker.metadata_log().current();
  if (image->client_quotas.empty()) return std::nullopt;
  return ctx.broker.quotas().window_bytes(QuotaKind::fetch, image->client_quotas,
                                          quota_user(ctx.principal), ctx.client_id.value_or(""));
}

size_t produce_record_bytes(const protocol::ProduceRequest& request) {
  size_t bytes = 0;
  for (const auto& topic : request.topic_data) {
    for (const auto& partition : topic.partition_data) {
      if (partition.records) bytes += partition.records->size();
    }
  }
  return bytes;
}

}  // namespace holdfast::server
