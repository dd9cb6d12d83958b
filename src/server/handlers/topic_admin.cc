#include <set>

#include "server/broker.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"
#include "server/topic_config.h"

namespace holdfast::server {

Awaitable<Response> handle_create_topics(RequestContext& ctx) {
  using protocol::CreateTopicsRequest;
  using protocol::CreateTopicsResponse;
  auto request = decode_request<CreateTopicsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  std::multiset<std::string> names;
  for (const auto& t : request->topics) names.insert(t.name);

  CreateTopicsResponse response;
  for (const auto& topic : request->topics) {
    auto& out = response.topics.emplace_back();
    out.name = topic.name;
    auto fail = [&](KafkaError error, const std::string& message) {
      out.error_code = code(error);
      out.error_message = message;
      out.num_partitions = -1;
      out.replication_factor = -1;
    };
    if (names.count(topic.name) > 1) {
      fail(KafkaError::invalid_request, "topic '" + topic.name + "' appears more than once");
      continue;
    }
    int32_t partitions = topic.num_partitions;
    if (!topic.assignments.empty()) {
      if (partitions != -1 || topic.replication_factor != -1) {
        fail(KafkaError::invalid_request,
             "give either a replica assignment or partitions and replication factor, not both");
        continue;
      }
      bool valid = true;
      for (const auto& a : topic.assignments) {
        valid &= a.broker_ids.size() == 1 && a.broker_ids[0] == broker.node_id();
      }
      if (!valid) {
        fail(KafkaError::invalid_replica_assignment,
             "replica assignments may only name broker " + std::to_string(broker.node_id()));
        continue;
      }
      partitions = static_cast<int32_t>(topic.assignments.size());
    }
    metadata::ConfigMap configs;
    for (const auto& c : topic.configs) {
      if (c.value) configs[c.name] = *c.value;
    }
    auto outcome = broker.topics().create_topic(topic.name, partitions, topic.replication_factor,
                                                configs, request->validate_only);
    if (!outcome.ok()) {
      fail(outcome.error, outcome.message);
      continue;
    }
    out.error_code = code(KafkaError::none);
    out.num_partitions = partitions == -1 ? broker.config().num_partitions : partitions;
    out.replication_factor = 1;
    out.configs.emplace();
    for (const auto& entry : describe_topic_configs(broker.config(), configs)) {
      auto& c = out.configs->emplace_back();
      c.name = entry.name;
      c.value = entry.value;
      c.read_only = entry.read_only;
      c.config_source = entry.is_default ? 5 : 1;  // DEFAULT_CONFIG : DYNAMIC_TOPIC_CONFIG
      c.is_sensitive = entry.sensitive;
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_delete_topics(RequestContext& ctx) {
  using protocol::DeleteTopicsRequest;
  using protocol::DeleteTopicsResponse;
  auto request = decode_request<DeleteTopicsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  DeleteTopicsResponse response;
  for (const auto& name : request->topic_names) {
    auto& out = response.responses.emplace_back();
    out.name = name;
    auto outcome = broker.topics().delete_topic(name);
    out.error_code = code(outcome.error);
  }
  broker.fetch_waiters().notify_all();
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_create_partitions(RequestContext& ctx) {
  using protocol::CreatePartitionsRequest;
  using protocol::CreatePartitionsResponse;
  auto request = decode_request<CreatePartitionsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  CreatePartitionsResponse response;
  for (const auto& topic : request->topics) {
    auto& out = response.results.emplace_back();
    out.name = topic.name;
    if (topic.assignments) {
      bool valid = true;
      for (const auto& a : *topic.assignments) {
        valid &= a.broker_ids.size() == 1 && a.broker_ids[0] == broker.node_id();
      }
      if (!valid) {
        out.error_code = code(KafkaError::invalid_replica_assignment);
        out.error_message =
            "replica assignments may only name broker " + std::to_string(broker.node_id());
        continue;
      }
    }
    auto outcome = broker.topics().create_partitions(topic.name, topic.count, request->validate_only);
    out.error_code = code(outcome.error);
    if (!outcome.ok()) out.error_message = outcome.message;
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
