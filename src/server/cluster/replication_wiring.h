// Connects the replication module to the cluster (issue 9), cluster mode only:
//   - a local replica that becomes a follower is handed to the follower
//     fetchers (replication/replica_fetcher.h) with its leader's client
//     endpoint from the image; one that becomes leader, or is removed, stops
//     being fetched before anything else touches its log;
//   - a leader's ISR proposals (Partition::IsrChangeSink) go to the active
//     controller as AlterPartition; a refused or lost proposal is forgotten
//     (Partition::isr_proposal_failed) so a later check proposes again,
//     after a backoff that doubles while the controller keeps refusing. The
//     new ISR takes effect when its partition_changed record is applied here,
//     never on the controller's answer alone;
//   - the ISR checks (hf-isr) run every replica.lag.time.max.ms / 2.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "net/kafka_client.h"
#include "replication/replica_fetcher.h"
#include "replication/replica_manager.h"

namespace holdfast::metadata {
class MetadataLog;
}

namespace holdfast::server::cluster {

struct ReplicationWiringOptions {
  int32_t node_id = 0;
  std::string rack;
  int64_t replica_lag_time_max_ms = 30000;
  // The client endpoint of a broker, from the image (nullopt: not registered).
  std::function<std::optional<net::Endpoint>(int32_t node)> endpoint_of;
  // The active controller's client endpoint, if known.
  std::function<std::optional<net::Endpoint>()> controller;
  // This broker's epoch from its registration (-1 until registered).
  std::function<int64_t()> broker_epoch;
  // The fetch connections' client options (inter-broker TLS and SASL: the
  // broker's own client's); client_id and thread name are set here.
  net::KafkaClientOptions fetch_client;
};

class ReplicationWiring {
 public:
  ReplicationWiring(replication::ReplicaManager& replicas, net::KafkaClient& client,
                    ReplicationWiringOptions options);
  ~ReplicationWiring();  // stop()
  ReplicationWiring(const ReplicationWiring&) = delete;
  ReplicationWiring& operator=(const ReplicationWiring&) = delete;

  // Installs the listeners; call before the lifecycle applies any record.
  void install();
  // Starts the ISR checks (after the log manager started).
  void start();
  // Stops the fetchers and the ISR checks; idempotent. Before the logs close.
  void stop();

  replication::ReplicaFetcherManager& fetchers() { return fetchers_; }

 private:
  void on_role_change(const std::shared_ptr<replication::Partition>& partition,
                      replication::Role role);
  void propose(replication::IsrProposal proposal);

  replication::ReplicaManager& replicas_;
  net::KafkaClient& client_;
  const ReplicationWiringOptions options_;
  replication::ReplicaFetcherManager fetchers_;
  // Shared with in-flight AlterPartition callbacks, which may complete after stop().
  std::shared_ptr<std::atomic<bool>> stopped_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace holdfast::server::cluster
