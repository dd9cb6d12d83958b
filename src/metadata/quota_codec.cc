#include "metadata/quota_codec.h"

#include <cmath>

namespace holdfast::metadata {
namespace {

using nlohmann::json;

json entity_to_json(const QuotaEntity& entity) {
  json list = json::array();
  for (const auto& [type, name] : entity) {
    list.push_back({{"type", type}, {"name", name ? json(*name) : json(nullptr)}});
  }
  return list;
}

// Throws json::exception on a missing or mistyped member.
QuotaEntity entity_from_json(const json& list) {
  QuotaEntity entity;
  for (const json& c : list) {
    const json& name = c.at("name");
    entity[c.at("type").get<std::string>()] =
        name.is_null() ? std::nullopt : std::optional<std::string>(name.get<std::string>());
  }
  return entity;
}

}  // namespace

std::string check_quota_entity(const QuotaEntity& entity) {
  if (entity.empty()) return "the entity has no component";
  for (const auto& [type, name] : entity) {
    if (type != kQuotaEntityUser && type != kQuotaEntityClientId) {
      return "entity type '" + type + "' is not supported (user and client-id are)";
    }
    if (name && name->empty()) return "empty " + type + " name (null names the default)";
  }
  return "";
}

std::string check_quota_value(const std::string& key, double value) {
  if (key != kProducerByteRate && key != kConsumerByteRate) {
    return "quota key '" + key + "' is not supported (producer_byte_rate and consumer_byte_rate are)";
  }
  if (!std::isfinite(value) || value <= 0) {
    return "quota " + key + " must be a rate in bytes per second above 0";
  }
  return "";
}

std::string quota_entity_string(const QuotaEntity& entity) {
  std::string out;
  for (const auto& [type, name] : entity) {
    if (!out.empty()) out += ",";
    out += type + "=" + (name ? *name : "<default>");
  }
  return out;
}

bool is_quota_record_type(const std::string& type) { return type == "client_quotas_altered"; }

Result<void, Errc> apply_quota_record(MetadataImage& next, const ClientQuotasAltered& record) {
  if (auto why = check_quota_entity(record.entity); !why.empty()) {
    return make_error(Errc::invalid_record, "client quota: " + why);
  }
  for (const auto& [key, value] : record.changes) {
    if (auto why = check_quota_value(key, value.value_or(1.0)); !why.empty()) {
      return make_error(Errc::invalid_record, "client quota: " + why);
    }
  }
  QuotaValues& values = next.client_quotas[record.entity];
  for (const auto& [key, value] : record.changes) {
    if (value) {
      values[key] = *value;
    } else {
      values.erase(key);
    }
  }
  if (values.empty()) next.client_quotas.erase(record.entity);
  return {};
}

std::string encode_quota_record(const ClientQuotasAltered& record) {
  json set = json::object();
  json remove = json::array();
  for (const auto& [key, value] : record.changes) {
    if (value) {
      set[key] = *value;
    } else {
      remove.push_back(key);
    }
  }
  return json{{"type", "client_quotas_altered"},
              {"entity", entity_to_json(record.entity)},
              {"set", std::move(set)},
              {"remove", std::move(remove)}}
      .dump();
}

Result<MetadataRecord, Errc> decode_quota_record(const json& j) {
  try {
    ClientQuotasAltered record;
    record.entity = entity_from_json(j.at("entity"));
    for (const auto& [key, value] : j.at("set").items()) record.changes[key] = value.get<double>();
    for (const json& key : j.at("remove")) record.changes[key.get<std::string>()] = std::nullopt;
    return MetadataRecord{std::move(record)};
  } catch (const json::exception& e) {
    return make_error(Errc::corrupt, std::string("malformed client quota record: ") + e.what());
  }
}

void put_image_quotas(json& snapshot, const ClientQuotaMap& quotas) {
  if (quotas.empty()) return;
  json list = json::array();
  for (const auto& [entity, values] : quotas) {
    ClientQuotasAltered record{entity, {}};
    for (const auto& [key, value] : values) record.changes[key] = value;
    list.push_back(json::parse(encode_quota_record(record)));
  }
  snapshot["client_quotas"] = std::move(list);
}

Result<ClientQuotaMap, Errc> get_image_quotas(const json& snapshot) {
  auto it = snapshot.find("client_quotas");
  if (it == snapshot.end()) return ClientQuotaMap{};
  MetadataImage image;
  for (const json& entry : *it) {
    auto record = decode_quota_record(entry);
    if (!record) return record.error();
    if (auto applied = apply_quota_record(image, std::get<ClientQuotasAltered>(*record)); !applied) {
      return make_error(Errc::corrupt, applied.error().message);
    }
  }
  return std::move(image.client_quotas);
}

}  // namespace holdfast::metadata
