// The metadata log replicated with Raft (DESIGN §5): Canonical raft
// (libraft, https://github.com/canonical/raft) with its libuv I/O backend.
//
// The library owns everything that is consensus: elections, log replication,
// persistence of the Raft log and term/vote, snapshots and log compaction,
// membership. This class only
//   - runs the library's libuv loop on its own thread (`hf-raft`),
//   - bootstraps the initial configuration from controller.quorum.voters,
//   - turns MetadataRecords into Raft entries (the JSON payload of
//     encode_record) and applies committed entries to the MetadataImage in
//     the FSM apply callback, telling subscribers in log order,
//   - serialises the image as the Raft snapshot (encode_image) and restores
//     it when the library installs one,
//   - takes appends from any thread (a queue drained on the loop thread after
//     uv_async_send).
//
// What this is NOT yet (docs/dev/cluster-plan.md): only voters are supported
// (no standby/non-voting brokers through raft_add + raft_assign), appends are
// accepted only on the Raft leader (no forwarding: a follower answers
// not_leader), and nothing in the broker uses it yet — `serve` still runs on
// the local MetadataStore. No controller logic (broker registration,
// fencing, partition assignment) lives here; it will sit on top of this log.
//
// Files: the library's own segment and snapshot files under
// <data_dir>/__metadata/raft/ (format described in raft/uv.h). They are
// written through libuv, not through io::FileSystem, so the fault-injecting
// file system does not cover them.
#pragma once

#include <uv.h>
extern "C" {  // the raft headers have no C++ guards of their own
#include <raft.h>
#include <raft/uv.h>
}

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metadata/metadata_log.h"
#include "metadata/quorum_voters.h"

namespace holdfast::metadata {

struct RaftOptions {
  int32_t node_id = 0;
  std::string data_dir;  // Raft files go to <data_dir>/__metadata/raft
  std::vector<QuorumVoter> voters;  // must contain node_id
  // Raft timing (milliseconds); the library randomises the election timeout
  // between this value and twice it.
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_timeout_ms = 100;
  // How long the leader waits for a member to acknowledge a snapshot it sent
  // before sending it again (0 = library default, 30 s).
  unsigned install_snapshot_timeout_ms = 0;
  // A snapshot (the serialised image) is taken every `snapshot_threshold`
  // applied entries, keeping `snapshot_trailing` entries of log after it so a
  // follower a little behind can still catch up from the log.
  unsigned snapshot_threshold = 1024;
  unsigned snapshot_trailing = 128;
  size_t segment_size = 0;  // bytes per open segment file; 0 = library default (8 MiB)
};

enum class RaftRole { unavailable, follower, candidate, leader };

// A view of the member's Raft state, refreshed on the loop thread every few
// tens of milliseconds and after each applied entry, so it may be slightly
// stale.
struct RaftStatus {
  RaftRole role = RaftRole::unavailable;
  int32_t leader_id = -1;  // -1: not known
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t last_applied = 0;
  uint64_t snapshot_index = 0;  // last Raft index covered by this member's latest snapshot
  // Snapshots the leader sent and this member installed after start (not
  // counting the member's own snapshot loaded at start).
  uint64_t snapshots_installed = 0;
  // The leader's barrier of this term has applied: its image holds every
  // committed record, so decisions made from it (the controller's) are current.
  bool leader_ready = false;
};

class RaftMetadataLog final : public MetadataLog {
 public:
  // Validates the options, bootstraps a pristine data directory with the
  // voters as the initial configuration (a directory that already holds Raft
  // state keeps its own), loads the snapshot and log, and starts the loop
  // thread. The image is the snapshot's until committed entries are applied
  // again, which happens once the member learns the commit index.
  static Result<std::unique_ptr<RaftMetadataLog>, Errc> open(RaftOptions options);

  ~RaftMetadataLog() override;
  RaftMetadataLog(const RaftMetadataLog&) = delete;
  RaftMetadataLog& operator=(const RaftMetadataLog&) = delete;

  // Closes the Raft member (its data stays on disk) and joins the loop
  // thread. Appends still queued fail with shut_down; appends in flight end
  // with unknown_outcome (they may be committed by the other members).
  // Idempotent; the destructor calls it.
  void stop();

  ImagePtr current() const override;
  void append(MetadataRecord record, AppendCallback done) override;
  ImagePtr subscribe(MetadataListener listener) override;

  RaftStatus status() const;
  int32_t node_id() const { return options_.node_id; }

 private:
  struct Pending {
    MetadataRecord record;
    AppendCallback done;
  };
  struct ApplyRequest;
  struct BarrierRequest;

  explicit RaftMetadataLog(RaftOptions options);
  Result<void, Errc> start();
  void run_loop();
  // Closes raft and the loop's handles; on_closed finishes on the loop.
  void begin_close();
  void drain_queue();
  void submit(Pending pending);
  void refresh_status();
  // A new leader cannot know that entries of earlier terms are committed
  // until an entry of its own term is (Raft §5.4.2; this library appends no
  // no-op of its own), so on winning an election it commits a barrier and
  // holds appends until that has applied everything before it: only then is
  // its image current enough to check records against.
  void issue_barrier_if_new_leader();
  static void on_barrier(struct raft_barrier* req, int status);
  void notify(const MetadataEvent& event);

  // libuv / libraft callbacks (loop thread).
  static void on_wake(uv_async_t* handle);
  static void on_status_timer(uv_timer_t* handle);
  static void on_raft_closed(struct raft* raft);
  static void on_applied(struct raft_apply* req, int status, void* result);
  static int fsm_apply(struct raft_fsm* fsm, const struct raft_buffer* buf, void** result);
  static int fsm_snapshot(struct raft_fsm* fsm, struct raft_buffer* bufs[], unsigned* n_bufs);
  static int fsm_restore(struct raft_fsm* fsm, struct raft_buffer* buf);

  const RaftOptions options_;
  std::string address_;  // this member's address among the voters
  std::string raft_dir_;

  // Library state; touched only on the loop thread once it runs.
  uv_loop_t loop_{};
  uv_async_t wake_{};
  uv_timer_t status_timer_{};
  struct raft_uv_transport transport_{};
  struct raft_io io_{};
  struct raft_fsm fsm_{};
  struct raft raft_{};
  bool loop_ready_ = false;       // uv_loop_init succeeded
  bool transport_ready_ = false;  // raft_uv_tcp_init succeeded
  bool io_ready_ = false;         // raft_uv_init succeeded
  bool raft_ready_ = false;       // raft_init succeeded
  bool handles_ready_ = false;    // wake_ and status_timer_ initialised
  bool started_ = false;          // raft_start returned (restores after this are installs)
  bool closing_ = false;          // begin_close ran
  bool loop_closed_ = false;      // uv_loop_close ran
  std::thread thread_;
  uint64_t barrier_term_ = 0;     // term of the last barrier issued as leader
  uint64_t ready_term_ = 0;       // term whose barrier has applied: appends go straight in
  std::vector<Pending> waiting_;  // appends held until the barrier of this term applies

  std::mutex queue_mutex_;  // guards queue_ and stopping_
  std::vector<Pending> queue_;
  bool stopping_ = false;

  // Held while an entry is applied and its subscribers told, and while a
  // listener subscribes, so a new listener sees no gap and no duplicate.
  std::mutex apply_mutex_;
  std::vector<MetadataListener> listeners_;

  mutable std::mutex image_mutex_;
  ImagePtr image_;

  mutable std::mutex status_mutex_;
  RaftStatus status_;
};

}  // namespace holdfast::metadata
