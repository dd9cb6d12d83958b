// The client quota record's part of the metadata record and snapshot codecs
// (beside acl_codec.h). Internal to the metadata module.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "metadata/metadata_image.h"

namespace holdfast::metadata {

bool is_quota_record_type(const std::string& type);

// Applies a ClientQuotasAltered record; an entity or value that
// check_quota_entity / check_quota_value refuses is invalid_record.
Result<void, Errc> apply_quota_record(MetadataImage& next, const ClientQuotasAltered& record);

// {"type":"client_quotas_altered","entity":[{"type":"user","name":null}],
//  "set":{"producer_byte_rate":1048576.0},"remove":["consumer_byte_rate"]}
std::string encode_quota_record(const ClientQuotasAltered& record);
Result<MetadataRecord, Errc> decode_quota_record(const nlohmann::json& j);

// The snapshot's optional "client_quotas" member: one client_quotas_altered
// record per entity setting its values; absent = none, so older snapshots load.
void put_image_quotas(nlohmann::json& snapshot, const ClientQuotaMap& quotas);
Result<ClientQuotaMap, Errc> get_image_quotas(const nlohmann::json& snapshot);

}  // namespace holdfast::metadata
