// The broker: everything a request handler may use, and the start-up and
// shutdown sequence around the network server.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "coordinator/producer_id_manager.h"
#include "coordinator/group_coordinator.h"
#include "io/file_system.h"
#include "metadata/metadata_store.h"
#include "server/broker_config.h"
#include "server/network_server.h"
#include "server/request_budget.h"
#include "server/fetch_waiters.h"
#include "server/topic_manager.h"
#include "storage/log_manager.h"

namespace holdfast::server {

class Broker {
 public:
  Broker(BrokerConfig config, io::FileSystem& fs);
  ~Broker();

  // Opens the data directory (identity, metadata log, partition logs with
  // recovery), starts the flusher and the network listener. Start-up failures
  // are returned with a message for the operator.
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
  void shutdown();

  const BrokerConfig& config() const { return config_; }
  const std::string& cluster_id() const { return identity_.cluster_id; }
  int32_t node_id() const { return config_.node_id; }
  TopicManager& topics() { return *topics_; }
  storage::LogManager& logs() { return *logs_; }
  FetchWaiters& fetch_waiters() { return fetch_waiters_; }
  // Request bytes being read or handled, broker-wide (queued.max.request.bytes).
  const std::shared_ptr<RequestBudget>& request_budget() const { return request_budget_; }
  coordinator::GroupCoordinator& groups() { return *groups_; }
  coordinator::ProducerIdManager& producer_ids() { return *producer_ids_; }
  uint16_t bound_port() const;
  bool stopping() const { return stopping_.load(); }

 private:
  BrokerConfig config_;
  io::FileSystem& fs_;
  std::shared_ptr<RequestBudget> request_budget_ =
      std::make_shared<RequestBudget>(config_.queued_max_request_bytes);
  metadata::NodeIdentity identity_;
  std::unique_ptr<metadata::MetadataStore> metadata_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<TopicManager> topics_;
  std::unique_ptr<coordinator::GroupCoordinator> groups_;
  std::unique_ptr<coordinator::ProducerIdManager> producer_ids_;
  FetchWaiters fetch_waiters_;
  std::unique_ptr<NetworkServer> network_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::function<void()> power_loss_handler_;
};

}  // namespace holdfast::server
