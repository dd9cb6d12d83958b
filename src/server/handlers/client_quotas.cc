// DescribeClientQuotas (48) and AlterClientQuotas (49), KIP-546. Quotas live
// in the metadata log (ClientQuotasAltered records, metadata/client_quota.h);
// in a cluster an alteration goes to the active controller, as AlterConfigs
// does. Enforcement: quota_manager.h.
//
// Entities: `user` and `client-id` (alone or together), a null name being
// the type's default. Keys: producer_byte_rate and consumer_byte_rate, whole
// bytes per second above 0. Kafka's other keys (request_percentage,
// controller_mutation_rate, connection_creation_rate) and `ip` entities are
// refused with INVALID_REQUEST saying Holdfast does not enforce them: never
// stored silently.
//
// Authorisation (the access table): DescribeConfigs (48) or AlterConfigs (49)
// on the cluster; CLUSTER_AUTHORIZATION_FAILED otherwise.
#include <cmath>
#include <set>

#include "server/broker.h"
#include "server/cluster/forwarding.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"
#include "server/security/access.h"

namespace holdfast::server {
namespace {

using metadata::QuotaEntity;

constexpr int8_t kMatchExact = 0;
constexpr int8_t kMatchDefault = 1;
constexpr int8_t kMatchAny = 2;

// Kafka's quota keys that Holdfast does not enforce.
bool unenforced_kafka_key(const std::string& key) {
  return key == "request_percentage" || key == "controller_mutation_rate" ||
         key == "connection_creation_rate";
}

// Why an entity type cannot be used (empty: it can).
std::string check_entity_type(const std::string& type) {
  if (type == metadata::kQuotaEntityUser || type == metadata::kQuotaEntityClientId) return "";
  if (type == "ip") return "ip quotas are not supported by Holdfast (user and client-id are)";
  return "unknown entity type '" + type + "' (user and client-id are supported)";
}

KafkaError metadata_error(metadata::Errc e) {
  switch (e) {
    case metadata::Errc::not_leader: return KafkaError::not_controller;
    case metadata::Errc::invalid_record: return KafkaError::invalid_request;
    default: return KafkaError::unknown_server_error;
  }
}

// The request's entity as a QuotaEntity, or why it cannot be one.
Result<QuotaEntity, KafkaError> entity_of(
    const std::vector<protocol::AlterClientQuotasRequest::EntityData>& components, std::string* why) {
  QuotaEntity entity;
  for (const auto& c : components) {
    if (auto bad = check_entity_type(c.entity_type); !bad.empty()) {
      *why = bad;
      return make_error(KafkaError::invalid_request, bad);
    }
    if (!entity.emplace(c.entity_type, c.entity_name).second) {
      *why = "entity type '" + c.entity_type + "' given twice";
      return make_error(KafkaError::invalid_request, *why);
    }
  }
  if (auto bad = metadata::check_quota_entity(entity); !bad.empty()) {
    *why = bad;
    return make_error(KafkaError::invalid_request, bad);
  }
  return entity;
}

// Why `op` cannot be applied (empty: it can).
std::string check_op(const protocol::AlterClientQuotasRequest::OpData& op) {
  if (unenforced_kafka_key(op.key)) {
    return "quota key '" + op.key +
           "' is not supported by Holdfast (producer_byte_rate and consumer_byte_rate are); "
           "nothing was stored";
  }
  if (op.key != metadata::kProducerByteRate && op.key != metadata::kConsumerByteRate) {
    return "unknown quota key '" + op.key + "' (producer_byte_rate and consumer_byte_rate are supported)";
  }
  if (op.remove) return "";
  if (!std::isfinite(op.value) || op.value <= 0) {
    return op.key + " must be above 0 bytes per second (got " + std::to_string(op.value) + ")";
  }
  if (op.value != std::floor(op.value) || op.value > 9.2e18) {
    return op.key + " must be a whole number of bytes per second";
  }
  return "";
}

// Whether `entity` passes the describe filter.
bool matches(const QuotaEntity& entity,
             const std::vector<protocol::DescribeClientQuotasRequest::ComponentData>& filter,
             bool strict) {
  for (const auto& c : filter) {
    auto it = entity.find(c.entity_type);
    if (it == entity.end()) return false;
    if (c.match_type == kMatchExact && it->second != c.match) return false;
    if (c.match_type == kMatchDefault && it->second) return false;
  }
  if (strict && entity.size() != filter.size()) return false;
  return true;
}

}  // namespace

Awaitable<Response> handle_describe_client_quotas(RequestContext& ctx) {
  using protocol::DescribeClientQuotasRequest;
  using protocol::DescribeClientQuotasResponse;
  auto request = decode_request<DescribeClientQuotasRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<DescribeClientQuotasResponse>(ctx, Access::describe_client_quotas)) {
    co_return std::move(*denied);
  }
  DescribeClientQuotasResponse response;
  auto invalid = [&](const std::string& why) {
    response.error_code = code(KafkaError::invalid_request);
    response.error_message = why;
    return make_response(ctx, response);
  };
  std::set<std::string> types;
  for (const auto& c : request->components) {
    if (auto bad = check_entity_type(c.entity_type); !bad.empty()) co_return invalid(bad);
    if (!types.insert(c.entity_type).second) {
      co_return invalid("entity type '" + c.entity_type + "' filtered twice");
    }
    if (c.match_type == kMatchExact && !c.match) {
      co_return invalid("an exact match on " + c.entity_type + " needs a name");
    }
    if ((c.match_type == kMatchDefault || c.match_type == kMatchAny) && c.match) {
      co_return invalid("a default or any match on " + c.entity_type + " takes no name");
    }
    if (c.match_type < kMatchExact || c.match_type > kMatchAny) {
      co_return invalid("unknown match type " + std::to_string(c.match_type));
    }
  }
  auto image = ctx.broker.metadata_log().current();
  response.error_code = code(KafkaError::none);
  response.entries.emplace();
  for (const auto& [entity, values] : image->client_quotas) {
    if (!matches(entity, request->components, request->strict)) continue;
    auto& out = response.entries->emplace_back();
    for (const auto& [type, name] : entity) {
      auto& component = out.entity.emplace_back();
      component.entity_type = type;
      component.entity_name = name;
    }
    for (const auto& [key, value] : values) {
      auto& v = out.values.emplace_back();
      v.key = key;
      v.value = value;
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_alter_client_quotas(RequestContext& ctx) {
  using protocol::AlterClientQuotasRequest;
  using protocol::AlterClientQuotasResponse;
  auto request = decode_request<AlterClientQuotasRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  // One answer per request entry, naming its entity as the client sent it.
  auto answer_all = [&](KafkaError error, const std::string& message) {
    AlterClientQuotasResponse out;
    for (const auto& entry : request->entries) {
      auto& e = out.entries.emplace_back();
      e.error_code = code(error);
      if (error != KafkaError::none && !message.empty()) e.error_message = message;
      for (const auto& c : entry.entity) {
        auto& component = e.entity.emplace_back();
        component.entity_type = c.entity_type;
        component.entity_name = c.entity_name;
      }
    }
    return out;
  };
  if (KafkaError denied = check_access(ctx, Access::alter_client_quotas); denied != KafkaError::none) {
    co_return make_response(ctx, answer_all(denied, ""));
  }
  if (cluster::forward_needed(broker)) {
    auto answer = co_await cluster::forward_to_controller<AlterClientQuotasResponse>(
        broker, *request, ctx.api_version);
    if (answer) co_return make_response(ctx, *answer);
    co_return make_response(
        ctx, answer_all(cluster::to_kafka_error(answer.code()), answer.error().message));
  }

  AlterClientQuotasResponse response = answer_all(KafkaError::none, "");
  for (size_t i = 0; i < request->entries.size(); ++i) {
    const auto& entry = request->entries[i];
    auto& out = response.entries[i];
    auto fail = [&](KafkaError error, const std::string& why) {
      out.error_code = code(error);
      out.error_message = why;
    };
    std::string why;
    auto entity = entity_of(entry.entity, &why);
    if (!entity) {
      fail(entity.code(), why);
      continue;
    }
    metadata::ClientQuotasAltered record{*entity, {}};
    for (const auto& op : entry.ops) {
      if (auto bad = check_op(op); !bad.empty()) {
        why = bad;
        break;
      }
      if (record.changes.count(op.key)) {
        why = "quota key '" + op.key + "' given twice";
        break;
      }
      record.changes[op.key] = op.remove ? std::nullopt : std::optional<double>(op.value);
    }
    if (!why.empty()) {
      fail(KafkaError::invalid_request, why);
      continue;
    }
    if (request->validate_only || record.changes.empty()) continue;
    metadata::MetadataLog* log = &broker.metadata_log();
    metadata::MetadataRecord to_append = std::move(record);
    auto appended = co_await await_callback<Result<metadata::ImagePtr, metadata::Errc>>(
        [log, to_append](std::function<void(Result<metadata::ImagePtr, metadata::Errc>)> done) mutable {
          log->append(std::move(to_append), std::move(done));
        });
    if (!appended) {
      fail(metadata_error(appended.code()), appended.error().message);
    } else {
      HF_INFO("client quota of {} altered by {}", metadata::quota_entity_string(*entity),
              ctx.principal);
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
