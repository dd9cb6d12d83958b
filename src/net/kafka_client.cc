#include "net/kafka_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <deque>

#include "base/bytes.h"
#include "base/log.h"
#include "base/thread_name.h"

namespace holdfast::net {

const char* errc_name(Errc e) {
  switch (e) {
    case Errc::connect_failed:
      return "connect_failed";
    case Errc::disconnected:
      return "disconnected";
    case Errc::timed_out:
      return "timed_out";
    case Errc::bad_response:
      return "bad_response";
    case Errc::shut_down:
      return "shut_down";
  }
  return "unknown";
}

// One socket (and its TLS stream, on TLS) of one connect attempt. Every
// completion handler holds the transport it was started on, so a stream is
// never destroyed under a pending operation of its own.
struct Transport {
  explicit Transport(asio::io_context& io) : socket(io) {}
  asio::ip::tcp::socket socket;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls;

  template <typename Buffers, typename Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    if (tls) return asio::async_write(*tls, buffers, std::forward<Handler>(handler));
    asio::async_write(socket, buffers, std::forward<Handler>(handler));
  }
  template <typename Buffers, typename Handler>
  void async_read(const Buffers& buffers, Handler&& handler) {
    if (tls) return asio::async_read(*tls, buffers, std::forward<Handler>(handler));
    asio::async_read(socket, buffers, std::forward<Handler>(handler));
  }
  void close() {
    asio::error_code ignored;
    socket.close(ignored);
  }
};

// A request frame (size, header, body) for the authentication exchange,
// which runs before the connection takes queued requests.
template <typename Request>
std::vector<uint8_t> auth_frame(const Request& request, int16_t version,
                                const std::string& client_id, int32_t correlation_id) {
  protocol::Writer w;
  w.put_int32(0);
  protocol::RequestHeader header;
  header.api_key = Request::kApiKey;
  header.api_version = version;
  header.correlation_id = correlation_id;
  header.client_id = client_id;
  header.encode(w, protocol::request_header_version(Request::kApiKey, version));
  request.encode(w, version);
  w.patch_int32(0, static_cast<int32_t>(w.size() - 4));
  return w.release();
}

constexpr int16_t kSaslHandshakeVersion = 1;     // v1: SaslAuthenticate follows
constexpr int16_t kSaslAuthenticateVersion = 1;

// One request from submission to completion. Lives on the client thread once
// submitted; `frame` stays untouched while a write of it may be in progress
// (the write handler holds the request).
struct KafkaClient::Pending {
  Pending(asio::io_context& io) : timer(io) {}
  int16_t api_key = 0;
  int16_t version = 0;
  int32_t correlation_id = 0;
  std::vector<uint8_t> frame;
  RawCallback done;
  asio::steady_timer timer;
  bool completed = false;

  void complete(NetResult<protocol::Reader> result) {
    if (completed) return;
    completed = true;
    timer.cancel();
    auto callback = std::move(done);
    done = nullptr;
    callback(std::move(result));
  }
};

// The connection to one destination and the requests waiting for it. All of
// it runs on the client thread. `generation_` counts sockets: a completion
// from an earlier socket (closed meanwhile) finds another generation and does
// nothing.
class KafkaClient::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, Endpoint endpoint, const KafkaClientOptions& options,
             std::atomic<int64_t>& connects)
      : endpoint_(std::move(endpoint)),
        options_(options),
        connects_(connects),
        io_(io),
        resolver_(io),
        transport_(std::make_shared<Transport>(io)),
        connect_timer_(io),
        backoff_timer_(io),
        backoff_(options.reconnect_backoff) {}

  void enqueue(std::shared_ptr<Pending> request, std::chrono::milliseconds timeout) {
    if (state_ == State::closed) {
      return request->complete(make_error(Errc::shut_down, "the client is shut down"));
    }
    request->timer.expires_after(timeout);
    request->timer.async_wait(
        [self = shared_from_this(), weak = std::weak_ptr<Pending>(request)](asio::error_code ec) {
          if (ec) return;
          if (auto r = weak.lock()) self->timed_out(r);
        });
    queued_.push_back(std::move(request));
    kick();
  }

  // Closes the socket, fails everything with shut_down and stops for good.
  void close_for_shutdown() {
    close_socket();
    fail_all(Errc::shut_down, "the client is shutting down");
    state_ = State::closed;
    backoff_timer_.cancel();
  }

 private:
  enum class State { idle, backing_off, connecting, connected, closed };

  void kick() {
    switch (state_) {
      case State::connected:
        return write_queued();
      case State::idle:
        break;
      case State::backing_off:
      case State::connecting:
      case State::closed:
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= not_before_) return connect();
    state_ = State::backing_off;
    backoff_timer_.expires_at(not_before_);
    backoff_timer_.async_wait([self = shared_from_this()](asio::error_code ec) {
      if (ec || self->state_ != State::backing_off) return;
      self->state_ = State::idle;
      if (!self->queued_.empty()) self->connect();
    });
  }

  void connect() {
    state_ = State::connecting;
    const uint64_t generation = ++generation_;
    connect_timer_.expires_after(options_.connect_timeout);
    connect_timer_.async_wait([self = shared_from_this(), generation](asio::error_code ec) {
      if (ec || generation != self->generation_ || self->state_ != State::connecting) return;
      self->resolver_.cancel();
      self->connect_failed("timed out after " +
                           std::to_string(self->options_.connect_timeout.count()) + " ms");
    });
    resolver_.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port),
        [self = shared_from_this(), generation](asio::error_code ec,
                                                asio::ip::tcp::resolver::results_type results) {
          if (generation != self->generation_ || self->state_ != State::connecting) return;
          if (ec) return self->connect_failed("cannot resolve: " + ec.message());
          self->transport_ = std::make_shared<Transport>(self->io_);
          asio::async_connect(
              self->transport_->socket, results,
              [self, generation, transport = self->transport_](asio::error_code ec,
                                                               const asio::ip::tcp::endpoint&) {
                if (generation != self->generation_ || self->state_ != State::connecting) return;
                if (ec) return self->connect_failed(ec.message());
                self->connected();
              });
        });
  }

  // TCP is up: TLS next (if configured), then SASL (if configured), then
  // the connection takes requests. The connect timer still runs.
  void connected() {
    asio::error_code ignored;
    transport_->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (!options_.tls) return authenticate();
    auto transport = transport_;
    transport->tls =
        std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(transport->socket, *options_.tls);
    SSL* ssl = transport->tls->native_handle();
    // The certificate must name what we dialled: an IP address as an IP
    // SAN, a host name as a DNS SAN (or CN), as any TLS client checks.
    asio::error_code not_ip;
    (void)asio::ip::make_address(endpoint_.host, not_ip);
    if (!not_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), endpoint_.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, endpoint_.host.c_str());
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, endpoint_.host.c_str());
    }
    transport->tls->set_verify_mode(asio::ssl::verify_peer);
    transport->tls->async_handshake(
        asio::ssl::stream_base::client,
        [self = shared_from_this(), transport, generation = generation_](asio::error_code ec) {
          if (generation != self->generation_ || self->state_ != State::connecting) return;
          if (ec) {
            std::string why = "TLS handshake failed: " + ec.message();
            const long verify = SSL_get_verify_result(transport->tls->native_handle());
            if (verify != X509_V_OK) {
              why += std::string(" (certificate verification: ") +
                     X509_verify_cert_error_string(verify) + ")";
            }
            return self->security_failed(why);
          }
          self->authenticate();
        });
  }

  // SASL (when configured): SaslHandshake v1 with the mechanism, then
  // SaslAuthenticate with each client message until the mechanism is done.
  void authenticate() {
    if (!options_.sasl) return established();
    sasl_ = options_.sasl();
    protocol::SaslHandshakeRequest handshake;
    handshake.mechanism = sasl_->mechanism();
    exchange(auth_frame(handshake, kSaslHandshakeVersion, options_.client_id, ++auth_correlation_),
             protocol::SaslHandshakeRequest::kApiKey, kSaslHandshakeVersion,
             [self = shared_from_this()](protocol::Reader reader) {
               protocol::SaslHandshakeResponse response;
               if (!response.decode(reader, kSaslHandshakeVersion)) {
                 return self->security_failed("SASL authentication failed: bad SaslHandshake response");
               }
               if (response.error_code != 0) {
                 std::string offered;
                 for (const auto& m : response.mechanisms) offered += (offered.empty() ? "" : ",") + m;
                 return self->security_failed("SASL authentication failed: the broker does not offer " +
                                              self->sasl_->mechanism() + " (it offers: " + offered + ")");
               }
               self->sasl_step("");
             });
  }

  void sasl_step(std::string_view server_message) {
    SaslClientStep next = sasl_->step(server_message);
    switch (next.outcome) {
      case SaslClientStep::Outcome::done:
        HF_DEBUG("authenticated to {} as '{}' ({})", endpoint_.to_string(), sasl_->user(),
                 sasl_->mechanism());
        return established();
      case SaslClientStep::Outcome::failure:
        return security_failed("SASL authentication failed as '" + sasl_->user() + "' (" +
                               sasl_->mechanism() + "): " + next.reason);
      case SaslClientStep::Outcome::send:
        break;
    }
    protocol::SaslAuthenticateRequest request;
    request.auth_bytes = Bytes::copy_of(next.message);
    exchange(auth_frame(request, kSaslAuthenticateVersion, options_.client_id, ++auth_correlation_),
             protocol::SaslAuthenticateRequest::kApiKey, kSaslAuthenticateVersion,
             [self = shared_from_this()](protocol::Reader reader) {
               protocol::SaslAuthenticateResponse response;
               if (!response.decode(reader, kSaslAuthenticateVersion)) {
                 return self->security_failed("SASL authentication failed: bad SaslAuthenticate response");
               }
               if (response.error_code != 0) {
                 return self->security_failed(
                     "SASL authentication failed as '" + self->sasl_->user() + "' (" +
                     self->sasl_->mechanism() + "): the broker says " +
                     response.error_message.value_or("error " + std::to_string(response.error_code)));
               }
               self->sasl_step(response.auth_bytes.view());
             });
  }

  // Writes one frame and reads its response (the connection is not yet
  // taking requests, so nothing else is in flight); `handle` gets the body.
  void exchange(std::vector<uint8_t> frame, int16_t api_key, int16_t version,
                std::function<void(protocol::Reader)> handle) {
    auto bytes = std::make_shared<std::vector<uint8_t>>(std::move(frame));
    auto transport = transport_;
    const uint64_t generation = generation_;
    const int32_t correlation_id = auth_correlation_;
    auto self = shared_from_this();
    auto alive = [self, generation] {
      return generation == self->generation_ && self->state_ == State::connecting;
    };
    transport->async_write(asio::buffer(*bytes), [self, transport, bytes, alive, api_key, version,
                                                  correlation_id, handle = std::move(handle)](
                                                     asio::error_code ec, size_t) mutable {
      if (!alive()) return;
      if (ec) return self->connect_failed("write failed during authentication: " + ec.message());
      auto size = std::make_shared<std::array<uint8_t, 4>>();
      transport->async_read(asio::buffer(*size), [self, transport, size, alive, api_key, version,
                                                  correlation_id, handle = std::move(handle)](
                                                     asio::error_code ec, size_t) mutable {
        if (!alive()) return;
        if (ec) {
          return self->security_failed(ec == asio::error::eof
                                           ? "closed by the broker during authentication"
                                           : "read failed during authentication: " + ec.message());
        }
        const int32_t length = static_cast<int32_t>(load_be32(size->data()));
        if (length < 4 || length > 1024 * 1024) {
          return self->security_failed("authentication response frame of " +
                                       std::to_string(length) + " bytes");
        }
        auto body = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(length));
        transport->async_read(asio::buffer(*body), [self, transport, body, alive, api_key, version,
                                                    correlation_id, handle = std::move(handle)](
                                                       asio::error_code ec, size_t) {
          if (!alive()) return;
          if (ec) return self->security_failed("read failed during authentication: " + ec.message());
          protocol::Reader reader(Bytes(std::move(*body)));
          auto id = reader.read_int32();
          if (!id || *id != correlation_id ||
              (protocol::response_header_version(api_key, version) >= 1 &&
               !reader.skip_tagged_fields())) {
            return self->security_failed("authentication response does not match its request");
          }
          handle(std::move(reader));
        });
      });
    });
  }

  // TLS or SASL failed: a failed connect, logged as a warning once per run
  // of equal reasons (the reason never holds the secret).
  void security_failed(const std::string& why) {
    if (why != last_security_failure_) {
      HF_WARN("inter-broker connection to {}: {}", endpoint_.to_string(), why);
      last_security_failure_ = why;
    }
    connect_failed(why);
  }

  void established() {
    connect_timer_.cancel();
    sasl_.reset();
    last_security_failure_.clear();
    state_ = State::connected;
    backoff_ = options_.reconnect_backoff;
    connects_.fetch_add(1);
    read_size(generation_);
    write_queued();
  }

  void connect_failed(const std::string& why) {
    HF_DEBUG("connecting to {} failed: {}", endpoint_.to_string(), why);
    close_socket();
    fail_all(Errc::connect_failed, "cannot connect to " + endpoint_.to_string() + ": " + why);
    schedule_reconnect();
  }

  // After a failure the next connect waits for the backoff, doubled per failure in a row.
  void schedule_reconnect() {
    state_ = State::idle;
    not_before_ = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.reconnect_backoff_max);
  }

  void write_queued() {
    if (writing_ || queued_.empty() || state_ != State::connected) return;
    auto batch = std::make_shared<std::vector<std::shared_ptr<Pending>>>();
    std::vector<asio::const_buffer> buffers;
    while (!queued_.empty()) {
      auto request = std::move(queued_.front());
      queued_.pop_front();
      buffers.push_back(asio::buffer(request->frame));
      in_flight_.push_back(request);
      batch->push_back(std::move(request));
    }
    writing_ = true;
    transport_->async_write(
        buffers, [self = shared_from_this(), batch, transport = transport_,
                  generation = generation_](asio::error_code ec, size_t) {
          if (generation != self->generation_) return;
          self->writing_ = false;
          if (ec) return self->broken("write failed: " + ec.message());
          self->write_queued();
        });
  }

  void read_size(uint64_t generation) {
    transport_->async_read(asio::buffer(size_bytes_),
                     [self = shared_from_this(), transport = transport_, generation](asio::error_code ec, size_t) {
                       if (generation != self->generation_) return;
                       if (ec)
                         return self->broken(ec == asio::error::eof
                                                 ? "closed by the peer"
                                                 : "read failed: " + ec.message());
                       const int32_t size = static_cast<int32_t>(load_be32(self->size_bytes_));
                       if (size < 4 || size > self->options_.max_response_bytes) {
                         return self->broken("response frame of " + std::to_string(size) + " bytes",
                                             Errc::bad_response);
                       }
                       self->read_body(generation, size);
                     });
  }

  void read_body(uint64_t generation, int32_t size) {
    auto body = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(size));
    transport_->async_read(asio::buffer(*body),
                     [self = shared_from_this(), transport = transport_, generation, body](asio::error_code ec, size_t) {
                       if (generation != self->generation_) return;
                       if (ec) return self->broken("read failed: " + ec.message());
                       if (!self->deliver(Bytes(std::move(*body)))) return;
                       self->read_size(generation);
                     });
  }

  // Hands one response frame to the oldest request in flight; false if the
  // frame was not acceptable (the connection is then closed).
  bool deliver(Bytes frame) {
    if (in_flight_.empty()) {
      broken("a response nobody asked for", Errc::bad_response);
      return false;
    }
    auto request = in_flight_.front();
    protocol::Reader reader(std::move(frame));
    auto correlation_id = reader.read_int32();
    if (!correlation_id || *correlation_id != request->correlation_id) {
      broken("response with correlation id " +
                 (correlation_id ? std::to_string(*correlation_id) : std::string("?")) +
                 ", expected " + std::to_string(request->correlation_id),
             Errc::bad_response);
      return false;
    }
    if (protocol::response_header_version(request->api_key, request->version) >= 1) {
      if (!reader.skip_tagged_fields()) {
        broken("bad response header", Errc::bad_response);
        return false;
      }
    }
    in_flight_.pop_front();
    request->complete(std::move(reader));
    return true;
  }

  void timed_out(const std::shared_ptr<Pending>& request) {
    if (request->completed) return;
    auto queued = std::find(queued_.begin(), queued_.end(), request);
    if (queued != queued_.end()) {
      queued_.erase(queued);
      return request->complete(make_error(Errc::timed_out, timeout_message()));
    }
    auto sent = std::find(in_flight_.begin(), in_flight_.end(), request);
    if (sent == in_flight_.end()) return;
    // Written: its response may still come, and responses match by order,
    // so the connection cannot be used any more.
    in_flight_.erase(sent);
    request->complete(make_error(Errc::timed_out, timeout_message()));
    broken("closed after a request timed out");
  }

  std::string timeout_message() const {
    return "no response from " + endpoint_.to_string() + " in time";
  }

  // The established connection failed: everything outstanding fails.
  void broken(const std::string& why, Errc code = Errc::disconnected) {
    HF_DEBUG("connection to {} lost: {}", endpoint_.to_string(), why);
    close_socket();
    fail_all(code, "connection to " + endpoint_.to_string() + ": " + why);
    schedule_reconnect();
  }

  void close_socket() {
    ++generation_;  // every completion of the old socket is now stale
    writing_ = false;
    resolver_.cancel();
    connect_timer_.cancel();
    transport_->close();
    sasl_.reset();
  }

  void fail_all(Errc code, const std::string& why) {
    auto in_flight = std::move(in_flight_);
    auto queued = std::move(queued_);
    in_flight_.clear();
    queued_.clear();
    for (auto& r : in_flight) r->complete(make_error(code, why));
    for (auto& r : queued) r->complete(make_error(code, why));
  }

  Endpoint endpoint_;
  const KafkaClientOptions& options_;
  std::atomic<int64_t>& connects_;
  asio::io_context& io_;
  asio::ip::tcp::resolver resolver_;
  std::shared_ptr<Transport> transport_;
  asio::steady_timer connect_timer_;
  asio::steady_timer backoff_timer_;
  State state_ = State::idle;
  uint64_t generation_ = 0;
  bool writing_ = false;
  std::chrono::milliseconds backoff_;
  std::chrono::steady_clock::time_point not_before_{};
  std::deque<std::shared_ptr<Pending>> queued_;
  std::deque<std::shared_ptr<Pending>> in_flight_;
  uint8_t size_bytes_[4] = {};
  std::unique_ptr<SaslClient> sasl_;  // during authentication only
  int32_t auth_correlation_ = 0;
  std::string last_security_failure_;  // logged already; cleared once established
};

KafkaClient::KafkaClient(KafkaClientOptions options) : options_(std::move(options)) {
  work_.emplace(asio::make_work_guard(io_));
  thread_ = std::thread([this] {
    set_thread_name(options_.thread_name);
    io_.run();
  });
}

KafkaClient::~KafkaClient() {
  shutdown();
}

int32_t KafkaClient::next_correlation_id() {
  // Wraps at INT32_MAX back to 1: ids only need to differ among the requests
  // in flight on one connection.
  int32_t id = correlation_ids_.fetch_add(1, std::memory_order_relaxed);
  if (id <= 0) {
    correlation_ids_.store(2);
    id = 1;
  }
  return id;
}

void KafkaClient::send_frame(const Endpoint& to, int16_t api_key, int16_t version,
                             std::vector<uint8_t> frame, int32_t correlation_id,
                             std::chrono::milliseconds timeout, RawCallback done) {
  auto request = std::make_shared<Pending>(io_);
  request->api_key = api_key;
  request->version = version;
  request->correlation_id = correlation_id;
  request->frame = std::move(frame);
  request->done = std::move(done);
  {
    std::lock_guard lock(state_mutex_);
    if (!stopped_) {
      // Posted under the lock: shutdown's own post comes after every
      // submission, and the thread runs them in order.
      asio::post(io_, [this, to, request, timeout] {
        auto& connection = connections_[to.to_string()];
        if (!connection) connection = std::make_shared<Connection>(io_, to, options_, connects_);
        connection->enqueue(request, timeout);
      });
      return;
    }
  }
  request->complete(make_error(Errc::shut_down, "the client is shut down"));
}

void KafkaClient::post(std::function<void()> fn) {
  std::lock_guard lock(state_mutex_);
  if (stopped_) return;
  asio::post(io_, std::move(fn));
}

void KafkaClient::shutdown() {
  {
    std::lock_guard lock(state_mutex_);
    if (stopped_) return;
    stopped_ = true;
    asio::post(io_, [this] {
      for (auto& [name, connection] : connections_) connection->close_for_shutdown();
      connections_.clear();
    });
  }
  // No new work can arrive: the thread runs until the aborted operations'
  // handlers (stale generations, no callbacks) are done.
  work_.reset();
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      HF_ERROR("KafkaClient::shutdown called from its own thread; not waiting");
      thread_.detach();
    } else {
      thread_.join();
    }
  }
}

}  // namespace holdfast::net
