// The cluster controller (DESIGN §5, docs/dev/cluster-plan.md): the decisions
// the Raft leader of the metadata log makes, as a deterministic class over a
// MetadataImage and an injected clock. It produces MetadataRecords for the
// caller to append; it never appends, and it holds no metadata of its own
// beyond the brokers' heartbeat times and the metadata progress their
// heartbeats report (soft state, as in Kafka's BrokerHeartbeatManager: a new
// controller starts every session afresh and knows no broker's progress).
//
// Every decision is computed from the image it is given, so records computed
// from a stale image fail to apply (invalid_record: epochs do not follow) and
// are simply recomputed. tick() is level-triggered: it fixes whatever the
// image says is wrong (a fenced leader, a fenced ISR member, an offline
// partition whose ISR member came back), so a controller that fails over
// between a broker_fenced record and the elections that follow it finishes
// the job on its first tick.
//
// Rules (Kafka KRaft's unless said):
//   - Registration: a broker registers with its node id, a random incarnation
//     per process start, endpoints and rack. A retry with the same incarnation
//     returns the registered epoch and writes nothing. A new incarnation gets
//     epoch + 1 and is registered fenced, unless another incarnation of that
//     id is still alive (unfenced, session not expired):
//     duplicate_broker_registration (two processes with one node.id).
//   - Heartbeats carry the broker epoch and the index of the last metadata
//     record the broker applied. A fenced broker is unfenced by a heartbeat
//     with its current epoch once it has applied its own registration.
//   - A broker whose heartbeats stop for session_timeout_ms is fenced.
//   - A fenced broker leads nothing and leaves every ISR, except that an ISR
//     is never emptied: when no member is eligible the partition goes offline
//     (leader -1) and keeps its ISR, so it remembers who has the acknowledged
//     data and elects one of them when it returns.
//   - Leaders are elected from the ISR, in replica order (the preferred
//     leader first). With unclean.leader.election.enable=true on the topic (or
//     as the broker default), an offline partition may elect any live replica
//     instead, and the ISR becomes just that replica: messages acknowledged
//     by the old ISR but not copied to it are lost, and consumers may see
//     offsets reused with different messages. Off by default.
//   - The leader epoch bumps whenever the leader changes (to -1 too); the
//     partition epoch bumps on every change.
//   - AlterPartition (an ISR change proposed by the partition leader) is
//     accepted only from the current leader, with the current leader epoch
//     and partition epoch, and only for an ISR of eligible replicas that
//     includes the leader.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "controller/errc.h"
#include "controller/placement.h"
#include "metadata/metadata_image.h"

namespace holdfast::controller {

// Milliseconds on a monotonic clock (steady_clock in the broker; a counter in tests).
using Clock = std::function<int64_t()>;

struct ControllerConfig {
  int64_t session_timeout_ms = 9000;         // broker.session.timeout.ms
  bool unclean_leader_election = false;      // unclean.leader.election.enable (broker default)
};

struct BrokerRegistrationRequest {
  int32_t node_id = 0;
  metadata::TopicId incarnation{};
  std::vector<metadata::BrokerEndpoint> endpoints;
  std::string rack;
};

struct RegistrationOutcome {
  int64_t epoch = 0;                                // the broker's epoch once `record` applies
  std::optional<metadata::MetadataRecord> record;   // none: a retry, already registered
};

struct HeartbeatRequest {
  int32_t node_id = 0;
  int64_t broker_epoch = 0;
  int64_t applied_index = -1;  // last metadata record the broker applied
};

// What the controller last heard from a broker's heartbeat (soft state,
// served by DescribeQuorum). Indexes are metadata record indexes
// (MetadataImage::last_record_index), not Raft log indexes.
struct BrokerProgress {
  int64_t applied_index = -1;        // as the last accepted heartbeat reported it
  int64_t last_heartbeat_wall_ms = -1;  // wall clock of that heartbeat
  // Wall clock of the last heartbeat whose applied index had reached the
  // last record the controller's image held then (-1: none yet).
  int64_t last_caught_up_wall_ms = -1;
};

struct HeartbeatOutcome {
  bool fenced = true;  // as the broker stands once `record` (if any) applies
  std::optional<metadata::MetadataRecord> record;  // broker_unfenced, when it is unfenced now
};

struct AlterPartitionRequest {
  int32_t broker_id = 0;  // the proposer, which must lead the partition
  int64_t broker_epoch = 0;
  std::string topic;
  metadata::TopicId topic_id{};
  int32_t partition = 0;
  int32_t leader_epoch = 0;     // as the proposer knows them
  int32_t partition_epoch = 0;
  std::vector<int32_t> new_isr;
};

struct AlterPartitionOutcome {
  metadata::PartitionState state;  // the partition once `record` (if any) applies
  std::optional<metadata::PartitionChanged> record;  // none: the ISR is already that
};

class Controller {
 public:
  // `clock` is monotonic (sessions); `wall_clock` gives the wall-clock
  // milliseconds reported in BrokerProgress (system_clock when unset).
  Controller(ControllerConfig config, Clock clock, Clock wall_clock = {});

  Result<RegistrationOutcome, Errc> register_broker(const metadata::MetadataImage& image,
                                                    const BrokerRegistrationRequest& request);
  Result<HeartbeatOutcome, Errc> heartbeat(const metadata::MetadataImage& image,
                                           const HeartbeatRequest& request);

  // The progress of every broker whose heartbeat this controller accepted,
  // by node id. A heartbeat refused (unknown broker, stale epoch) changes
  // nothing; a registration alone records no progress.
  const std::map<int32_t, BrokerProgress>& progress() const { return progress_; }

  // Records that fence expired sessions, then move leaders off fenced
  // brokers, take fenced brokers out of ISRs and bring offline partitions
  // back: a sequence that applies in order on `image`. Empty when all is well.
  std::vector<metadata::MetadataRecord> tick(const metadata::MetadataImage& image);

  // A new topic with its replicas placed (placement.h). `id` is the new
  // topic id (random, chosen by the caller).
  Result<metadata::TopicCreated, Errc> create_topic(const metadata::MetadataImage& image,
                                                    const std::string& name,
                                                    const metadata::TopicId& id,
                                                    int32_t partitions, int16_t replication_factor,
                                                    metadata::ConfigMap configs) const;
  // Partitions added to a topic, with its existing replication factor.
  Result<metadata::PartitionsAdded, Errc> add_partitions(const metadata::MetadataImage& image,
                                                         const std::string& name,
                                                         int32_t new_partition_count) const;

  Result<AlterPartitionOutcome, Errc> alter_partition(const metadata::MetadataImage& image,
                                                      const AlterPartitionRequest& request) const;

  // The partition change that elects a leader and drops ineligible ISR
  // members, computed from `image` (none if nothing needs to change).
  std::optional<metadata::PartitionChanged> elect(const metadata::MetadataImage& image,
                                                  const metadata::TopicInfo& topic,
                                                  int32_t partition) const;

 private:
  bool session_alive(int32_t node_id, int64_t now);
  bool unclean_allowed(const metadata::TopicInfo& topic) const;

  const ControllerConfig config_;
  const Clock clock_;
  const Clock wall_clock_;
  std::map<int32_t, int64_t> last_heartbeat_ms_;  // soft state, per node id
  std::map<int32_t, BrokerProgress> progress_;    // soft state, per node id
};

}  // namespace holdfast::controller
