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
    return op.key + " must be above 0 bytes per second (got " + fmt::format("{}", op.value) + ")";
  }
  if (op.value != std::floor(op.value) || op.value > 9.2e18) {
    return op.key + " must be a whole number of bytes per second";
  }
  return "";
}

// The record for one request entry, or nullopt with `why` (INVALID_REQUEST).
std::optional<metadata::ClientQuotasAltered> checked_record(
    const protocol::AlterClientQuotasRequest::EntryData& entry, std::string* why) {
  auto entity = entity_of(entry.entity, why);
  if (!entity) return std::nullopt;
  metadata::ClientQuotasAltered record{*entity, {}};
  for (const auto& op : entry.ops) {
    if (auto bad = check_op(op); !bad.empty()) {
      *why = bad;
      return std::nullopt;
    }
    if (record.changes.count(op.key)) {
      *why = "quota key '" + op.key + "' given twice";
      return std::nullopt;
    }
    record.changes[op.key] = op.remove ? std::nullopt : std::optional<double>(op.value);
  }
  return record;
}

std::string describe_entry(const protocol::AlterClientQuotasRequest::EntryData& entry) {
  std::string out;
  for (const auto& c : entry.entity) {
    out += c.entity_type + "=" + c.entity_name.value_or("<default>") + " ";
  }
  for (const auto& op : entry.ops) {
    out += op.remove ? op.key + " removed " : op.key + "=" + std::to_string(int64_t(op.value)) + " ";
  }
  return out;
}

// Appends `record` to the metadata log. Not a coroutine: it returns the
// awaitable, so the record lives in the initiation, not in a coroutine frame.
auto append_record(metadata::MetadataLog& log, metadata::MetadataRecord record) {
  return await_callback<Result<metadata::ImagePtr, metadata::Errc>>(
      [&log, record = std::move(record)](
          std::function<void(Result<metadata::ImagePtr, metadata::Errc>)> done) mutable {
        log.append(std::move(record), std::move(done));
      });
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

  // First every entry is checked (no suspension), then the records of the
  // valid ones are appended one by one. (Two passes also keep variables of a
  // loop body with `continue`s out of a suspension: GCC 12 destroyed such a
  // record twice.)
  AlterClientQuotasResponse response = answer_all(KafkaError::none, "");
  std::vector<std::pair<size_t, metadata::MetadataRecord>> to_append;
  for (size_t i = 0; i < request->entries.size(); ++i) {
    std::string why;
    auto record = checked_record(request->entries[i], &why);
    if (!record) {
      response.entries[i].error_code = code(KafkaError::invalid_request);
      response.entries[i].error_message = why;
    } else if (!request->validate_only && !record->changes.empty()) {
      to_append.emplace_back(i, std::move(*record));
    }
  }
  for (auto& [index, record] : to_append) {
    auto append = append_record(broker.metadata_log(), std::move(record));
    auto appended = co_await std::move(append);
    if (!appended) {
      response.entries[index].error_code = code(metadata_error(appended.code()));
      response.entries[index].error_message = appended.error().message;
    } else {
      HF_INFO("client quotas altered by {}: {}", ctx.principal,
              describe_entry(request->entries[index]));
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
