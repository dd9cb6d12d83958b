// JoinGroup, SyncGroup, Heartbeat and LeaveGroup: decode, ask the group
// coordinator, encode. A JoinGroup or SyncGroup that has to wait for other
// members suspends its coroutine (await_callback); the reactor thread is free.
#include "server/broker.h"
#include "server/handlers/group_errors.h"
#include "server/handlers/handlers.h"
#include "server/security/access.h"

namespace holdfast::server {
namespace {

// "ip:port" → "/ip", as Kafka reports a member's host.
std::string client_host(const RequestContext& ctx) {
  auto colon = ctx.peer.rfind(':');
  return "/" + (colon == std::string::npos ? ctx.peer : ctx.peer.substr(0, colon));
}

}  // namespace

Awaitable<Response> handle_join_group(RequestContext& ctx) {
  using protocol::JoinGroupRequest;
  using protocol::JoinGroupResponse;
  auto request = decode_request<JoinGroupRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<JoinGroupResponse>(ctx, Access::join_group, request->group_id)) co_return std::move(*denied);

  coordinator::JoinParams params;
  params.group_id = request->group_id;
  params.member_id = request->member_id;
  params.group_instance_id = request->group_instance_id;
  params.client_id = ctx.client_id.value_or("");
  params.client_host = client_host(ctx);
  params.session_timeout_ms = request->session_timeout_ms;
  // v0 has no rebalance timeout; Kafka uses the session timeout.
  params.rebalance_timeout_ms =
      ctx.api_version >= 1 ? request->rebalance_timeout_ms : request->session_timeout_ms;
  params.protocol_type = request->protocol_type;
  // Copies, not slices: the coordinator keeps these for the member's life, and
  // a slice would pin the whole request frame with them.
  for (auto& p : request->protocols) {
    params.protocols.push_back({p.name, Bytes::copy_of(p.metadata.span())});
  }
  params.require_known_member_id = ctx.api_version >= 4;

  // The callback captures only references (to this coroutine's frame, which
  // outlives the wait): GCC 12 relocates by-value captures of await_callback's
  // argument bitwise, which breaks std::string.
  auto& groups = ctx.broker.groups();
  auto result = co_await await_callback<coordinator::JoinResult>(
      [&groups, &params](std::function<void(coordinator::JoinResult)> done) {
        groups.join(std::move(params), std::move(done));
      });

  JoinGroupResponse response;
  response.error_code = group_error_code(result.error);
  response.generation_id = result.generation;
  response.protocol_name = result.protocol_name;
  response.leader = result.leader;
  response.member_id = result.member_id;
  for (auto& m : result.members) {
    auto& out = response.members.emplace_back();
    out.member_id = m.member_id;
    out.group_instance_id = m.group_instance_id;
    out.metadata = m.metadata;
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_sync_group(RequestContext& ctx) {
  using protocol::SyncGroupRequest;
  using protocol::SyncGroupResponse;
  auto request = decode_request<SyncGroupRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<SyncGroupResponse>(ctx, Access::sync_group, request->group_id)) co_return std::move(*denied);

  coordinator::SyncParams params;
  params.group_id = request->group_id;
  params.generation = request->generation_id;
  params.member_id = request->member_id;
  params.group_instance_id = request->group_instance_id;
  // Copies: the coordinator keeps each member's assignment (see JoinGroup).
  for (auto& a : request->assignments) {
    params.assignments.emplace_back(a.member_id, Bytes::copy_of(a.assignment.span()));
  }

  auto& groups = ctx.broker.groups();
  auto result = co_await await_callback<coordinator::SyncResult>(
      [&groups, &params](std::function<void(coordinator::SyncResult)> done) {
        groups.sync(std::move(params), std::move(done));
      });
  SyncGroupResponse response;
  response.error_code = group_error_code(result.error);
  response.assignment = result.assignment;
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_heartbeat(RequestContext& ctx) {
  using protocol::HeartbeatRequest;
  using protocol::HeartbeatResponse;
  auto request = decode_request<HeartbeatRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<HeartbeatResponse>(ctx, Access::heartbeat, request->group_id)) co_return std::move(*denied);
  HeartbeatResponse response;
  response.error_code = group_error_code(ctx.broker.groups().heartbeat(
      request->group_id, request->member_id, request->group_instance_id, request->generation_id));
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_leave_group(RequestContext& ctx) {
  using protocol::LeaveGroupRequest;
  using protocol::LeaveGroupResponse;
  auto request = decode_request<LeaveGroupRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<LeaveGroupResponse>(ctx, Access::leave_group, request->group_id)) co_return std::move(*denied);

  std::vector<coordinator::MemberIdentity> members;
  if (ctx.api_version < 3) {
    members.push_back({request->member_id, std::nullopt});
  } else {
    for (const auto& m : request->members) members.push_back({m.member_id, m.group_instance_id});
  }
  // Answered once the records the leave wrote are durable (see join above
  // for why the callback captures only references).
  auto& groups = ctx.broker.groups();
  const std::string& group_id = request->group_id;
  auto result = co_await await_callback<coordinator::LeaveResult>(
      [&groups, &group_id, &members](std::function<void(coordinator::LeaveResult)> done) {
        groups.leave(group_id, members, std::move(done));
      });

  LeaveGroupResponse response;
  response.error_code = group_error_code(result.error);
  if (ctx.api_version < 3) {
    if (result.error == coordinator::GroupErrc::none && !result.members.empty()) {
      response.error_code = group_error_code(result.members[0]);
    }
  } else if (result.error == coordinator::GroupErrc::none) {
    for (size_t i = 0; i < members.size() && i < result.members.size(); ++i) {
      auto& out = response.members.emplace_back();
      out.member_id = members[i].member_id;
      out.group_instance_id = members[i].group_instance_id;
      out.error_code = group_error_code(result.members[i]);
    }
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
