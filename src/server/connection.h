// One client connection. A reader coroutine takes frames off the socket and
// starts a handler for each; handlers may finish out of order (a produce
// waiting for fsync, a long-poll fetch), but a writer coroutine sends the
// responses strictly in request order (kafka-python fails on any reorder).
// Everything here runs on the connection's one io_context thread.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/broker_config.h"
#include "server/request.h"
#include "server/security/sasl_authenticator.h"
#include "server/security/sasl_frames.h"

namespace asio::ssl {
class context;
}

namespace holdfast::server {

class Broker;
namespace security {
struct TlsStream;
}

// Connections the broker closed on its own, by reason (metrics); shared by
// the network server and its connections.
struct ConnectionCloseCounts {
  // No request read or handled and nothing written for connections.max.idle.ms.
  std::atomic<int64_t> idle{0};
  // A request frame not whole connections.max.idle.ms after its first byte.
  std::atomic<int64_t> slow_request{0};
  // Responses waiting to be written, none of their bytes taken by the client
  // for connections.max.idle.ms.
  std::atomic<int64_t> unread_responses{0};
  // A TLS handshake that failed (a plaintext client on a TLS port, a
  // certificate not trusted, no client certificate where one is required).
  std::atomic<int64_t> tls_handshake{0};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `protocol`: the listener's. On SASL_PLAINTEXT the connection starts
  // unauthenticated and accepts only ApiVersions and the SASL requests
  // until a SASL exchange succeeds (docs/security.md). `tls` (SSL and
  // SASL_SSL listeners): the broker's TLS context; the connection starts
  // with a TLS handshake and reads and writes through TLS.
  Connection(Broker& broker, asio::ip::tcp::socket socket, std::atomic<int64_t>& in_flight,
             SecurityProtocol protocol = SecurityProtocol::plaintext,
             std::shared_ptr<asio::ssl::context> tls = nullptr, std::string listener = {});
  ~Connection();

  // Keeps `admission` (the connection's place under max.connections) for the
  // connection's life, and counts the closes it decides in `closes`.
  void hold(std::shared_ptr<void> admission, std::shared_ptr<ConnectionCloseCounts> closes);
  void start();
  // Stops reading new requests; in-flight ones still complete and are sent.
  void stop_reading();
  // Closes the socket now.
  void close();

 private:
  struct Slot {
    Response response;
    bool done = false;
  };

  // Each coroutine holds `self` in its frame so the connection outlives it.
  asio::awaitable<void> read_loop(std::shared_ptr<Connection> self);
  asio::awaitable<void> write_loop(std::shared_ptr<Connection> self);
  // Closes the connection when idle, when a frame trickles in too slowly, or
  // when its responses stall (connections.max.idle.ms; docs/security.md).
  asio::awaitable<void> idle_loop(std::shared_ptr<Connection> self);
  // Client quotas (KIP-219): a response went out with throttle_time_ms;
  // nothing more is read or handled from the client until that time has
  // passed, so a client that ignores the hint is held back all the same.
  // (The writer also holds the responses after a throttled one until then:
  // they answer requests the client had pipelined before the mute.)
  asio::awaitable<void> wait_out_mute();
  // Records a handler's response and wakes the writer.
  void complete(Slot& slot, Response response);
  // Reads a frame body of `size` bytes, allocating it in pieces as the bytes
  // arrive, charged to the broker's request budget (waiting while it is
  // exhausted). nullopt if the connection stopped reading meanwhile.
  asio::awaitable<std::optional<Bytes>> read_body(size_t size);
  asio::awaitable<void> handle(std::shared_ptr<Connection> self, std::shared_ptr<Slot> slot,
                               Bytes frame);
  // Parses the header and runs the handler; never throws.
  asio::awaitable<Response> dispatch(const Bytes& frame);
  // Before authentication on a SASL listener: the SASL requests, and a raw
  // token frame after SaslHandshake v0 (connection_sasl.cc).
  bool authenticated() const;
  asio::awaitable<Response> handle_unauthenticated(const Bytes& frame);
  asio::awaitable<Response> finish_sasl(security::SaslAnswer answer);
  // KIP-368: a SaslHandshake on an authenticated SASL connection starts a new
  // exchange with the same mechanism, whose frames are then handled in line
  // like the first one's; it must end with the same principal.
  asio::awaitable<Response> reauthenticate(const Bytes& frame);
  // One SASL frame handled in line by the read loop (the first exchange, or
  // a re-authentication): takes its response slot, runs the exchange, and
  // completes the slot; true when the connection must close. An exception
  // closes the connection.
  asio::awaitable<bool> handle_sasl_in_line(const Bytes& frame, bool reauthentication);
  // A SASL connection whose session (connections.max.reauth.ms) has ended.
  bool session_ended() const { return session_ends_ && Clock::now() >= *session_ends_; }
  // The server side of the TLS handshake; false (logged and counted) when
  // it fails. A client certificate gives the principal on an SSL listener.
  asio::awaitable<bool> tls_handshake();

  Broker& broker_;
  asio::ip::tcp::socket socket_;
  std::string peer_;
  // TLS (SSL and SASL_SSL listeners): the stream over socket_; null on
  // plaintext, where reads and writes go to socket_ directly.
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<security::TlsStream> tls_;
  std::vector<uint8_t> tls_scratch_;  // small responses gathered for one TLS write
  // SASL state on a SASL listener (null on PLAINTEXT), and the principal its
  // requests run as.
  std::unique_ptr<security::SaslAuthenticator> sasl_;
  std::string principal_ = "User:ANONYMOUS";
  std::atomic<int64_t>& in_flight_;
  std::deque<std::shared_ptr<Slot>> slots_;
  asio::steady_timer writer_wakeup_;
  asio::steady_timer reader_wakeup_;  // back-pressure: too many requests pending
  std::shared_ptr<ClientGone> client_gone_ = std::make_shared<ClientGone>();
  bool reading_ = true;
  bool closed_ = false;

  // Overload bounds (all on the connection's thread).
  using Clock = std::chrono::steady_clock;
  std::shared_ptr<void> admission_;
  std::shared_ptr<ConnectionCloseCounts> closes_;
  asio::steady_timer idle_timer_;
  // The name of the listener the connection came through ("" = the first):
  // Metadata and FindCoordinator answer with that listener's endpoints.
  std::string listener_;
  Clock::time_point last_activity_ = Clock::now();  // a byte read or written, a response ready
  std::optional<Clock::time_point> frame_started_;  // the current frame's size prefix arrived
  bool budget_wait_ = false;  // reading stopped by queued.max.request.bytes
  // Client quotas: nothing is read before this (a throttled response's mute).
  Clock::time_point muted_until_{};
  bool throttle_wait_ = false;  // the reader is waiting out a mute
  // The writer sends nothing more before this: a throttled response went out
  // and the responses after it wait out its mute.
  Clock::time_point write_hold_until_{};
  size_t writing_slots_ = 0;  // responses handed to the current write
  // KIP-368: when the SASL session ends (nullopt: never), and during a
  // re-authentication the principal it must end with (else empty).
  std::optional<Clock::time_point> session_ends_;
  std::string reauth_principal_;
  size_t unsent_bytes_ = 0;   // bytes of completed responses not yet written
};

}  // namespace holdfast::server
