#include "cli/client/cluster_quorum.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <set>

#include "cli/client/args.h"
#include "net/kafka_client.h"
#include "protocol/messages.h"

namespace holdfast::cli {
namespace {

using protocol::DescribeClusterRequest;
using protocol::DescribeClusterResponse;
using protocol::DescribeQuorumRequest;
using protocol::DescribeQuorumResponse;

constexpr const char* kMetadataTopic = "__cluster_metadata";
// Kafka error codes this file names (protocol facts).
constexpr int16_t kNotLeaderOrFollower = 6;
constexpr int16_t kClusterAuthorizationFailed = 31;
constexpr int16_t kUnsupportedVersion = 35;

std::string error_name(int16_t code) {
  switch (code) {
    case 3: return "UNKNOWN_TOPIC_OR_PARTITION";
    case kNotLeaderOrFollower: return "NOT_LEADER_OR_FOLLOWER";
    case kClusterAuthorizationFailed: return "CLUSTER_AUTHORIZATION_FAILED";
    case kUnsupportedVersion: return "UNSUPPORTED_VERSION";
    default: return "error " + std::to_string(code);
  }
}

net::Endpoint endpoint_of(const BrokerAddress& b) {
  return net::Endpoint{b.host, static_cast<uint16_t>(b.port)};
}

std::string where(const BrokerAddress& b) {
  return "broker " + std::to_string(b.id) + " (" + b.host + ":" + std::to_string(b.port) + ")";
}

net::KafkaClientOptions client_options(int timeout_ms) {
  net::KafkaClientOptions options;
  options.client_id = "holdfast-cluster-status";
  options.request_timeout = std::chrono::milliseconds(timeout_ms);
  options.connect_timeout = std::chrono::milliseconds(timeout_ms);
  return options;
}

void add_members(const std::vector<DescribeQuorumResponse::ReplicaState>& states, bool voters,
                 int32_t leader, QuorumInfo& out) {
  for (const auto& s : states) {
    QuorumMember m;
    m.id = s.replica_id;
    m.role = s.replica_id == leader ? RaftRole::leader
             : voters               ? RaftRole::voter
                                    : RaftRole::observer;
    if (s.log_end_offset >= 0) m.applied_index = s.log_end_offset;
    if (s.last_fetch_timestamp >= 0) m.last_heartbeat_ms = s.last_fetch_timestamp;
    if (s.last_caught_up_timestamp >= 0) m.last_caught_up_ms = s.last_caught_up_timestamp;
    out.members[m.id] = m;
  }
}

}  // namespace

const char* raft_role_name(RaftRole role) {
  switch (role) {
    case RaftRole::leader: return "leader";
    case RaftRole::voter: return "voter";
    case RaftRole::observer: return "observer";
  }
  return "?";
}

std::optional<std::string> plaintext_only_reason(const ClientOptions& client) {
  for (const auto& property : client.properties) {
    auto assignment = parse_assignment(property);
    if (!assignment || assignment->first != "security.protocol") continue;
    std::string protocol = assignment->second;
    for (char& c : protocol) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (protocol != "plaintext") {
      return "security.protocol=" + assignment->second +
             ": racks and the Raft state are asked over PLAINTEXT only";
    }
  }
  return std::nullopt;
}

RackInfo describe_racks(const std::vector<BrokerAddress>& brokers, int timeout_ms) {
  RackInfo out;
  out.reason = "no broker to ask";
  net::KafkaClient kafka(client_options(timeout_ms));
  DescribeClusterRequest request;
  request.endpoint_type = 1;
  for (const auto& b : brokers) {
    auto answer = kafka.call<DescribeClusterResponse>(endpoint_of(b), request, 1,
                                                      std::chrono::milliseconds(timeout_ms));
    if (!answer) {
      out.reason = "DescribeCluster to " + where(b) + " failed: " + answer.error().message;
      continue;
    }
    if (answer->error_code != 0) {
      out.reason = "DescribeCluster to " + where(b) + ": " + error_name(answer->error_code) +
                   (answer->error_message ? " (" + *answer->error_message + ")" : "");
      continue;
    }
    out.available = true;
    out.reason.clear();
    for (const auto& broker : answer->brokers) {
      if (broker.rack && !broker.rack->empty()) out.racks[broker.broker_id] = *broker.rack;
    }
    return out;
  }
  return out;
}

QuorumInfo describe_quorum(const std::vector<BrokerAddress>& brokers, int32_t controller,
                           int timeout_ms) {
  QuorumInfo out;
  out.reason = "no broker to ask";
  std::map<int32_t, BrokerAddress> by_id;
  for (const auto& b : brokers) by_id[b.id] = b;
  // The controller first, then every other broker; a refusal naming the
  // leader puts it next.
  std::deque<int32_t> order;
  if (by_id.count(controller)) order.push_back(controller);
  for (const auto& b : brokers) {
    if (b.id != controller) order.push_back(b.id);
  }
  std::set<int32_t> asked;
  net::KafkaClient kafka(client_options(timeout_ms));
  DescribeQuorumRequest request;
  auto& topic = request.topics.emplace_back();
  topic.topic_name = kMetadataTopic;
  topic.partitions.emplace_back().partition_index = 0;
  while (!order.empty()) {
    const int32_t id = order.front();
    order.pop_front();
    if (!asked.insert(id).second) continue;
    const BrokerAddress& b = by_id.at(id);
    auto answer = kafka.call<DescribeQuorumResponse>(endpoint_of(b), request, 1,
                                                     std::chrono::milliseconds(timeout_ms));
    if (!answer) {
      out.reason = "DescribeQuorum to " + where(b) + " failed: " + answer.error().message;
      continue;
    }
    if (answer->error_code == kUnsupportedVersion) {
      out.reason = "not a cluster: " + where(b) +
                   " has no metadata quorum (single node; DescribeQuorum answered "
                   "UNSUPPORTED_VERSION)";
      return out;
    }
    if (answer->error_code != 0) {
      out.reason = "DescribeQuorum to " + where(b) + ": " + error_name(answer->error_code);
      if (answer->error_code == kClusterAuthorizationFailed) return out;
      continue;
    }
    if (answer->topics.size() != 1 || answer->topics[0].partitions.size() != 1) {
      out.reason = "DescribeQuorum to " + where(b) + ": an answer without the one partition";
      continue;
    }
    const auto& p = answer->topics[0].partitions[0];
    if (p.error_code == kNotLeaderOrFollower) {
      out.reason = where(b) + " is not the active controller (NOT_LEADER_OR_FOLLOWER" +
                   (p.leader_id >= 0 ? ", leader " + std::to_string(p.leader_id) : "") + ")";
      if (p.leader_id >= 0 && by_id.count(p.leader_id)) order.push_front(p.leader_id);
      continue;
    }
    if (p.error_code != 0) {
      out.reason = "DescribeQuorum to " + where(b) + ": " + error_name(p.error_code);
      continue;
    }
    out.available = true;
    out.reason.clear();
    out.leader_id = p.leader_id;
    out.term = p.leader_epoch;
    out.commit_index = p.high_watermark;
    out.answered_by = b.id;
    add_members(p.current_voters, true, p.leader_id, out);
    add_members(p.observers, false, p.leader_id, out);
    return out;
  }
  return out;
}

}  // namespace holdfast::cli
