// Client quotas (KIP-546, issue 11): the entities a quota is set on, the
// values, and the record that changes them. Stored in the metadata log, so
// quotas replicate with the cluster and survive restarts.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace holdfast::metadata {

// Kafka's entity types and the keys Holdfast enforces.
inline constexpr const char* kQuotaEntityUser = "user";
inline constexpr const char* kQuotaEntityClientId = "client-id";
inline constexpr const char* kProducerByteRate = "producer_byte_rate";
inline constexpr const char* kConsumerByteRate = "consumer_byte_rate";

// A quota entity: entity type -> name, where a null name is the type's
// default entity ({"user": "alice"}, {"user": null, "client-id": "app"}).
// Holdfast's types are `user` and `client-id`, one name each at most.
using QuotaEntity = std::map<std::string, std::optional<std::string>>;
// key (producer_byte_rate, consumer_byte_rate) -> bytes per second.
using QuotaValues = std::map<std::string, double>;
// Every entity with at least one quota set.
using ClientQuotaMap = std::map<QuotaEntity, QuotaValues>;

// Why `entity` cannot carry a quota (empty: it can): one or two components,
// each of type user or client-id, no type twice, no empty name.
std::string check_quota_entity(const QuotaEntity& entity);
// Why `key` = `value` cannot be stored (empty: it can): a key Holdfast
// enforces and a finite rate > 0.
std::string check_quota_value(const std::string& key, double value);

// One AlterClientQuotas entry that applied: each key set to its value, or
// removed (nullopt). An entity left with no key is dropped from the image.
// Removing a key that is not set is a no-op (idempotent, as in Kafka).
struct ClientQuotasAltered {
  QuotaEntity entity;
  std::map<std::string, std::optional<double>> changes;
};

// "user=alice,client-id=<default>": an entity for messages and logs.
std::string quota_entity_string(const QuotaEntity& entity);

}  // namespace holdfast::metadata
