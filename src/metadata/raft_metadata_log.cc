#include "metadata/raft_metadata_log.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>

#include "base/bytes.h"
#include "base/log.h"

namespace holdfast::metadata {
namespace {

// The FSM apply result of a committed entry that did not fit the image when it
// was applied (two proposals raced, e.g. two creations of one topic, and the
// first one committed changed the image). Every member applies the same
// entries in the same order to the same image, so every member rejects it
// alike and the images stay identical; the entry is a no-op.
char kRejected;

Error<Errc> config_error(std::string message) {
  return make_error(Errc::invalid_config, std::move(message));
}

Error<Errc> raft_failure(Errc code, const std::string& what, int rv, const char* detail) {
  std::string message = what + ": " + raft_strerror(rv);
  if (detail != nullptr && detail[0] != '\0') message += std::string(" (") + detail + ")";
  return make_error(code, std::move(message));
}

// Raft entry and snapshot payloads: an 8-byte header (format version u32 BE,
// payload length u32 BE), the payload (encode_record / encode_image JSON),
// zero padding to a multiple of 8 bytes. The padding is not optional: the
// libuv backend of this libraft (0.15) requires every entry buffer's length
// to be a multiple of 8 and, without checking it, writes segments that it
// later refuses to load — a restarted member would set the segment aside as
// corrupt and lose its log (canonical/raft issues #189, #304).
constexpr uint32_t kFrameVersion = 1;
constexpr size_t kFrameHeader = 8;

// A raft_malloc'd framed copy of `payload`; base is null when out of memory.
struct raft_buffer frame(std::string_view payload) {
  struct raft_buffer buffer;
  buffer.len = (kFrameHeader + payload.size() + 7) / 8 * 8;
  buffer.base = raft_malloc(buffer.len);
  if (buffer.base == nullptr) return buffer;
  auto* bytes = static_cast<uint8_t*>(buffer.base);
  std::memset(bytes, 0, buffer.len);
  store_be32(bytes, kFrameVersion);
  store_be32(bytes + 4, static_cast<uint32_t>(payload.size()));
  std::memcpy(bytes + kFrameHeader, payload.data(), payload.size());
  return buffer;
}

std::optional<std::string_view> unframe(const struct raft_buffer& buffer) {
  if (buffer.len < kFrameHeader) return std::nullopt;
  const auto* bytes = static_cast<const uint8_t*>(buffer.base);
  if (load_be32(bytes) != kFrameVersion) return std::nullopt;
  const uint32_t length = load_be32(bytes + 4);
  if (length > buffer.len - kFrameHeader) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(bytes + kFrameHeader), length);
}

bool parse_number(std::string_view text, int64_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::vector<QuorumVoter>, Errc> parse_quorum_voters(std::string_view text) {
  std::vector<QuorumVoter> voters;
  std::set<int32_t> ids;
  std::set<std::string> addresses;
  if (trim(text).empty()) return config_error("controller.quorum.voters is empty");
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item =
        trim(text.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                 : comma - start));
    const std::string where = "controller.quorum.voters: '" + std::string(item) + "'";
    const size_t at = item.find('@');
    if (at == std::string_view::npos) return config_error(where + " is not <id>@<host>:<port>");
    int64_t id = 0;
    if (!parse_number(item.substr(0, at), id) || id < 1 || id > INT32_MAX) {
      return config_error(where + ": the node id must be a positive integer");
    }
    const std::string_view address = item.substr(at + 1);
    const size_t colon = address.rfind(':');
    int64_t port = 0;
    if (colon == std::string_view::npos || colon == 0 ||
        !parse_number(address.substr(colon + 1), port) || port < 1 || port > 65535) {
      return config_error(where + ": the address must be <host>:<port> with a port in 1..65535");
    }
    if (!ids.insert(int32_t(id)).second) {
      return config_error("controller.quorum.voters: node id " + std::to_string(id) +
                          " appears twice");
    }
    if (!addresses.insert(std::string(address)).second) {
      return config_error("controller.quorum.voters: address " + std::string(address) +
                          " appears twice");
    }
    voters.push_back(QuorumVoter{int32_t(id), std::string(address)});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return voters;
}

struct RaftMetadataLog::ApplyRequest {
  struct raft_apply req {};
  RaftMetadataLog* log = nullptr;
  AppendCallback done;
};

struct RaftMetadataLog::ChangeRequest {
  struct raft_change req {};
  RaftMetadataLog* log = nullptr;
  int32_t id = 0;
  bool assigning = false;  // false: the raft_add step; true: raft_assign(RAFT_STANDBY)
  MembershipCallback done;
};

const char* member_role_name(MemberRole role) {
  switch (role) {
    case MemberRole::voter: return "voter";
    case MemberRole::standby: return "standby";
    case MemberRole::spare: return "spare";
  }
  return "?";
}

struct RaftMetadataLog::BarrierRequest {
  struct raft_barrier req {};
  RaftMetadataLog* log = nullptr;
  uint64_t term = 0;
};

RaftMetadataLog::RaftMetadataLog(RaftOptions options)
    : options_(std::move(options)), image_(std::make_shared<MetadataImage>()) {}

Result<std::unique_ptr<RaftMetadataLog>, Errc> RaftMetadataLog::open(RaftOptions options) {
  std::unique_ptr<RaftMetadataLog> log(new RaftMetadataLog(std::move(options)));
  if (auto started = log->start(); !started) return started.error();  // ~ closes what opened
  return log;
}

RaftMetadataLog::~RaftMetadataLog() { stop(); }

Result<void, Errc> RaftMetadataLog::start() {
  if (options_.node_id < 1) {
    return config_error("node.id must be a positive integer for a Raft member, got " +
                        std::to_string(options_.node_id));
  }
  if (options_.voters.empty()) return config_error("controller.quorum.voters is empty");
  auto self = std::find_if(options_.voters.begin(), options_.voters.end(),
                           [&](const QuorumVoter& v) { return v.id == options_.node_id; });
  voter_ = self != options_.voters.end();
  if (voter_) {
    address_ = self->address;
  } else {
    // A broker-only node: a standby member once the leader adds it.
    if (options_.address.empty()) {
      return config_error("node.id " + std::to_string(options_.node_id) +
                          " is not in controller.quorum.voters, so it joins the metadata quorum "
                          "as a non-voting member and needs a Raft address of its own (the "
                          "CONTROLLER listener in listeners)");
    }
    for (const QuorumVoter& v : options_.voters) {
      if (v.address == options_.address) {
        return config_error("the CONTROLLER listener " + options_.address + " of node " +
                            std::to_string(options_.node_id) + " is node " +
                            std::to_string(v.id) + "'s address in controller.quorum.voters");
      }
    }
    address_ = options_.address;
  }
  raft_dir_ = (std::filesystem::path(options_.data_dir) / "__metadata" / "raft").string();
  std::error_code ec;
  std::filesystem::create_directories(raft_dir_, ec);
  if (ec) return make_error(Errc::io_error, "cannot create " + raft_dir_ + ": " + ec.message());

  if (int rv = uv_loop_init(&loop_); rv != 0) {
    return make_error(Errc::io_error, std::string("uv_loop_init: ") + uv_strerror(rv));
  }
  loop_ready_ = true;
  const bool own_bind_address = !options_.bind_address.empty() && options_.bind_address != address_;
  struct raft_uv_transport* transport = &transport_;
  if (options_.tls_server || options_.tls_client) {
    RaftTlsOptions tls;
    tls.server = options_.tls_server;
    tls.client = options_.tls_client;
    if (own_bind_address) tls.bind_address = options_.bind_address;
    tls.handshake_timeout_ms = options_.tls_handshake_timeout_ms;
    auto made = RaftTlsTransport::create(&loop_, std::move(tls));
    if (!made) return made.error();
    tls_transport_ = std::move(*made);
    transport = tls_transport_->transport();
  } else {
    if (int rv = raft_uv_tcp_init(&transport_, &loop_); rv != 0) {
      return raft_failure(Errc::io_error, "raft transport", rv, transport_.errmsg);
    }
    transport_ready_ = true;
    if (own_bind_address) {
      if (int rv = raft_uv_tcp_set_bind_address(&transport_, options_.bind_address.c_str());
          rv != 0) {
        return raft_failure(Errc::invalid_config, "raft bind address " + options_.bind_address,
                            rv, transport_.errmsg);
      }
    }
  }
  if (int rv = raft_uv_init(&io_, &loop_, raft_dir_.c_str(), transport); rv != 0) {
    return raft_failure(Errc::io_error, "raft I/O in " + raft_dir_, rv, io_.errmsg);
  }
  io_ready_ = true;
  if (options_.segment_size > 0) raft_uv_set_segment_size(&io_, options_.segment_size);

  fsm_.version = 1;  // raft owns (and frees) the snapshot buffers fsm_snapshot allocates
  fsm_.data = this;
  fsm_.apply = &RaftMetadataLog::fsm_apply;
  fsm_.snapshot = &RaftMetadataLog::fsm_snapshot;
  fsm_.restore = &RaftMetadataLog::fsm_restore;
  if (int rv = raft_init(&raft_, &io_, &fsm_, raft_id(options_.node_id), address_.c_str());
      rv != 0) {
    return raft_failure(Errc::io_error, "raft_init at " + address_, rv, raft_.errmsg);
  }
  raft_ready_ = true;
  raft_.data = this;
  raft_set_election_timeout(&raft_, options_.election_timeout_ms);
  raft_set_heartbeat_timeout(&raft_, options_.heartbeat_timeout_ms);
  if (options_.install_snapshot_timeout_ms > 0) {
    raft_set_install_snapshot_timeout(&raft_, options_.install_snapshot_timeout_ms);
  }
  raft_set_snapshot_threshold(&raft_, options_.snapshot_threshold);
  raft_set_snapshot_trailing(&raft_, options_.snapshot_trailing);
  // Pre-vote: a member cut off from the others does not bump the term and
  // depose a healthy leader when it comes back.
  raft_set_pre_vote(&raft_, true);

  // Every voter bootstraps the same initial configuration; a data directory
  // that already holds Raft state refuses (RAFT_CANTBOOTSTRAP) and keeps the
  // configuration in its log, which is what a restart wants. A standby
  // bootstraps nothing: it gets the configuration (and everything else) from
  // the leader once added, and keeps it in its log across restarts.
  if (voter_) {
    struct raft_configuration configuration;
    raft_configuration_init(&configuration);
    for (const QuorumVoter& voter : options_.voters) {
      if (int rv = raft_configuration_add(&configuration, raft_id(voter.id),
                                          voter.address.c_str(), RAFT_VOTER);
          rv != 0) {
        raft_configuration_close(&configuration);
        return raft_failure(Errc::invalid_config, "controller.quorum.voters", rv, nullptr);
      }
    }
    const int bootstrapped = raft_bootstrap(&raft_, &configuration);
    raft_configuration_close(&configuration);
    if (bootstrapped != 0 && bootstrapped != RAFT_CANTBOOTSTRAP) {
      return raft_failure(Errc::io_error, "raft_bootstrap in " + raft_dir_, bootstrapped,
                          raft_.errmsg);
    }
  }

  uv_async_init(&loop_, &wake_, &RaftMetadataLog::on_wake);
  wake_.data = this;
  uv_timer_init(&loop_, &status_timer_);
  status_timer_.data = this;
  uv_timer_start(&status_timer_, &RaftMetadataLog::on_status_timer, 20, 20);
  handles_ready_ = true;

  if (int rv = raft_start(&raft_); rv != 0) {
    return raft_failure(Errc::io_error, "raft_start in " + raft_dir_, rv, raft_.errmsg);
  }
  started_ = true;
  refresh_status();
  HF_INFO("metadata quorum: node {} at {} started as a {} ({} voters, data in {}, Raft traffic {})",
          options_.node_id, address_,
          voter_ ? "voter" : "non-voting member (the controller adds it when it registers)",
          options_.voters.size(), raft_dir_,
          tls_transport_ ? "over mutual TLS" : "in plain TCP");
  thread_ = std::thread([this] { run_loop(); });
  return {};
}

void RaftMetadataLog::run_loop() {
  pthread_setname_np(pthread_self(), "hf-raft");
  // libuv writes to peers' sockets with plain write(): a peer that has gone
  // away must surface as EPIPE on this thread, not as a process-killing
  // SIGPIPE (the signal stays blocked and pending on this thread only).
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void RaftMetadataLog::stop() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
    if (thread_.joinable()) uv_async_send(&wake_);  // on_wake sees stopping_ and closes
  }
  if (thread_.joinable()) {
    thread_.join();
  } else if (loop_ready_ && !loop_closed_) {
    // start() failed before the loop thread ran: close what it opened, here.
    begin_close();
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  if (loop_ready_ && !loop_closed_) {
    if (int rv = uv_loop_close(&loop_); rv != 0) {
      HF_WARN("metadata quorum: uv_loop_close: {}", uv_strerror(rv));
    }
    loop_closed_ = true;
  }
  tls_transport_.reset();  // closed with raft (or by begin_close): its thread is joined
  std::vector<Pending> left;
  left.swap(waiting_);  // the loop thread has ended: nobody else touches it
  std::vector<std::function<void(bool)>> tasks;
  {
    std::lock_guard lock(queue_mutex_);
    for (Pending& p : queue_) left.push_back(std::move(p));
    queue_.clear();
    tasks.swap(tasks_);
  }
  for (Pending& p : left) p.done(make_error(Errc::shut_down, "metadata log is shut down"));
  for (auto& task : tasks) task(true);
  std::lock_guard lock(status_mutex_);
  status_.role = RaftRole::unavailable;
}

void RaftMetadataLog::begin_close() {
  if (closing_) return;
  closing_ = true;
  if (handles_ready_) {
    uv_timer_stop(&status_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&status_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
  }
  if (raft_ready_) {
    raft_close(&raft_, &RaftMetadataLog::on_raft_closed);
  } else {
    if (io_ready_) raft_uv_close(&io_);
    if (transport_ready_) raft_uv_tcp_close(&transport_);
    if (tls_transport_) tls_transport_->close_unused();
  }
}

void RaftMetadataLog::on_raft_closed(struct raft* raft) {
  auto* self = static_cast<RaftMetadataLog*>(raft->data);
  raft_uv_close(&self->io_);
  // The TLS transport's close callback has fired by now; stop() releases it.
  if (self->transport_ready_) raft_uv_tcp_close(&self->transport_);
}

ImagePtr RaftMetadataLog::current() const {
  std::lock_guard lock(image_mutex_);
  return image_;
}

void RaftMetadataLog::append(MetadataRecord record, AppendCallback done) {
  {
    std::lock_guard lock(queue_mutex_);
    if (!stopping_ && thread_.joinable()) {
      queue_.push_back(Pending{std::move(record), std::move(done)});
      uv_async_send(&wake_);  // under the lock: stop() cannot have closed the handle
      return;
    }
  }
  done(make_error(Errc::shut_down, "metadata log is shut down"));
}

ImagePtr RaftMetadataLog::subscribe(MetadataListener listener) {
  std::lock_guard lock(apply_mutex_);
  listeners_.push_back(std::move(listener));
  return current();
}

RaftStatus RaftMetadataLog::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

void RaftMetadataLog::notify(const MetadataEvent& event) {
  for (const auto& listener : listeners_) listener(event);
}

void RaftMetadataLog::refresh_status() {
  RaftStatus s;
  switch (raft_state(&raft_)) {
    case RAFT_FOLLOWER: s.role = RaftRole::follower; break;
    case RAFT_CANDIDATE: s.role = RaftRole::candidate; break;
    case RAFT_LEADER: s.role = RaftRole::leader; break;
    default: s.role = RaftRole::unavailable; break;
  }
  raft_id leader = 0;
  const char* leader_address = nullptr;
  raft_leader(&raft_, &leader, &leader_address);
  s.leader_id = leader == 0 ? -1 : int32_t(leader);
  // A voter that stops hearing from its leader campaigns, which forgets the
  // leader; a standby never campaigns, and the library would report a dead
  // leader to it forever. So a standby that has heard nothing from the
  // leader for two election timeouts (the leader heartbeats every
  // heartbeat_timeout_ms) knows no leader: its brokers then see no
  // controller, as the voters do.
  if (!voter_ && s.role == RaftRole::follower && s.leader_id >= 0 &&
      io_.time(&io_) - raft_.election_timer_start > 2 * uint64_t(options_.election_timeout_ms)) {
    s.leader_id = -1;
  }
  s.term = raft_.current_term;
  s.commit_index = raft_.commit_index;
  s.last_applied = raft_last_applied(&raft_);
  s.snapshot_index = raft_.log.snapshot.last_index;
  s.leader_ready = s.role == RaftRole::leader && ready_term_ == raft_.current_term;
  s.voter = voter_;
  for (unsigned i = 0; i < raft_.configuration.n; ++i) {
    const struct raft_server& server = raft_.configuration.servers[i];
    RaftMember member;
    member.id = int32_t(server.id);
    member.address = server.address ? server.address : "";
    member.role = server.role == RAFT_VOTER     ? MemberRole::voter
                  : server.role == RAFT_STANDBY ? MemberRole::standby
                                                : MemberRole::spare;
    s.members.push_back(std::move(member));
  }
  std::lock_guard lock(status_mutex_);
  s.snapshots_installed = status_.snapshots_installed;
  status_ = s;
}

void RaftMetadataLog::on_status_timer(uv_timer_t* handle) {
  auto* self = static_cast<RaftMetadataLog*>(handle->data);
  self->refresh_status();
  self->issue_barrier_if_new_leader();
}

void RaftMetadataLog::issue_barrier_if_new_leader() {
  if (closing_ || raft_state(&raft_) != RAFT_LEADER || barrier_term_ == raft_.current_term) {
    return;
  }
  barrier_term_ = raft_.current_term;
  auto* request = new BarrierRequest;
  request->log = this;
  request->term = raft_.current_term;
  request->req.data = request;
  if (int rv = raft_barrier(&raft_, &request->req, &RaftMetadataLog::on_barrier); rv != 0) {
    delete request;
    HF_WARN("metadata quorum: node {} cannot commit its leader barrier: {}", options_.node_id,
            raft_strerror(rv));
    barrier_term_ = 0;  // the next timer tick tries again
  }
}

void RaftMetadataLog::on_barrier(struct raft_barrier* req, int status) {
  auto* request = static_cast<BarrierRequest*>(req->data);
  RaftMetadataLog* self = request->log;
  const uint64_t term = request->term;
  delete request;
  std::vector<Pending> waiting;
  waiting.swap(self->waiting_);
  if (status == 0 && !self->closing_) {
    self->ready_term_ = term;
    self->refresh_status();  // leader_ready
    for (Pending& pending : waiting) self->submit(std::move(pending));
    return;
  }
  // Nothing of these was proposed: a plain refusal is the truth.
  for (Pending& pending : waiting) {
    pending.done(self->closing_
                     ? make_error(Errc::shut_down, "metadata log is shutting down")
                     : raft_failure(Errc::not_leader, "leader lost leadership before it was ready",
                                    status, nullptr));
  }
}

void RaftMetadataLog::on_wake(uv_async_t* handle) {
  auto* self = static_cast<RaftMetadataLog*>(handle->data);
  std::vector<Pending> batch;
  std::vector<std::function<void(bool)>> tasks;
  bool stopping = false;
  {
    std::lock_guard lock(self->queue_mutex_);
    batch.swap(self->queue_);
    tasks.swap(self->tasks_);
    stopping = self->stopping_;
  }
  for (auto& task : tasks) task(stopping);
  for (Pending& pending : batch) {
    if (stopping) {
      pending.done(make_error(Errc::shut_down, "metadata log is shutting down"));
    } else {
      self->submit(std::move(pending));
    }
  }
  if (stopping) self->begin_close();
}

// Loop thread. Proposes the record to Raft if this member leads; the record
// is checked against the applied image first so the common mistakes (a topic
// that exists, a partition count that shrinks) fail fast with a precise
// message. fsm_apply checks again at commit, because proposals in flight are
// not in the image yet.
void RaftMetadataLog::submit(Pending pending) {
  if (raft_state(&raft_) != RAFT_LEADER) {
    raft_id leader = 0;
    const char* leader_address = nullptr;
    raft_leader(&raft_, &leader, &leader_address);
    std::string message = "node " + std::to_string(options_.node_id) +
                          " is not the metadata quorum leader; ";
    message += leader == 0 ? std::string("no leader is known (an election is in progress)")
                           : "the leader is node " + std::to_string(leader) + " at " +
                                 (leader_address ? leader_address : "?");
    pending.done(make_error(Errc::not_leader, std::move(message)));
    return;
  }
  if (ready_term_ != raft_.current_term) {
    issue_barrier_if_new_leader();
    waiting_.push_back(std::move(pending));
    return;
  }
  ImagePtr image = current();
  if (auto check = apply_record(*image, pending.record, image->last_record_index + 1); !check) {
    pending.done(check.error());
    return;
  }
  struct raft_buffer buffer = frame(encode_record(pending.record));
  if (buffer.base == nullptr) {
    pending.done(make_error(Errc::io_error, "out of memory for a metadata entry"));
    return;
  }
  auto* request = new ApplyRequest;
  request->log = this;
  request->done = std::move(pending.done);
  request->req.data = request;
  if (int rv = raft_apply(&raft_, &request->req, &buffer, 1, &RaftMetadataLog::on_applied);
      rv != 0) {
    raft_free(buffer.base);  // ownership passes to raft only on success
    AppendCallback done = std::move(request->done);
    delete request;
    done(raft_failure(rv == RAFT_NOTLEADER ? Errc::not_leader : Errc::io_error,
                      "proposing a metadata record", rv, raft_errmsg(&raft_)));
  }
}

void RaftMetadataLog::on_applied(struct raft_apply* req, int status, void* result) {
  auto* request = static_cast<ApplyRequest*>(req->data);
  RaftMetadataLog* self = request->log;
  AppendCallback done = std::move(request->done);
  delete request;
  if (status == 0) {
    if (result == &kRejected) {
      done(make_error(Errc::invalid_record,
                      "the record was committed but did not fit the metadata image when applied "
                      "(a record committed just before it changed the image); it is a no-op"));
    } else {
      done(self->current());
    }
    return;
  }
  if (status == RAFT_LEADERSHIPLOST || status == RAFT_SHUTDOWN) {
    // The entry may be in other members' logs and be committed by the next
    // leader: the caller has to look at the image, not assume either way.
    done(raft_failure(Errc::unknown_outcome, "metadata record in flight", status, nullptr));
    return;
  }
  done(raft_failure(Errc::io_error, "metadata record", status, nullptr));
}

void RaftMetadataLog::add_standby(int32_t id, std::string address, MembershipCallback done) {
  {
    std::lock_guard lock(queue_mutex_);
    if (!stopping_ && thread_.joinable()) {
      tasks_.push_back([this, id, address = std::move(address), done](bool stopping) mutable {
        if (stopping) return done(make_error(Errc::shut_down, "metadata log is shutting down"));
        change_membership(id, address, std::move(done));
      });
      uv_async_send(&wake_);
      return;
    }
  }
  done(make_error(Errc::shut_down, "metadata log is shut down"));
}

// Loop thread. Looks at the latest configuration (raft_.configuration, which
// includes an uncommitted change) so a retried registration finds the member
// it added before and changes nothing.
void RaftMetadataLog::change_membership(int32_t id, const std::string& address,
                                        MembershipCallback done) {
  if (closing_) return done(make_error(Errc::shut_down, "metadata log is shutting down"));
  if (raft_state(&raft_) != RAFT_LEADER) {
    return done(make_error(Errc::not_leader,
                           "node " + std::to_string(options_.node_id) +
                               " is not the metadata quorum leader; cannot add node " +
                               std::to_string(id)));
  }
  const struct raft_server* by_id = nullptr;
  const struct raft_server* by_address = nullptr;
  for (unsigned i = 0; i < raft_.configuration.n; ++i) {
    const struct raft_server& server = raft_.configuration.servers[i];
    if (server.id == raft_id(id)) by_id = &server;
    if (server.address != nullptr && address == server.address) by_address = &server;
  }
  if (by_id != nullptr && address != (by_id->address ? by_id->address : "")) {
    return done(make_error(
        Errc::invalid_config,
        "node.id " + std::to_string(id) + " is already a member of the metadata quorum at " +
            (by_id->address ? by_id->address : "?") + ", but this broker's CONTROLLER listener " +
            "(listeners / advertised.listeners) is " + address +
            ": give the new broker a node.id of its own, or restart the old one on its old "
            "CONTROLLER address"));
  }
  if (by_id == nullptr && by_address != nullptr) {
    return done(make_error(Errc::invalid_config,
                           "the CONTROLLER listener " + address + " of node " +
                               std::to_string(id) + " is already the Raft address of node " +
                               std::to_string(by_address->id) +
                               " (listeners / advertised.listeners)"));
  }
  if (by_id != nullptr && by_id->role != RAFT_SPARE) {
    return done({});  // a voter or a standby already: never demoted, nothing to do
  }
  auto* request = new ChangeRequest;
  request->log = this;
  request->id = id;
  request->assigning = by_id != nullptr;  // a spare left by an interrupted add
  request->done = std::move(done);
  request->req.data = request;
  const int rv = request->assigning
                     ? raft_assign(&raft_, &request->req, raft_id(id), RAFT_STANDBY,
                                   &RaftMetadataLog::on_changed)
                     : raft_add(&raft_, &request->req, raft_id(id), address.c_str(),
                                &RaftMetadataLog::on_changed);
  if (rv != 0) {
    MembershipCallback failed = std::move(request->done);
    delete request;
    // RAFT_CANTCHANGE: another configuration change is not committed yet.
    failed(raft_failure(rv == RAFT_NOTLEADER ? Errc::not_leader : Errc::unknown_outcome,
                        "adding node " + std::to_string(id) + " to the metadata quorum", rv,
                        raft_errmsg(&raft_)));
    return;
  }
  HF_INFO("metadata quorum: node {} {} node {} at {} as a standby member", options_.node_id,
          request->assigning ? "assigns" : "adds", id, address);
}

void RaftMetadataLog::on_changed(struct raft_change* req, int status) {
  auto* request = static_cast<ChangeRequest*>(req->data);
  RaftMetadataLog* self = request->log;
  if (status != 0 || self->closing_) {
    MembershipCallback done = std::move(request->done);
    const int32_t id = request->id;
    delete request;
    done(self->closing_ ? make_error(Errc::shut_down, "metadata log is shutting down")
                        : raft_failure(Errc::unknown_outcome,
                                       "adding node " + std::to_string(id) +
                                           " to the metadata quorum",
                                       status, nullptr));
    return;
  }
  if (!request->assigning) {
    // Added as a spare (committed): now the role that replicates the log.
    request->assigning = true;
    const int rv = raft_assign(&self->raft_, &request->req, raft_id(request->id), RAFT_STANDBY,
                               &RaftMetadataLog::on_changed);
    if (rv != 0) {
      MembershipCallback done = std::move(request->done);
      const int32_t id = request->id;
      delete request;
      // The spare stays in the configuration; the next attempt assigns it.
      done(raft_failure(rv == RAFT_NOTLEADER ? Errc::not_leader : Errc::unknown_outcome,
                        "assigning node " + std::to_string(id) + " the standby role", rv,
                        raft_errmsg(&self->raft_)));
    }
    return;
  }
  MembershipCallback done = std::move(request->done);
  const int32_t id = request->id;
  delete request;
  HF_INFO("metadata quorum: node {} is a standby member", id);
  self->refresh_status();
  done({});
}

int RaftMetadataLog::fsm_apply(struct raft_fsm* fsm, const struct raft_buffer* buf,
                               void** result) {
  auto* self = static_cast<RaftMetadataLog*>(fsm->data);
  *result = nullptr;
  auto payload = unframe(*buf);
  auto record = payload ? decode_record(*payload)
                        : Result<MetadataRecord, Errc>(make_error(Errc::corrupt, "bad entry frame"));
  if (!record) {
    // Every member holds the same bytes (Raft checksums its entries), so every
    // member skips this entry alike; loud, because a writer produced it.
    HF_ERROR("metadata quorum: skipping an undecodable committed entry: {}",
             record.error().message);
    *result = &kRejected;
    return 0;
  }
  std::lock_guard lock(self->apply_mutex_);
  ImagePtr image = self->current();
  auto next = apply_record(*image, *record, image->last_record_index + 1);
  if (!next) {
    HF_WARN("metadata quorum: committed record rejected when applied: {}", next.error().message);
    *result = &kRejected;
    return 0;
  }
  {
    std::lock_guard image_lock(self->image_mutex_);
    self->image_ = *next;
  }
  self->notify(MetadataEvent{&*record, *next});
  return 0;
}

int RaftMetadataLog::fsm_snapshot(struct raft_fsm* fsm, struct raft_buffer* bufs[],
                                  unsigned* n_bufs) {
  auto* self = static_cast<RaftMetadataLog*>(fsm->data);
  auto* out = static_cast<struct raft_buffer*>(raft_malloc(sizeof(struct raft_buffer)));
  if (out == nullptr) return RAFT_NOMEM;
  *out = frame(encode_image(*self->current()));
  if (out->base == nullptr) {
    raft_free(out);
    return RAFT_NOMEM;
  }
  *bufs = out;
  *n_bufs = 1;
  return 0;
}

// Called when the member loads its own snapshot at start, and when the leader
// installs one because this member is behind the leader's compacted log.
// On success the FSM owns buf->base (the library's contract) and frees it.
int RaftMetadataLog::fsm_restore(struct raft_fsm* fsm, struct raft_buffer* buf) {
  auto* self = static_cast<RaftMetadataLog*>(fsm->data);
  auto payload = unframe(*buf);
  // No sole node in a cluster: every topic carries its assignment.
  auto image = payload ? decode_image(*payload, /*sole_node_id=*/-1)
                       : Result<ImagePtr, Errc>(make_error(Errc::corrupt, "bad snapshot frame"));
  if (!image) {
    HF_ERROR("metadata quorum: cannot restore snapshot: {}", image.error().message);
    return RAFT_CORRUPT;
  }
  uint64_t installed = 0;
  {
    std::lock_guard lock(self->apply_mutex_);
    {
      std::lock_guard image_lock(self->image_mutex_);
      self->image_ = *image;
    }
    if (self->started_) {
      std::lock_guard status_lock(self->status_mutex_);
      installed = ++self->status_.snapshots_installed;
    }
    self->notify(MetadataEvent{nullptr, *image});
  }
  if (self->started_) {
    // Operators and tests look for this line: the member was behind the
    // leader's compacted log and caught up from the leader's snapshot.
    HF_INFO("metadata quorum: node {} installed a snapshot from the leader at record {} ({} "
            "installed since start)",
            self->options_.node_id, (*image)->last_record_index, installed);
  } else {
    HF_INFO("metadata quorum: node {} loaded its snapshot of the image at record {}",
            self->options_.node_id, (*image)->last_record_index);
  }
  raft_free(buf->base);
  return 0;
}

}  // namespace holdfast::metadata
