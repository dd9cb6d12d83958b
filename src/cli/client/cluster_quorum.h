// What `holdfast cluster status` asks beyond librdkafka's Metadata, through
// net::KafkaClient (librdkafka 2.0 has neither request): the brokers' racks
// (DescribeCluster, 60) and the metadata quorum (DescribeQuorum, 55) from the
// active controller. Both degrade to "unavailable, because ..." instead of
// failing the command: the rest of the status stands without them.
//
// net::KafkaClient speaks PLAINTEXT only, so with security.protocol set to
// anything else both are unavailable (the reason says so).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/client/client.h"

namespace holdfast::cli {

struct BrokerAddress {
  int32_t id = -1;
  std::string host;
  int port = 0;
};

struct RackInfo {
  bool available = false;
  std::string reason;                  // why not, when !available
  std::map<int32_t, std::string> racks;  // broker id -> rack; absent: no rack set
};

enum class RaftRole { leader, voter, observer };
const char* raft_role_name(RaftRole role);

struct QuorumMember {
  int32_t id = -1;
  RaftRole role = RaftRole::voter;
  // The member's applied metadata record index, as the controller knows it
  // (the leader's own; the others' from their last heartbeat); nullopt: unknown.
  std::optional<int64_t> applied_index;
  std::optional<int64_t> last_heartbeat_ms;  // wall clock (ms since the epoch)
  std::optional<int64_t> last_caught_up_ms;  // wall clock
};

struct QuorumInfo {
  bool available = false;
  std::string reason;  // why not, when !available
  int32_t leader_id = -1;
  int64_t term = -1;
  int64_t commit_index = -1;  // index of the last committed metadata record
  int32_t answered_by = -1;   // the broker that answered
  std::map<int32_t, QuorumMember> members;
};

// Whether the client options leave net::KafkaClient usable (PLAINTEXT); the
// reason when not.
std::optional<std::string> plaintext_only_reason(const ClientOptions& client);

// DescribeCluster from the first of `brokers` that answers.
RackInfo describe_racks(const std::vector<BrokerAddress>& brokers, int timeout_ms);

// DescribeQuorum, asked of `controller` first (when it is among `brokers`),
// then of the leader a refusal names, then of the others in order. A single
// node's UNSUPPORTED_VERSION ends the search: there is no quorum.
QuorumInfo describe_quorum(const std::vector<BrokerAddress>& brokers, int32_t controller,
                           int timeout_ms);

}  // namespace holdfast::cli
