// DescribeQuorum (55, KIP-595; v1 KIP-836): the metadata quorum as the active
// controller sees it. The answer is computed by describe_quorum() from a
// QuorumView, apart from the handler, so its error paths are unit-tested
// without a cluster (tests/describe_quorum_test.cc).
//
// What the fields mean here (docs/compatibility.md, docs/cluster.md):
//   - the one partition is the metadata log, __cluster_metadata-0;
//   - leader_id: the Raft leader (the active controller); leader_epoch: the
//     Raft term;
//   - high_watermark: the index of the last committed metadata record, as
//     the leader has applied it (MetadataImage::last_record_index). It is a
//     metadata record index, not a Raft log index (Raft entries also hold
//     barriers and configuration changes) and not an exclusive offset;
//   - current_voters / observers: the members of the Raft configuration,
//     voters and the rest (standbys, and spares whose standby role is not
//     assigned yet);
//   - log_end_offset: for the leader, its own applied record index (= the
//     high watermark); for any other member, the applied record index its
//     broker last reported in a BrokerHeartbeat to this controller, -1 when
//     none since this node became the controller. It is NOT a Raft fetch
//     offset: the Raft library does not expose its followers' progress;
//   - v1 last_fetch_timestamp: the wall time of that heartbeat (-1 for the
//     leader, and when unknown); last_caught_up_timestamp: the wall time of
//     the last heartbeat whose applied index had reached the last record the
//     controller held then (the current time for the leader, -1 when never).
//
// Errors: refused by the authoriser (Describe on the Cluster):
// CLUSTER_AUTHORIZATION_FAILED at the top level. A single node (no metadata
// quorum): UNSUPPORTED_VERSION at the top level, as a Kafka client reports
// for a broker without the API (it is not advertised there either). A
// partition other than __cluster_metadata-0: UNKNOWN_TOPIC_OR_PARTITION. A
// cluster node that is not the active controller: NOT_LEADER_OR_FOLLOWER on
// the partition, with the leader id (-1 if none is known) and the term.
#pragma once

#include <cstdint>
#include <map>

#include "controller/controller.h"
#include "metadata/raft_metadata_log.h"
#include "protocol/messages.h"

namespace holdfast::server {

inline constexpr const char* kMetadataTopic = "__cluster_metadata";

struct QuorumView {
  bool cluster_mode = false;
  bool active_controller = false;  // this node leads and its leader barrier applied
  metadata::RaftStatus status;
  int64_t applied_record_index = -1;  // this node's MetadataImage::last_record_index
  std::map<int32_t, controller::BrokerProgress> progress;  // the controller's soft state
  int32_t node_id = -1;
  int64_t now_wall_ms = 0;
};

// The response to `request` (any covered version) given `view`. The
// authorisation check is the handler's.
protocol::DescribeQuorumResponse describe_quorum(const protocol::DescribeQuorumRequest& request,
                                                 const QuorumView& view);

}  // namespace holdfast::server
