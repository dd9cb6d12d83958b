// net::KafkaClient: the broker's outgoing Kafka-protocol client (inter-broker
// requests: replica fetches, registration and heartbeats to the controller,
// AlterPartition, forwarding).
//
// One connection per destination (host:port), opened on first use. Requests
// to one destination are pipelined on that connection and answered in order
// (Kafka answers a connection's requests in the order they came). Every
// request has a timeout; a request that times out after it was written closes
// its connection (a late response could not be matched otherwise), so the
// other requests on that connection fail with `disconnected`. A failed
// connect fails every request waiting for it at once (`connect_failed`): a
// dead destination is reported within one connect attempt, not after the
// request timeout. The next request to that destination reconnects, no
// earlier than a backoff after the failure that doubles with each failure in
// a row (reconnect_backoff .. reconnect_backoff_max) and resets once a
// connection is established. Requests are never retried by the client: the
// caller decides what is safe to resend.
//
// Threads: the client runs its own io_context thread (options.thread_name,
// "hf-net-client" unless set). Every
// public method may be called from any thread. Completion callbacks run on
// the client thread, each exactly once (also on failure); they must be short
// and must not block (no call() from a callback: it would wait for itself).
//
// Shutdown: shutdown() completes every outstanding request with `shut_down`
// (on the client thread) and joins the thread; after it returns no callback
// runs any more. A request submitted afterwards completes with `shut_down` at
// once, on the caller's thread. Because shutdown() waits for the callbacks,
// it must not be called while holding a lock a callback takes, nor from a
// callback. The destructor calls it.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "net/sasl_client.h"

namespace holdfast::net {

enum class Errc {
  connect_failed,  // resolving or connecting to the destination failed (or timed out)
  disconnected,    // the connection broke before the response came
  timed_out,       // no response within the request's timeout
  bad_response,    // a response frame that does not decode or does not match the request
  shut_down,       // the client is shut down (or shutting down)
};
const char* errc_name(Errc e);

template <typename T>
using NetResult = Result<T, Errc>;

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct KafkaClientOptions {
  std::string client_id = "holdfast";
  // The client thread's name (top -H): several clients may run in one broker.
  std::string thread_name = "hf-net-client";
  // Default timeout of a request (from submission to its response).
  std::chrono::milliseconds request_timeout{30000};
  // Resolving, connecting, the TLS handshake and SASL authentication, per attempt.
  std::chrono::milliseconds connect_timeout{10000};
  // Pause before reconnecting after a failure, doubled per failure in a row
  // up to the maximum (Kafka's reconnect.backoff.ms / .max.ms).
  std::chrono::milliseconds reconnect_backoff{50};
  std::chrono::milliseconds reconnect_backoff_max{1000};
  // A response frame announcing more bytes than this closes the connection.
  int32_t max_response_bytes = 100 * 1024 * 1024;
  // TLS: a client context (TLS 1.2+, verify_peer, the CA loaded, optionally
  // a client certificate: security::make_tls_client_context); null = plain TCP.
  std::shared_ptr<asio::ssl::context> tls;
  // SASL: a fresh mechanism per connection; empty = no SASL.
  std::function<std::unique_ptr<SaslClient>()> sasl;
};

class KafkaClient {
 public:
  // The response body after its header, positioned for Response::decode.
  using RawCallback = std::function<void(NetResult<protocol::Reader>)>;

  explicit KafkaClient(KafkaClientOptions options = {});
  ~KafkaClient();
  KafkaClient(const KafkaClient&) = delete;
  KafkaClient& operator=(const KafkaClient&) = delete;

  // Sends `request` at `version` to `to`; `done` gets the decoded response or
  // the error. Requires Request::kMinVersion <= version <= kMaxVersion.
  template <typename Response, typename Request>
  void send(const Endpoint& to, const Request& request, int16_t version,
            std::function<void(NetResult<Response>)> done,
            std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    auto frame = encode_frame(request, version);
    send_frame(to, Request::kApiKey, version, std::move(frame.bytes), frame.correlation_id,
               timeout.value_or(options_.request_timeout),
               [done = std::move(done), version](NetResult<protocol::Reader> reader) {
                 if (!reader) return done(reader.error());
                 Response response;
                 if (auto decoded = response.decode(*reader, version); !decoded) {
                   return done(make_error(Errc::bad_response, std::string(Response::kName) + ": " +
                                                                  decoded.error().message));
                 }
                 done(std::move(response));
               });
  }

  // Blocking form of send() for threads that may wait (tests, start-up, a
  // fetcher thread). Must not be called from a completion callback.
  template <typename Response, typename Request>
  NetResult<Response> call(const Endpoint& to, const Request& request, int16_t version,
                           std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    struct Slot {
      std::mutex mutex;
      std::condition_variable ready;
      std::optional<NetResult<Response>> result;
    };
    auto slot = std::make_shared<Slot>();
    send<Response>(
        to, request, version,
        [slot](NetResult<Response> result) {
          std::lock_guard lock(slot->mutex);
          slot->result.emplace(std::move(result));
          slot->ready.notify_all();
        },
        timeout);
    std::unique_lock lock(slot->mutex);
    slot->ready.wait(lock, [&] { return slot->result.has_value(); });
    return std::move(*slot->result);
  }

  // Coroutine form: resumes the awaiting coroutine on its own executor.
  // Pass named arguments, not temporaries: GCC 12 destroys temporaries of a
  // co_await full-expression wrongly (a double free).
  template <typename Response, typename Request>
  auto async_call(const Endpoint& to, const Request& request, int16_t version,
                  std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    // Not a coroutine itself (GCC 12 and lambda captures in coroutine frames):
    // it returns the initiation's awaitable.
    return asio::async_initiate<const asio::use_awaitable_t<>, void(NetResult<Response>)>(
        [this, to, request, version, timeout](auto handler) {
          auto executor = asio::get_associated_executor(handler);
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          send<Response>(
              to, request, version,
              [executor, shared](NetResult<Response> result) {
                asio::post(executor, [shared, result = std::move(result)]() mutable {
                  (*shared)(std::move(result));
                });
              },
              timeout);
        },
        asio::use_awaitable);
  }

  // The lower layer: a complete frame (size prefix, request header with
  // `correlation_id`, body), as encode_frame builds it.
  void send_frame(const Endpoint& to, int16_t api_key, int16_t version, std::vector<uint8_t> frame,
                  int32_t correlation_id, std::chrono::milliseconds timeout, RawCallback done);

  struct Frame {
    std::vector<uint8_t> bytes;
    int32_t correlation_id;
  };
  template <typename Request>
  Frame encode_frame(const Request& request, int16_t version) {
    const int32_t correlation_id = next_correlation_id();
    protocol::Writer w;
    w.put_int32(0);
    protocol::RequestHeader header;
    header.api_key = Request::kApiKey;
    header.api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = options_.client_id;
    header.encode(w, protocol::request_header_version(Request::kApiKey, version));
    request.encode(w, version);
    w.patch_int32(0, static_cast<int32_t>(w.size() - 4));
    return Frame{w.release(), correlation_id};
  }

  // Runs `fn` on the client's thread, after what is already queued there;
  // the thread that completes responses, so a caller can serialise its own
  // work with them. After shutdown() `fn` is dropped, never run.
  void post(std::function<void()> fn);

  // See the file comment. Idempotent.
  void shutdown();

  const KafkaClientOptions& options() const { return options_; }
  // Connections established so far (all destinations), for tests and metrics.
  int64_t connects() const { return connects_.load(); }

 private:
  class Connection;
  struct Pending;

  int32_t next_correlation_id();
  void submit(const Endpoint& to, std::shared_ptr<Pending> request);  // client thread

  KafkaClientOptions options_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::mutex state_mutex_;  // guards stopped_ against submissions racing shutdown
  bool stopped_ = false;
  std::atomic<int32_t> correlation_ids_{1};
  std::atomic<int64_t> connects_{0};
  // Client thread only.
  std::unordered_map<std::string, std::shared_ptr<Connection>> connections_;
};

}  // namespace holdfast::net
