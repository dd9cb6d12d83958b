// The ACL records' part of the metadata record and snapshot codecs, kept apart
// from metadata_image.cc / metadata_log.cc so that other record families can
// be added beside it. Internal to the metadata module.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "metadata/metadata_image.h"

namespace holdfast::metadata {

bool is_acl_record(const MetadataRecord& record);
bool is_acl_record_type(const std::string& type);

// Adds (AclsCreated) or removes (AclsDeleted) the bindings. A binding that
// check_acl_binding refuses makes the record invalid_record (nothing applies).
Result<void, Errc> apply_acl_record(MetadataImage& next, const MetadataRecord& record);

// {"type":"acls_created"|"acls_deleted","acls":[{"resource_type":2,
// "resource_name":"t","pattern_type":3,"principal":"User:a","host":"*",
// "operation":4,"permission":3}, ...]} with Kafka's protocol codes.
std::string encode_acl_record(const MetadataRecord& record);
Result<MetadataRecord, Errc> decode_acl_record(const nlohmann::json& j);

// The snapshot's optional "acls" member (same binding form); absent = none,
// so snapshots written before ACLs existed still load.
void put_image_acls(nlohmann::json& snapshot, const AclSet& acls);
Result<AclSet, Errc> get_image_acls(const nlohmann::json& snapshot);

}  // namespace holdfast::metadata
