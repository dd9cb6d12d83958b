// This broker's registration with the active controller (issue 9, KIP-631):
// at start-up it sends BrokerRegistration (its node id, a random incarnation
// for this process, its client and CONTROLLER endpoints, rack) to the active
// controller, then BrokerHeartbeat every broker.heartbeat.interval.ms with
// the index of the last metadata record it applied. The controller registers
// it fenced and unfences it once a heartbeat shows it applied its own
// registration; a broker whose heartbeats stop is fenced after
// broker.session.timeout.ms.
//
// The controller is found from the Raft leader id and the image (its client
// endpoint); the controller node registers itself through the same path.
// NOT_CONTROLLER, timeouts and network errors are retried with a backoff
// (doubling, 100 ms .. 1 s) against the then-current controller;
// STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED (a controller that lost our
// registration, or a restarted one) registers again with the same
// incarnation. While fenced it heartbeats more often (every 250 ms at most)
// so it is unfenced soon after its registration applies.
//
// Runs on its own thread, `hf-registrar`, with the blocking form of
// net::KafkaClient.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metadata/metadata_image.h"
#include "net/kafka_client.h"

namespace holdfast::server::cluster {

struct RegistrarOptions {
  int32_t node_id = 0;
  std::string cluster_id;
  std::vector<metadata::BrokerEndpoint> endpoints;
  std::string rack;
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds request_timeout{3000};
  // Called (on hf-registrar) each time the controller unfences this broker:
  // it has applied its own registration, so its metadata has caught up.
  std::function<void()> on_unfenced;
};

class BrokerRegistrar {
 public:
  // The active controller's client endpoint, if known.
  using ControllerFn = std::function<std::optional<net::Endpoint>()>;
  // The index of the last metadata record this broker applied.
  using AppliedFn = std::function<int64_t()>;

  BrokerRegistrar(net::KafkaClient& client, RegistrarOptions options, ControllerFn controller,
                  AppliedFn applied);
  ~BrokerRegistrar();  // stop()
  BrokerRegistrar(const BrokerRegistrar&) = delete;
  BrokerRegistrar& operator=(const BrokerRegistrar&) = delete;

  void start();
  void stop();  // idempotent; joins the thread

  int64_t broker_epoch() const { return epoch_.load(); }  // -1 until registered
  bool fenced() const { return fenced_.load(); }

 private:
  void run();
  // Sleeps up to `d`, or until stop(). False once stopping.
  bool pause(std::chrono::milliseconds d);
  bool try_register(const net::Endpoint& controller);
  // The wait before the next heartbeat, or nullopt to retry with a backoff.
  std::optional<std::chrono::milliseconds> try_heartbeat(const net::Endpoint& controller);

  net::KafkaClient& client_;
  const RegistrarOptions options_;
  const ControllerFn controller_;
  const AppliedFn applied_;
  const metadata::TopicId incarnation_;
  std::atomic<int64_t> epoch_{-1};
  std::atomic<bool> fenced_{true};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
  std::string last_problem_;  // logged once per change, not per retry
};

}  // namespace holdfast::server::cluster
