// ACL bindings as the metadata log stores them (issue 11, "Authorisation").
//
// The codes are Kafka's protocol codes (AclOperation, ResourceType,
// PatternType, AclPermissionType), so a binding travels between
// CreateAcls/DescribeAcls/DeleteAcls, the records and the snapshot unchanged.
// The matching rules (who may do what) live in server/security; this module
// only holds the set and keeps it consistent with the log.
#pragma once

#include <compare>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace holdfast::metadata {

enum class AclResourceType : int8_t {
  unknown = 0,
  any = 1,  // filters only
  topic = 2,
  group = 3,
  cluster = 4,
  transactional_id = 5,
  delegation_token = 6,
  user = 7,
};

enum class AclPatternType : int8_t {
  unknown = 0,
  any = 1,    // filters only: literal or prefixed with exactly the name
  match = 2,  // filters only: every binding that would apply to the name
  literal = 3,
  prefixed = 4,
};

enum class AclOperation : int8_t {
  unknown = 0,
  any = 1,  // filters only
  all = 2,
  read = 3,
  write = 4,
  create = 5,
  remove = 6,  // Kafka's DELETE
  alter = 7,
  describe = 8,
  cluster_action = 9,
  describe_configs = 10,
  alter_configs = 11,
  idempotent_write = 12,
  create_tokens = 13,
  describe_tokens = 14,
};

enum class AclPermission : int8_t {
  unknown = 0,
  any = 1,  // filters only
  deny = 2,
  allow = 3,
};

// One ACL: `principal` ("User:alice", "User:*") from `host` ("*" = any) may
// (allow) or may not (deny) do `operation` on the resources that
// (resource_type, resource_name, pattern_type) names. The cluster resource's
// name is "kafka-cluster"; a literal "*" names every resource of the type.
struct AclBinding {
  AclResourceType resource_type = AclResourceType::unknown;
  std::string resource_name;
  AclPatternType pattern_type = AclPatternType::literal;
  std::string principal;
  std::string host = "*";
  AclOperation operation = AclOperation::unknown;
  AclPermission permission = AclPermission::unknown;

  auto operator<=>(const AclBinding&) const = default;
  bool operator==(const AclBinding&) const = default;
};

using AclSet = std::set<AclBinding>;

// Why `binding` cannot be stored (empty: it can): a concrete resource type
// (topic, group, cluster, transactional id, delegation token, user), pattern
// literal or prefixed, a non-empty name (the cluster's is "kafka-cluster"),
// an operation other than unknown/any, allow or deny, a principal of the form
// "Type:name" and a non-empty host.
std::string check_acl_binding(const AclBinding& binding);

// Records (appended at the end of MetadataRecord). Creating a binding that
// exists and deleting one that does not are no-ops, as in Kafka: both are
// idempotent, so a retried request or a delete computed from an older image
// still applies.
struct AclsCreated {
  std::vector<AclBinding> bindings;
};
struct AclsDeleted {
  std::vector<AclBinding> bindings;
};

}  // namespace holdfast::metadata
