// The cluster's metadata as an immutable image (DESIGN §5).
//
// Writers append MetadataRecords to the metadata log; each record is applied
// to the current image to produce the next one. Readers take a shared pointer
// to the current image and never see it change under them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "metadata/acl_binding.h"
#include "metadata/client_quota.h"

namespace holdfast::metadata {

using TopicId = std::array<uint8_t, 16>;
using ConfigMap = std::map<std::string, std::string>;

// No leader: the partition is offline (no eligible replica is alive).
constexpr int32_t kNoLeader = -1;

// Where one partition lives and who leads it (Kafka's PartitionRegistration).
//   replicas         the brokers that hold a copy, preferred leader first;
//   leader           a member of `isr`, or kNoLeader (offline);
//   isr              the in-sync replicas, a non-empty subset of `replicas`.
//                    An offline partition keeps its last ISR member (KRaft's
//                    rule), so it remembers who has the acknowledged data;
//   leader_epoch     bumped whenever the leader changes (to kNoLeader too);
//   partition_epoch  bumped on every change of this state (the version that
//                    an ISR change proposed by the leader must match).
struct PartitionState {
  std::vector<int32_t> replicas;
  int32_t leader = kNoLeader;
  std::vector<int32_t> isr;
  int32_t leader_epoch = 0;
  int32_t partition_epoch = 0;

  bool operator==(const PartitionState&) const = default;
};

struct TopicInfo {
  std::string name;
  TopicId id{};
  int32_t partition_count = 0;
  ConfigMap configs;  // only the settings that differ from the broker defaults
  // One entry per partition (partitions.size() == partition_count).
  std::vector<PartitionState> partitions = {};
};

// A listener through which a broker is reached ("PLAINTEXT", "CONTROLLER", ...).
struct BrokerEndpoint {
  std::string listener;
  std::string host;
  int32_t port = 0;

  bool operator==(const BrokerEndpoint&) const = default;
};

// A registered broker (Kafka's BrokerRegistration).
//   epoch        grows with every registration of this node id: a broker that
//                restarts registers again (a new incarnation) and gets a new
//                epoch, so requests carrying the old epoch are recognisably stale;
//   incarnation  random per process start; a registration retried by the same
//                process carries the same one;
//   fenced       a fenced broker leads nothing and is in no ISR (except as the
//                last member of an offline partition). Registered fenced; the
//                controller unfences it on a heartbeat once it has caught up
//                with the metadata log.
struct BrokerInfo {
  int32_t node_id = 0;
  int64_t epoch = 0;
  TopicId incarnation{};
  std::vector<BrokerEndpoint> endpoints;
  std::string rack;  // empty: none
  bool fenced = true;
  // Index of the record that registered this incarnation: a heartbeat must
  // report having applied at least this far before the broker is unfenced.
  int64_t registered_index = -1;
};

// A SCRAM credential (RFC 5802): never the password, only what the server
// needs to check a proof. Byte strings held in std::string.
struct ScramCredentialInfo {
  std::string salt;
  std::string stored_key;
  std::string server_key;
  int32_t iterations = 0;

  bool operator==(const ScramCredentialInfo&) const = default;
};

struct MetadataImage {
  std::map<std::string, TopicInfo> topics;
  std::map<int32_t, BrokerInfo> brokers;
  int64_t last_record_index = -1;  // index in the metadata log of the last applied record
  // The node that holds every partition of a topic written without an
  // assignment: records and snapshots of single-node Holdfast from before
  // assignments existed (and TopicManager's records, which still carry none).
  // Such a partition reads as replicas=[sole], leader=sole, isr=[sole], epochs 0.
  // Not part of the replicated state and not in snapshots: the local log sets
  // it when it opens (MetadataStore: the configured node.id, which
  // meta.properties ties to the data dir). -1 (a Raft log): no sole node, and a
  // topic record without an assignment is invalid_record.
  int32_t sole_node_id = -1;
  // SASL/SCRAM credentials (issue 11), keyed by (user name, mechanism: 1 =
  // SCRAM-SHA-256, 2 = SCRAM-SHA-512, Kafka's ScramMechanism codes).
  std::map<std::pair<std::string, int8_t>, ScramCredentialInfo> scram_credentials = {};
  // The (user, mechanism) credentials ever created from the bootstrap file
  // (sasl.scram.bootstrap.file): each is created once, so deleting one later
  // is not undone by the next controller or restart. In snapshots.
  std::set<std::pair<std::string, int8_t>> scram_bootstrapped = {};
  // The ACL bindings (AclsCreated / AclsDeleted records; acl_binding.h).
  AclSet acls;
  // Client quotas (ClientQuotasAltered records; client_quota.h).
  ClientQuotaMap client_quotas = {};

  const TopicInfo* find_topic(const std::string& name) const {
    auto it = topics.find(name);
    return it == topics.end() ? nullptr : &it->second;
  }
  const BrokerInfo* find_broker(int32_t node_id) const {
    auto it = brokers.find(node_id);
    return it == brokers.end() ? nullptr : &it->second;
  }
};

using ImagePtr = std::shared_ptr<const MetadataImage>;

// Metadata records. Each is a fact about the cluster, applied in log order.
//
// `partitions` of TopicCreated / PartitionsAdded: the state of each new
// partition (replicas, leader in the ISR, epochs 0); empty = no assignment
// (resolved to the image's sole node, see MetadataImage::sole_node_id).
struct TopicCreated {
  std::string name;
  TopicId id{};
  int32_t partition_count = 0;
  ConfigMap configs;
  std::vector<PartitionState> partitions = {};
};
struct PartitionsAdded {
  std::string name;
  int32_t new_partition_count = 0;
  std::vector<PartitionState> partitions = {};  // the added ones only, in order
};
struct TopicConfigsReplaced {
  std::string name;
  ConfigMap configs;
};
struct TopicDeleted {
  std::string name;
};
// A broker (re)registers: a new incarnation, a higher epoch, registered fenced.
struct BrokerRegistered {
  int32_t node_id = 0;
  int64_t epoch = 0;
  TopicId incarnation{};
  std::vector<BrokerEndpoint> endpoints;
  std::string rack;
};
// The broker's session expired (fenced) or it heartbeats again after having
// caught up (unfenced). `epoch` must be the broker's current epoch.
struct BrokerFenced {
  int32_t node_id = 0;
  int64_t epoch = 0;
};
struct BrokerUnfenced {
  int32_t node_id = 0;
  int64_t epoch = 0;
};
// A change of one partition's leader and/or ISR (Kafka's
// PartitionChangeRecord). Carries the resulting state whole; applies only on
// top of partition_epoch - 1 (a change computed from a stale image does not
// apply), with leader_epoch bumped by one exactly when the leader changes.
struct PartitionChanged {
  std::string name;
  TopicId id{};  // guards against a topic deleted and created again under the name
  int32_t partition = 0;
  int32_t leader = kNoLeader;
  std::vector<int32_t> isr;
  int32_t leader_epoch = 0;
  int32_t partition_epoch = 0;
};

// A user's SCRAM credential for one mechanism is set (created or replaced)
// or removed (AlterUserScramCredentials, `holdfast user`).
struct ScramCredentialUpserted {
  std::string user;
  int8_t mechanism = 0;  // 1 SCRAM-SHA-256, 2 SCRAM-SHA-512
  std::string salt;
  std::string stored_key;
  std::string server_key;
  int32_t iterations = 0;
  // Created from sasl.scram.bootstrap.file (server/security/scram_bootstrap.h):
  // the image remembers the key in scram_bootstrapped.
  bool bootstrap = false;
};
struct ScramCredentialDeleted {
  std::string user;
  int8_t mechanism = 0;
};

using MetadataRecord = std::variant<TopicCreated, PartitionsAdded, TopicConfigsReplaced, TopicDeleted,
                                    BrokerRegistered, BrokerFenced, BrokerUnfenced, PartitionChanged,
                                    ScramCredentialUpserted, ScramCredentialDeleted,
                                    AclsCreated, AclsDeleted, ClientQuotasAltered>;

enum class Errc {
  corrupt,
  io_error,
  invalid_record,
  // Replicated metadata log (raft_metadata_log.h): this node is not the Raft
  // leader, so nothing was appended; the caller must send the record to the
  // leader (forwarding is not built yet).
  not_leader,
  // The leader lost leadership after proposing the record: it may or may not
  // be committed later by the next leader. Read the image before retrying.
  unknown_outcome,
  // The log is shutting down (or failed to start); nothing more is appended.
  shut_down,
  // A cluster setting (controller.quorum.voters, node.id) is malformed or
  // inconsistent; start-up stops with a message naming the setting.
  invalid_config,
};

// Applies one record. A record that does not fit the image (a partition count
// that shrinks, a topic that does not exist, a replica that is not a
// registered broker, a leader outside the ISR, a stale partition or broker
// epoch) is invalid_record: the log only ever holds records that were checked
// before they were written.
Result<ImagePtr, Errc> apply_record(const MetadataImage& image, const MetadataRecord& record,
                                    int64_t record_index);

// Serialisation of a record as one JSON object (the payload of a metadata log
// entry; docs/storage-format.md §metadata).
std::string encode_record(const MetadataRecord& record);
Result<MetadataRecord, Errc> decode_record(std::string_view payload);

std::string topic_id_to_string(const TopicId& id);

// The state of a partition of a topic written without an assignment: on
// `node` alone, led by it, epochs 0.
PartitionState sole_node_partition(int32_t node);

// Why `state` cannot be a partition's state in `image` (empty: it can):
// replicas distinct and registered brokers (the image's sole node counts as
// registered), ISR a non-empty subset of them, leader in the ISR or kNoLeader,
// epochs >= 0.
std::string check_partition_state(const MetadataImage& image, const PartitionState& state);

}  // namespace holdfast::metadata
