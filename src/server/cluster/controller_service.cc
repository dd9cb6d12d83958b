#include "server/cluster/controller_service.h"

#include <algorithm>
#include <future>

#include "base/log.h"
#include "base/thread_name.h"
#include "server/cluster/cluster_view.h"
#include "server/security/scram_bootstrap.h"
#include "server/security/scram_credentials.h"

namespace holdfast::server::cluster {
namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Error<ControllerError> not_controller(const std::string& why) {
  return make_error(ControllerError{ServiceErrc::not_controller, {}}, why);
}
Error<ControllerError> timed_out(const std::string& why) {
  return make_error(ControllerError{ServiceErrc::timed_out, {}}, why);
}
Error<ControllerError> rejected(const Error<controller::Errc>& e) {
  return make_error(ControllerError{ServiceErrc::rejected, e.code}, e.message);
}

}  // namespace

ControllerService::ControllerService(metadata::MetadataLog& log, StatusFn status,
                                     ControllerServiceOptions options)
    : log_(log), status_(std::move(status)), options_(std::move(options)) {}

ControllerService::~ControllerService() { stop(); }

void ControllerService::start() {
  thread_ = std::thread([this] {
    set_thread_name("hf-controller");
    run();
  });
}

void ControllerService::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    controller_.reset();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ControllerService::active() const {
  auto s = status_();
  return s.leader_ready && s.leader_id == options_.node_id;
}

int32_t ControllerService::active_controller_id() const {
  auto s = status_();
  return s.role == metadata::RaftRole::leader ? options_.node_id : s.leader_id;
}

controller::Controller* ControllerService::current_controller() {
  if (stopping_) return nullptr;
  auto s = status_();
  if (!s.leader_ready || s.leader_id != options_.node_id) {
    if (controller_) {
      HF_INFO("controller: node {} is no longer the active controller (term {})",
              options_.node_id, term_);
    }
    controller_.reset();
    return nullptr;
  }
  if (!controller_ || term_ != s.term) {
    // A new term: fresh soft state, every broker gets a full session.
    controller_ = std::make_unique<controller::Controller>(options_.config, [] { return steady_ms(); });
    term_ = s.term;
    HF_INFO("controller: node {} is the active controller (term {})", options_.node_id, term_);
  }
  return controller_.get();
}

std::map<int32_t, controller::BrokerProgress> ControllerService::broker_progress() {
  std::lock_guard lock(mutex_);
  auto* c = current_controller();
  if (c == nullptr) return {};
  return c->progress();
}

void ControllerService::append(metadata::MetadataRecord record,
                               std::function<void(bool ok, std::string why)> done) {
  log_.append(std::move(record), [done = std::move(done)](Result<metadata::ImagePtr, metadata::Errc> r) {
    if (r) return done(true, "");
    done(false, r.error().message);
  });
}

void ControllerService::register_broker(const controller::BrokerRegistrationRequest& request,
                                        std::function<void(ServiceResult<int64_t>)> done) {
  {
    std::lock_guard lock(mutex_);
    if (current_controller() == nullptr) return done(not_controller("not the active controller"));
  }
  const auto& voters = options_.voter_ids;
  if (!options_.add_standby ||
      std::find(voters.begin(), voters.end(), request.node_id) != voters.end()) {
    return register_member(request, std::move(done));
  }
  // A broker-only node: first a member of the Raft configuration (a standby,
  // at its CONTROLLER endpoint), so the registration record and everything
  // after reach it.
  const metadata::BrokerEndpoint* raft_endpoint = nullptr;
  for (const auto& e : request.endpoints) {
    if (e.listener == kControllerListener) raft_endpoint = &e;
  }
  if (raft_endpoint == nullptr) {
    HF_WARN("controller: broker {} is not a voter and registered no CONTROLLER endpoint: it "
            "cannot receive the metadata log (listeners needs CONTROLLER://host:port)",
            request.node_id);
    return done(make_error(ControllerError{ServiceErrc::rejected, controller::Errc::invalid_request},
                           "no CONTROLLER endpoint"));
  }
  const std::string address = raft_endpoint->host + ":" + std::to_string(raft_endpoint->port);
  options_.add_standby(
      request.node_id, address,
      [this, request, done = std::move(done)](Result<void, metadata::Errc> added) mutable {
        if (added) return register_member(request, std::move(done));
        switch (added.code()) {
          case metadata::Errc::invalid_config:
            HF_WARN("controller: refusing registration of broker {}: {}", request.node_id,
                    added.error().message);
            return done(make_error(
                ControllerError{ServiceErrc::rejected,
                                controller::Errc::duplicate_broker_registration},
                added.error().message));
          case metadata::Errc::not_leader:
          case metadata::Errc::shut_down:
            return done(not_controller(added.error().message));
          default:
            return done(timed_out("membership change: " + added.error().message));
        }
      });
}

void ControllerService::register_member(const controller::BrokerRegistrationRequest& request,
                                        std::function<void(ServiceResult<int64_t>)> done) {
  Result<controller::RegistrationOutcome, controller::Errc> outcome =
      make_error(controller::Errc::invalid_request);
  {
    std::lock_guard lock(mutex_);
    auto* c = current_controller();
    if (c == nullptr) return done(not_controller("not the active controller"));
    outcome = c->register_broker(*log_.current(), request);
  }
  if (!outcome) return done(rejected(outcome.error()));
  const int64_t epoch = outcome->epoch;
  if (!outcome->record) return done(epoch);
  HF_INFO("controller: registering broker {} with epoch {}", request.node_id, epoch);
  append(std::move(*outcome->record), [done, epoch](bool ok, std::string why) {
    if (ok) return done(epoch);
    done(timed_out("registration not committed: " + why));
  });
}

void ControllerService::heartbeat(const controller::HeartbeatRequest& request,
                                  std::function<void(ServiceResult<controller::HeartbeatOutcome>)> done) {
  Result<controller::HeartbeatOutcome, controller::Errc> outcome =
      make_error(controller::Errc::invalid_request);
  {
    std::lock_guard lock(mutex_);
    auto* c = current_controller();
    if (c == nullptr) return done(not_controller("not the active controller"));
    outcome = c->heartbeat(*log_.current(), request);
  }
  if (!outcome) return done(rejected(outcome.error()));
  if (!outcome->record) return done(*outcome);
  HF_INFO("controller: unfencing broker {} (epoch {})", request.node_id, request.broker_epoch);
  auto answer = *outcome;
  answer.record.reset();
  append(std::move(*outcome->record), [done, answer](bool ok, std::string why) {
    if (ok) return done(answer);
    // Not unfenced after all: the broker stays fenced and heartbeats again.
    HF_WARN("controller: unfencing not committed: {}", why);
    controller::HeartbeatOutcome fenced = answer;
    fenced.fenced = true;
    done(fenced);
  });
}

void ControllerService::alter_partition(const controller::AlterPartitionRequest& request,
                                        std::function<void(ServiceResult<metadata::PartitionState>)> done) {
  Result<controller::AlterPartitionOutcome, controller::Errc> outcome =
      make_error(controller::Errc::invalid_request);
  {
    std::lock_guard lock(mutex_);
    auto* c = current_controller();
    if (c == nullptr) return done(not_controller("not the active controller"));
    outcome = c->alter_partition(*log_.current(), request);
  }
  if (!outcome) return done(rejected(outcome.error()));
  if (!outcome->record) return done(outcome->state);
  HF_INFO("controller: {}-{} ISR -> {} entries at the leader's request", request.topic,
          request.partition, request.new_isr.size());
  auto state = outcome->state;
  append(std::move(*outcome->record), [done, state](bool ok, std::string why) {
    if (ok) return done(state);
    // The partition changed underneath (or leadership was lost): the leader
    // re-reads the image and proposes again.
    done(make_error(ControllerError{ServiceErrc::rejected, controller::Errc::invalid_update_version},
                    "ISR change not committed: " + why));
  });
}

void ControllerService::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.tick_interval);
    if (stopping_) break;
    lock.unlock();
    tick_once();
    lock.lock();
  }
}

void ControllerService::tick_once() {
  std::vector<metadata::MetadataRecord> records;
  {
    std::lock_guard lock(mutex_);
    auto* c = current_controller();
    if (c == nullptr) return;
    auto image = log_.current();
    records = c->tick(*image);
    for (auto& due : security::scram_bootstrap_due(*image, options_.scram_bootstrap)) {
      HF_INFO("controller: sasl.scram.bootstrap.file: creating the {} credential of user {}",
              security::mechanism_name(security::ScramMechanism(due.mechanism)), due.user);
      records.push_back(std::move(due));
    }
  }
  if (records.empty()) return;
  // In order; each waits for the previous so a failure stops the rest (they
  // were computed on top of it). The next tick recomputes from the image.
  for (auto& record : records) {
    if (const auto* fenced = std::get_if<metadata::BrokerFenced>(&record)) {
      HF_WARN("controller: fencing broker {} (epoch {}): no heartbeat within {} ms",
              fenced->node_id, fenced->epoch, options_.config.session_timeout_ms);
    } else if (const auto* changed = std::get_if<metadata::PartitionChanged>(&record)) {
      HF_INFO("controller: {}-{} leader {} (leader epoch {}), ISR of {}", changed->name,
              changed->partition, changed->leader, changed->leader_epoch, changed->isr.size());
    }
    auto promise = std::make_shared<std::promise<std::string>>();
    auto future = promise->get_future();
    append(std::move(record), [promise](bool ok, std::string why) {
      promise->set_value(ok ? "" : (why.empty() ? "failed" : why));
    });
    if (future.wait_for(options_.append_timeout) != std::future_status::ready) {
      HF_WARN("controller: a tick's record was not committed within {} ms",
              options_.append_timeout.count());
      return;
    }
    if (auto why = future.get(); !why.empty()) {
      HF_INFO("controller: tick record not applied ({}); recomputing next tick", why);
      return;
    }
  }
}

}  // namespace holdfast::server::cluster
