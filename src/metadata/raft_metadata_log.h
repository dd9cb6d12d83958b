// The metadata log replicated with Raft (DESIGN §5): Canonical raft
// (libraft, https://github.com/canonical/raft) with its libuv I/O backend.
// In cluster mode every broker's metadata log is one of these (broker.cc);
// the Raft leader is the active controller (server/cluster/controller_service.h).
//
// The library owns everything that is consensus: elections, log replication,
// persistence of the Raft log and term/vote, snapshots and log compaction,
// membership. This class only
//   - runs the library's libuv loop on its own thread (`hf-raft`),
//   - bootstraps the initial configuration from controller.quorum.voters on
//     a voter; a broker-only node (process.roles=broker, an id not among the
//     voters) starts with no configuration at all and waits for the leader
//     to add it,
//   - adds such brokers as non-voting members on the leader (add_standby:
//     raft_add, then raft_assign(RAFT_STANDBY)); they replicate and apply
//     every entry but never count toward the quorum, and nothing here ever
//     changes a voter's role,
//   - turns MetadataRecords into Raft entries (the JSON payload of
//     encode_record) and applies committed entries to the MetadataImage in
//     the FSM apply callback, telling subscribers in log order,
//   - serialises the image as the Raft snapshot (encode_image) and restores
//     it when the library installs one (counted in
//     RaftStatus::snapshots_installed and logged),
//   - takes appends and membership changes from any thread (a queue drained
//     on the loop thread after uv_async_send),
//   - carries the Raft traffic over the library's plain TCP transport, or
//     over mutual TLS (RaftTlsTransport) when RaftOptions has TLS contexts.
//
// Appends are accepted only on the Raft leader: a follower answers
// not_leader naming the leader; the broker forwards metadata changes to the
// controller (server/cluster/forwarding.h), so nothing here forwards. No
// controller logic (broker registration, fencing, partition assignment)
// lives here; it sits on top of this log. Members are never removed or
// demoted (no raft_remove): replacing a node is an operator's job
// (docs/cluster.md).
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
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metadata/metadata_log.h"
#include "metadata/quorum_voters.h"
#include "metadata/raft_tls_transport.h"

namespace holdfast::metadata {

struct RaftOptions {
  int32_t node_id = 0;
  std::string data_dir;  // Raft files go to <data_dir>/__metadata/raft
  std::vector<QuorumVoter> voters;
  // A member whose node_id is among `voters` is a voter and its Raft address
  // is its voter entry. Any other member is a non-voting (standby) member: it
  // announces `address` (host:port, its CONTROLLER listener) and binds
  // `bind_address` (empty: `address`); it bootstraps nothing and takes part
  // once the leader has added it (add_standby).
  std::string address;
  std::string bind_address;
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
  // Mutual TLS for the Raft traffic (listener.security.protocol.map=
  // CONTROLLER:SSL): both contexts, or neither for raft's plain TCP
  // transport. See raft_tls_transport.h for what each must verify.
  std::shared_ptr<asio::ssl::context> tls_server;
  std::shared_ptr<asio::ssl::context> tls_client;
  unsigned tls_handshake_timeout_ms = 10000;  // per connection: connect + handshake + preamble
};

enum class RaftRole { unavailable, follower, candidate, leader };

// A member's place in the Raft configuration (RAFT_VOTER / RAFT_STANDBY /
// RAFT_SPARE; a spare was added but not yet assigned its standby role).
enum class MemberRole { voter, standby, spare };
const char* member_role_name(MemberRole role);

struct RaftMember {
  int32_t id = 0;
  std::string address;
  MemberRole role = MemberRole::voter;
};

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
  // The configuration this member knows (the latest, possibly uncommitted);
  // empty on a standby that has not been added yet.
  std::vector<RaftMember> members;
  // This member is a voter (configured in controller.quorum.voters).
  bool voter = true;
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
  // This member's Raft address (its voter entry, or RaftOptions::address).
  const std::string& address() const { return address_; }

  // Leader only: makes node `id`, reachable at `address`, a standby member
  // (raft_add, then raft_assign(RAFT_STANDBY)); `done` runs on the loop
  // thread once both configuration changes are committed. Idempotent: a
  // member already in the configuration with that address succeeds without
  // a change (a voter stays a voter; a spare left by an interrupted add is
  // assigned its standby role). Errors: not_leader (nothing changed; ask the
  // leader), invalid_config (the id is a member at another address, or the
  // address belongs to another id; the message names the settings),
  // unknown_outcome (another configuration change is in flight or
  // leadership was lost: try again), shut_down.
  using MembershipCallback = std::function<void(Result<void, Errc>)>;
  void add_standby(int32_t id, std::string address, MembershipCallback done);

 private:
  struct Pending {
    MetadataRecord record;
    AppendCallback done;
  };
  struct ApplyRequest;
  struct BarrierRequest;
  struct ChangeRequest;

  explicit RaftMetadataLog(RaftOptions options);
  Result<void, Errc> start();
  void run_loop();
  // Closes raft and the loop's handles; on_closed finishes on the loop.
  void begin_close();
  void drain_queue();
  // Loop thread: the body of add_standby.
  void change_membership(int32_t id, const std::string& address, MembershipCallback done);
  static void on_changed(struct raft_change* req, int status);
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
  std::string address_;  // this member's Raft address (its voter entry, or options_.address)
  bool voter_ = true;     // node_id is among options_.voters
  std::string raft_dir_;

  // Library state; touched only on the loop thread once it runs.
  uv_loop_t loop_{};
  uv_async_t wake_{};
  uv_timer_t status_timer_{};
  struct raft_uv_transport transport_{};  // raft's TCP transport (no TLS contexts)
  std::unique_ptr<RaftTlsTransport> tls_transport_;  // with TLS contexts
  struct raft_io io_{};
  struct raft_fsm fsm_{};
  struct raft raft_{};
  bool loop_ready_ = false;       // uv_loop_init succeeded
  bool transport_ready_ = false;  // raft_uv_tcp_init succeeded (plain TCP only)
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

  std::mutex queue_mutex_;  // guards queue_, tasks_ and stopping_
  std::vector<Pending> queue_;
  // Work for the loop thread other than appends (membership changes); run
  // with `false`, or with `true` when the log is stopping instead.
  std::vector<std::function<void(bool stopping)>> tasks_;
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
