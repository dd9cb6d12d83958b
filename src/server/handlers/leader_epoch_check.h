// KIP-320 fencing: a request's current_leader_epoch against the partition's
// leader epoch. One function for every handler that takes the field
// (OffsetForLeaderEpoch today; Fetch, ListOffsets and OffsetCommit next).
#pragma once

#include <cstdint>

#include "server/kafka_error.h"

namespace holdfast::replication {
class Partition;
}

namespace holdfast::server {

// The value a client sends when it knows no epoch (v0/v1 requests default to it).
constexpr int32_t kNoLeaderEpoch = -1;

// kNoLeaderEpoch: no check (none). Lower than the partition's epoch:
// FENCED_LEADER_EPOCH (the client's metadata is older than this leader; it
// refreshes and retries). Higher: UNKNOWN_LEADER_EPOCH (this broker has not
// yet learnt of the newer leadership the client knows of; retriable).
// Equal: none.
KafkaError check_current_leader_epoch(int32_t request_epoch, int32_t partition_epoch);

// The prologue of Fetch and ListOffsets for one partition this broker has a
// replica of: its log is online (else KAFKA_STORAGE_ERROR, a corrupt
// segment), this replica leads it (only the leader answers: a follower's
// high watermark lags; clients re-route on NOT_LEADER_OR_FOLLOWER), and the
// request's current_leader_epoch passes check_current_leader_epoch.
// none when the partition may be served.
KafkaError check_serving_leader(const replication::Partition& replica,
                                int32_t current_leader_epoch);

}  // namespace holdfast::server
