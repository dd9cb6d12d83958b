#include "server/cluster/broker_registrar.h"

#include <algorithm>

#include "base/log.h"
#include "base/thread_name.h"
#include "metadata/metadata_store.h"
#include "server/kafka_error.h"

namespace holdfast::server::cluster {
namespace {

constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{1000};
constexpr std::chrono::milliseconds kFencedHeartbeat{250};
constexpr std::chrono::milliseconds kMinRequestTimeout{100};

}  // namespace

BrokerRegistrar::BrokerRegistrar(net::KafkaClient& client, RegistrarOptions options,
                                 ControllerFn controller, AppliedFn applied)
    : client_(client),
      options_(std::move(options)),
      controller_(std::move(controller)),
      applied_(std::move(applied)),
      incarnation_(metadata::random_id()) {}

BrokerRegistrar::~BrokerRegistrar() { stop(); }

void BrokerRegistrar::start() {
  thread_ = std::thread([this] {
    set_thread_name("hf-registrar");
    run();
  });
}

void BrokerRegistrar::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool BrokerRegistrar::pause(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

bool BrokerRegistrar::try_register(const net::Endpoint& controller) {
  protocol::BrokerRegistrationRequest request;
  request.broker_id = options_.node_id;
  request.cluster_id = options_.cluster_id;
  request.incarnation_id = incarnation_;
  for (const auto& e : options_.endpoints) {
    auto& l = request.listeners.emplace_back();
    l.name = e.listener;
    l.host = e.host;
    l.port = static_cast<uint16_t>(e.port);
    l.security_protocol = 0;  // PLAINTEXT
  }
  if (!options_.rack.empty()) request.rack = options_.rack;
  auto answer = client_.call<protocol::BrokerRegistrationResponse>(controller, request, 0,
                                                                   options_.request_timeout);
  std::string problem;
  if (!answer) {
    problem = std::string("cannot reach the controller at ") + controller.to_string() + ": " +
              net::errc_name(answer.code());
  } else if (answer->error_code != code(KafkaError::none)) {
    problem = "the controller at " + controller.to_string() + " refused registration (error " +
              std::to_string(answer->error_code) + ")";
  } else {
    epoch_ = answer->broker_epoch;
    last_answer_ = std::chrono::steady_clock::now();
    last_problem_.clear();
    HF_INFO("registered with the controller at {} as broker {} epoch {}", controller.to_string(),
            options_.node_id, answer->broker_epoch);
    return true;
  }
  if (problem != last_problem_) HF_INFO("broker registration: {}; retrying", problem);
  last_problem_ = problem;
  return false;
}

std::optional<std::chrono::milliseconds> BrokerRegistrar::try_heartbeat(
    const net::Endpoint& controller) {
  protocol::BrokerHeartbeatRequest request;
  request.broker_id = options_.node_id;
  request.broker_epoch = epoch_.load();
  request.current_metadata_offset = applied_();
  // While unfenced, an unanswered heartbeat must not outlast the session: the
  // check that fences this broker runs between heartbeats.
  auto timeout = options_.request_timeout;
  if (!fenced_.load()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        session_deadline() - std::chrono::steady_clock::now());
    timeout = std::clamp(left, kMinRequestTimeout, options_.request_timeout);
  }
  auto answer = client_.call<protocol::BrokerHeartbeatResponse>(controller, request, 0, timeout);
  if (!answer) {
    std::string problem = "heartbeat to " + controller.to_string() + ": " +
                          net::errc_name(answer.code());
    if (problem != last_problem_) HF_INFO("{}; retrying", problem);
    last_problem_ = problem;
    return std::nullopt;
  }
  auto error = static_cast<KafkaError>(answer->error_code);
  if (error == KafkaError::stale_broker_epoch || error == KafkaError::broker_id_not_registered) {
    HF_WARN("the controller at {} does not know broker {} epoch {} (error {}): registering again",
            controller.to_string(), options_.node_id, epoch_.load(), answer->error_code);
    epoch_ = -1;
    return std::chrono::milliseconds(0);
  }
  if (error != KafkaError::none) return std::nullopt;  // NOT_CONTROLLER, timeouts: look again
  last_problem_.clear();
  last_answer_ = std::chrono::steady_clock::now();
  // Unfenced once the controller says so and this broker's image agrees (it
  // then holds the controller's decisions up to the unfencing).
  const bool fenced = answer->is_fenced ||
                      (options_.image_unfenced && !options_.image_unfenced(epoch_.load()));
  set_fenced(fenced, "the controller says so");
  return fenced ? std::min(options_.heartbeat_interval, kFencedHeartbeat)
                : options_.heartbeat_interval;
}

void BrokerRegistrar::set_fenced(bool fenced, const std::string& why) {
  const bool was_fenced = fenced_.exchange(fenced);
  if (!fenced) cut_off_ = false;
  if (was_fenced && !fenced) {
    HF_INFO("broker {} is unfenced", options_.node_id);
    if (options_.on_unfenced) options_.on_unfenced();
  }
  if (!was_fenced && fenced) {
    HF_WARN("broker {} is fenced ({}): it stops leading its partitions until unfenced",
            options_.node_id, why);
    if (options_.on_fenced) options_.on_fenced();
  }
}

std::chrono::steady_clock::time_point BrokerRegistrar::session_deadline() const {
  return std::max(last_answer_, last_controller_change_) + options_.session_timeout;
}

void BrokerRegistrar::check_session() {
  const auto now = std::chrono::steady_clock::now();
  if (options_.controller_id) {
    const int32_t id = options_.controller_id();
    if (id != last_controller_id_) {
      last_controller_id_ = id;
      last_controller_change_ = now;
    }
  }
  if (fenced_.load() || now < session_deadline()) return;
  cut_off_ = true;
  set_fenced(true, fmt::format("no controller answered a heartbeat within {} ms",
                               options_.session_timeout.count()));
}

void BrokerRegistrar::run() {
  auto backoff = kMinBackoff;
  auto retry = [&] {
    bool running = pause(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
    return running;
  };
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    check_session();
    auto controller = controller_();
    if (!controller) {
      if (!retry()) return;
      continue;
    }
    if (epoch_.load() < 0) {
      if (!try_register(*controller)) {
        if (!retry()) return;
        continue;
      }
      backoff = kMinBackoff;
    }
    auto next = try_heartbeat(*controller);
    if (!next) {
      if (!retry()) return;
      continue;
    }
    backoff = kMinBackoff;
    if (!pause(*next)) return;
  }
}

}  // namespace holdfast::server::cluster
