// KIP-320 fencing: a request's current_leader_epoch against the partition's
// leader epoch. One function for every handler that takes the field
// (OffsetForLeaderEpoch today; Fetch, ListOffsets and OffsetCommit next).
#pragma once

#include <cstdint>

#include "server/kafka_error.h"

namespace holdfast::server {

// The value a client sends when it knows no epoch (v0/v1 requests default to it).
constexpr int32_t kNoLeaderEpoch = -1;

// kNoLeaderEpoch: no check (none). Lower than the partition's epoch:
// FENCED_LEADER_EPOCH (the client's metadata is older than this leader; it
// refreshes and retries). Higher: UNKNOWN_LEADER_EPOCH (this broker has not
// yet learnt of the newer leadership the client knows of; retriable).
// Equal: none.
KafkaError check_current_leader_epoch(int32_t request_epoch, int32_t partition_epoch);

}  // namespace holdfast::server
