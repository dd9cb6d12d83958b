// Kafka's ACL model (issue 11, "Authorisation"): names of the protocol codes
// as kafka-acls prints them, filters (DescribeAcls / DeleteAcls) and which
// bindings apply to a resource. The bindings themselves are metadata
// (metadata/acl_binding.h): they live in the metadata log.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metadata/acl_binding.h"

namespace holdfast::server::security {

using metadata::AclBinding;
using metadata::AclOperation;
using metadata::AclPatternType;
using metadata::AclPermission;
using metadata::AclResourceType;
using metadata::AclSet;

// The one cluster resource's name, and the literal name that stands for
// every resource of a type; the principal that stands for every principal.
inline constexpr std::string_view kClusterName = "kafka-cluster";
inline constexpr std::string_view kWildcard = "*";
inline constexpr std::string_view kWildcardPrincipal = "User:*";

// Kafka's spellings ("Topic", "TransactionalId", "IdempotentWrite",
// "Prefixed", "Allow", ...). parse_* take them case-insensitively, with or
// without underscores ("transactional_id", "IDEMPOTENT_WRITE").
std::string resource_type_name(AclResourceType t);
std::string operation_name(AclOperation op);
std::string pattern_type_name(AclPatternType p);
std::string permission_name(AclPermission p);
std::optional<AclResourceType> parse_resource_type(std::string_view text);
std::optional<AclOperation> parse_operation(std::string_view text);
std::optional<AclPatternType> parse_pattern_type(std::string_view text);
std::optional<AclPermission> parse_permission(std::string_view text);

// A DescribeAcls / DeleteAcls filter (Kafka's AclBindingFilter): unset
// strings and the ANY codes match everything; pattern type MATCH selects the
// bindings that would apply to `resource_name` (its literal name, the literal
// wildcard "*", and the prefixes of it).
struct AclFilter {
  AclResourceType resource_type = AclResourceType::any;
  std::optional<std::string> resource_name;
  AclPatternType pattern_type = AclPatternType::any;
  std::optional<std::string> principal;
  std::optional<std::string> host;
  AclOperation operation = AclOperation::any;
  AclPermission permission = AclPermission::any;
};

// Why `filter` is not one Kafka accepts (empty: it is): a code that is
// UNKNOWN or outside the protocol's range.
std::string check_filter(const AclFilter& filter);
bool filter_matches(const AclFilter& filter, const AclBinding& binding);
std::vector<AclBinding> matching_bindings(const AclSet& acls, const AclFilter& filter);

// Whether `binding`'s resource pattern covers the resource (type, name): a
// literal of the same name, the literal wildcard, or a prefix of the name.
bool pattern_covers(const AclBinding& binding, AclResourceType type, std::string_view name);

}  // namespace holdfast::server::security
