// The Kafka listener: Asio io_contexts (one thread each), an acceptor, and one
// Connection per client socket, each living on one io_context for its life.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/result.h"

namespace holdfast::server {

class Broker;
class Connection;

// Start-up failures carry their explanation in the message.
enum class StartupErrc { failed };

class NetworkServer {
 public:
  NetworkServer(Broker& broker, int threads);
  ~NetworkServer();

  // Binds and starts accepting; returns the error text if the bind fails.
  Result<void, StartupErrc> start(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }

  // Stops accepting and reading new requests, waits (bounded) for in-flight
  // requests to finish and their responses to go out, then closes everything
  // and joins the threads.
  void stop(std::chrono::milliseconds grace);

  std::atomic<int64_t>& in_flight() { return in_flight_; }

 private:
  asio::awaitable<void> accept_loop();

  Broker& broker_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  size_t next_context_ = 0;
  uint16_t port_ = 0;
  std::atomic<int64_t> in_flight_{0};
  std::mutex connections_mutex_;
  std::vector<std::weak_ptr<Connection>> connections_;
};

}  // namespace holdfast::server
