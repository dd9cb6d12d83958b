#include "server/connection.h"

#include <algorithm>

#include "base/log.h"
#include "server/broker.h"
#include "server/request_budget.h"
#include "server/security/sasl_connection.h"
#include "server/security/tls_context.h"

namespace holdfast::server {

namespace {
constexpr auto kForever = std::chrono::steady_clock::time_point::max();
// Before authentication a frame is a SASL message (Kafka's sasl max receive
// size): a client that has not authenticated cannot make the broker hold more.
constexpr int32_t kMaxSaslFrameBytes = 512 * 1024;
// A client that sends requests and does not read the responses: the reader
// stops while this many response bytes wait to be written (besides the
// queued.max.requests count), so such a connection holds at most this much
// plus the responses of the requests already being handled.
constexpr size_t kMaxUnsentResponseBytes = 1024 * 1024;
// Over TLS the socket's readable bytes are ciphertext and decrypted bytes may
// wait inside the stream: a frame body is read (and allocated) at most one
// TLS record's worth at a time instead.
constexpr size_t kTlsReadChunk = 16 * 1024;
// Responses written together over TLS are copied into one buffer up to this size.
constexpr size_t kTlsCoalesceBytes = 64 * 1024;
}

Connection::Connection(Broker& broker, asio::ip::tcp::socket socket,
                       std::atomic<int64_t>& in_flight, SecurityProtocol protocol,
                       std::shared_ptr<asio::ssl::context> tls, std::string listener)
    : broker_(broker),
      socket_(std::move(socket)),
      tls_context_(std::move(tls)),
      in_flight_(in_flight),
      writer_wakeup_(socket_.get_executor()),
      reader_wakeup_(socket_.get_executor()),
      idle_timer_(socket_.get_executor()),
      listener_(std::move(listener)) {
  asio::error_code ec;
  auto endpoint = socket_.remote_endpoint(ec);
  peer_ = ec ? "unknown" : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  if (protocol == SecurityProtocol::sasl_plaintext || protocol == SecurityProtocol::sasl_ssl) {
    sasl_ = security::make_sasl_authenticator(broker_);
  }
  if (tls_context_) tls_ = std::make_unique<security::TlsStream>(socket_, *tls_context_);
}

Connection::~Connection() = default;

void Connection::hold(std::shared_ptr<void> admission,
                      std::shared_ptr<ConnectionCloseCounts> closes) {
  admission_ = std::move(admission);
  closes_ = std::move(closes);
}

void Connection::start() {
  asio::co_spawn(socket_.get_executor(), read_loop(shared_from_this()), asio::detached);
  asio::co_spawn(socket_.get_executor(), write_loop(shared_from_this()), asio::detached);
  asio::co_spawn(socket_.get_executor(), idle_loop(shared_from_this()), asio::detached);
}

void Connection::stop_reading() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->reading_ = false;
    asio::error_code ec;
    self->socket_.shutdown(asio::ip::tcp::socket::shutdown_receive, ec);
    self->reader_wakeup_.cancel();
    self->writer_wakeup_.cancel();  // responses held by a quota mute go now
  });
}

void Connection::close() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->closed_ = true;
    asio::error_code ec;
    self->socket_.close(ec);
    self->writer_wakeup_.cancel();
    self->reader_wakeup_.cancel();
    self->idle_timer_.cancel();
  });
}

asio::awaitable<void> Connection::read_loop(std::shared_ptr<Connection> self) {
  const uint32_t max_frame = static_cast<uint32_t>(broker_.config().socket_request_max_bytes);
  const size_t max_pending = static_cast<size_t>(broker_.config().queued_max_requests_per_connection);
  try {
    if (tls_ && !co_await tls_handshake()) reading_ = false;
    while (reading_ && !closed_) {
      // Back-pressure: too many requests pending, or a client that does not
      // read its responses (they keep their place until written).
      while ((slots_.size() + writing_slots_ >= max_pending ||
              unsent_bytes_ >= kMaxUnsentResponseBytes) &&
             reading_ && !closed_) {
        reader_wakeup_.expires_at(kForever);
        asio::error_code ec;
        co_await reader_wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (!reading_ || closed_) break;
      // (Checked here first: no coroutine frame on the unthrottled path.)
      if (Clock::now() < muted_until_) co_await wait_out_mute();
      if (!reading_ || closed_) break;
      // Until its 4-byte size has arrived a frame counts as idleness (from the
      // last activity); from then on its time to arrive whole is measured.
      // No wait for readability first: on the hot path the next frame is
      // usually in the socket already, and a wait would cost a reactor pass.
      uint8_t size_bytes[4];
      if (tls_) {
        co_await asio::async_read(tls_->stream, asio::buffer(size_bytes), asio::use_awaitable);
      } else {
        co_await asio::async_read(socket_, asio::buffer(size_bytes), asio::use_awaitable);
      }
      last_activity_ = Clock::now();
      frame_started_ = last_activity_;
      int32_t size = static_cast<int32_t>(load_be32(size_bytes));
      if (!authenticated()) {
        // Unauthenticated: small frames only; a raw SASL token may be tiny.
        const bool raw = sasl_->state() == security::SaslAuthenticator::State::raw_tokens;
        if (size < (raw ? 0 : 8) || size > kMaxSaslFrameBytes) {
          HF_WARN("closing connection from {}: frame of {} bytes before SASL authentication "
                  "(at most {})",
                  peer_, size, kMaxSaslFrameBytes);
          break;
        }
        auto body = co_await read_body(static_cast<size_t>(size));
        if (!body) break;
        frame_started_.reset();
        // Handled in line: the next frame's meaning depends on this one's outcome.
        const bool closing = co_await handle_sasl_in_line(*body, /*reauthentication=*/false);
        if (closing) break;
        continue;
      }
      if (size < 8 || static_cast<uint32_t>(size) > max_frame) {
        HF_WARN("closing connection from {}: request size {} is outside [8, {}] "
                "(socket.request.max.bytes)",
                peer_, size, max_frame);
        break;
      }
      auto body = co_await read_body(static_cast<size_t>(size));
      if (!body) break;
      frame_started_.reset();
      Bytes frame = std::move(*body);
      if (sasl_) {
        if (load_be16(frame.data()) == uint16_t(protocol::SaslHandshakeRequest::kApiKey)) {
          // Re-authentication (KIP-368): handled in line, as the first exchange.
          const bool closing = co_await handle_sasl_in_line(frame, /*reauthentication=*/true);
          if (closing) break;
          continue;
        }
        if (session_ended()) {
          HF_INFO("closing connection from {} ({}): its SASL session ended "
                  "(connections.max.reauth.ms={}) and it did not authenticate again",
                  peer_, principal_, broker_.config().connections_max_reauth_ms);
          broker_.metrics().record_session_expired();
          break;
        }
      }
      // A response that completed while this frame was arriving may have
      // muted the connection: the frame waits too.
      if (Clock::now() < muted_until_) co_await wait_out_mute();
      if (!reading_ || closed_) break;

      auto slot = std::make_shared<Slot>();
      slots_.push_back(slot);
      in_flight_.fetch_add(1);
      // Started in arrival order on this one thread, and a handler runs until
      // its first suspension before the next starts, so pipelined produces to
      // one partition append in request order.
      asio::co_spawn(socket_.get_executor(), handle(self, slot, std::move(frame)), asio::detached);
    }
  } catch (const std::system_error& e) {
    if (e.code() != asio::error::eof && e.code() != asio::error::operation_aborted &&
        e.code() != asio::error::connection_reset &&
        e.code() != asio::ssl::error::stream_truncated) {
      HF_DEBUG("connection from {}: read failed: {}", peer_, e.what());
    }
  }
  reading_ = false;
  // Nothing more will arrive: long-polls answer now (and drop their waiters);
  // let the writer drain what is pending and close.
  client_gone_->fire();
  writer_wakeup_.cancel();
}

asio::awaitable<void> Connection::wait_out_mute() {
  while (Clock::now() < muted_until_ && reading_ && !closed_) {
    throttle_wait_ = true;
    reader_wakeup_.expires_at(muted_until_);
    asio::error_code ec;
    co_await reader_wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (throttle_wait_) {
    throttle_wait_ = false;
    last_activity_ = Clock::now();  // the broker's wait, not the client's idleness
  }
}

asio::awaitable<std::optional<Bytes>> Connection::read_body(size_t size) {
  std::shared_ptr<RequestBudget> budget = broker_.request_budget();
  auto memory = std::make_shared<FrameMemory>(budget);
  std::vector<uint8_t>& buf = memory->bytes();
  // Unregisters a budget waiter however this coroutine ends (including its
  // frame being destroyed with the io_context), so a later release never
  // posts to a connection or executor that is gone.
  struct WaitTicket {
    RequestBudget& budget;
    uint64_t ticket = 0;
    ~WaitTicket() {
      if (ticket != 0) budget.cancel_wait(ticket);
    }
  } wait{*budget};
  size_t got = 0;
  while (got < size) {
    asio::error_code ec;
    size_t available = kTlsReadChunk;
    std::optional<uint8_t> first;
    if (!tls_) {
      // Allocate only for bytes that are here: take what the kernel holds,
      // waiting until the socket is readable only if it holds nothing. (On
      // the hot path the body came with its size, and a wait first would cost
      // an epoll_ctl and a reactor pass per request.)
      available = socket_.available(ec);
      if (ec || available == 0) {
        co_await socket_.async_wait(asio::socket_base::wait_read, asio::use_awaitable);
        available = socket_.available(ec);
      }
    }
    if (!tls_ && available == 0) {
      // Readable with nothing buffered: end of stream or an error, which this
      // read throws, before anything is allocated (or one byte that raced in).
      uint8_t byte = 0;
      co_await socket_.async_read_some(asio::buffer(&byte, 1), asio::use_awaitable);
      first = byte;
    }
    size_t want = first ? 1 : std::min(size - got, available);
    if (got + want > memory->charged()) {
      // Grow geometrically (bounded by the frame size) so that a large frame
      // arriving in small pieces is not copied once per piece.
      size_t capacity = std::min(size, std::max(got + want, 2 * memory->charged()));
      size_t extra = capacity - memory->charged();
      for (;;) {
        auto wake = [weak = weak_from_this(), executor = socket_.get_executor()] {
          asio::post(executor, [weak] {
            if (auto self = weak.lock()) self->reader_wakeup_.cancel();
          });
        };
        if (budget->try_acquire(memory.get(), extra, std::move(wake), &wait.ticket)) break;
        // Budget exhausted: stop reading until bytes are released. The
        // broker holds the frame up, not the client: its clock restarts.
        budget_wait_ = true;
        reader_wakeup_.expires_at(kForever);
        co_await reader_wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        budget_wait_ = false;
        frame_started_ = Clock::now();
        budget->cancel_wait(wait.ticket);
        wait.ticket = 0;
        if (!reading_ || closed_) co_return std::nullopt;
      }
      memory->add_charge(extra);
      buf.reserve(capacity);
    }
    buf.resize(got + want);  // within the reserved capacity: no reallocation
    last_activity_ = Clock::now();
    if (first) {
      buf[got++] = *first;
      continue;
    }
    size_t n = 0;
    if (tls_) {
      n = co_await tls_->stream.async_read_some(asio::buffer(buf.data() + got, want),
                                                asio::use_awaitable);
    } else {
      n = co_await socket_.async_read_some(asio::buffer(buf.data() + got, want),
                                           asio::use_awaitable);
    }
    got += n;
    buf.resize(got);
  }
  budget->frame_done(memory.get());
  const uint8_t* data = buf.data();
  co_return Bytes(std::shared_ptr<const void>(std::move(memory)), data, size);
}

asio::awaitable<Response> Connection::dispatch(const Bytes& frame) {
  const int16_t api_key = static_cast<int16_t>(load_be16(frame.data()));
  const int16_t api_version = static_cast<int16_t>(load_be16(frame.data() + 2));
  const int32_t correlation_id = static_cast<int32_t>(load_be32(frame.data() + 4));

  const ApiHandler* handler = find_api_handler(api_key);
  if (!handler) {
    HF_WARN("closing connection from {}: unknown api key {}", peer_, api_key);
    co_return close_connection();
  }
  RequestContext ctx{broker_, api_key, api_version, correlation_id, std::nullopt, {}, peer_,
                     principal_, client_gone_, listener_};
  if (api_version < handler->min_version || api_version > handler->max_version) {
    if (api_key != protocol::ApiVersionsRequest::kApiKey) {
      HF_WARN("closing connection from {}: {} v{} is not supported (supported: v{}-v{})", peer_,
              protocol::api_name(api_key), api_version, handler->min_version,
              handler->max_version);
      co_return close_connection();
    }
    // KIP-511: an ApiVersions request of an unknown version is answered (in
    // v0 format) without parsing its body; the handler does that.
    co_return co_await handler->handle(ctx);
  }

  protocol::Reader reader(frame);
  protocol::RequestHeader header;
  auto parsed = header.decode(reader, protocol::request_header_version(api_key, api_version));
  if (!parsed) {
    HF_WARN("closing connection from {}: malformed request header: {}", peer_,
            parsed.error().message);
    co_return close_connection();
  }
  ctx.client_id = header.client_id;
  ctx.body = frame.slice(reader.position());
  co_return co_await handler->handle(ctx);
}

asio::awaitable<void> Connection::handle(std::shared_ptr<Connection> self,
                                         std::shared_ptr<Slot> slot, Bytes frame) {
  Response response;
  const auto started = BrokerMetrics::Clock::now();
  try {
    response = co_await dispatch(frame);
  } catch (const std::exception& e) {
    HF_ERROR("closing connection from {}: handler failed: {}", peer_, e.what());
    response = close_connection();
  }
  broker_.metrics().record_request(static_cast<int16_t>(load_be16(frame.data())), started);
  complete(*slot, std::move(response));
}

void Connection::complete(Slot& slot, Response response) {
  slot.response = std::move(response);
  slot.done = true;
  if (slot.response.send) unsent_bytes_ += slot.response.frame.size();
  last_activity_ = Clock::now();
  if (slot.response.throttle_ms > 0) {
    muted_until_ = std::max(muted_until_,
                            last_activity_ + std::chrono::milliseconds(slot.response.throttle_ms));
  }
  in_flight_.fetch_sub(1);
  writer_wakeup_.cancel();
}

asio::awaitable<void> Connection::write_loop(std::shared_ptr<Connection> self) {
  // Completed responses taken off the front, kept alive while their frames are
  // on the wire; written with one gathered write, without copying them.
  std::vector<std::shared_ptr<Slot>> writing;
  std::vector<asio::const_buffer> buffers;
  try {
    while (!closed_) {
      writing.clear();
      buffers.clear();
      bool close_after = false;
      size_t bytes = 0;
      while (!slots_.empty() && slots_.front()->done) {
        // After a throttled response the later ones wait out its mute too:
        // requests the client pipelined before the mute began were read
        // already, and their answers are what such a client waits for.
        if (reading_ && Clock::now() < write_hold_until_) break;
        Response& r = slots_.front()->response;
        if (r.throttle_ms > 0) write_hold_until_ = muted_until_;
        if (r.send && !r.frame.empty()) buffers.push_back(asio::buffer(r.frame));
        if (r.send) bytes += r.frame.size();
        close_after = r.close_connection;
        writing.push_back(std::move(slots_.front()));
        slots_.pop_front();
        if (close_after) break;
      }
      // Written responses keep their place (queued.max.requests) until
      // written, so a client that does not read stops the reader.
      writing_slots_ = writing.size();
      if (!buffers.empty()) {
        // Each piece the kernel takes is progress (connections.max.idle.ms).
        auto progress = [this](const asio::error_code& ec, size_t) -> size_t {
          last_activity_ = Clock::now();
          return ec ? 0 : 65536;
        };
        if (tls_ && buffers.size() > 1 && bytes <= kTlsCoalesceBytes) {
          // asio's TLS stream sends a buffer sequence one buffer at a time
          // (a record and a send each): many small responses go as one.
          tls_scratch_.clear();
          for (const auto& b : buffers) {
            const auto* data = static_cast<const uint8_t*>(b.data());
            tls_scratch_.insert(tls_scratch_.end(), data, data + b.size());
          }
          co_await asio::async_write(tls_->stream, asio::buffer(tls_scratch_), progress,
                                     asio::use_awaitable);
        } else if (tls_) {
          co_await asio::async_write(tls_->stream, buffers, progress, asio::use_awaitable);
        } else {
          co_await asio::async_write(socket_, buffers, progress, asio::use_awaitable);
        }
      }
      writing_slots_ = 0;
      unsent_bytes_ -= std::min(unsent_bytes_, bytes);
      last_activity_ = Clock::now();
      reader_wakeup_.cancel();  // room for more requests
      if (close_after) break;
      // (Not once reading stopped: shutting down, or the client left.)
      const bool holding = reading_ && Clock::now() < write_hold_until_;
      if (!holding && !slots_.empty() && slots_.front()->done) continue;
      if (!reading_ && slots_.empty()) break;
      writer_wakeup_.expires_at(holding ? write_hold_until_ : kForever);
      asio::error_code ec;
      co_await writer_wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  } catch (const std::system_error& e) {
    HF_DEBUG("connection from {}: write failed: {}", peer_, e.what());
  }
  closed_ = true;
  reading_ = false;
  client_gone_->fire();
  asio::error_code ec;
  socket_.close(ec);
  reader_wakeup_.cancel();
  idle_timer_.cancel();
}

asio::awaitable<bool> Connection::tls_handshake() {
  // Bounded by idle_loop: the handshake must end within
  // connections.max.idle.ms of the accept, or the socket is closed under it.
  asio::error_code ec;
  co_await tls_->stream.async_handshake(asio::ssl::stream_base::server,
                                        asio::redirect_error(asio::use_awaitable, ec));
  if (closed_) co_return false;  // closed meanwhile (idle, shutdown): counted there
  if (ec) {
    if (closes_) closes_->tls_handshake.fetch_add(1);
    const long verify = SSL_get_verify_result(tls_->stream.native_handle());
    if (ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::ssl::error::stream_truncated) {
      HF_INFO("closing connection from {}: the client left during the TLS handshake", peer_);
    } else if (verify != X509_V_OK) {
      HF_WARN("closing connection from {}: TLS handshake failed: {} (client certificate: {})",
              peer_, ec.message(), X509_verify_cert_error_string(verify));
    } else {
      HF_WARN("closing connection from {}: TLS handshake failed: {}", peer_, ec.message());
    }
    co_return false;
  }
  last_activity_ = Clock::now();
  // On SSL a client certificate names the principal (Kafka's default
  // mapping); on SASL_SSL the SASL exchange does.
  if (!sasl_) {
    if (auto principal = security::peer_certificate_principal(*tls_)) {
      principal_ = std::move(*principal);
      HF_DEBUG("connection from {}: TLS client certificate, principal {}", peer_, principal_);
    }
  }
  co_return true;
}

asio::awaitable<void> Connection::idle_loop(std::shared_ptr<Connection> self) {
  const auto limit = std::chrono::milliseconds(broker_.config().connections_max_idle_ms);
  while (!closed_) {
    const auto now = Clock::now();
    const bool handling = std::any_of(slots_.begin(), slots_.end(),
                                      [](const std::shared_ptr<Slot>& s) { return !s->done; });
    Clock::time_point deadline = now + limit;
    std::atomic<int64_t>* counter = nullptr;
    const char* why = nullptr;
    if (budget_wait_ || handling || throttle_wait_ || now < write_hold_until_) {
      // The broker's turn (a handler running, or the request budget full):
      // not the client's idleness; look again later.
    } else if (frame_started_) {
      deadline = *frame_started_ + limit;
      why = "a request frame did not arrive whole";
      counter = closes_ ? &closes_->slow_request : nullptr;
    } else if (unsent_bytes_ > 0 || writing_slots_ > 0) {
      deadline = last_activity_ + limit;
      why = "the client took none of its responses";
      counter = closes_ ? &closes_->unread_responses : nullptr;
    } else {
      deadline = last_activity_ + limit;
      why = "idle";
      counter = closes_ ? &closes_->idle : nullptr;
    }
    if (why && now >= deadline) {
      HF_DEBUG("closing connection from {}: {} within connections.max.idle.ms ({} ms)", peer_, why,
               limit.count());
      if (counter) counter->fetch_add(1);
      closed_ = true;
      reading_ = false;
      asio::error_code ec;
      socket_.close(ec);
      writer_wakeup_.cancel();
      reader_wakeup_.cancel();
      break;
    }
    idle_timer_.expires_at(deadline);
    asio::error_code ec;
    co_await idle_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace holdfast::server
