// The consumer group coordinator and offset store (DESIGN §6).
//
// A group belongs to the `__consumer_offsets` partition its id hashes to
// (partition_for_group). Everything the coordinator must remember — committed
// offsets and group metadata (generation, members, assignments) — is appended
// to that partition as records (group_records.h) and is rebuilt by replaying
// the partition at start-up; until a partition is replayed its groups answer
// coordinator_load_in_progress.
//
// Cluster mode (options.follow_leadership): the coordinator of a group is the
// leader of its partition, as in Kafka. A partition serves nothing
// (not_coordinator) until became_leader() says this broker leads it; it is then
// replayed from its log, to the log end, on the loader thread (its groups
// answer coordinator_load_in_progress meanwhile), and dropped from memory by
// became_follower() (waiting joins and syncs get not_coordinator; commits
// waiting for followers fail when the replica stops leading). Every load and
// unload bumps the partition's generation: a load whose partition moved
// (another generation, or the replica no longer leads the epoch the load
// started for) is discarded. Writes go through the replication::Partition
// (refused unless it leads; acks=all with min.insync.replicas) and are
// answered once the high watermark passes them, i.e. once they are on disk on
// every in-sync replica.
//
// Replaying to the log end, not to the high watermark, is what Kafka does and
// is safe for the same reason: the leader's log is the partition's history
// from its election on. Every record in it stays (followers truncate to it,
// never it to them) unless this replica loses the leadership, and losing it
// unloads the partition, so nothing loaded from a suffix that another leader
// discards outlives the leadership that wrote it. A record above the high
// watermark at load time is a write the previous leadership never
// acknowledged; serving it is the same as serving a commit that is still
// waiting for its followers.
//
// Threading: plain C++, no Asio. Every public method may be called from any
// thread. Each coordinator partition has one mutex guarding its groups; it is
// never held across a durability wait and never while a completion callback
// runs. Completions fire from the calling thread, the timer thread (deadlines)
// or the log's flusher thread (durability), exactly once each.
//
// Time: deadlines (session timeouts, rebalance timeouts, the initial rebalance
// delay) use options.clock; stored timestamps use options.wall_clock. Both are
// injectable, and tick() runs the timers so that tests drive time by hand.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "coordinator/group_records.h"
#include "replication/partition.h"
#include "storage/log_manager.h"

namespace holdfast::coordinator {

inline constexpr const char* kOffsetsTopic = "__consumer_offsets";

enum class GroupErrc {
  none = 0,
  coordinator_load_in_progress,
  coordinator_not_available,
  not_coordinator,
  invalid_group_id,
  unknown_member_id,
  illegal_generation,
  inconsistent_group_protocol,
  invalid_session_timeout,
  rebalance_in_progress,
  member_id_required,
  fenced_instance_id,
  group_id_not_found,
  non_empty_group,
  unstable_offset_commit,
  offset_metadata_too_large,
  group_subscribed_to_topic,
  storage_error,  // the append or its fsync failed: nothing was acknowledged
  invalid_producer_epoch,  // TxnOffsetCommit from a producer epoch older than the log's
};
const char* to_string(GroupErrc e);

struct GroupCoordinatorOptions {
  int32_t num_partitions = 50;                 // offsets.topic.num.partitions
  int64_t initial_rebalance_delay_ms = 3000;   // group.initial.rebalance.delay.ms
  int32_t min_session_timeout_ms = 6000;       // group.min.session.timeout.ms
  int32_t max_session_timeout_ms = 1800000;    // group.max.session.timeout.ms
  int64_t offsets_retention_ms = 10080LL * 60 * 1000;  // offsets.retention.minutes
  int64_t offsets_retention_check_interval_ms = 600000;
  int32_t offset_metadata_max_bytes = 4096;    // offset.metadata.max.bytes
  bool start_timer_thread = true;              // false: the test calls tick()
  int64_t tick_interval_ms = 20;
  std::function<int64_t()> clock;       // deadlines; default steady clock (ms)
  std::function<int64_t()> wall_clock;  // stored timestamps; default system clock (ms)
  // Cluster mode: partitions are served only while this broker leads them
  // (became_leader / became_follower); writes wait for the high watermark.
  bool follow_leadership = false;
  // Cluster mode: min.insync.replicas for the writes (acks=all, as Kafka's
  // coordinator writes with required acks -1). Unset: no minimum.
  std::function<int32_t()> min_insync_replicas;
  // Tests: runs on the loader thread after a partition was read and before
  // its groups are installed.
  std::function<void(int32_t partition)> after_replay_for_test;
};

struct Protocol {
  std::string name;
  Bytes metadata;
};

struct JoinParams {
  std::string group_id;
  std::string member_id;  // empty for a new member
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::string protocol_type;
  std::vector<Protocol> protocols;
  bool require_known_member_id = false;  // JoinGroup v4+
};

struct JoinedMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  Bytes metadata;
};

struct JoinResult {
  GroupErrc error = GroupErrc::none;
  int32_t generation = -1;
  std::string protocol_type;
  std::string protocol_name;
  std::string leader;
  std::string member_id;
  std::vector<JoinedMember> members;  // only for the leader
};

struct SyncParams {
  std::string group_id;
  int32_t generation = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::vector<std::pair<std::string, Bytes>> assignments;  // from the leader
};

struct SyncResult {
  GroupErrc error = GroupErrc::none;
  Bytes assignment;
};

struct MemberIdentity {
  std::string member_id;
  std::optional<std::string> group_instance_id;
};

struct LeaveResult {
  GroupErrc error = GroupErrc::none;  // group-level
  std::vector<GroupErrc> members;     // per requested member
};

struct TopicPartitionKey {
  std::string topic;
  int32_t partition = 0;
  friend auto operator<=>(const TopicPartitionKey&, const TopicPartitionKey&) = default;
};

struct OffsetCommitEntry {
  TopicPartitionKey tp;
  int64_t offset = 0;
  int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  int64_t expire_timestamp_ms = -1;  // OffsetCommit v2-4 retention_time_ms
};

struct CommitParams {
  std::string group_id;
  int32_t generation = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::vector<OffsetCommitEntry> offsets;
};

// TxnOffsetCommit (KIP-447: generation and member are checked when given).
struct TxnCommitParams {
  std::string group_id;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t generation = -1;
  std::string member_id;  // empty: not checked
  std::optional<std::string> group_instance_id;
  std::vector<OffsetCommitEntry> offsets;
};

struct CommitResult {
  std::vector<GroupErrc> errors;  // one per CommitParams::offsets entry
};

struct FetchedOffset {
  TopicPartitionKey tp;
  int64_t offset = -1;  // -1: nothing committed
  int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  GroupErrc error = GroupErrc::none;
};

struct OffsetFetchResult {
  GroupErrc error = GroupErrc::none;
  std::vector<FetchedOffset> offsets;
};

struct GroupListing {
  std::string group_id;
  std::string protocol_type;
  std::string state;
};

struct DescribedMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  std::string client_host;
  Bytes metadata;
  Bytes assignment;
};

struct GroupDescription {
  GroupErrc error = GroupErrc::none;
  std::string group_id;
  std::string state;  // Empty, PreparingRebalance, CompletingRebalance, Stable, Dead
  std::string protocol_type;
  std::string protocol_name;
  std::vector<DescribedMember> members;
};

struct OffsetDeleteResult {
  GroupErrc error = GroupErrc::none;
  std::vector<GroupErrc> partitions;  // per requested partition
};

struct Group;
struct CoordinatorPartition;

// Completions collected under a partition's mutex and run after it is released.
using Deferred = std::vector<std::function<void()>>;

class GroupCoordinator {
 public:
  // `logs` must outlive the coordinator and already hold every partition of
  // kOffsetsTopic (0 .. options.num_partitions - 1), unless
  // options.follow_leadership (the partitions come with became_leader).
  GroupCoordinator(storage::LogManager& logs, GroupCoordinatorOptions options);
  ~GroupCoordinator();
  GroupCoordinator(const GroupCoordinator&) = delete;
  GroupCoordinator& operator=(const GroupCoordinator&) = delete;

  // Starts replaying every partition on a loader thread (groups of a partition
  // answer coordinator_load_in_progress until it is done) and the timer thread.
  // With follow_leadership the loader replays only what became_leader queues.
  void start();

  // ---- Cluster mode (options.follow_leadership) ----
  // This broker leads `partition` (a __consumer_offsets replica) in its
  // current leader epoch: its groups are loaded. The same leadership again is
  // a no-op; a new epoch reloads. Ignored unless the replica leads now.
  void became_leader(std::shared_ptr<replication::Partition> partition);
  // This broker no longer leads `partition`: its groups are dropped from
  // memory (waiting joins and syncs answer not_coordinator).
  void became_follower(const std::shared_ptr<replication::Partition>& partition);
  // Whether the partition is loaded and served here (tests, introspection).
  bool serving(int32_t partition);
  // Tests: blocks until every partition is loaded.
  bool wait_until_loaded(int64_t timeout_ms);
  // How many coordinator partitions are loading, active (serving) or failed
  // (metrics, admin API).
  struct LoadCounts {
    int loading = 0;
    int active = 0;
    int failed = 0;
  };
  LoadCounts load_counts();
  // Fails every waiting join and sync (coordinator_not_available), stops the
  // threads; later calls answer coordinator_not_available.
  void shutdown();

  int32_t partition_for(const std::string& group_id) const;
  int32_t num_partitions() const { return options_.num_partitions; }

  // The contract of each operation is Kafka's GroupCoordinator's; see
  // docs/consumer-groups.md. Callbacks fire exactly once, from any thread.
  void join(JoinParams params, std::function<void(JoinResult)> done);
  void sync(SyncParams params, std::function<void(SyncResult)> done);
  GroupErrc heartbeat(const std::string& group_id, const std::string& member_id,
                      const std::optional<std::string>& group_instance_id, int32_t generation);
  // Answers once every record the leave wrote (the group's empty generation,
  // when the last member left) is durable.
  void leave(const std::string& group_id, const std::vector<MemberIdentity>& members,
             std::function<void(LeaveResult)> done);

  // Responds once the commit is durable (LogManager::wait_durable).
  void commit(CommitParams params, std::function<void(CommitResult)> done);
  // topics == nullopt: every committed offset of the group.
  OffsetFetchResult fetch_offsets(const std::string& group_id,
                                  const std::optional<std::vector<TopicPartitionKey>>& partitions,
                                  bool require_stable);
  Result<std::vector<GroupListing>, GroupErrc> list_groups(const std::set<std::string>& states);
  GroupDescription describe(const std::string& group_id);
  void delete_groups(std::vector<std::string> group_ids,
                     std::function<void(std::vector<GroupErrc>)> done);
  void delete_offsets(const std::string& group_id, std::vector<TopicPartitionKey> partitions,
                      std::function<void(OffsetDeleteResult)> done);
  // TxnOffsetCommit: the offsets are written as a transactional batch of the
  // producer (its id and epoch) and stay pending — invisible to OffsetFetch,
  // which answers unstable_offset_commit for them with require_stable —
  // until complete_txn. Responds once the batch is durable.
  void txn_commit(TxnCommitParams params, std::function<void(CommitResult)> done);
  // The transaction marker for `producer_id` was written to
  // `offsets_partition` (the WriteTxnMarkers receiver calls this): its
  // pending offsets become the committed ones (commit) or are dropped.
  void complete_txn(int32_t offsets_partition, int64_t producer_id, bool commit);
  // Writes tombstones for every group's offsets of `topic` (topic deleted).
  void remove_offsets_of_topic(const std::string& topic);

  // Runs due timers: join/sync deadlines, session expiry, offset expiry.
  void tick();
  // Runs the offset expiry pass now (also what tick() does every
  // offsets_retention_check_interval_ms). Returns how many offsets expired.
  int expire_offsets_now();

 private:
  struct AppendTicket {
    CoordinatorPartition* part = nullptr;
    storage::PartitionLog* log = nullptr;
    // Cluster mode: wait for the high watermark of this replica, in the load
    // generation the append was made in.
    std::shared_ptr<replication::Partition> replica;
    uint64_t generation = 0;
    int32_t min_insync = 0;
    int64_t end_offset = -1;  // -1: nothing to wait for
    GroupErrc error = GroupErrc::none;
  };

  CoordinatorPartition* partition_of(const std::string& group_id);
  // nullopt if the partition can serve requests; otherwise the error to answer.
  std::optional<GroupErrc> not_ready(const CoordinatorPartition& part) const;

  // ---- membership (group_membership.cc); all with part.mu held ----
  void join_locked(CoordinatorPartition& part, JoinParams params,
                   std::function<void(JoinResult)> done, Deferred& deferred);
  void add_member_and_rebalance(CoordinatorPartition& part, Group& group, JoinParams& params,
                                std::string member_id, std::function<void(JoinResult)> done,
                                Deferred& deferred);
  void update_member_and_rebalance(CoordinatorPartition& part, Group& group,
                                   const std::string& member_id, JoinParams& params,
                                   std::function<void(JoinResult)> done, Deferred& deferred);
  void prepare_rebalance(CoordinatorPartition& part, Group& group, const std::string& reason,
                         Deferred& deferred);
  void maybe_complete_join(CoordinatorPartition& part, Group& group, Deferred& deferred);
  void complete_join(CoordinatorPartition& part, Group& group, Deferred& deferred);
  void remove_member(CoordinatorPartition& part, Group& group, const std::string& member_id,
                     const std::string& reason, Deferred& deferred);
  void reset_and_fail_syncs(Group& group, GroupErrc error, Deferred& deferred);
  void on_group_stored(CoordinatorPartition& part, const std::string& group_id, int32_t generation,
                       GroupErrc stored);
  void tick_partition(CoordinatorPartition& part, int64_t now, Deferred& deferred);

  // ---- persistence (group_store.cc) ----
  // Appends records (key, value or tombstone) as one batch to the partition's
  // log. Requires part.mu held (appends of one partition stay in order).
  struct TxnProducer;
  AppendTicket append_locked(CoordinatorPartition& part,
                             const std::vector<std::pair<std::string, std::optional<std::string>>>&
                                 records,
                             const TxnProducer* producer = nullptr);
  // `producer`: a transactional batch of that producer (TxnOffsetCommit),
  // with the next sequence the partition expects from it.
  struct TxnProducer {
    int64_t id = -1;
    int16_t epoch = -1;
  };
  AppendTicket append_records_locked(
      CoordinatorPartition& part,
      const std::vector<std::pair<std::string, std::optional<std::string>>>& records,
      const TxnProducer* producer = nullptr);
  AppendTicket store_group_locked(CoordinatorPartition& part, const Group& group);
  // One ticket for everything appended to `part` since its append count was
  // `appends_before`: for an operation whose state change wrote records as a
  // side effect (a leave that empties the group), so that its answer waits
  // for them. Requires part.mu held and part.appends != appends_before.
  AppendTicket appended_since_locked(CoordinatorPartition& part, uint64_t appends_before) const;
  // After part.mu is released: runs `then` once the ticket's records are
  // durable (or at once if there was nothing to wait for / the append failed).
  void when_durable(const AppendTicket& ticket, std::function<void(GroupErrc)> then);
  // Replays `log` into `part` unless the partition's load generation moved
  // past `generation` meanwhile (a stale load is discarded).
  void load_partition(CoordinatorPartition& part, storage::PartitionLog* log, uint64_t generation);
  // Drops the partition's groups (cluster mode: it is no longer led here).
  void unload_locked(CoordinatorPartition& part, Deferred& deferred);
  // Members waiting in a join or sync are told to find the coordinator again
  // (not_coordinator), as Kafka does when a coordinator partition is unloaded
  // or the broker shuts down. With the partition's mutex held.
  void send_waiting_members_away(Group& group, Deferred& deferred);
  // The replica's append/HW errors as the coordinator answers them (Kafka's
  // GroupMetadataManager mapping).
  static GroupErrc from_replication(replication::Errc e);
  GroupValue group_value(const Group& group) const;

  // ---- offsets (group_offsets.cc) ----
  int expire_offsets_locked(CoordinatorPartition& part, int64_t now_wall,
                            std::vector<AppendTicket>& tickets);

  int64_t now() const { return options_.clock(); }
  int64_t wall_now() const { return options_.wall_clock(); }
  std::string new_member_id(const std::string& client_id);
  void timer_loop();
  void loader_loop();
  void load_queue_loop();

  storage::LogManager& logs_;
  GroupCoordinatorOptions options_;
  std::vector<std::unique_ptr<CoordinatorPartition>> partitions_;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> member_counter_{0};
  int64_t last_expiry_check_ = 0;

  std::mutex threads_mu_;
  std::condition_variable threads_cv_;
  bool stop_threads_ = false;
  std::thread timer_;
  std::thread loader_;
  std::deque<std::pair<int32_t, uint64_t>> load_queue_;  // (partition, generation), threads_mu_
};

}  // namespace holdfast::coordinator
