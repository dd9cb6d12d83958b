// Topic and partition lifecycle on applied metadata records (issue 9, "the
// shape of the code"): the local replicas follow the metadata log, whatever
// implements it (the local file in single-node mode, Raft in a cluster).
//
// For each applied record:
//   TopicCreated, PartitionsAdded   create the missing local replicas
//                                   (ReplicaManager::create: log directory,
//                                   synced, then the Partition) of the
//                                   partitions whose replicas name this node
//                                   (ReplicaManager::node_id), and set their
//                                   role from the partition state;
//   PartitionChanged                the partition's new leader / ISR / epochs:
//                                   become_leader, become_follower or
//                                   apply_isr (the same leadership);
//   TopicConfigsReplaced            apply the topic's log config to its replicas;
//   TopicDeleted                    remove the replicas (their logs are deleted)
//                                   and tell the topic-deleted listeners (the
//                                   group coordinator drops committed offsets).
// A local replica whose topic is not in the image is deleted only if this
// process saw the topic (in an image or a record) and then its deletion; one
// whose topic it never saw (found at start-up: created by something we do
// not know, or deleted while this broker was down, which the image cannot
// tell apart) is set aside as a stray, `<dir>.<id>-stray`, kept on disk with
// a warning (Kafka's behaviour for stray partitions). A deletion that a
// crash interrupted is finished by LogManager::open (deletion-in-progress).
// A local replica of a partition whose replicas no longer name this node is
// removed. After a leadership change the ReplicaManager's role-change
// listener is told (follower fetchers start and stop there). In single-node
// mode every partition's state is this node alone (the image resolves
// records without assignments to its sole node): every replica is a leader
// with ISR = {this node}, as before.
// An event without a record (the image was replaced as a whole: a Raft
// snapshot install) reconciles every local replica against the image: create
// what it has, remove what it no longer has. start() runs the same reconcile
// against the image it subscribes from, which is what start-up needs after a
// crash between a metadata record and its file work.
//
// Each event is handled as "make the replicas of this topic match the image
// that came with the event", so handling one twice changes nothing, and
// events are applied in record-index order: an event whose index is not past
// the last one handled (a duplicate, or one delivered out of order) is
// skipped, so a late TopicCreated cannot bring back a topic deleted after it.
// A topic recreated under the same name is told apart by its topic id: local
// replicas of the old id are removed before the new ones are created.
//
// Threading (the decision the plan asked for): the work is done on this
// class's own thread, `hf-lifecycle`, not inside the metadata listener.
// Listeners run with the metadata store's lock held (local file) or on the
// hf-raft thread, and creating or deleting partition directories means
// mkdir/fsync/rmdir per partition: doing that in the listener would stall
// every MetadataStore::current() reader (each produce and metadata request)
// and the Raft thread (heartbeats, elections) for as long as the disk takes.
// The listener only queues the event. A caller that must not answer before
// the file work is done (CreateTopics: clients produce right after; and
// DeleteTopics) calls wait_applied(index of its record), which returns once
// this thread has handled it. In a cluster nobody waits for other brokers'
// replicas; they appear as those brokers apply the record.
//
// A failure to create or remove a log is logged and returned by
// wait_applied for that record; later records are still handled, and the
// next start's reconcile tries again.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metadata/metadata_log.h"
#include "replication/errc.h"
#include "replication/replica_manager.h"

namespace holdfast::replication {

// A topic's log config from its overrides in the image (the broker's
// defaults filled in); supplied by the server, which owns the defaults.
using LogConfigFor = std::function<storage::LogConfig(const metadata::ConfigMap& overrides)>;

class PartitionLifecycle {
 public:
  PartitionLifecycle(metadata::MetadataLog& metadata, ReplicaManager& replicas,
                     LogConfigFor config_for);
  // stop().
  ~PartitionLifecycle();
  PartitionLifecycle(const PartitionLifecycle&) = delete;
  PartitionLifecycle& operator=(const PartitionLifecycle&) = delete;

  // Subscribes to the metadata log, reconciles the local replicas against
  // the image it starts from (on the caller's thread: start-up waits for it),
  // then starts hf-lifecycle for the records applied after it. A reconcile
  // failure is returned and nothing is started.
  Result<void, Errc> start();
  // Cluster mode: subscribes but applies nothing, not even the start-up
  // reconcile, until caught_up(). A restarted broker's Raft log replays old
  // records first: acting on them would delete replicas of topics the
  // partial image does not have yet and make this node lead partitions it
  // led long ago (Kafka's brokers likewise publish metadata only once caught
  // up). Records that arrive meanwhile wait in the queue.
  Result<void, Errc> start_held();
  // The metadata log has caught up (the controller unfenced this broker, so
  // it applied its own registration and everything before it): reconciles
  // against the current image, then handles the queued records newer than
  // it. Idempotent; a no-op unless start_held() was used.
  void caught_up();
  // Cluster mode: this broker is fenced again (a controller fenced it, or
  // it lost contact with the controller quorum for a session). Records stop
  // being applied (they queue, as after start_held) and every local replica
  // that leads becomes a follower of no one: it refuses produces and fails
  // its pending acks=all waits with not_leader, because the controller has
  // (or will have) moved that leadership and this broker may not learn it.
  // Done on hf-lifecycle, in order with the records it applies. caught_up()
  // resumes from the then-current image. Idempotent.
  void hold();

  // Blocks until every record up to `record_index` (an image's
  // last_record_index) has been handled. The error is the one of that
  // record's file work, if it failed; shut_down if stop() came first.
  Result<void, Errc> wait_applied(int64_t record_index);

  // Called on hf-lifecycle, after a topic's local replicas are removed
  // because the topic was deleted. Must not block on the metadata log.
  void add_topic_deleted_listener(std::function<void(const std::string& topic)> listener);

  // The index of the last record handled (-1 before any).
  int64_t applied_index() const;

  // Stops the thread after the event in hand; queued events are dropped and
  // waiters get shut_down. Idempotent.
  void stop();

 private:
  // One applied change as queued by the listener.
  struct Event {
    std::optional<metadata::MetadataRecord> record;  // nullopt: image replaced
    metadata::ImagePtr image;
  };
  // What the listener shares with this object: it may outlive it (metadata
  // listeners live as long as the log).
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Event> events;
    bool stopped = false;
    bool held = false;  // start_held() or hold() until caught_up()
    bool step_down = false;  // hold() asked hf-lifecycle to step down
    int64_t applied_index = -1;
    std::map<int64_t, std::string> failures;  // record index -> why its file work failed
  };

  void run();
  Result<void, Errc> handle(const Event& event);
  // hold()'s work on hf-lifecycle.
  void step_down_leaders();
  std::shared_ptr<const metadata::MetadataImage> subscribe();
  Result<void, Errc> reconcile_all(const metadata::MetadataImage& image);
  // Makes the local replicas of `name` match `info` (nullptr: the topic is
  // gone). `deleted` says a TopicDeleted record asked for it.
  Result<void, Errc> reconcile_topic(const std::string& name, const metadata::TopicInfo* info,
                                     bool deleted);
  // Sets a local replica's role and replicated state from the image.
  void follow_state(const std::shared_ptr<Partition>& partition,
                    const metadata::PartitionState& state);
  void notify_topic_deleted(const std::string& name);

  metadata::MetadataLog& metadata_;
  ReplicaManager& replicas_;
  const LogConfigFor config_for_;
  std::shared_ptr<Queue> queue_ = std::make_shared<Queue>();
  // Topic ids of the local replicas; only hf-lifecycle (or start()) touches it.
  std::map<std::string, metadata::TopicId> topic_ids_;
  std::mutex listeners_mu_;
  std::vector<std::function<void(const std::string&)>> deleted_listeners_;
  std::thread thread_;
  bool started_ = false;
};

}  // namespace holdfast::replication
