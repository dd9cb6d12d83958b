// Topic administration: validates requests and appends metadata records.
// The local replicas (partition logs) follow the applied records through
// replication::PartitionLifecycle; a change is answered only once the
// lifecycle has handled its record, so a CreateTopics answer is never sent
// before the partitions exist (clients produce right after) and a
// DeleteTopics answer not before they are gone.
//
// Changes run one at a time, in arrival order, each validated against the
// image that has the previous one (two creates of one name: the second is
// TOPIC_ALREADY_EXISTS; two config changes: neither is lost). A change waits
// for its record asynchronously: the network thread that asked is free to
// serve other connections meanwhile (a Raft commit can take as long as a
// quorum is missing). Handlers use await_change(); the blocking forms are
// for threads that may block (start-up, the admin HTTP server, tests).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "controller/controller.h"
#include "metadata/metadata_log.h"
#include "replication/partition_lifecycle.h"
#include "server/async.h"
#include "server/broker_config.h"
#include "server/kafka_error.h"
#include "server/topic_config.h"

namespace holdfast::server {

struct TopicOutcome {
  KafkaError error = KafkaError::none;
  std::string message;  // for the error_message fields; empty on success
  bool ok() const { return error == KafkaError::none; }
};

// How long a topic change may wait for its record to be committed and
// handled by the local replicas before it is answered REQUEST_TIMED_OUT (the
// record may still be committed later: the outcome is unknown).
inline constexpr std::chrono::milliseconds kTopicChangeTimeout{30000};

// A topic change's outcome and the metadata record it wrote.
struct TopicChange {
  TopicOutcome outcome;
  // The image index that includes the record; -1 when nothing was written
  // (refused, validate_only). The answer waits until the local replicas
  // follow it.
  int64_t record_index = -1;
  // DeleteTopics: a log the lifecycle could not remove is logged, not an
  // error (the next start's reconcile finishes the removal).
  bool replica_failure_is_error = true;
};

// Where an asynchronous topic change reports. `done` runs exactly once, on
// the thread that completes the change (the caller's when refused at once or
// with the local metadata file; the Raft thread in a cluster); it must not
// block. A caller that stops waiting sets `*abandoned`: a change still queued
// behind another is then dropped before it writes anything.
struct TopicCallback {
  std::function<void(TopicChange)> done;
  std::shared_ptr<std::atomic<bool>> abandoned = std::make_shared<std::atomic<bool>>(false);
};

// Starts one change (one of TopicManager's asynchronous methods) with the
// callback given.
using TopicChangeStart = std::function<void(TopicCallback)>;

// In cluster mode (config.cluster_mode()) the records carry replica
// assignments from the controller's placement (controller/placement.h) and go
// to the Raft metadata log; only the active controller's appends succeed (a
// non-controller gets NOT_CONTROLLER: the handlers forward to the controller
// before calling in here). On a single node, records carry no assignment and
// behave exactly as before.
class TopicManager {
 public:
  TopicManager(const BrokerConfig& config, metadata::MetadataLog& metadata,
               replication::PartitionLifecycle& lifecycle);

  metadata::ImagePtr image() const { return metadata_.current(); }

  // Runs the change `start` begins and returns its outcome once its record
  // is committed and the local replicas follow it, without blocking the
  // calling coroutine's thread. REQUEST_TIMED_OUT after `timeout`.
  // (Pass a named TopicChangeStart: GCC 12 and temporaries in co_await.)
  Awaitable<TopicOutcome> await_change(TopicChangeStart start,
                                       std::chrono::milliseconds timeout = kTopicChangeTimeout);
  // Waits without blocking the thread until the local replicas follow the
  // record at `record_index` (false at `deadline`); the error of that
  // record's file work, if it failed, in `*failure`.
  Awaitable<bool> await_replicas(int64_t record_index,
                                 std::chrono::steady_clock::time_point deadline,
                                 std::optional<std::string>* failure);

  // The changes. Each has an asynchronous form (reports to a TopicCallback)
  // and a blocking one (waits for the outcome and the local replicas,
  // bounded by kTopicChangeTimeout; never on a network thread).
  //
  // Creates a topic with `partitions` (-1 = num.partitions) partitions and the
  // given config overrides. With validate_only nothing changes.
  // `replication` -1 = default.replication.factor.
  void create_topic(std::string name, int32_t partitions, int16_t replication,
                    metadata::ConfigMap configs, bool validate_only, TopicCallback done);
  TopicOutcome create_topic(const std::string& name, int32_t partitions, int16_t replication,
                            const metadata::ConfigMap& configs, bool validate_only);
  // The replication factor for an auto-created topic (Metadata with
  // allow_auto_topic_creation, __consumer_offsets): `wanted` capped at the
  // live brokers in a cluster, with a logged warning when the cap applies; -1
  // (the default) on a single node.
  int16_t auto_create_replication(const std::string& name, int16_t wanted) const;
  void delete_topic(std::string name, TopicCallback done);
  TopicOutcome delete_topic(const std::string& name);
  void create_partitions(std::string name, int32_t new_total, bool validate_only,
                         TopicCallback done);
  TopicOutcome create_partitions(const std::string& name, int32_t new_total, bool validate_only);
  // Replaces the topic's overrides (AlterConfigs semantics: unspecified = default).
  void replace_configs(std::string name, metadata::ConfigMap configs, bool validate_only,
                       TopicCallback done);
  TopicOutcome replace_configs(const std::string& name, const metadata::ConfigMap& configs,
                               bool validate_only);
  // Applies IncrementalAlterConfigs operations to the topic's overrides,
  // atomically with respect to other config changes.
  void alter_configs(std::string name, std::vector<ConfigOp> ops, bool validate_only,
                     TopicCallback done);
  TopicOutcome alter_configs(const std::string& name, const std::vector<ConfigOp>& ops,
                             bool validate_only);

  storage::LogConfig log_config(const std::string& topic) const;

  // Creates __consumer_offsets (offsets.topic.num.partitions partitions,
  // cleanup.policy=compact) unless it exists; an existing topic keeps its
  // partition count, as in Kafka.
  TopicOutcome ensure_offsets_topic();
  // The overrides __consumer_offsets is created with.
  metadata::ConfigMap offsets_topic_configs() const;
  // Creates __transaction_state (transaction.state.log.num.partitions
  // partitions, compacted, replication factor
  // transaction.state.log.replication.factor, min.insync.replicas
  // transaction.state.log.min.isr) unless it exists.
  TopicOutcome ensure_transaction_state_topic();
  metadata::ConfigMap transaction_state_topic_configs() const;

  // Test hook: each metadata append calls `hook(proceed)` instead of
  // appending; the record goes to the log when (and on whichever thread)
  // `proceed` is called. Lets a test hold a commit that "cannot happen".
  void set_append_hook_for_testing(std::function<void(std::function<void()> proceed)> hook) {
    std::lock_guard lock(hook_mutex_);
    append_hook_ = std::move(hook);
  }

 private:
  // Completes the change at the head of the queue.
  using Complete = std::function<void(TopicChange)>;
  // A change's work, run at the head of the queue against the current image.
  using Body = std::function<void(Complete)>;
  struct Queued {
    Body body;
    TopicCallback callback;
  };

  // Queues `body`; it runs once the changes before it have completed (or
  // one of them has been in flight for longer than kTopicChangeTimeout).
  void enqueue(Body body, TopicCallback callback);
  void run(Queued op, uint64_t generation);
  // The change of `generation` has completed: starts the next one.
  void finished(uint64_t generation);
  // Blocks for the outcome of `start` and the local replicas (bounded).
  TopicOutcome run_blocking(const TopicChangeStart& start);

  // Validates `configs` as the topic's new overrides and, unless
  // validate_only, appends them. At the head of the queue.
  void commit_configs(const std::string& name, const metadata::TopicInfo& info,
                      const metadata::ConfigMap& configs, bool validate_only, Complete complete);
  // Appends one record; `complete` gets the outcome and the record's index.
  void append(metadata::MetadataRecord record, Complete complete, bool replica_failure_is_error,
              std::function<void()> on_success);

  const BrokerConfig& config_;
  metadata::MetadataLog& metadata_;
  // Placement only (const methods; no session state): the same decisions the
  // active controller makes, computed from the image.
  const controller::Controller placement_{{}, [] { return int64_t{0}; }};
  replication::PartitionLifecycle& lifecycle_;
  std::mutex queue_mutex_;
  std::deque<Queued> queue_;
  bool busy_ = false;
  uint64_t generation_ = 0;  // of the change in flight
  std::chrono::steady_clock::time_point started_;
  std::mutex hook_mutex_;
  std::function<void(std::function<void()>)> append_hook_;
};

// Internal topics (DESIGN §6): reported with is_internal, closed to client
// produce, never deleted, and their cleanup.policy and retention settings
// cannot be changed (turning off compaction of __consumer_offsets would put
// committed offsets under time retention).
bool is_internal_topic(const std::string& name);

}  // namespace holdfast::server
