#include "metadata/raft_tls_transport.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/log.h"

namespace holdfast::metadata {
namespace {

using tcp = asio::ip::tcp;
using local_stream = asio::local::stream_protocol;

// The preamble a dialler sends inside TLS before any Raft byte: magic,
// its Raft id (u64 BE), the length of its Raft address (u16 BE), the address.
// Raft's own TCP transport sends the same facts in clear, in its own format.
constexpr std::array<uint8_t, 8> kPreambleMagic = {'H', 'F', 'R', 'A', 'F', 'T', 0, 1};
constexpr size_t kPreambleHeader = 8 + 8 + 2;
// A Raft address is host:port from controller.quorum.voters or listeners.
constexpr size_t kMaxPreambleAddress = 255;
// Per direction and connection.
constexpr size_t kRelayBuffer = 64 * 1024;
// One warning per peer host and direction in this window; the rest counted.
constexpr auto kWarningWindow = std::chrono::seconds(30);
constexpr size_t kMaxWarningKeys = 256;

// "host:port" -> {host, port}; brackets around an IPv6 host are removed.
bool split_host_port(const std::string& address, std::string& host, std::string& port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return true;
}

void set_error(struct raft_uv_transport* t, const std::string& message) {
  std::snprintf(t->errmsg, sizeof(t->errmsg), "%s", message.c_str());
}

// What went wrong in a TLS handshake, with OpenSSL's verdict on the peer's
// certificate when that is the reason.
std::string tls_reason(const asio::error_code& ec, SSL* ssl) {
  std::string why = ec.message();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    why += std::string(" (certificate verification: ") + X509_verify_cert_error_string(verify) +
           ")";
  }
  return why;
}

// At most one warning per key in kWarningWindow; hf-raft-tls thread only.
class WarningLimiter {
 public:
  // Whether to log now; `suppressed` is how many were held back since the
  // last one logged for this key.
  bool allow(const std::string& key, uint64_t& suppressed) {
    const auto now = std::chrono::steady_clock::now();
    if (entries_.size() > kMaxWarningKeys) {
      std::erase_if(entries_, [&](const auto& e) { return now - e.second.last >= kWarningWindow; });
    }
    auto [it, fresh] = entries_.try_emplace(key, Entry{now, 0});
    if (!fresh && now - it->second.last < kWarningWindow) {
      ++it->second.suppressed;
      return false;
    }
    suppressed = fresh ? 0 : it->second.suppressed;
    it->second = Entry{now, 0};
    return true;
  }

 private:
  struct Entry {
    std::chrono::steady_clock::time_point last;
    uint64_t suppressed = 0;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace

class RaftTlsTransport::Impl {
 public:
  Impl(struct raft_uv_transport* transport, uv_loop_t* loop, RaftTlsOptions options)
      : transport_(transport),
        loop_(loop),
        options_(std::move(options)),
        io_(std::make_unique<asio::io_context>(1)) {}

  ~Impl() { stop_thread(); }

  Result<void, Errc> start() {
    if (int rv = uv_async_init(loop_, &wake_, &Impl::on_wake); rv != 0) {
      return make_error(Errc::io_error, std::string("uv_async_init: ") + uv_strerror(rv));
    }
    wake_.data = this;
    wake_open_ = true;
    work_.emplace(io_->get_executor());
    thread_ = std::thread([this] { run(); });
    return {};
  }

  // raft_uv_transport's methods (raft loop thread).
  static int init(struct raft_uv_transport* t, raft_id id, const char* address);
  static int listen(struct raft_uv_transport* t, raft_uv_accept_cb cb);
  static int connect(struct raft_uv_transport* t, struct raft_uv_connect* req, raft_id id,
                     const char* address, raft_uv_connect_cb cb);
  static void close(struct raft_uv_transport* t, raft_uv_transport_close_cb cb);

 private:
  class Link;
  friend class Link;

  // A connection that finished its set-up, or a dial that failed, on its way
  // from hf-raft-tls to the raft loop.
  struct Completion {
    enum Kind { accepted, connected, connect_failed } kind = accepted;
    uint64_t serial = 0;  // connected / connect_failed: the connect request
    int fd = -1;          // accepted / connected: raft's end of the socketpair
    raft_id id = 0;       // accepted: the peer's preamble
    std::string address;
  };
  struct PendingConnect {
    struct raft_uv_connect* req = nullptr;
    raft_uv_connect_cb cb = nullptr;
  };

  void run();
  void stop_thread();
  static void on_wake(uv_async_t* handle);
  static void on_wake_closed(uv_handle_t* handle);
  void complete(const Completion& completion);
  uv_stream_t* make_pipe(int fd);

  // hf-raft-tls thread.
  std::string open_acceptor();
  void accept_next();
  void accepted(tcp::socket socket);
  void dial(uint64_t serial, raft_id id, const std::string& address);
  void deliver(Completion completion);
  void warn(const std::string& key, const std::string& message);

  struct raft_uv_transport* const transport_;
  uv_loop_t* const loop_;
  const RaftTlsOptions options_;

  // Raft loop thread.
  raft_id id_ = 0;
  std::string address_;  // this member's Raft address, sent in the preamble
  uv_async_t wake_{};
  bool wake_open_ = false;
  raft_uv_accept_cb accept_cb_ = nullptr;
  uint64_t next_serial_ = 0;
  std::map<uint64_t, PendingConnect> connects_;
  bool closing_ = false;
  raft_uv_transport_close_cb close_cb_ = nullptr;

  std::mutex completions_mutex_;
  std::vector<Completion> completions_;

  // hf-raft-tls thread (created and destroyed while it does not run).
  std::unique_ptr<asio::io_context> io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> accept_retry_;
  size_t pending_accepts_ = 0;
  WarningLimiter warnings_;
};

// One TCP + TLS connection to or from a peer: its set-up (bounded by a
// deadline), then the relay between it and the socketpair end whose other
// end raft holds. Lives as long as an operation of it is pending.
class RaftTlsTransport::Impl::Link : public std::enable_shared_from_this<Link> {
 public:
  Link(Impl& owner, tcp::socket socket, asio::ssl::context& context, bool incoming)
      : owner_(owner),
        incoming_(incoming),
        tcp_(std::move(socket)),
        tls_(tcp_, context),
        deadline_(tcp_.get_executor()),
        resolver_(tcp_.get_executor()),
        local_(tcp_.get_executor()),
        buffers_(std::make_unique<Buffers>()) {}

  ~Link() { release_slot(); }

  // Incoming: TLS server handshake (a client certificate is required by the
  // server context), then the dialler's preamble.
  void accept() {
    asio::error_code ec;
    const auto remote = tcp_.remote_endpoint(ec);
    peer_ = ec ? std::string("?") : remote.address().to_string() + ":" +
                                        std::to_string(remote.port());
    peer_host_ = ec ? peer_ : remote.address().to_string();
    holds_slot_ = true;  // counted by Impl::accepted
    arm_deadline();
    tls_.async_handshake(asio::ssl::stream_base::server,
                         [self = shared_from_this()](const asio::error_code& ec) {
                           if (ec) return self->fail("TLS handshake", self->why(ec));
                           self->read_preamble();
                         });
  }

  // Outgoing: resolve, connect, TLS client handshake verifying the dialled
  // host, then this member's preamble.
  void dial(uint64_t serial, raft_id id, const std::string& address) {
    serial_ = serial;
    peer_ = "node " + std::to_string(id) + " at " + address;
    peer_host_ = address;
    std::string host, port;
    arm_deadline();
    if (!split_host_port(address, host, port)) return fail("address", "not host:port");
    SSL* ssl = tls_.native_handle();
    // The certificate must name what we dialled: an IP address as an IP SAN,
    // a host name as a DNS SAN (or CN), as inter-broker dialling checks.
    asio::error_code not_ip;
    (void)asio::ip::make_address(host, not_ip);
    if (!not_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, host.c_str());
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, host.c_str());
    }
    resolver_.async_resolve(
        host, port,
        [self = shared_from_this()](const asio::error_code& ec, tcp::resolver::results_type found) {
          if (ec) return self->fail("resolve", self->why(ec));
          asio::async_connect(self->tcp_, found,
                              [self](const asio::error_code& ec, const tcp::endpoint&) {
                                if (ec) return self->fail("connect", self->why(ec));
                                self->reached_ = true;
                                self->handshake_as_client();
                              });
        });
  }

  void shutdown() {
    asio::error_code ignored;
    deadline_.cancel();
    resolver_.cancel();
    tcp_.close(ignored);
    local_.close(ignored);
  }

 private:
  struct Buffers {
    std::array<uint8_t, kPreambleHeader> preamble{};
    std::array<char, kMaxPreambleAddress> address{};
    std::array<uint8_t, kRelayBuffer> to_raft{};
    std::array<uint8_t, kRelayBuffer> to_peer{};
  };

  // An incoming link stops counting against kMaxPendingAccepts once set up
  // or failed.
  void release_slot() {
    if (holds_slot_) --owner_.pending_accepts_;
    holds_slot_ = false;
  }

  void arm_deadline() {
    deadline_.expires_after(std::chrono::milliseconds(owner_.options_.handshake_timeout_ms));
    deadline_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->set_up_) return;
      self->timed_out_ = true;
      asio::error_code ignored;
      self->resolver_.cancel();
      self->tcp_.close(ignored);  // the pending step fails with operation_aborted
    });
  }

  std::string why(const asio::error_code& ec) {
    if (timed_out_) {
      return "not set up within " + std::to_string(owner_.options_.handshake_timeout_ms) + " ms";
    }
    return tls_reason(ec, tls_.native_handle());
  }

  void handshake_as_client() {
    asio::error_code ignored;
    tcp_.set_option(tcp::no_delay(true), ignored);
    tls_.async_handshake(asio::ssl::stream_base::client,
                         [self = shared_from_this()](const asio::error_code& ec) {
                           if (ec) return self->fail("TLS handshake", self->why(ec));
                           self->write_preamble();
                         });
  }

  void write_preamble() {
    const std::string& address = owner_.address_;  // set by init before raft connects
    const size_t length = std::min(address.size(), kMaxPreambleAddress);
    auto& header = buffers_->preamble;
    std::memcpy(header.data(), kPreambleMagic.data(), kPreambleMagic.size());
    store_be64(header.data() + 8, owner_.id_);
    store_be16(header.data() + 16, uint16_t(length));
    std::memcpy(buffers_->address.data(), address.data(), length);
    std::array<asio::const_buffer, 2> parts = {asio::buffer(header),
                                               asio::buffer(buffers_->address.data(), length)};
    asio::async_write(tls_, parts,
                      [self = shared_from_this()](const asio::error_code& ec, size_t) {
                        if (ec) return self->fail("preamble", self->why(ec));
                        self->set_up(0, "");
                      });
  }

  void read_preamble() {
    asio::async_read(
        tls_, asio::buffer(buffers_->preamble),
        [self = shared_from_this()](const asio::error_code& ec, size_t) {
          if (ec) return self->fail("preamble", self->why(ec));
          const uint8_t* header = self->buffers_->preamble.data();
          const uint64_t id = load_be64(header + 8);
          const size_t length = load_be16(header + 16);
          if (std::memcmp(header, kPreambleMagic.data(), kPreambleMagic.size()) != 0 || id == 0 ||
              length == 0 || length > kMaxPreambleAddress) {
            return self->fail("preamble", "not a Holdfast Raft preamble");
          }
          asio::async_read(self->tls_, asio::buffer(self->buffers_->address.data(), length),
                           [self, id, length](const asio::error_code& ec, size_t) {
                             if (ec) return self->fail("preamble", self->why(ec));
                             self->set_up(id, std::string(self->buffers_->address.data(), length));
                           });
        });
  }

  // The TLS side is ready: a socketpair, raft's end to the loop, ours relayed.
  void set_up(raft_id id, std::string address) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
      return fail("socketpair", std::strerror(errno));
    }
    asio::error_code ec;
    local_.assign(local_stream(), ends[0], ec);
    if (ec) {
      ::close(ends[0]);
      ::close(ends[1]);
      return fail("socketpair", ec.message());
    }
    release_slot();
    set_up_ = true;
    deadline_.cancel();
    Completion done;
    done.kind = incoming_ ? Completion::accepted : Completion::connected;
    done.serial = serial_;
    done.fd = ends[1];
    done.id = id;
    done.address = std::move(address);
    owner_.deliver(std::move(done));
    pump(tls_, local_, buffers_->to_raft, "peer to raft");
    pump(local_, tls_, buffers_->to_peer, "raft to peer");
  }

  // A set-up step failed: the connection closes; a dial reports failure.
  void fail(const char* step, const std::string& reason) {
    if (failed_ || set_up_) return;
    failed_ = true;
    release_slot();
    shutdown();
    if (incoming_) {
      owner_.warn("from " + peer_host_,
                  "metadata quorum: closed a Raft connection from " + peer_ + " (" + step +
                      "): " + reason);
    } else {
      const std::string message =
          "metadata quorum: Raft connection to " + peer_ + " failed (" + step + "): " + reason;
      // A peer that is down or restarting is routine (raft retries every
      // second and says so itself); a peer that fails TLS is not.
      if (reached_) {
        owner_.warn("to " + peer_host_, message);
      } else {
        HF_DEBUG("{}", message);
      }
      Completion done;
      done.kind = Completion::connect_failed;
      done.serial = serial_;
      owner_.deliver(std::move(done));
    }
  }

  // Moves bytes from `from` to `to` through `buffer`: reads a chunk only once
  // the other side has taken the last one (back-pressure), until either
  // side ends.
  template <typename From, typename To>
  void pump(From& from, To& to, std::array<uint8_t, kRelayBuffer>& buffer, const char* direction) {
    from.async_read_some(
        asio::buffer(buffer),
        [self = shared_from_this(), &from, &to, &buffer, direction](const asio::error_code& ec,
                                                                     size_t n) {
          if (ec) return self->relay_ended(direction, ec);
          asio::async_write(to, asio::buffer(buffer, n),
                            [self, &from, &to, &buffer, direction](const asio::error_code& ec,
                                                                   size_t) {
                              if (ec) return self->relay_ended(direction, ec);
                              self->pump(from, to, buffer, direction);
                            });
        });
  }

  // Either side closing (raft dropping a connection, a peer restarting) is
  // routine: close both, so the other side sees the end too.
  void relay_ended(const char* where, const asio::error_code& ec) {
    if (!relay_closed_) {
      relay_closed_ = true;
      HF_DEBUG("metadata quorum: Raft TLS relay with {} ended ({}): {}", peer_, where, ec.message());
    }
    shutdown();
  }

  Impl& owner_;
  const bool incoming_;
  tcp::socket tcp_;
  asio::ssl::stream<tcp::socket&> tls_;
  asio::steady_timer deadline_;
  tcp::resolver resolver_;
  local_stream::socket local_;
  std::unique_ptr<Buffers> buffers_;
  uint64_t serial_ = 0;
  std::string peer_;       // for logs
  std::string peer_host_;  // the warning limiter's key
  bool reached_ = false;  // outgoing: the TCP connection is up
  bool holds_slot_ = false;
  bool set_up_ = false;
  bool failed_ = false;
  bool timed_out_ = false;
  bool relay_closed_ = false;
};

void RaftTlsTransport::Impl::run() {
  pthread_setname_np(pthread_self(), "hf-raft-tls");
  sigset_t pipe_only;  // a write to a closed peer is an error here, not a signal
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
  io_->run();
}

// Any thread but hf-raft-tls. Idempotent. Destroying the io_context destroys
// every pending handler, and with them the links (their sockets close).
void RaftTlsTransport::Impl::stop_thread() {
  if (!thread_.joinable()) return;
  work_.reset();
  io_->stop();
  thread_.join();
  accept_retry_.reset();
  acceptor_.reset();
  io_.reset();
}

int RaftTlsTransport::Impl::init(struct raft_uv_transport* t, raft_id id, const char* address) {
  auto* self = static_cast<Impl*>(t->impl);
  self->id_ = id;
  self->address_ = address;
  if (self->address_.size() > kMaxPreambleAddress) {
    set_error(t, "Raft address longer than " + std::to_string(kMaxPreambleAddress) + " bytes");
    return RAFT_INVALID;
  }
  return 0;
}

int RaftTlsTransport::Impl::listen(struct raft_uv_transport* t, raft_uv_accept_cb cb) {
  auto* self = static_cast<Impl*>(t->impl);
  self->accept_cb_ = cb;
  // Bound (or not) before raft_start returns, so a port in use fails start-up.
  std::promise<std::string> opened;
  asio::post(*self->io_, [self, &opened] { opened.set_value(self->open_acceptor()); });
  const std::string error = opened.get_future().get();
  if (!error.empty()) {
    set_error(t, error);
    return RAFT_IOERR;
  }
  return 0;
}

int RaftTlsTransport::Impl::connect(struct raft_uv_transport* t, struct raft_uv_connect* req,
                                    raft_id id, const char* address, raft_uv_connect_cb cb) {
  auto* self = static_cast<Impl*>(t->impl);
  if (self->closing_) return RAFT_CANCELED;
  req->cb = cb;
  const uint64_t serial = ++self->next_serial_;
  self->connects_[serial] = PendingConnect{req, cb};
  asio::post(*self->io_, [self, serial, id, address = std::string(address)] {
    self->dial(serial, id, address);
  });
  return 0;
}

// Stops accepting and dialling, closes every link (raft closes its own pipe
// ends), and, from a loop callback, fails the connect requests still pending
// with RAFT_CANCELED, then fires `cb`. A null `cb` is RaftTlsTransport's own
// close of a transport raft never closed.
void RaftTlsTransport::Impl::close(struct raft_uv_transport* t, raft_uv_transport_close_cb cb) {
  auto* self = static_cast<Impl*>(t->impl);
  if (self->closing_) return;
  self->closing_ = true;
  self->close_cb_ = cb;
  self->stop_thread();
  std::vector<Completion> left;
  {
    std::lock_guard lock(self->completions_mutex_);
    left.swap(self->completions_);
  }
  for (const Completion& c : left) {
    if (c.fd >= 0) ::close(c.fd);  // a connect among them stays pending: canceled below
  }
  if (self->wake_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&self->wake_), &Impl::on_wake_closed);
  }
}

void RaftTlsTransport::Impl::on_wake_closed(uv_handle_t* handle) {
  auto* self = static_cast<Impl*>(handle->data);
  self->wake_open_ = false;
  std::map<uint64_t, PendingConnect> canceled;
  canceled.swap(self->connects_);
  for (auto& [serial, pending] : canceled) pending.cb(pending.req, nullptr, RAFT_CANCELED);
  if (self->close_cb_) self->close_cb_(self->transport_);
}

void RaftTlsTransport::Impl::on_wake(uv_async_t* handle) {
  auto* self = static_cast<Impl*>(handle->data);
  std::vector<Completion> batch;
  {
    std::lock_guard lock(self->completions_mutex_);
    batch.swap(self->completions_);
  }
  for (const Completion& c : batch) self->complete(c);
}

// Raft loop thread.
void RaftTlsTransport::Impl::complete(const Completion& c) {
  if (c.kind == Completion::accepted) {
    if (closing_ || accept_cb_ == nullptr) {
      ::close(c.fd);
      return;
    }
    if (uv_stream_t* stream = make_pipe(c.fd)) {
      accept_cb_(transport_, c.id, c.address.c_str(), stream);
    }
    return;
  }
  auto it = connects_.find(c.serial);
  if (it == connects_.end()) {  // not expected: every dial reports once
    if (c.fd >= 0) ::close(c.fd);
    return;
  }
  const PendingConnect pending = it->second;
  connects_.erase(it);
  uv_stream_t* stream = c.kind == Completion::connected ? make_pipe(c.fd) : nullptr;
  pending.cb(pending.req, stream, stream != nullptr ? 0 : RAFT_NOCONNECTION);
}

// Raft's end of a socketpair as a uv_pipe_t that raft owns (it uv_close()s
// it and frees it with raft_free). Null (and the fd closed) on failure.
uv_stream_t* RaftTlsTransport::Impl::make_pipe(int fd) {
  auto* pipe = static_cast<uv_pipe_t*>(raft_malloc(sizeof(uv_pipe_t)));
  if (pipe == nullptr) {
    ::close(fd);
    return nullptr;
  }
  uv_pipe_init(loop_, pipe, 0);
  if (int rv = uv_pipe_open(pipe, fd); rv != 0) {
    HF_WARN("metadata quorum: cannot hand a Raft connection to raft: {}", uv_strerror(rv));
    ::close(fd);
    uv_close(reinterpret_cast<uv_handle_t*>(pipe), [](uv_handle_t* h) { raft_free(h); });
    return nullptr;
  }
  return reinterpret_cast<uv_stream_t*>(pipe);
}

std::string RaftTlsTransport::Impl::open_acceptor() {
  const std::string& address = options_.bind_address.empty() ? address_ : options_.bind_address;
  std::string host, port;
  if (!split_host_port(address, host, port)) return "Raft listen address " + address + " is not host:port";
  asio::error_code ec;
  tcp::resolver resolver(*io_);
  auto found = resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) return "cannot resolve the Raft listen address " + address + ": " + ec.message();
  const tcp::endpoint endpoint = found.begin()->endpoint();
  auto acceptor = std::make_unique<tcp::acceptor>(*io_);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on " + address + ": " + ec.message();
  acceptor_ = std::move(acceptor);
  accept_retry_ = std::make_unique<asio::steady_timer>(*io_);
  accept_next();
  return "";
}

void RaftTlsTransport::Impl::accept_next() {
  acceptor_->async_accept([this](const asio::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      accepted(std::move(socket));
      return accept_next();
    }
    // Out of descriptors or memory: try again shortly rather than spin.
    HF_WARN("metadata quorum: accepting a Raft connection: {}", ec.message());
    accept_retry_->expires_after(std::chrono::milliseconds(100));
    accept_retry_->async_wait([this](const asio::error_code& ec) {
      if (!ec) accept_next();
    });
  });
}

void RaftTlsTransport::Impl::accepted(tcp::socket socket) {
  if (pending_accepts_ >= kMaxPendingAccepts) {
    asio::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    const std::string host = ec ? "?" : remote.address().to_string();
    warn("from " + host, "metadata quorum: closed a Raft connection from " + host + ": " +
                             std::to_string(kMaxPendingAccepts) +
                             " connections are already setting up");
    return;  // the socket closes
  }
  ++pending_accepts_;
  auto link = std::make_shared<Link>(*this, std::move(socket), *options_.server, true);
  link->accept();
}

void RaftTlsTransport::Impl::dial(uint64_t serial, raft_id id, const std::string& address) {
  auto link = std::make_shared<Link>(*this, tcp::socket(*io_), *options_.client, false);
  link->dial(serial, id, address);
}

void RaftTlsTransport::Impl::deliver(Completion completion) {
  std::lock_guard lock(completions_mutex_);
  completions_.push_back(std::move(completion));
  uv_async_send(&wake_);  // closed only after this thread has been joined
}

void RaftTlsTransport::Impl::warn(const std::string& key, const std::string& message) {
  uint64_t suppressed = 0;
  if (!warnings_.allow(key, suppressed)) return;
  if (suppressed == 0) {
    HF_WARN("{}", message);
  } else {
    HF_WARN("{} ({} more like it since the last warning)", message, suppressed);
  }
}

Result<std::unique_ptr<RaftTlsTransport>, Errc> RaftTlsTransport::create(uv_loop_t* loop,
                                                                         RaftTlsOptions options) {
  if (!options.server || !options.client) {
    return make_error(Errc::invalid_config,
                      "Raft over TLS needs both a server and a client TLS context");
  }
  std::unique_ptr<RaftTlsTransport> made(new RaftTlsTransport(nullptr));
  made->impl_ = std::make_unique<Impl>(&made->transport_, loop, std::move(options));
  struct raft_uv_transport& t = made->transport_;
  t.impl = made->impl_.get();
  t.init = &Impl::init;
  t.listen = &Impl::listen;
  t.connect = &Impl::connect;
  t.close = &Impl::close;
  if (auto started = made->impl_->start(); !started) return started.error();
  return made;
}

RaftTlsTransport::RaftTlsTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RaftTlsTransport::~RaftTlsTransport() = default;

void RaftTlsTransport::close_unused() { Impl::close(&transport_, nullptr); }

}  // namespace holdfast::metadata
