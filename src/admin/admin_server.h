// The admin HTTP listener (admin.listener): GET /metrics, the /v1 JSON API
// and message search (docs/admin-api.md). cpp-httplib on its own named
// threads (hf-admin-N): a slow scrape or search never runs on a Kafka
// reactor. Writes (create/delete topic, reset offsets) go through the same
// TopicManager and GroupCoordinator calls as the Kafka APIs, so their
// validation is the same.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "admin/lag_history.h"
#include "base/result.h"
#include "server/broker.h"

namespace httplib {
class Server;
}

namespace holdfast::admin {

enum class AdminErrc { bind_failed };

// True for addresses only this machine can reach: 127.0.0.0/8, ::1 and
// "localhost". The listener has no authentication yet (issue 11), so start()
// warns when it is bound to anything else.
bool is_loopback_host(std::string_view host);

struct AdminOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 9644;  // 0: any free port (port() tells which)
  int threads = 4;
};

class AdminServer {
 public:
  // `broker` must outlive the server; requests are served only after
  // start(), which requires the broker to be started.
  AdminServer(server::Broker& broker, AdminOptions options);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds the listening socket (before the broker touches its data
  // directory, like the Kafka listener).
  Result<void, AdminErrc> bind();
  // Serves on the server's threads, and samples every group's total lag
  // into the lag history (hf-admin-lag). Requires bind().
  void start();
  // Stops accepting, finishes the requests being served, joins the threads.
  // Idempotent.
  void stop();

  uint16_t port() const { return port_; }
  const std::string& host() const { return options_.host; }

 private:
  void add_routes();
  void sample_lag_until_stopped();

  server::Broker& broker_;
  AdminOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  LagHistory lag_history_;
  std::thread lag_sampler_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  uint16_t port_ = 0;
};

}  // namespace holdfast::admin
