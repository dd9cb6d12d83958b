// The broker: everything a request handler may use, and the start-up and
// shutdown sequence around the network server.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "coordinator/producer_id_manager.h"
#include "coordinator/group_coordinator.h"
#include "coordinator/txn_coordinator.h"
#include "io/file_system.h"
#include "metadata/metadata_store.h"
#include "replication/partition_lifecycle.h"
#include "replication/replica_manager.h"
#include "server/broker_config.h"
#include "server/broker_metrics.h"
#include "server/data_dir_lock.h"
#include "server/network_server.h"
#include "server/quota_manager.h"
#include "server/request_budget.h"
#include "server/fetch_waiters.h"
#include "server/topic_manager.h"
#include "storage/log_manager.h"

namespace holdfast::metadata {
class RaftMetadataLog;
}
namespace holdfast::net {
class KafkaClient;
struct Endpoint;
}
namespace holdfast::server::cluster {
class ControllerService;
class BrokerRegistrar;
class ReplicationWiring;
}  // namespace holdfast::server::cluster

namespace holdfast::server {

class Broker {
 public:
  Broker(BrokerConfig config, io::FileSystem& fs);
  ~Broker();

  // Binds the listener, locks the data directory (`<dir>/.lock`; refuses if
  // another process holds it), opens it (identity, metadata log, partition
  // logs with recovery), starts the flusher and then accepts connections.
  // Nothing in the data directory is created or changed before the listener
  // is bound and the lock is held. Start-up failures are returned with a
  // message for the operator.
  Result<void, StartupErrc> start();
  // Blocks until SIGTERM/SIGINT, then shuts down cleanly: stop accepting, let
  // in-flight requests finish (bounded), flush, write the clean-shutdown marker.
  void run_until_signalled();
  // Test-only (`serve --fault-injection`): run_until_signalled() also waits
  // for SIGUSR1 (which the caller must have blocked in every thread) and calls
  // `handler` when it arrives, without any shutdown; the handler is expected
  // to simulate a power loss and _exit().
  void set_power_loss_handler(std::function<void()> handler) {
    power_loss_handler_ = std::move(handler);
  }
  // Called first thing in shutdown(), before anything stops: services
  // outside the broker that read it (the admin HTTP listener) stop there.
  void set_before_shutdown(std::function<void()> hook) { before_shutdown_ = std::move(hook); }
  // Structured shutdown: stop accepting and reading; answer long-polls and
  // waiting joins/syncs; wait (bounded) for in-flight requests; pause the
  // network threads; close the logs, which completes or fails every
  // durability waiter (produce acks, offset commits) while the executors they
  // resume on still exist; run the network threads again so those answers go
  // out; close the connections, join the threads, then release the lock.
  void shutdown();

  // Where shutdown() is (tests observe it from another thread).
  enum class Stage { running, draining, closing_logs, closing_network, stopped };
  Stage stage() const { return stage_.load(); }
  const NetworkServer* network() const { return network_.get(); }

  const BrokerConfig& config() const { return config_; }
  const std::string& cluster_id() const { return identity_.cluster_id; }
  int32_t node_id() const { return config_.node_id; }
  TopicManager& topics() { return *topics_; }
  // The metadata log: the local MetadataStore on a single node, the Raft
  // log (RaftMetadataLog) in cluster mode.
  metadata::MetadataLog& metadata_log() { return *metadata_log_; }
  bool cluster_mode() const { return config_.cluster_mode(); }
  // Cluster mode only (nullptr on a single node): the controller service
  // (active on the Raft leader) and this broker's registration with it.
  cluster::ControllerService* controller_service() { return controller_.get(); }
  // Cluster mode only (nullptr on a single node): the Raft metadata log, for
  // its status (role, term, commit index, members).
  const metadata::RaftMetadataLog* raft() const { return raft_.get(); }
  cluster::BrokerRegistrar* registrar() { return registrar_.get(); }
  // Cluster mode only: the inter-broker client (registration, heartbeats,
  // forwarding to the controller).
  net::KafkaClient* client() { return client_.get(); }
  // The node that answers controller requests: the Raft leader in a
  // cluster (-1 while none is known), this node on a single node.
  int32_t active_controller_id() const;
  // The endpoint clients reach this broker at through its first client
  // listener (advertised host, and the advertised port or else the bound one).
  std::string advertised_host() const { return config_.effective_advertise_host(); }
  uint16_t advertised_port() const;
  // The same for client listener `name` ("" = the first): its
  // advertised.listeners entry, else its bound address; none for a name that
  // is not one of this broker's client listeners.
  std::optional<ListenerAddress> advertised_listener(const std::string& name) const;
  // The client listener the other brokers reach this one through ("" = the
  // first; security/inter_broker.h).
  const std::string& inter_broker_listener() const { return inter_broker_listener_; }
  // The local replicas: handlers reach partitions only through this.
  replication::ReplicaManager& replicas() { return *replicas_; }
  FetchWaiters& fetch_waiters() { return fetch_waiters_; }
  // Request bytes being read or handled, broker-wide (queued.max.request.bytes).
  const std::shared_ptr<RequestBudget>& request_budget() const { return request_budget_; }
  coordinator::GroupCoordinator& groups() { return *groups_; }
  coordinator::ProducerIdManager& producer_ids() { return *producer_ids_; }
  // The transaction coordinator (issue 10): the ids whose __transaction_state
  // partition this broker leads.
  coordinator::TxnCoordinator& transactions() { return *txns_; }
  // Prometheus metrics (broker_metrics.h); live from construction.
  BrokerMetrics& metrics() { return *metrics_; }
  // Client byte-rate quotas (quota_manager.h).
  QuotaManager& quotas() { return *quotas_; }
  uint16_t bound_port() const;
  bool stopping() const { return stopping_.load(); }

 private:
  // Cluster mode: the inter-broker client and the registration/heartbeats
  // with the active controller (cluster/broker_registrar.h).
  void start_registration();
  // The active controller's client endpoint, if known (cluster mode).
  std::optional<net::Endpoint> controller_endpoint();
  // Creates __transaction_state (single node), the transaction coordinator
  // and its marker client, and has it follow the partitions' leadership.
  Result<void, StartupErrc> start_transaction_coordinator();

  BrokerConfig config_;
  std::unique_ptr<BrokerMetrics> metrics_ = std::make_unique<BrokerMetrics>();
  // Everything the broker writes goes through fs_, which measures fsyncs
  // (metered_file_system.h) and passes the rest to the given file system.
  std::unique_ptr<io::FileSystem> metered_fs_;
  io::FileSystem& fs_;
  std::shared_ptr<RequestBudget> request_budget_ =
      std::make_shared<RequestBudget>(config_.queued_max_request_bytes);
  std::unique_ptr<QuotaManager> quotas_ = std::make_unique<QuotaManager>(
      QuotaWindows{config_.quota_window_num, int64_t(config_.quota_window_size_seconds) * 1000});
  metadata::NodeIdentity identity_;
  // sasl.scram.bootstrap.file's credentials (security/scram_bootstrap.h).
  std::vector<metadata::ScramCredentialUpserted> scram_bootstrap_;
  std::unique_ptr<metadata::MetadataStore> metadata_;     // single node
  std::unique_ptr<metadata::RaftMetadataLog> raft_;      // cluster mode
  metadata::MetadataLog* metadata_log_ = nullptr;        // whichever of the two
  std::unique_ptr<cluster::ControllerService> controller_;
  std::unique_ptr<cluster::BrokerRegistrar> registrar_;
  std::unique_ptr<net::KafkaClient> client_;
  std::string inter_broker_listener_;  // set at start in a cluster
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<replication::ReplicaManager> replicas_;
  std::unique_ptr<replication::PartitionLifecycle> lifecycle_;
  // Declared after replicas_ so it is destroyed first (it uses them).
  std::unique_ptr<cluster::ReplicationWiring> replication_;
  std::unique_ptr<TopicManager> topics_;
  std::unique_ptr<coordinator::GroupCoordinator> groups_;
  std::unique_ptr<coordinator::ProducerIdManager> producer_ids_;
  // The transaction coordinator's WriteTxnMarkers client and sender; declared
  // before txns_ so that the coordinator is destroyed first.
  std::unique_ptr<net::KafkaClient> txn_client_;
  std::unique_ptr<coordinator::TxnMarkerSender> txn_markers_;
  std::unique_ptr<coordinator::TxnCoordinator> txns_;
  FetchWaiters fetch_waiters_;
  std::unique_ptr<NetworkServer> network_;
  DataDirLock data_dir_lock_;
  std::atomic<bool> stopping_{false};
  std::atomic<Stage> stage_{Stage::running};
  bool stopped_ = false;
  std::function<void()> power_loss_handler_;
  std::function<void()> before_shutdown_;
};

}  // namespace holdfast::server
