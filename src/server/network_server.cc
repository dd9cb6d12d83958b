#include "server/network_server.h"

#include "base/log.h"
#include "server/broker.h"
#include "server/connection.h"

namespace holdfast::server {

NetworkServer::NetworkServer(Broker& broker, int threads) : broker_(broker) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*contexts_.back()));
  }
}

NetworkServer::~NetworkServer() { stop(std::chrono::milliseconds(0)); }

Result<void, StartupErrc> NetworkServer::start(const std::string& host, uint16_t port) {
  asio::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error(StartupErrc::failed, "invalid listen address '" + host + "': " + ec.message());
  asio::ip::tcp::endpoint endpoint(address, port);
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(*contexts_[0]);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(StartupErrc::failed, "cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                   ec.message());
  }
  port_ = acceptor_->local_endpoint().port();
  asio::co_spawn(*contexts_[0], accept_loop(), asio::detached);
  for (auto& context : contexts_) {
    threads_.emplace_back([ctx = context.get()] { ctx->run(); });
  }
  return {};
}

asio::awaitable<void> NetworkServer::accept_loop() {
  while (acceptor_ && acceptor_->is_open()) {
    auto& context = *contexts_[next_context_++ % contexts_.size()];
    asio::ip::tcp::socket socket(context);
    asio::error_code ec;
    co_await acceptor_->async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      HF_WARN("accept failed: {}", ec.message());
      continue;
    }
    auto connection = std::make_shared<Connection>(broker_, std::move(socket), in_flight_);
    {
      std::lock_guard lock(connections_mutex_);
      std::erase_if(connections_, [](const std::weak_ptr<Connection>& c) { return c.expired(); });
      connections_.push_back(connection);
    }
    connection->start();
  }
}

void NetworkServer::stop(std::chrono::milliseconds grace) {
  if (threads_.empty()) return;
  // 1. Stop accepting.
  asio::post(*contexts_[0], [this] {
    asio::error_code ec;
    if (acceptor_) acceptor_->close(ec);
  });
  // 2. Stop reading requests; what is in flight still completes.
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(connections_mutex_);
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->stop_reading();
  // 3. Wait (bounded) for in-flight requests to finish.
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (in_flight_.load() > 0) {
    HF_WARN("shutdown: {} requests still in flight after {} ms; closing their connections",
            in_flight_.load(), grace.count());
  }
  // Give writers a moment to put the last responses on the wire.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (auto& c : live) c->close();
  live.clear();
  for (auto& g : guards_) g.reset();
  for (auto& context : contexts_) context->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // Connections hold sockets of these contexts: release them before the contexts.
  {
    std::lock_guard lock(connections_mutex_);
    connections_.clear();
  }
  acceptor_.reset();
}

}  // namespace holdfast::server
