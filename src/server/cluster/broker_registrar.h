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
// Fenced, as this broker sees it (fenced()): from start-up until a
// controller's heartbeat answer unfences it and its own metadata image shows
// it unfenced at its epoch (the image then holds what the controller decided
// before unfencing it, such as leaderships moved away while it was fenced);
// again when a controller says it is fenced, or when no controller has
// answered a heartbeat for session_timeout (broker.session.timeout.ms): cut
// off from the controller quorum, it has been fenced by the controller on
// the other side and its leaderships moved, which it cannot learn. That
// session counts from the last answer or the last change of the Raft leader
// this node knows, whichever is later: a new controller gives every broker
// a full session (controller_service.h), so an election alone fences no one.
// on_fenced and on_unfenced are told of each change: the broker stops
// leading its partitions while fenced and resumes from its image when
// unfenced (PartitionLifecycle::hold, caught_up).
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
  // No heartbeat answered by a controller for this long: fenced.
  std::chrono::milliseconds session_timeout{9000};
  // The Raft leader this node knows (-1: none); a change restarts the session.
  std::function<int32_t()> controller_id;
  // Whether this broker's own metadata image shows it registered at `epoch`
  // and unfenced. Unset: the controller's answer alone unfences.
  std::function<bool(int64_t epoch)> image_unfenced;
  // Called (on hf-registrar) each time the controller unfences this broker:
  // it has applied its own registration, so its metadata has caught up.
  std::function<void()> on_unfenced;
  // Called (on hf-registrar) each time this broker becomes fenced after
  // having been unfenced: a controller said so, or none answered within
  // session_timeout.
  std::function<void()> on_fenced;
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
  // Fenced because no controller answered within the session (not by a
  // controller's word, nor at start-up): this node's metadata is stale.
  bool cut_off() const { return cut_off_.load(); }

 private:
  void run();
  // The session ran out with no answered heartbeat: fenced (once).
  void check_session();
  std::chrono::steady_clock::time_point session_deadline() const;
  void set_fenced(bool fenced, const std::string& why);
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
  std::atomic<bool> cut_off_{false};
  // When a controller last answered a registration or heartbeat, and when
  // the Raft leader last changed (hf-registrar only).
  std::chrono::steady_clock::time_point last_answer_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_controller_change_ = last_answer_;
  int32_t last_controller_id_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
  std::string last_problem_;  // logged once per change, not per retry
};

}  // namespace holdfast::server::cluster
