// Mutual TLS for the Raft traffic between metadata quorum members
// (listener.security.protocol.map=CONTROLLER:SSL, docs/security.md): a
// `struct raft_uv_transport` of our own that Canonical raft's libuv I/O
// backend uses instead of raft_uv_tcp_init's plain TCP. Raft still does all of
// consensus and all of its own message framing; this only carries its bytes.
//
// How: raft gets one end of a socketpair(AF_UNIX, SOCK_STREAM) as a uv_pipe_t
// on its loop; the other end is relayed to and from a TLS stream by an Asio
// io_context on a thread of its own (`hf-raft-tls`).
//   - connect(id, address): resolve, TCP connect, TLS client handshake that
//     verifies the peer's chain against the client context's CA and the host
//     or IP that was dialled (the member's Raft address), then a preamble
//     inside TLS (this member's Raft id and address: what the acceptor's
//     accept_cb needs, and what raft's own TCP transport sends in clear),
//     then the relay; connect_cb runs on the raft loop thread.
//   - listen: accept on the bind address (or the member's address), TLS
//     server handshake that requires and verifies a client certificate, read
//     the preamble, relay; accept_cb runs on the raft loop thread.
//   - A connection that fails its handshake or preamble (no certificate, an
//     untrusted one, plain bytes, too slow) is closed and logged as a warning
//     naming the peer, at most once per peer host per 30 s; the member keeps
//     serving. Setting a connection up is bounded in time
//     (handshake_timeout_ms) and incoming set-ups in number (kMaxPendingAccepts).
//   - The relay moves bytes through two fixed buffers per connection and
//     reads a side only when the other side has taken the last chunk
//     (back-pressure); either side closing or failing closes both.
//
// Threads: init/listen/connect/close are called by raft on its loop thread,
// and so are the callbacks; everything on sockets happens on hf-raft-tls.
// The two meet through a queue drained on the loop after uv_async_send.
#pragma once

#include <uv.h>
extern "C" {  // the raft headers have no C++ guards of their own
#include <raft.h>
#include <raft/uv.h>
}

#include <memory>
#include <string>

#include "base/result.h"
#include "metadata/metadata_log.h"

namespace asio::ssl {
class context;
}

namespace holdfast::metadata {

struct RaftTlsOptions {
  // Accepts peers: presents this member's certificate, requires and verifies
  // the peer's (verify_peer | verify_fail_if_no_peer_cert).
  std::shared_ptr<asio::ssl::context> server;
  // Dials peers: verifies the peer's chain (verify_peer) and presents this
  // member's certificate. The dialled host is checked per connection here.
  std::shared_ptr<asio::ssl::context> client;
  // host:port to listen on; empty: the member's own Raft address (as
  // raft_uv_tcp_set_bind_address, which this replaces).
  std::string bind_address;
  // Bound on TCP connect + TLS handshake + preamble of one connection.
  unsigned handshake_timeout_ms = 10000;
};

class RaftTlsTransport {
 public:
  // At most this many incoming connections between accept and the end of
  // their preamble; more are closed at once.
  static constexpr size_t kMaxPendingAccepts = 32;

  // Starts the hf-raft-tls thread and initialises the transport's async
  // handle on `loop`, which must not be running on another thread yet.
  static Result<std::unique_ptr<RaftTlsTransport>, Errc> create(uv_loop_t* loop,
                                                                 RaftTlsOptions options);

  // Either the transport was never used by raft, or raft's close callback
  // has fired (raft_close / raft_uv_close finished); then, as
  // raft_uv_tcp_close, this releases what is left. Joins the thread.
  ~RaftTlsTransport();
  RaftTlsTransport(const RaftTlsTransport&) = delete;
  RaftTlsTransport& operator=(const RaftTlsTransport&) = delete;

  // For a transport raft never closed (start-up failed before raft_init):
  // stops the thread and closes the async handle; run the loop afterwards so
  // the handle's close completes. Raft loop thread.
  void close_unused();

  // What raft_uv_init takes.
  struct raft_uv_transport* transport() { return &transport_; }

  class Impl;

 private:
  explicit RaftTlsTransport(std::unique_ptr<Impl> impl);
  struct raft_uv_transport transport_ {};
  std::unique_ptr<Impl> impl_;
};

}  // namespace holdfast::metadata
