// ListGroups, DescribeGroups and DeleteGroups.
#include <set>

#include "server/broker.h"
#include "server/handlers/group_errors.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"

namespace holdfast::server {

Awaitable<Response> handle_list_groups(RequestContext& ctx) {
  using protocol::ListGroupsRequest;
  using protocol::ListGroupsResponse;
  auto request = decode_request<ListGroupsRequest>(ctx);
  if (!request) co_return close_connection();
  std::set<std::string> states(request->states_filter.begin(), request->states_filter.end());
  auto listed = ctx.broker.groups().list_groups(states);
  ListGroupsResponse response;
  if (!listed) {
    response.error_code = group_error_code(listed.code());
  } else {
    // Cluster Describe lists every group; otherwise those the principal may describe.
    const bool all = check_access(ctx, Access::list_groups_all) == KafkaError::none;
    for (const auto& g : *listed) {
      if (!all && check_access(ctx, Access::list_groups_each, g.group_id) != KafkaError::none) continue;
      auto& out = response.groups.emplace_back();
      out.group_id = g.group_id;
      out.protocol_type = g.protocol_type;
      out.group_state = g.state;
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_describe_groups(RequestContext& ctx) {
  using protocol::DescribeGroupsRequest;
  using protocol::DescribeGroupsResponse;
  auto request = decode_request<DescribeGroupsRequest>(ctx);
  if (!request) co_return close_connection();
  DescribeGroupsResponse response;
  for (const auto& id : request->groups) {
    if (KafkaError denied = check_access(ctx, Access::describe_groups, id); denied != KafkaError::none) {
      auto& out = response.groups.emplace_back();
      out.error_code = code(denied);
      out.group_id = id;
      continue;
    }
    auto d = ctx.broker.groups().describe(id);
    auto& out = response.groups.emplace_back();
    out.error_code = group_error_code(d.error);
    out.group_id = id;
    out.group_state = d.state;
    out.protocol_type = d.protocol_type;
    out.protocol_data = d.protocol_name;
    for (auto& m : d.members) {
      auto& om = out.members.emplace_back();
      om.member_id = m.member_id;
      om.group_instance_id = m.group_instance_id;
      om.client_id = m.client_id;
      om.client_host = m.client_host;
      om.member_metadata = m.metadata;
      om.member_assignment = m.assignment;
    }
    if (request->include_authorized_operations) {
      // No ACLs: every group operation (READ 3, DELETE 6, DESCRIBE 8) is allowed.
      out.authorized_operations = (1 << 3) | (1 << 6) | (1 << 8);
    }
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_delete_groups(RequestContext& ctx) {
  using protocol::DeleteGroupsRequest;
  using protocol::DeleteGroupsResponse;
  auto request = decode_request<DeleteGroupsRequest>(ctx);
  if (!request) co_return close_connection();
  // Groups the principal may not delete are answered here and not deleted.
  std::vector<std::pair<std::string, KafkaError>> refused;
  std::erase_if(request->groups_names, [&](const std::string& id) {
    const KafkaError denied = check_access(ctx, Access::delete_groups, id);
    if (denied != KafkaError::none) refused.emplace_back(id, denied);
    return denied != KafkaError::none;
  });
  auto& groups = ctx.broker.groups();
  auto errors = co_await await_callback<std::vector<coordinator::GroupErrc>>(
      [&groups, &request](std::function<void(std::vector<coordinator::GroupErrc>)> done) {
        groups.delete_groups(request->groups_names, std::move(done));
      });
  DeleteGroupsResponse response;
  for (size_t i = 0; i < request->groups_names.size(); ++i) {
    auto& out = response.results.emplace_back();
    out.group_id = request->groups_names[i];
    out.error_code = i < errors.size() ? group_error_code(errors[i]) : 0;
  }
  for (const auto& [id, error] : refused) {
    auto& out = response.results.emplace_back();
    out.group_id = id;
    out.error_code = code(error);
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
