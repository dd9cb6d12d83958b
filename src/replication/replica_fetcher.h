// The follower side of replication (DESIGN §5, docs/dev/cluster-plan.md):
// ReplicaFetcherManager keeps the local follower replicas in step with their
// leaders, one fetcher thread ("hf-fetch-<leader id>") per leader broker.
//
// A fetcher loops over the partitions it follows from its leader:
//  1. A partition that was just added (a restart, a new leader or epoch)
//     first truncates by epoch (decision 3, KIP-101/279): OffsetForLeaderEpoch
//     for its latest epoch; it truncates to min(leader's end offset of that
//     epoch, its own end of the same epoch); if the leader answers with a lower
//     epoch the replica does not have, it asks again with its largest epoch
//     below (Kafka's loop). Never to its high watermark.
//  2. One Fetch (non-incremental: session 0, epoch -1) for all partitions
//     ready to fetch, replica_id = this node, current_leader_epoch set, long
//     poll max_wait_ms. Whole batches are appended with append_replicated; a
//     trailing partial batch is dropped (fetched again next time); a batch
//     wholly below the log end is skipped; a batch that does not start at the
//     log end means the logs diverged: the partition truncates by epoch again.
//  3. It waits until what it appended is durable (wait_durable: fsynced under
//     flush.policy=always, at once otherwise) before the next Fetch, so the
//     fetch offset the leader sees is durable on this replica (decision 1),
//     then keeps the leader's high watermark (capped at its log end).
// Errors: FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER,
// UNKNOWN_TOPIC_OR_PARTITION and the like back the partition off (retried
// after `backoff`; the lifecycle re-adds it with the new leader when the
// metadata changes). OFFSET_OUT_OF_RANGE below the leader's log start empties
// the replica and starts it at the leader's log start; otherwise it truncates
// by epoch again. A failed request (leader unreachable) backs off every
// partition of that leader; fetching resumes when the leader is back.
//
// remove() and shutdown() return only once the fetcher can no longer call
// into the replica (no append, truncation or high-watermark update after
// them); a fetch in flight for a removed partition is discarded.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "net/kafka_client.h"
#include "replication/follower_replica.h"

namespace holdfast::replication {

struct ReplicaFetcherOptions {
  int32_t node_id = 0;  // this broker: replica_id of every request
  int32_t max_wait_ms = 500;
  int32_t min_bytes = 1;
  int32_t max_bytes = 10 * 1024 * 1024;              // replica.fetch.response.max.bytes
  int32_t partition_max_bytes = 1024 * 1024;         // replica.fetch.max.bytes
  std::chrono::milliseconds backoff{1000};           // replica.fetch.backoff.ms
  std::chrono::milliseconds request_timeout{30000};  // on top of max_wait_ms for Fetch
  int16_t fetch_version = 11;                        // what Holdfast serves (<= 12)
  int16_t offset_for_leader_epoch_version = 4;       // v3+ carries replica_id
  std::string rack_id;                               // Fetch v11 rack_id
  net::KafkaClientOptions client;                    // client_id etc. of the fetch connections
};

class ReplicaFetcherManager {
 public:
  explicit ReplicaFetcherManager(ReplicaFetcherOptions options);
  ~ReplicaFetcherManager();
  ReplicaFetcherManager(const ReplicaFetcherManager&) = delete;
  ReplicaFetcherManager& operator=(const ReplicaFetcherManager&) = delete;

  // Follows `replica` from broker `leader_id` at `leader`. A partition that is
  // already followed (from this or another leader) is replaced: it starts
  // over with truncation by epoch. The endpoint of a known leader is updated.
  void add(int32_t leader_id, const net::Endpoint& leader,
           std::shared_ptr<FollowerReplica> replica);
  // Stops following the partition; returns whether it was followed. On
  // return the fetcher no longer calls into its replica.
  bool remove(const std::string& topic, int32_t partition);
  // Stops every fetcher and the client. Idempotent; the destructor calls it.
  void shutdown();

  // The leader each followed partition fetches from (tests, introspection).
  std::map<std::pair<std::string, int32_t>, int32_t> followed() const;

 private:
  class LeaderFetcher;

  ReplicaFetcherOptions options_;
  net::KafkaClient client_;
  mutable std::mutex mutex_;  // fetchers_, leader_of_, stopped_
  bool stopped_ = false;
  std::map<int32_t, std::unique_ptr<LeaderFetcher>> fetchers_;
  std::map<std::pair<std::string, int32_t>, int32_t> leader_of_;
};

}  // namespace holdfast::replication
