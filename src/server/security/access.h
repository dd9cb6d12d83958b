// The hook handlers call to enforce the access table (access_rules.h) for the
// connection's principal and address. One call per check; no handler spells
// a resource type or operation itself.
#pragma once

#include <optional>
#include <string_view>

#include "server/kafka_error.h"
#include "server/request.h"
#include "server/security/access_rules.h"

namespace holdfast::server {

using security::Access;

// KafkaError::none when the principal may do what the row says on the
// resource `name` (ignored for cluster rows); otherwise the row's error.
// Always none with authorizer.enabled=false.
KafkaError check_access(const RequestContext& ctx, Access access, std::string_view name = {});

// For requests refused as a whole with a top-level error_code: the response to
// send when refused, nullopt when allowed.
template <typename Message>
std::optional<Response> refuse(const RequestContext& ctx, Access access, std::string_view name = {}) {
  const KafkaError error = check_access(ctx, access, name);
  if (error == KafkaError::none) return std::nullopt;
  Message message;
  message.error_code = code(error);
  return make_response(ctx, message);
}

}  // namespace holdfast::server
