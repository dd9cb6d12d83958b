// The active controller (issue 9, DESIGN §5): runs controller::Controller on
// the node that leads the Raft metadata quorum, once that leader's barrier
// has applied (its image then holds every committed record, so decisions made
// from it are current).
//
//   - answers BrokerRegistration, BrokerHeartbeat and AlterPartition (the
//     handlers call in here; any other node answers NOT_CONTROLLER, or
//     forwards a registration here);
//   - makes a registering broker that is not a voter (process.roles=broker)
//     a standby member of the Raft configuration before its registration
//     record is appended (options.add_standby), so it receives and applies
//     the metadata log like every broker; voters are never touched;
//   - every tick_interval calls Controller::tick() and appends the records
//     it returns (fencing expired sessions, moving leaders off fenced
//     brokers, shrinking ISRs of fenced members, bringing offline partitions
//     back), waiting for them before the next tick.
//
// A node that wins leadership in a new term starts a fresh Controller: the
// brokers' heartbeat times are soft state, and every broker gets a full
// session from the new controller (Kafka's rule).
//
// Records computed from an image are appended without holding the lock; one
// that no longer fits when it applies (a race with another change) fails
// with invalid_record and the caller retries, or the next tick recomputes.
//
// Threads: the tick runs on its own thread, `hf-controller`; the request
// methods may be called from any thread and complete through `done`, which
// runs on the metadata log's thread (or the caller's, for an answer that
// needs no append) and must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/result.h"
#include "controller/controller.h"
#include "metadata/metadata_log.h"
#include "metadata/raft_metadata_log.h"

namespace holdfast::server::cluster {

// Why a controller request failed. `kind` says whether the controller
// decided (rejected, with `reason`) or could not (not the controller, or the
// record's fate is unknown); the handler maps it to a Kafka error
// (handlers/cluster_errors.h).
enum class ServiceErrc {
  not_controller,  // NOT_CONTROLLER: this node is not the active controller
  timed_out,       // REQUEST_TIMED_OUT: the append failed or its outcome is unknown
  rejected,        // the controller's answer: ControllerError::reason
};
struct ControllerError {
  ServiceErrc kind = ServiceErrc::not_controller;
  controller::Errc reason = controller::Errc::invalid_request;  // for `rejected`
};
template <typename T>
using ServiceResult = Result<T, ControllerError>;

struct ControllerServiceOptions {
  int32_t node_id = 0;
  controller::ControllerConfig config;
  std::chrono::milliseconds tick_interval{250};
  // How long a tick waits for its records before the next tick.
  std::chrono::milliseconds append_timeout{10000};
  // The voters of the metadata quorum: their registrations never change the
  // Raft configuration.
  std::vector<int32_t> voter_ids;
  // Makes a broker that is not a voter a standby member at its CONTROLLER
  // endpoint (RaftMetadataLog::add_standby, idempotent); `done` may run on
  // any thread. Unset: registrations do not touch the configuration.
  using AddStandbyFn = std::function<void(int32_t id, std::string address,
                                          std::function<void(Result<void, metadata::Errc>)> done)>;
  AddStandbyFn add_standby;
  // sasl.scram.bootstrap.file's credentials: the active controller appends
  // each one that is due (security/scram_bootstrap.h) on its ticks.
  std::vector<metadata::ScramCredentialUpserted> scram_bootstrap;
};

class ControllerService {
 public:
  using StatusFn = std::function<metadata::RaftStatus()>;

  ControllerService(metadata::MetadataLog& log, StatusFn status, ControllerServiceOptions options);
  ~ControllerService();  // stop()
  ControllerService(const ControllerService&) = delete;
  ControllerService& operator=(const ControllerService&) = delete;

  void start();
  // Joins the tick thread. Requests after this answer not_controller.
  void stop();

  // This node leads the quorum and its leader barrier has applied.
  bool active() const;
  // The Raft leader (the active controller once ready); -1: none known.
  int32_t active_controller_id() const;

  // The active controller's soft state of each broker's heartbeats
  // (controller::BrokerProgress, by node id); empty when this node is not the
  // active controller, and right after it became it.
  std::map<int32_t, controller::BrokerProgress> broker_progress();

  void register_broker(const controller::BrokerRegistrationRequest& request,
                       std::function<void(ServiceResult<int64_t>)> done);
  void heartbeat(const controller::HeartbeatRequest& request,
                 std::function<void(ServiceResult<controller::HeartbeatOutcome>)> done);
  void alter_partition(const controller::AlterPartitionRequest& request,
                       std::function<void(ServiceResult<metadata::PartitionState>)> done);

 private:
  // The controller for the current term, or nullptr when not active.
  // Requires mutex_.
  controller::Controller* current_controller();
  void run();
  void tick_once();
  // register_broker once the broker is a member of the Raft configuration.
  void register_member(const controller::BrokerRegistrationRequest& request,
                       std::function<void(ServiceResult<int64_t>)> done);
  // Appends `record`; `done` gets ok or timed_out.
  void append(metadata::MetadataRecord record, std::function<void(bool ok, std::string why)> done);

  metadata::MetadataLog& log_;
  const StatusFn status_;
  const ControllerServiceOptions options_;

  mutable std::mutex mutex_;  // guards controller_, term_, stopping_
  std::unique_ptr<controller::Controller> controller_;
  uint64_t term_ = 0;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace holdfast::server::cluster
