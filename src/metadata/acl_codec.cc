#include "metadata/acl_codec.h"

namespace holdfast::metadata {
namespace {

using nlohmann::json;

json binding_to_json(const AclBinding& b) {
  return {{"resource_type", int(b.resource_type)}, {"resource_name", b.resource_name},
          {"pattern_type", int(b.pattern_type)},   {"principal", b.principal},
          {"host", b.host},                        {"operation", int(b.operation)},
          {"permission", int(b.permission)}};
}

// Throws json::exception on a missing or mistyped member (the callers turn it
// into corrupt).
AclBinding binding_from_json(const json& j) {
  AclBinding b;
  b.resource_type = AclResourceType(j.at("resource_type").get<int8_t>());
  b.resource_name = j.at("resource_name").get<std::string>();
  b.pattern_type = AclPatternType(j.at("pattern_type").get<int8_t>());
  b.principal = j.at("principal").get<std::string>();
  b.host = j.at("host").get<std::string>();
  b.operation = AclOperation(j.at("operation").get<int8_t>());
  b.permission = AclPermission(j.at("permission").get<int8_t>());
  return b;
}

json bindings_to_json(const std::vector<AclBinding>& bindings) {
  json list = json::array();
  for (const auto& b : bindings) list.push_back(binding_to_json(b));
  return list;
}

}  // namespace

std::string check_acl_binding(const AclBinding& b) {
  switch (b.resource_type) {
    case AclResourceType::topic:
    case AclResourceType::group:
    case AclResourceType::cluster:
    case AclResourceType::transactional_id:
    case AclResourceType::delegation_token:
    case AclResourceType::user:
      break;
    default:
      return "resource type " + std::to_string(int(b.resource_type)) + " is not a concrete type";
  }
  if (b.pattern_type != AclPatternType::literal && b.pattern_type != AclPatternType::prefixed) {
    return "pattern type " + std::to_string(int(b.pattern_type)) + " is not LITERAL or PREFIXED";
  }
  if (b.resource_name.empty()) return "empty resource name";
  if (b.resource_type == AclResourceType::cluster &&
      (b.resource_name != "kafka-cluster" || b.pattern_type != AclPatternType::literal)) {
    return "the cluster resource is the literal name kafka-cluster";
  }
  if (int(b.operation) < int(AclOperation::all) ||
      int(b.operation) > int(AclOperation::describe_tokens)) {
    return "operation " + std::to_string(int(b.operation)) + " is not a concrete operation";
  }
  if (b.permission != AclPermission::allow && b.permission != AclPermission::deny) {
    return "permission " + std::to_string(int(b.permission)) + " is not ALLOW or DENY";
  }
  const auto colon = b.principal.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == b.principal.size()) {
    return "principal '" + b.principal + "' is not of the form Type:name (User:alice, User:*)";
  }
  if (b.host.empty()) return "empty host (use * for any)";
  return "";
}

bool is_acl_record(const MetadataRecord& record) {
  return std::holds_alternative<AclsCreated>(record) || std::holds_alternative<AclsDeleted>(record);
}

bool is_acl_record_type(const std::string& type) {
  return type == "acls_created" || type == "acls_deleted";
}

Result<void, Errc> apply_acl_record(MetadataImage& next, const MetadataRecord& record) {
  const bool create = std::holds_alternative<AclsCreated>(record);
  const auto& bindings = create ? std::get<AclsCreated>(record).bindings
                                : std::get<AclsDeleted>(record).bindings;
  for (const auto& b : bindings) {
    if (auto why = check_acl_binding(b); !why.empty()) {
      return make_error(Errc::invalid_record, "ACL binding: " + why);
    }
  }
  for (const auto& b : bindings) {
    if (create) {
      next.acls.insert(b);
    } else {
      next.acls.erase(b);
    }
  }
  return {};
}

std::string encode_acl_record(const MetadataRecord& record) {
  if (auto* r = std::get_if<AclsCreated>(&record)) {
    return json{{"type", "acls_created"}, {"acls", bindings_to_json(r->bindings)}}.dump();
  }
  const auto& r = std::get<AclsDeleted>(record);
  return json{{"type", "acls_deleted"}, {"acls", bindings_to_json(r.bindings)}}.dump();
}

Result<MetadataRecord, Errc> decode_acl_record(const json& j) {
  try {
    std::vector<AclBinding> bindings;
    for (const json& b : j.at("acls")) bindings.push_back(binding_from_json(b));
    if (j.at("type").get<std::string>() == "acls_created") {
      return MetadataRecord{AclsCreated{std::move(bindings)}};
    }
    return MetadataRecord{AclsDeleted{std::move(bindings)}};
  } catch (const json::exception& e) {
    return make_error(Errc::corrupt, std::string("malformed ACL record: ") + e.what());
  }
}

void put_image_acls(json& snapshot, const AclSet& acls) {
  if (acls.empty()) return;
  json list = json::array();
  for (const auto& b : acls) list.push_back(binding_to_json(b));
  snapshot["acls"] = std::move(list);
}

Result<AclSet, Errc> get_image_acls(const json& snapshot) {
  AclSet acls;
  auto it = snapshot.find("acls");
  if (it == snapshot.end()) return acls;
  try {
    for (const json& entry : *it) {
      AclBinding b = binding_from_json(entry);
      if (auto why = check_acl_binding(b); !why.empty()) {
        return make_error(Errc::corrupt, "ACL binding: " + why);
      }
      acls.insert(std::move(b));
    }
  } catch (const json::exception& e) {
    return make_error(Errc::corrupt, std::string("malformed ACL binding: ") + e.what());
  }
  return acls;
}

}  // namespace holdfast::metadata
