#include "controller/controller.h"

#include <algorithm>
#include <chrono>
#include <set>

namespace holdfast::controller {
namespace {

using metadata::BrokerInfo;
using metadata::kNoLeader;
using metadata::MetadataImage;
using metadata::MetadataRecord;
using metadata::PartitionChanged;
using metadata::PartitionState;
using metadata::TopicInfo;

// May lead and be in an ISR: registered and unfenced (or the image's
// unregistered sole node, in single-node mode).
bool eligible(const MetadataImage& image, int32_t node) {
  if (const BrokerInfo* b = image.find_broker(node)) return !b->fenced;
  return image.sole_node_id >= 0 && node == image.sole_node_id;
}

int64_t system_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

std::string partition_name(const std::string& topic, int32_t partition) {
  return topic + "-" + std::to_string(partition);
}

}  // namespace

Controller::Controller(ControllerConfig config, Clock clock, Clock wall_clock)
    : config_(config),
      clock_(std::move(clock)),
      wall_clock_(wall_clock ? std::move(wall_clock) : Clock(system_ms)) {}

bool Controller::session_alive(int32_t node_id, int64_t now) {
  // A broker this controller has not heard from yet gets a full session from
  // now: after a failover, brokers need time to find the new controller.
  auto [it, first_seen] = last_heartbeat_ms_.try_emplace(node_id, now);
  return first_seen || now - it->second <= config_.session_timeout_ms;
}

bool Controller::unclean_allowed(const TopicInfo& topic) const {
  auto it = topic.configs.find("unclean.leader.election.enable");
  if (it != topic.configs.end()) return it->second == "true";
  return config_.unclean_leader_election;
}

Result<RegistrationOutcome, Errc> Controller::register_broker(
    const MetadataImage& image, const BrokerRegistrationRequest& request) {
  const int64_t now = clock_();
  const BrokerInfo* existing = image.find_broker(request.node_id);
  if (existing != nullptr && existing->incarnation == request.incarnation) {
    last_heartbeat_ms_[request.node_id] = now;
    return RegistrationOutcome{existing->epoch, std::nullopt};  // a retry
  }
  if (existing != nullptr && !existing->fenced && session_alive(request.node_id, now)) {
    return make_error(Errc::duplicate_broker_registration,
                      "node id " + std::to_string(request.node_id) +
                          " is registered by another live process (epoch " +
                          std::to_string(existing->epoch) +
                          "); a restarted broker is accepted once that session expires");
  }
  const int64_t epoch = existing != nullptr ? existing->epoch + 1 : 1;
  MetadataRecord record = metadata::BrokerRegistered{request.node_id, epoch, request.incarnation,
                                                     request.endpoints, request.rack};
  if (auto fits = metadata::apply_record(image, record, image.last_record_index + 1); !fits) {
    return make_error(Errc::invalid_request, fits.error().message);
  }
  last_heartbeat_ms_[request.node_id] = now;
  return RegistrationOutcome{epoch, std::move(record)};
}

Result<HeartbeatOutcome, Errc> Controller::heartbeat(const MetadataImage& image,
                                                     const HeartbeatRequest& request) {
  const BrokerInfo* broker = image.find_broker(request.node_id);
  if (broker == nullptr) {
    return make_error(Errc::broker_id_not_registered,
                      "broker " + std::to_string(request.node_id) + " is not registered");
  }
  if (broker->epoch != request.broker_epoch) {
    return make_error(Errc::stale_broker_epoch,
                      "broker " + std::to_string(request.node_id) + ": epoch " +
                          std::to_string(request.broker_epoch) + " is not the registered " +
                          std::to_string(broker->epoch));
  }
  last_heartbeat_ms_[request.node_id] = clock_();
  BrokerProgress& progress = progress_[request.node_id];
  progress.applied_index = request.applied_index;
  progress.last_heartbeat_wall_ms = wall_clock_();
  if (request.applied_index >= image.last_record_index) {
    progress.last_caught_up_wall_ms = progress.last_heartbeat_wall_ms;
  }
  HeartbeatOutcome outcome;
  outcome.fenced = broker->fenced;
  if (broker->fenced && request.applied_index >= broker->registered_index) {
    outcome.fenced = false;
    outcome.record = metadata::BrokerUnfenced{broker->node_id, broker->epoch};
  }
  return outcome;
}

std::optional<PartitionChanged> Controller::elect(const MetadataImage& image, const TopicInfo& topic,
                                                  int32_t partition) const {
  const PartitionState& current = topic.partitions[size_t(partition)];
  std::vector<int32_t> live_isr;
  for (int32_t node : current.isr) {
    if (eligible(image, node)) live_isr.push_back(node);
  }
  const bool leader_ok = current.leader != kNoLeader && eligible(image, current.leader);
  if (leader_ok && live_isr.size() == current.isr.size()) return std::nullopt;

  int32_t leader = kNoLeader;
  std::vector<int32_t> isr;
  if (leader_ok) {
    leader = current.leader;
    isr = live_isr;
  } else {
    for (int32_t node : current.replicas) {
      if (contains(live_isr, node)) {
        leader = node;
        break;
      }
    }
    if (leader != kNoLeader) {
      isr = live_isr;
    } else if (unclean_allowed(topic)) {
      for (int32_t node : current.replicas) {
        if (eligible(image, node)) {
          leader = node;
          isr = {node};
          break;
        }
      }
    }
    // Offline: the ISR is never emptied, so it still names who has the data.
    if (leader == kNoLeader) isr = live_isr.empty() ? current.isr : live_isr;
  }
  if (leader == current.leader && isr == current.isr) return std::nullopt;
  return PartitionChanged{topic.name,
                          topic.id,
                          partition,
                          leader,
                          std::move(isr),
                          current.leader_epoch + (leader != current.leader ? 1 : 0),
                          current.partition_epoch + 1};
}

std::vector<MetadataRecord> Controller::tick(const MetadataImage& image) {
  const int64_t now = clock_();
  std::vector<MetadataRecord> records;
  auto working = std::make_shared<const MetadataImage>(image);
  // Each record is applied to a working image so the next is computed on top
  // of it; the caller appends them in this order.
  auto add = [&](MetadataRecord record) {
    auto next = metadata::apply_record(*working, record, working->last_record_index + 1);
    if (!next) return;  // cannot happen for records computed from `working`
    working = *next;
    records.push_back(std::move(record));
  };
  for (const auto& [id, broker] : image.brokers) {
    if (!broker.fenced && !session_alive(id, now)) add(metadata::BrokerFenced{id, broker.epoch});
  }
  for (const auto& [name, ignored] : image.topics) {
    const int32_t partitions = working->topics.at(name).partition_count;
    for (int32_t p = 0; p < partitions; ++p) {
      if (auto change = elect(*working, working->topics.at(name), p)) add(std::move(*change));
    }
  }
  return records;
}

Result<metadata::TopicCreated, Errc> Controller::create_topic(const MetadataImage& image,
                                                              const std::string& name,
                                                              const metadata::TopicId& id,
                                                              int32_t partitions,
                                                              int16_t replication_factor,
                                                              metadata::ConfigMap configs) const {
  if (image.find_topic(name) != nullptr) {
    return make_error(Errc::topic_already_exists, "topic " + name + " already exists");
  }
  auto placed = place_partitions(image, partitions, replication_factor);
  if (!placed) return make_error(placed.code(), "topic " + name + ": " + placed.error().message);
  return metadata::TopicCreated{name, id, partitions, std::move(configs), std::move(*placed)};
}

Result<metadata::PartitionsAdded, Errc> Controller::add_partitions(const MetadataImage& image,
                                                                   const std::string& name,
                                                                   int32_t new_partition_count) const {
  const TopicInfo* topic = image.find_topic(name);
  if (topic == nullptr) return make_error(Errc::unknown_topic, "unknown topic " + name);
  if (new_partition_count <= topic->partition_count) {
    return make_error(Errc::invalid_partitions,
                      "topic " + name + " has " + std::to_string(topic->partition_count) +
                          " partitions; the count can only grow");
  }
  const auto rf = int32_t(topic->partitions.front().replicas.size());
  auto placed = place_partitions(image, new_partition_count - topic->partition_count, rf);
  if (!placed) return make_error(placed.code(), "topic " + name + ": " + placed.error().message);
  return metadata::PartitionsAdded{name, new_partition_count, std::move(*placed)};
}

Result<AlterPartitionOutcome, Errc> Controller::alter_partition(
    const MetadataImage& image, const AlterPartitionRequest& request) const {
  const BrokerInfo* broker = image.find_broker(request.broker_id);
  if (broker == nullptr || broker->epoch != request.broker_epoch) {
    return make_error(Errc::stale_broker_epoch,
                      "broker " + std::to_string(request.broker_id) + " epoch " +
                          std::to_string(request.broker_epoch) + " is not registered");
  }
  const TopicInfo* topic = image.find_topic(request.topic);
  if (topic == nullptr || topic->id != request.topic_id) {
    return make_error(Errc::unknown_topic, "unknown topic " + request.topic);
  }
  if (request.partition < 0 || request.partition >= topic->partition_count) {
    return make_error(Errc::unknown_topic,
                      "unknown partition " + partition_name(request.topic, request.partition));
  }
  const std::string where = partition_name(request.topic, request.partition);
  const PartitionState& current = topic->partitions[size_t(request.partition)];
  // Epoch first (as KRaft does): a proposer with a stale view learns that
  // before anything else.
  if (request.leader_epoch != current.leader_epoch) {
    return make_error(Errc::fenced_leader_epoch,
                      where + ": leader epoch " + std::to_string(request.leader_epoch) +
                          " is not the current " + std::to_string(current.leader_epoch));
  }
  if (request.broker_id != current.leader) {
    return make_error(Errc::not_leader, where + ": broker " + std::to_string(request.broker_id) +
                                            " does not lead it (leader " +
                                            std::to_string(current.leader) + ")");
  }
  if (request.partition_epoch != current.partition_epoch) {
    return make_error(Errc::invalid_update_version,
                      where + ": partition epoch " + std::to_string(request.partition_epoch) +
                          " is not the current " + std::to_string(current.partition_epoch));
  }
  const std::set<int32_t> distinct(request.new_isr.begin(), request.new_isr.end());
  if (distinct.size() != request.new_isr.size() || !distinct.count(current.leader)) {
    return make_error(Errc::invalid_request,
                      where + ": the new ISR must list the leader and no broker twice");
  }
  for (int32_t node : request.new_isr) {
    if (!contains(current.replicas, node)) {
      return make_error(Errc::invalid_request,
                        where + ": broker " + std::to_string(node) + " is not a replica");
    }
    if (!eligible(image, node)) {
      return make_error(Errc::ineligible_replica,
                        where + ": broker " + std::to_string(node) + " is fenced");
    }
  }
  if (request.new_isr == current.isr) return AlterPartitionOutcome{current, std::nullopt};
  PartitionChanged change{request.topic,   request.topic_id,         request.partition,
                          current.leader,  request.new_isr,          current.leader_epoch,
                          current.partition_epoch + 1};
  PartitionState next = current;
  next.isr = request.new_isr;
  next.partition_epoch = change.partition_epoch;
  return AlterPartitionOutcome{std::move(next), std::move(change)};
}

}  // namespace holdfast::controller
