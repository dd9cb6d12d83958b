// DescribeAcls, CreateAcls and DeleteAcls (APIs 29-31, v0-3). The bindings
// live in the metadata log (AclsCreated / AclsDeleted records): on a single
// node the local log, in a cluster the Raft log through the active controller
// (a broker that is not the controller forwards the request there, as for
// CreateTopics, and answers once its own image shows the change).
#include <map>
#include <tuple>

#include "server/broker.h"
#include "server/cluster/controller_service.h"
#include "server/cluster/forwarding.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"
#include "server/security/access.h"

namespace holdfast::server {
namespace {

using metadata::AclBinding;
using security::AclFilter;

KafkaError to_kafka_error(metadata::Errc e) {
  switch (e) {
    case metadata::Errc::not_leader: return KafkaError::not_controller;
    case metadata::Errc::invalid_record: return KafkaError::invalid_request;
    case metadata::Errc::unknown_outcome:
    case metadata::Errc::shut_down: return KafkaError::request_timed_out;
    default: return KafkaError::unknown_server_error;
  }
}

// Appends `record` to this node's metadata log and waits (without blocking
// the thread) until it is applied. This node must be the single node or the
// active controller.
Awaitable<Result<metadata::ImagePtr, metadata::Errc>> append_record(Broker& broker,
                                                                     metadata::MetadataRecord& record) {
  if (broker.cluster_mode()) {
    auto* service = broker.controller_service();
    if (service == nullptr || !service->active()) {
      co_return make_error(metadata::Errc::not_leader, "the controller is not ready yet");
    }
  }
  auto& log = broker.metadata_log();
  co_return co_await await_callback<Result<metadata::ImagePtr, metadata::Errc>>(
      [&log, &record](std::function<void(Result<metadata::ImagePtr, metadata::Errc>)> done) {
        log.append(std::move(record), std::move(done));
      });
}

AclBinding binding_of(const protocol::CreateAclsRequest::AclCreation& c) {
  return AclBinding{metadata::AclResourceType(c.resource_type), c.resource_name,
                    metadata::AclPatternType(c.resource_pattern_type), c.principal, c.host,
                    metadata::AclOperation(c.operation), metadata::AclPermission(c.permission_type)};
}

template <typename F>
AclFilter filter_of(const F& f) {
  return AclFilter{metadata::AclResourceType(f.resource_type_filter), f.resource_name_filter,
                   metadata::AclPatternType(f.pattern_type_filter), f.principal_filter,
                   f.host_filter, metadata::AclOperation(f.operation),
                   metadata::AclPermission(f.permission_type)};
}

// v0 knows no pattern types: its bindings and filters are literal, and it
// cannot describe a prefixed binding.
bool visible_at(int16_t version, const AclBinding& b) {
  return version >= 1 || b.pattern_type == metadata::AclPatternType::literal;
}

}  // namespace

Awaitable<Response> handle_describe_acls(RequestContext& ctx) {
  using protocol::DescribeAclsRequest;
  using protocol::DescribeAclsResponse;
  auto request = decode_request<DescribeAclsRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<DescribeAclsResponse>(ctx, Access::describe_acls)) co_return std::move(*denied);

  DescribeAclsResponse response;
  const AclFilter filter = filter_of(*request);
  if (auto why = security::check_filter(filter); !why.empty()) {
    response.error_code = code(KafkaError::invalid_request);
    response.error_message = why;
    co_return make_response(ctx, response);
  }
  response.error_code = code(KafkaError::none);
  const auto image = ctx.broker.metadata_log().current();
  // Grouped by resource pattern, as Kafka answers.
  std::map<std::tuple<int8_t, std::string, int8_t>, size_t> index;
  for (const auto& b : security::matching_bindings(image->acls, filter)) {
    if (!visible_at(ctx.api_version, b)) continue;
    auto key = std::make_tuple(int8_t(b.resource_type), b.resource_name, int8_t(b.pattern_type));
    auto [it, fresh] = index.emplace(key, response.resources.size());
    if (fresh) {
      auto& r = response.resources.emplace_back();
      r.resource_type = int8_t(b.resource_type);
      r.resource_name = b.resource_name;
      r.pattern_type = int8_t(b.pattern_type);
    }
    auto& acl = response.resources[it->second].acls.emplace_back();
    acl.principal = b.principal;
    acl.host = b.host;
    acl.operation = int8_t(b.operation);
    acl.permission_type = int8_t(b.permission);
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_create_acls(RequestContext& ctx) {
  using protocol::CreateAclsRequest;
  using protocol::CreateAclsResponse;
  auto request = decode_request<CreateAclsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  CreateAclsResponse response;
  auto fail_all = [&](KafkaError error, const std::string& message) {
    response.results.clear();
    for (size_t i = 0; i < request->creations.size(); ++i) {
      auto& out = response.results.emplace_back();
      out.error_code = code(error);
      if (!message.empty()) out.error_message = message;
    }
  };
  if (KafkaError denied = check_access(ctx, Access::create_acls); denied != KafkaError::none) {
    fail_all(denied, "Alter on the cluster is needed to create ACLs");
    co_return make_response(ctx, response);
  }

  std::vector<AclBinding> wanted;
  for (const auto& c : request->creations) {
    auto& out = response.results.emplace_back();
    AclBinding b = binding_of(c);
    if (auto why = metadata::check_acl_binding(b); !why.empty()) {
      out.error_code = code(KafkaError::invalid_request);
      out.error_message = why;
      continue;
    }
    out.error_code = code(KafkaError::none);
    wanted.push_back(std::move(b));
  }
  if (wanted.empty()) co_return make_response(ctx, response);

  if (cluster::forward_needed(broker)) {
    auto answer =
        co_await cluster::forward_to_controller<CreateAclsResponse>(broker, *request, ctx.api_version);
    if (!answer) {
      fail_all(cluster::to_kafka_error(answer.code()), answer.error().message);
      co_return make_response(ctx, response);
    }
    // Answer once this broker enforces them too.
    std::function<bool(const metadata::MetadataImage&)> has_all =
        [wanted](const metadata::MetadataImage& image) {
          for (const auto& b : wanted) {
            if (!image.acls.contains(b)) return false;
          }
          return true;
        };
    const std::chrono::milliseconds timeout = cluster::kForwardTimeout;
    co_await cluster::wait_for_local_image(broker, has_all, timeout);
    co_return make_response(ctx, *answer);
  }

  metadata::MetadataRecord record = metadata::AclsCreated{wanted};
  auto appended = co_await append_record(broker, record);
  if (!appended) {
    for (auto& out : response.results) {
      if (out.error_code != code(KafkaError::none)) continue;
      out.error_code = code(to_kafka_error(appended.code()));
      out.error_message = appended.error().message;
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_delete_acls(RequestContext& ctx) {
  using protocol::DeleteAclsRequest;
  using protocol::DeleteAclsResponse;
  auto request = decode_request<DeleteAclsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  DeleteAclsResponse response;
  auto fail_all = [&](KafkaError error, const std::string& message) {
    response.filter_results.clear();
    for (size_t i = 0; i < request->filters.size(); ++i) {
      auto& out = response.filter_results.emplace_back();
      out.error_code = code(error);
      if (!message.empty()) out.error_message = message;
    }
  };
  if (KafkaError denied = check_access(ctx, Access::delete_acls); denied != KafkaError::none) {
    fail_all(denied, "Alter on the cluster is needed to delete ACLs");
    co_return make_response(ctx, response);
  }

  if (cluster::forward_needed(broker)) {
    auto answer =
        co_await cluster::forward_to_controller<DeleteAclsResponse>(broker, *request, ctx.api_version);
    if (!answer) {
      fail_all(cluster::to_kafka_error(answer.code()), answer.error().message);
      co_return make_response(ctx, response);
    }
    std::vector<AclBinding> removed;
    for (const auto& result : answer->filter_results) {
      for (const auto& m : result.matching_acls) {
        removed.push_back(AclBinding{metadata::AclResourceType(m.resource_type), m.resource_name,
                                     metadata::AclPatternType(m.pattern_type), m.principal, m.host,
                                     metadata::AclOperation(m.operation),
                                     metadata::AclPermission(m.permission_type)});
      }
    }
    std::function<bool(const metadata::MetadataImage&)> gone =
        [removed](const metadata::MetadataImage& image) {
          for (const auto& b : removed) {
            if (image.acls.contains(b)) return false;
          }
          return true;
        };
    const std::chrono::milliseconds timeout = cluster::kForwardTimeout;
    co_await cluster::wait_for_local_image(broker, gone, timeout);
    co_return make_response(ctx, *answer);
  }

  const auto image = broker.metadata_log().current();
  metadata::AclSet to_delete;
  for (const auto& f : request->filters) {
    auto& out = response.filter_results.emplace_back();
    const AclFilter filter = filter_of(f);
    if (auto why = security::check_filter(filter); !why.empty()) {
      out.error_code = code(KafkaError::invalid_request);
      out.error_message = why;
      continue;
    }
    out.error_code = code(KafkaError::none);
    for (const auto& b : security::matching_bindings(image->acls, filter)) {
      if (!visible_at(ctx.api_version, b)) continue;
      to_delete.insert(b);
      auto& m = out.matching_acls.emplace_back();
      m.error_code = code(KafkaError::none);
      m.resource_type = int8_t(b.resource_type);
      m.resource_name = b.resource_name;
      m.pattern_type = int8_t(b.pattern_type);
      m.principal = b.principal;
      m.host = b.host;
      m.operation = int8_t(b.operation);
      m.permission_type = int8_t(b.permission);
    }
  }
  if (to_delete.empty()) co_return make_response(ctx, response);

  metadata::MetadataRecord record =
      metadata::AclsDeleted{std::vector<AclBinding>(to_delete.begin(), to_delete.end())};
  auto appended = co_await append_record(broker, record);
  if (!appended) {
    fail_all(to_kafka_error(appended.code()), appended.error().message);
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
