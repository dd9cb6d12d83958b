#include "server/security/acl.h"

#include <algorithm>
#include <cctype>

namespace holdfast::server::security {
namespace {

// "TransactionalId", "transactional_id", "TRANSACTIONAL-ID" → "transactionalid".
std::string fold(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '_' || c == '-') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

template <typename Enum>
std::optional<Enum> parse_by_name(std::string_view text, int first, int last,
                                  std::string (*name)(Enum)) {
  const std::string wanted = fold(text);
  for (int code = first; code <= last; ++code) {
    if (fold(name(Enum(code))) == wanted) return Enum(code);
  }
  return std::nullopt;
}

}  // namespace

std::string resource_type_name(AclResourceType t) {
  switch (t) {
    case AclResourceType::any: return "Any";
    case AclResourceType::topic: return "Topic";
    case AclResourceType::group: return "Group";
    case AclResourceType::cluster: return "Cluster";
    case AclResourceType::transactional_id: return "TransactionalId";
    case AclResourceType::delegation_token: return "DelegationToken";
    case AclResourceType::user: return "User";
    default: return "Unknown";
  }
}

std::string operation_name(AclOperation op) {
  switch (op) {
    case AclOperation::any: return "Any";
    case AclOperation::all: return "All";
    case AclOperation::read: return "Read";
    case AclOperation::write: return "Write";
    case AclOperation::create: return "Create";
    case AclOperation::remove: return "Delete";
    case AclOperation::alter: return "Alter";
    case AclOperation::describe: return "Describe";
    case AclOperation::cluster_action: return "ClusterAction";
    case AclOperation::describe_configs: return "DescribeConfigs";
    case AclOperation::alter_configs: return "AlterConfigs";
    case AclOperation::idempotent_write: return "IdempotentWrite";
    case AclOperation::create_tokens: return "CreateTokens";
    case AclOperation::describe_tokens: return "DescribeTokens";
    default: return "Unknown";
  }
}

std::string pattern_type_name(AclPatternType p) {
  switch (p) {
    case AclPatternType::any: return "Any";
    case AclPatternType::match: return "Match";
    case AclPatternType::literal: return "Literal";
    case AclPatternType::prefixed: return "Prefixed";
    default: return "Unknown";
  }
}

std::string permission_name(AclPermission p) {
  switch (p) {
    case AclPermission::any: return "Any";
    case AclPermission::deny: return "Deny";
    case AclPermission::allow: return "Allow";
    default: return "Unknown";
  }
}

std::optional<AclResourceType> parse_resource_type(std::string_view text) {
  return parse_by_name<AclResourceType>(text, 1, 7, resource_type_name);
}
std::optional<AclOperation> parse_operation(std::string_view text) {
  return parse_by_name<AclOperation>(text, 1, 14, operation_name);
}
std::optional<AclPatternType> parse_pattern_type(std::string_view text) {
  return parse_by_name<AclPatternType>(text, 1, 4, pattern_type_name);
}
std::optional<AclPermission> parse_permission(std::string_view text) {
  return parse_by_name<AclPermission>(text, 1, 3, permission_name);
}

std::string check_filter(const AclFilter& f) {
  if (int(f.resource_type) < 1 || int(f.resource_type) > 7) {
    return "unknown resource type " + std::to_string(int(f.resource_type));
  }
  if (int(f.pattern_type) < 1 || int(f.pattern_type) > 4) {
    return "unknown pattern type " + std::to_string(int(f.pattern_type));
  }
  if (int(f.operation) < 1 || int(f.operation) > 14) {
    return "unknown operation " + std::to_string(int(f.operation));
  }
  if (int(f.permission) < 1 || int(f.permission) > 3) {
    return "unknown permission type " + std::to_string(int(f.permission));
  }
  return "";
}

bool pattern_covers(const AclBinding& b, AclResourceType type, std::string_view name) {
  if (b.resource_type != type) return false;
  if (b.pattern_type == AclPatternType::literal) {
    return b.resource_name == name || b.resource_name == kWildcard;
  }
  if (b.pattern_type == AclPatternType::prefixed) {
    return name.substr(0, b.resource_name.size()) == b.resource_name;
  }
  return false;
}

bool filter_matches(const AclFilter& f, const AclBinding& b) {
  if (f.resource_type != AclResourceType::any && f.resource_type != b.resource_type) return false;
  if (f.pattern_type != AclPatternType::any && f.pattern_type != AclPatternType::match &&
      f.pattern_type != b.pattern_type) {
    return false;
  }
  if (f.resource_name) {
    if (f.pattern_type == AclPatternType::match) {
      if (!pattern_covers(b, b.resource_type, *f.resource_name)) return false;
    } else if (*f.resource_name != b.resource_name) {
      return false;
    }
  }
  if (f.principal && *f.principal != b.principal) return false;
  if (f.host && *f.host != b.host) return false;
  if (f.operation != AclOperation::any && f.operation != b.operation) return false;
  if (f.permission != AclPermission::any && f.permission != b.permission) return false;
  return true;
}

std::vector<AclBinding> matching_bindings(const AclSet& acls, const AclFilter& filter) {
  std::vector<AclBinding> out;
  for (const auto& b : acls) {
    if (filter_matches(filter, b)) out.push_back(b);
  }
  return out;
}

}  // namespace holdfast::server::security
