// The Kafka listener: Asio io_contexts (one thread each), an acceptor, and one
// Connection per client socket, each living on one io_context for its life.
#pragma once

#include <array>
#include <asio.hpp>
#include <chrono>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "server/broker_config.h"

namespace asio::ssl {
class context;
}

namespace holdfast::server {

class Broker;
class Connection;
struct ConnectionCloseCounts;

// Open client connections counted against max.connections (all listeners)
// and max.connections.per.ip (with its overrides). Thread-safe: admissions
// happen on the accept thread, releases on whichever thread destroys the
// connection. Create with std::make_shared (tickets refer back to it).
class ConnectionLimits : public std::enable_shared_from_this<ConnectionLimits> {
 public:
  enum class Refusal { none, max_connections, max_connections_per_ip };

  ConnectionLimits(int64_t max_total, int64_t max_per_ip,
                   std::map<std::string, int32_t> per_ip_overrides);

  struct Admission {
    // Holds the connection's place until destroyed (null when refused).
    std::shared_ptr<void> ticket;
    Refusal refused = Refusal::none;
    int64_t limit = 0;  // the limit that refused it
  };
  // `ip`: the peer address as asio prints it (127.0.0.1, ::1).
  Admission admit(const std::string& ip);

  int64_t open() const;
  int64_t open_from(const std::string& ip) const;
  int64_t limit_for(const std::string& ip) const;

 private:
  void release(const std::string& ip);

  const int64_t max_total_;
  const int64_t max_per_ip_;
  const std::map<std::string, int32_t> overrides_;
  mutable std::mutex mu_;
  int64_t open_ = 0;
  std::map<std::string, int64_t> per_ip_;
};

const char* to_string(ConnectionLimits::Refusal refusal);

// Start-up failures carry their explanation in the message.
enum class StartupErrc { failed };

class NetworkServer {
 public:
  NetworkServer(Broker& broker, int threads);
  ~NetworkServer();

  // Binds and listens (connections queue in the backlog until start());
  // returns the error text if the address is invalid or the bind fails.
  // Called before the broker touches its data directory, once per client
  // listener; `protocol` decides each accepted connection's state machine
  // (Connection: SASL before anything else on SASL_PLAINTEXT); `tls`, the
  // broker's TLS context, is needed by SSL and SASL_SSL listeners.
  Result<void, StartupErrc> bind(const std::string& host, uint16_t port,
                                 SecurityProtocol protocol = SecurityProtocol::plaintext,
                                 const std::string& name = "PLAINTEXT",
                                 std::shared_ptr<asio::ssl::context> tls = nullptr);
  // Starts accepting and the network threads. Requires a successful bind().
  void start();
  // The first listener's bound port.
  uint16_t port() const { return listeners_.empty() ? 0 : listeners_.front().port; }
  // The bound port of the listener named `name` (0: none).
  uint16_t port_of(const std::string& name) const;

  // Shutdown, in the order the broker calls them (stop() alone does them all):
  // Stops accepting and reading new requests (in-flight ones continue); returns
  // once every network thread has seen it, so no request starts afterwards.
  void stop_accepting();
  // Waits (bounded) until no request is in flight.
  void wait_idle(std::chrono::milliseconds grace);
  // Stops the network threads without closing anything: completions posted
  // meanwhile (durability callbacks) queue on the executors, which stay alive.
  void pause();
  // Runs the network threads again after pause().
  void resume();
  // Stops accepting and reading, waits (bounded) for in-flight requests to
  // finish and their responses to go out, then closes everything and joins
  // the threads. The executors live until the destructor.
  void stop(std::chrono::milliseconds grace);

  std::atomic<int64_t>& in_flight() { return in_flight_; }
  int64_t in_flight_requests() const { return in_flight_.load(); }
  // Client connections open now (metrics).
  size_t open_connections();
  // Accepts that failed (EMFILE and the like), for the log and for tests.
  int64_t accept_failures() const { return accept_failures_.load(); }
  // Connections accepted and closed at once because a limit was reached.
  int64_t connections_refused(ConnectionLimits::Refusal reason) const {
    return refused_[static_cast<size_t>(reason)].load();
  }
  const ConnectionLimits& connection_limits() const { return *limits_; }
  // Connections closed by connections.max.idle.ms, by reason.
  const ConnectionCloseCounts& connection_closes() const { return *closes_; }

 private:
  struct Listener {
    std::unique_ptr<asio::ip::tcp::acceptor> acceptor;
    SecurityProtocol protocol = SecurityProtocol::plaintext;
    std::shared_ptr<asio::ssl::context> tls;  // SSL and SASL_SSL
    std::string name;
    uint16_t port = 0;
  };

  asio::awaitable<void> accept_loop(size_t listener);
  // Admits the accepted `socket` under the connection limits; a refused one
  // is counted, logged once per episode, and closed. Null when refused.
  std::shared_ptr<void> admit(asio::ip::tcp::socket& socket);
  void run_threads();
  // Runs `fn` on every io_context and returns once all have run it.
  void on_every_context(const std::function<void()>& fn);

  // A refusal episode per limit: the first refusal is logged, later ones only
  // counted until the limit has refused nothing for a while (accept thread only).
  struct RefusalEpisode {
    int64_t refused = 0;
    std::chrono::steady_clock::time_point last;
  };
  void end_quiet_episodes(std::chrono::steady_clock::time_point now);

  Broker& broker_;
  // Before the contexts: connections destroyed with them release their tickets here.
  std::shared_ptr<ConnectionLimits> limits_;
  std::shared_ptr<ConnectionCloseCounts> closes_;
  std::array<std::atomic<int64_t>, 3> refused_{};
  std::array<RefusalEpisode, 3> episodes_{};
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::vector<Listener> listeners_;
  size_t next_context_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<bool> accepting_stopped_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> accept_failures_{0};
  std::mutex connections_mutex_;
  std::vector<std::weak_ptr<Connection>> connections_;
};

}  // namespace holdfast::server
