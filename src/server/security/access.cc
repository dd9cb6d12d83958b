#include "server/security/access.h"

#include "base/log.h"
#include "server/broker.h"

namespace holdfast::server {

KafkaError check_access(const RequestContext& ctx, Access access, std::string_view name) {
  const auto& config = ctx.broker.config().authorizer;
  if (!config.enabled) return KafkaError::none;
  const auto& row = security::rule(access);
  const auto image = ctx.broker.metadata_log().current();
  const KafkaError error = security::decide(row, config, image->acls, ctx.principal,
                                            security::peer_host(ctx.peer), name);
  if (error != KafkaError::none) {
    HF_DEBUG("denied {} {} on {} '{}' to {} from {}", row.api, security::operation_name(row.operation),
             security::resource_type_name(row.resource), name, ctx.principal, ctx.client());
  }
  return error;
}

}  // namespace holdfast::server
