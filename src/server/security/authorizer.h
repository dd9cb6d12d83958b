// The authoriser: may `principal`, connected from `host`, do `operation` on a
// resource? Kafka's rules (AclAuthorizer / StandardAuthorizer):
//
//   - authorizer.enabled=false (the default): everything is allowed;
//   - a principal in super.users is allowed everything;
//   - the bindings that apply are those whose pattern covers the resource
//     (literal name, literal "*", or a prefix of the name), whose principal is
//     the principal or User:*, and whose host is the host or "*";
//   - no binding at all on the resource (whoever it names):
//     allow.everyone.if.no.acl.found decides (default false: deny);
//   - a DENY for the operation (or All) wins over every ALLOW;
//   - an ALLOW for the operation or All allows; ALLOW of Read, Write, Delete
//     or Alter also allows Describe, and ALLOW of AlterConfigs allows
//     DescribeConfigs (DENY implies nothing: denying Read does not deny
//     Describe);
//   - otherwise deny.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/security/acl.h"

namespace holdfast::server::security {

struct AuthorizerConfig {
  bool enabled = false;                          // authorizer.enabled
  bool allow_everyone_if_no_acl_found = false;   // allow.everyone.if.no.acl.found
  std::vector<std::string> super_users;          // super.users, "User:admin;User:ops"
};

// super.users: principals separated by semicolons (spaces around them are
// dropped); each must be of the form Type:name. Empty text: none.
std::optional<std::vector<std::string>> parse_super_users(std::string_view text);

bool authorize(const AuthorizerConfig& config, const AclSet& acls, std::string_view principal,
               std::string_view host, AclResourceType type, std::string_view name,
               AclOperation operation);

// Kafka's authorizeByResourceType (KIP-679): may the principal do `operation`
// on SOME resource of `type`? True when an ALLOW binding for it (or All) on
// such a resource applies to the principal and host and no DENY of the same
// operation covers that binding's resource (a literal "*" DENY covers all);
// with no binding of the type at all, allow.everyone.if.no.acl.found decides.
bool authorize_any(const AuthorizerConfig& config, const AclSet& acls, std::string_view principal,
                   std::string_view host, AclResourceType type, AclOperation operation);

// The client's address without the port: "10.0.0.1:5000" → "10.0.0.1",
// "[::1]:5000" → "::1" (ACL hosts are addresses, as in Kafka).
std::string peer_host(std::string_view peer);

}  // namespace holdfast::server::security
