#include <set>

#include "server/broker.h"
#include "server/cluster/forwarding.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"
#include "server/kafka_error.h"
#include "server/topic_config.h"

namespace holdfast::server {

using cluster::forward_needed;

namespace {

using Refused = std::vector<std::pair<std::string, KafkaError>>;

// Takes the topics the principal may not change out of `items` (they are
// neither changed nor forwarded) and returns them with the error to answer.
template <typename T, typename NameOf>
Refused take_refused(const RequestContext& ctx, Access access, std::vector<T>& items, NameOf name_of) {
  Refused refused;
  std::erase_if(items, [&](const T& item) {
    const std::string& name = name_of(item);
    const KafkaError denied = check_access(ctx, access, name);
    if (denied != KafkaError::none) refused.emplace_back(name, denied);
    return denied != KafkaError::none;
  });
  return refused;
}

protocol::CreateTopicsResponse& add_refused(protocol::CreateTopicsResponse& r, const Refused& refused) {
  for (const auto& [name, error] : refused) {
    auto& out = r.topics.emplace_back();
    out.name = name;
    out.error_code = code(error);
    out.error_message = "not authorised to create topic '" + name + "'";
    out.num_partitions = -1;
    out.replication_factor = -1;
  }
  return r;
}

protocol::DeleteTopicsResponse& add_refused(protocol::DeleteTopicsResponse& r, const Refused& refused) {
  for (const auto& [name, error] : refused) {
    auto& out = r.responses.emplace_back();
    out.name = name;
    out.error_code = code(error);
  }
  return r;
}

protocol::CreatePartitionsResponse& add_refused(protocol::CreatePartitionsResponse& r,
                                                const Refused& refused) {
  for (const auto& [name, error] : refused) {
    auto& out = r.results.emplace_back();
    out.name = name;
    out.error_code = code(error);
    out.error_message = "not authorised to alter topic '" + name + "'";
  }
  return r;
}

}  // namespace

Awaitable<Response> handle_create_topics(RequestContext& ctx) {
  using protocol::CreateTopicsRequest;
  using protocol::CreateTopicsResponse;
  auto request = decode_request<CreateTopicsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  const Refused refused = take_refused(ctx, Access::create_topics, request->topics,
                                       [](const auto& t) -> const std::string& { return t.name; });

  if (forward_needed(broker)) {
    auto answer =
        co_await cluster::forward_to_controller<CreateTopicsResponse>(broker, *request, ctx.api_version);
    if (!answer) {
      CreateTopicsResponse failed;
      for (const auto& topic : request->topics) {
        auto& out = failed.topics.emplace_back();
        out.name = topic.name;
        out.error_code = code(cluster::to_kafka_error(answer.code()));
        out.error_message = answer.error().message;
        out.num_partitions = -1;
        out.replication_factor = -1;
      }
      co_return make_response(ctx, add_refused(failed, refused));
    }
    // Clients produce right after: answer once this node knows the topics.
    for (auto& out : answer->topics) {
      if (out.error_code != code(KafkaError::none) || request->validate_only) continue;
      std::string name = out.name;
      std::function<bool(const metadata::MetadataImage&)> has_topic =
          [name](const metadata::MetadataImage& image) { return image.find_topic(name) != nullptr; };
      const std::chrono::milliseconds timeout = cluster::kForwardTimeout;
      if (!co_await cluster::wait_for_local_image(broker, has_topic, timeout)) {
        out.error_code = code(KafkaError::request_timed_out);
        out.error_message = "created, but not yet known to this broker";
      }
    }
    co_return make_response(ctx, add_refused(*answer, refused));
  }

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
    if (!topic.assignments.empty() && broker.cluster_mode()) {
      fail(KafkaError::invalid_replica_assignment,
           "manual replica assignments are not supported in a cluster yet; give partitions and "
           "a replication factor");
      continue;
    }
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
    // Waits for the record without blocking this network thread.
    TopicChangeStart create = [&broker, &topic, partitions, &configs,
                               validate_only = request->validate_only](TopicCallback done) {
      broker.topics().create_topic(topic.name, partitions, topic.replication_factor, configs,
                                   validate_only, std::move(done));
    };
    const std::chrono::milliseconds timeout = kTopicChangeTimeout;
    auto outcome = co_await broker.topics().await_change(create, timeout);
    if (!outcome.ok()) {
      fail(outcome.error, outcome.message);
      continue;
    }
    out.error_code = code(KafkaError::none);
    out.num_partitions = partitions == -1 ? broker.config().num_partitions : partitions;
    out.replication_factor = 1;
    if (broker.cluster_mode() && !request->validate_only) {
      auto image = broker.topics().image();
      const auto* info = image->find_topic(topic.name);
      if (info && !info->partitions.empty()) {
        out.replication_factor = static_cast<int16_t>(info->partitions[0].replicas.size());
      }
    } else if (broker.cluster_mode()) {
      out.replication_factor = topic.replication_factor == -1
                                   ? broker.config().effective_default_replication_factor()
                                   : topic.replication_factor;
    }
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
  co_return make_response(ctx, add_refused(response, refused));
}

Awaitable<Response> handle_delete_topics(RequestContext& ctx) {
  using protocol::DeleteTopicsRequest;
  using protocol::DeleteTopicsResponse;
  auto request = decode_request<DeleteTopicsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  const Refused refused = take_refused(ctx, Access::delete_topics, request->topic_names,
                                       [](const std::string& t) -> const std::string& { return t; });

  if (forward_needed(broker)) {
    auto answer =
        co_await cluster::forward_to_controller<DeleteTopicsResponse>(broker, *request, ctx.api_version);
    if (!answer) {
      DeleteTopicsResponse failed;
      for (const auto& name : request->topic_names) {
        auto& out = failed.responses.emplace_back();
        out.name = name;
        out.error_code = code(cluster::to_kafka_error(answer.code()));
      }
      co_return make_response(ctx, add_refused(failed, refused));
    }
    for (auto& out : answer->responses) {
      if (out.error_code != code(KafkaError::none)) continue;
      std::string name = out.name;
      std::function<bool(const metadata::MetadataImage&)> gone =
          [name](const metadata::MetadataImage& image) { return image.find_topic(name) == nullptr; };
      const std::chrono::milliseconds timeout = cluster::kForwardTimeout;
      co_await cluster::wait_for_local_image(broker, gone, timeout);
    }
    broker.fetch_waiters().notify_all();
    co_return make_response(ctx, add_refused(*answer, refused));
  }

  DeleteTopicsResponse response;
  for (const auto& name : request->topic_names) {
    auto& out = response.responses.emplace_back();
    out.name = name;
    TopicChangeStart remove = [&broker, &name](TopicCallback done) {
      broker.topics().delete_topic(name, std::move(done));
    };
    const std::chrono::milliseconds timeout = kTopicChangeTimeout;
    auto outcome = co_await broker.topics().await_change(remove, timeout);
    out.error_code = code(outcome.error);
  }
  broker.fetch_waiters().notify_all();
  co_return make_response(ctx, add_refused(response, refused));
}

Awaitable<Response> handle_create_partitions(RequestContext& ctx) {
  using protocol::CreatePartitionsRequest;
  using protocol::CreatePartitionsResponse;
  auto request = decode_request<CreatePartitionsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  const Refused refused = take_refused(ctx, Access::create_partitions, request->topics,
                                       [](const auto& t) -> const std::string& { return t.name; });

  if (forward_needed(broker)) {
    auto answer = co_await cluster::forward_to_controller<CreatePartitionsResponse>(
        broker, *request, ctx.api_version);
    if (!answer) {
      CreatePartitionsResponse failed;
      for (const auto& topic : request->topics) {
        auto& out = failed.results.emplace_back();
        out.name = topic.name;
        out.error_code = code(cluster::to_kafka_error(answer.code()));
        out.error_message = answer.error().message;
      }
      co_return make_response(ctx, add_refused(failed, refused));
    }
    for (size_t i = 0; i < answer->results.size() && i < request->topics.size(); ++i) {
      if (answer->results[i].error_code != code(KafkaError::none) || request->validate_only) {
        continue;
      }
      std::string name = request->topics[i].name;
      int32_t count = request->topics[i].count;
      std::function<bool(const metadata::MetadataImage&)> grown =
          [name, count](const metadata::MetadataImage& image) {
            const auto* info = image.find_topic(name);
            return info != nullptr && info->partition_count >= count;
          };
      const std::chrono::milliseconds timeout = cluster::kForwardTimeout;
      co_await cluster::wait_for_local_image(broker, grown, timeout);
    }
    co_return make_response(ctx, add_refused(*answer, refused));
  }

  CreatePartitionsResponse response;
  for (const auto& topic : request->topics) {
    auto& out = response.results.emplace_back();
    out.name = topic.name;
    if (topic.assignments && broker.cluster_mode()) {
      out.error_code = code(KafkaError::invalid_replica_assignment);
      out.error_message = "manual replica assignments are not supported in a cluster yet";
      continue;
    }
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
    TopicChangeStart grow = [&broker, &topic,
                             validate_only = request->validate_only](TopicCallback done) {
      broker.topics().create_partitions(topic.name, topic.count, validate_only, std::move(done));
    };
    const std::chrono::milliseconds timeout = kTopicChangeTimeout;
    auto outcome = co_await broker.topics().await_change(grow, timeout);
    out.error_code = code(outcome.error);
    if (!outcome.ok()) out.error_message = outcome.message;
  }
  co_return make_response(ctx, add_refused(response, refused));
}

}  // namespace holdfast::server
