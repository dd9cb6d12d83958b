#include <tuple>

#include "base/log.h"
#include "server/broker.h"
#include "server/cluster/forwarding.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"
#include "server/kafka_error.h"
#include "server/topic_config.h"

namespace holdfast::server {
namespace {

constexpr int8_t kTopicResource = 2;
constexpr int8_t kBrokerResource = 4;
constexpr int8_t kSourceDynamicTopic = 1;
constexpr int8_t kSourceStaticBroker = 4;
constexpr int8_t kSourceDefault = 5;

// The broker settings DescribeConfigs reports (read-only: they come from the
// properties file and flags at start-up).
std::vector<std::pair<std::string, std::string>> broker_settings(const BrokerConfig& c) {
  return {
      {"auto.create.topics.enable", c.auto_create_topics ? "true" : "false"},
      {"flush.policy", c.effective_flush_policy().to_string()},
      {"log.dirs", c.data_dir},
      {"log.retention.bytes", std::to_string(c.log_retention_bytes)},
      {"log.retention.ms", std::to_string(c.log_retention_ms)},
      {"log.roll.ms", std::to_string(c.log_roll_ms)},
      {"log.segment.bytes", std::to_string(c.log_segment_bytes)},
      {"message.max.bytes", std::to_string(c.message_max_bytes)},
      {"node.id", std::to_string(c.node_id)},
      {"num.partitions", std::to_string(c.num_partitions)},
      {"socket.request.max.bytes", std::to_string(c.socket_request_max_bytes)},
  };
}

constexpr const char* kOnlyTopicConfigs =
    "only topic configs can be altered; broker settings come from the properties file";

// A forwarded config change the controller accepted: answers once this
// node's image has it (its overrides differ from `before`, or are already
// what was asked) and the local replicas apply it, so a DescribeConfigs here
// right after sees the change. Bounded; the change is committed either way.
Awaitable<void> wait_for_local_configs(Broker& broker, std::string topic,
                                       metadata::ConfigMap before, metadata::ConfigMap expected) {
  std::function<bool(const metadata::MetadataImage&)> applied =
      [topic, before, expected](const metadata::MetadataImage& image) {
        const auto* info = image.find_topic(topic);
        return info == nullptr || info->configs != before || info->configs == expected;
      };
  const std::chrono::milliseconds timeout = cluster::kForwardTimeout;
  if (!co_await cluster::wait_for_local_image(broker, applied, timeout)) {
    HF_WARN("the config change of topic {} is committed but not yet applied on this broker",
            topic);
  }
}

// The answer to a config change that could not be forwarded to the
// controller: every resource refused with the forwarding error.
template <typename Response, typename Request>
Response forwarding_failed(const Request& request, const Error<cluster::ForwardErrc>& error) {
  Response failed;
  for (const auto& resource : request.resources) {
    auto& out = failed.responses.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    out.error_code = code(cluster::to_kafka_error(error.code));
    out.error_message = error.message;
  }
  return failed;
}

// The overrides of `topic` in `image` (empty when it does not exist).
metadata::ConfigMap overrides_of(const metadata::MetadataImage& image, const std::string& topic) {
  const auto* info = image.find_topic(topic);
  return info ? info->configs : metadata::ConfigMap{};
}

// Takes the resources the principal may not alter out of `request` (neither
// changed nor forwarded); add_refused answers them.
template <typename Request>
std::vector<std::tuple<int8_t, std::string, KafkaError>> take_refused(const RequestContext& ctx,
                                                                      Request& request) {
  std::vector<std::tuple<int8_t, std::string, KafkaError>> refused;
  std::erase_if(request.resources, [&](const auto& resource) {
    const KafkaError denied = check_access(
        ctx,
        resource.resource_type == kBrokerResource ? Access::alter_configs_broker : Access::alter_configs_topic,
        resource.resource_name);
    if (denied != KafkaError::none) {
      refused.emplace_back(resource.resource_type, resource.resource_name, denied);
    }
    return denied != KafkaError::none;
  });
  return refused;
}

template <typename Response>
Response& add_refused(Response& response,
                      const std::vector<std::tuple<int8_t, std::string, KafkaError>>& refused) {
  for (const auto& [type, name, error] : refused) {
    auto& out = response.responses.emplace_back();
    out.resource_type = type;
    out.resource_name = name;
    out.error_code = code(error);
  }
  return response;
}

}  // namespace

Awaitable<Response> handle_describe_configs(RequestContext& ctx) {
  using protocol::DescribeConfigsRequest;
  using protocol::DescribeConfigsResponse;
  auto request = decode_request<DescribeConfigsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  DescribeConfigsResponse response;
  for (const auto& resource : request->resources) {
    auto& out = response.results.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    out.error_code = code(KafkaError::none);
    if (KafkaError denied = check_access(ctx,
                                         resource.resource_type == kBrokerResource
                                             ? Access::describe_configs_broker
                                             : Access::describe_configs_topic,
                                         resource.resource_name);
        denied != KafkaError::none) {
      out.error_code = code(denied);
      continue;
    }
    auto wanted = [&](const std::string& name) {
      if (!resource.configuration_keys) return true;
      for (const auto& k : *resource.configuration_keys) {
        if (k == name) return true;
      }
      return false;
    };
    auto add = [&](const std::string& name, const std::string& value, bool is_default,
                   bool read_only, int8_t source) {
      if (!wanted(name)) return;
      auto& c = out.configs.emplace_back();
      c.name = name;
      c.value = value;
      c.read_only = read_only;
      c.is_default = is_default;
      c.config_source = source;
      c.is_sensitive = false;
    };
    if (resource.resource_type == kTopicResource) {
      auto image = broker.topics().image();
      const auto* info = image->find_topic(resource.resource_name);
      if (!info) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        out.error_message = "topic '" + resource.resource_name + "' does not exist";
        continue;
      }
      for (const auto& e : describe_topic_configs(broker.config(), info->configs)) {
        add(e.name, e.value, e.is_default, e.read_only,
            e.is_default ? kSourceDefault : kSourceDynamicTopic);
      }
    } else if (resource.resource_type == kBrokerResource) {
      if (!resource.resource_name.empty() &&
          resource.resource_name != std::to_string(broker.node_id())) {
        out.error_code = code(KafkaError::invalid_request);
        out.error_message = "unknown broker '" + resource.resource_name + "'";
        continue;
      }
      for (const auto& [name, value] : broker_settings(broker.config())) {
        add(name, value, false, true, kSourceStaticBroker);
      }
    } else {
      out.error_code = code(KafkaError::invalid_request);
      out.error_message = "resource type " + std::to_string(resource.resource_type) +
                          " is not supported (topics: 2, brokers: 4)";
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_alter_configs(RequestContext& ctx) {
  using protocol::AlterConfigsRequest;
  using protocol::AlterConfigsResponse;
  auto request = decode_request<AlterConfigsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  const auto refused = take_refused(ctx, *request);

  if (cluster::forward_needed(broker)) {
    auto before = broker.topics().image();
    auto answer =
        co_await cluster::forward_to_controller<AlterConfigsResponse>(broker, *request, ctx.api_version);
    if (!answer) {
      auto failed = forwarding_failed<AlterConfigsResponse>(*request, answer.error());
      co_return make_response(ctx, add_refused(failed, refused));
    }
    for (size_t i = 0; i < answer->responses.size() && i < request->resources.size(); ++i) {
      const auto& resource = request->resources[i];
      if (answer->responses[i].error_code != code(KafkaError::none) || request->validate_only ||
          resource.resource_type != kTopicResource) {
        continue;
      }
      metadata::ConfigMap expected;
      for (const auto& c : resource.configs) {
        if (c.value) expected[c.name] = *c.value;
      }
      std::string topic = resource.resource_name;
      metadata::ConfigMap old = overrides_of(*before, topic);
      co_await wait_for_local_configs(broker, topic, old, expected);
    }
    co_return make_response(ctx, add_refused(*answer, refused));
  }

  AlterConfigsResponse response;
  for (const auto& resource : request->resources) {
    auto& out = response.responses.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    if (resource.resource_type != kTopicResource) {
      out.error_code = code(KafkaError::invalid_request);
      out.error_message = kOnlyTopicConfigs;
      continue;
    }
    // AlterConfigs replaces the whole set: what is not named returns to its default.
    metadata::ConfigMap configs;
    for (const auto& c : resource.configs) {
      if (c.value) configs[c.name] = *c.value;
    }
    TopicChangeStart replace = [&broker, &resource, &configs,
                                validate_only = request->validate_only](TopicCallback done) {
      broker.topics().replace_configs(resource.resource_name, configs, validate_only,
                                      std::move(done));
    };
    const std::chrono::milliseconds timeout = kTopicChangeTimeout;
    auto outcome = co_await broker.topics().await_change(replace, timeout);
    out.error_code = code(outcome.error);
    if (!outcome.ok()) out.error_message = outcome.message;
  }
  co_return make_response(ctx, add_refused(response, refused));
}

// IncrementalAlterConfigs (KIP-339): SET/DELETE/APPEND/SUBTRACT on single
// keys; what is not named keeps its value (unlike AlterConfigs).
Awaitable<Response> handle_incremental_alter_configs(RequestContext& ctx) {
  using protocol::IncrementalAlterConfigsRequest;
  using protocol::IncrementalAlterConfigsResponse;
  auto request = decode_request<IncrementalAlterConfigsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  const auto refused = take_refused(ctx, *request);

  if (cluster::forward_needed(broker)) {
    auto before = broker.topics().image();
    auto answer = co_await cluster::forward_to_controller<IncrementalAlterConfigsResponse>(
        broker, *request, ctx.api_version);
    if (!answer) {
      auto failed = forwarding_failed<IncrementalAlterConfigsResponse>(*request, answer.error());
      co_return make_response(ctx, add_refused(failed, refused));
    }
    for (size_t i = 0; i < answer->responses.size() && i < request->resources.size(); ++i) {
      const auto& resource = request->resources[i];
      if (answer->responses[i].error_code != code(KafkaError::none) || request->validate_only ||
          resource.resource_type != kTopicResource) {
        continue;
      }
      std::vector<ConfigOp> ops;
      for (const auto& c : resource.configs) ops.push_back({c.name, c.config_operation, c.value});
      std::string topic = resource.resource_name;
      metadata::ConfigMap old = overrides_of(*before, topic);
      auto expected = apply_config_ops(broker.config(), old, ops);
      if (!expected) continue;
      metadata::ConfigMap wanted = std::move(*expected);
      co_await wait_for_local_configs(broker, topic, old, wanted);
    }
    co_return make_response(ctx, add_refused(*answer, refused));
  }

  IncrementalAlterConfigsResponse response;
  for (const auto& resource : request->resources) {
    auto& out = response.responses.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    if (resource.resource_type != kTopicResource) {
      out.error_code = code(KafkaError::invalid_request);
      out.error_message = kOnlyTopicConfigs;
      continue;
    }
    std::vector<ConfigOp> ops;
    ops.reserve(resource.configs.size());
    for (const auto& c : resource.configs) ops.push_back({c.name, c.config_operation, c.value});
    TopicChangeStart alter = [&broker, &resource, &ops,
                              validate_only = request->validate_only](TopicCallback done) {
      broker.topics().alter_configs(resource.resource_name, ops, validate_only, std::move(done));
    };
    const std::chrono::milliseconds timeout = kTopicChangeTimeout;
    auto outcome = co_await broker.topics().await_change(alter, timeout);
    out.error_code = code(outcome.error);
    if (!outcome.ok()) out.error_message = outcome.message;
  }
  co_return make_response(ctx, add_refused(response, refused));
}

}  // namespace holdfast::server
