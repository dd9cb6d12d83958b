#include "server/network_server.h"

#include <sys/resource.h>

#include <cerrno>
#include <future>

#include "base/log.h"
#include "base/thread_name.h"
#include "server/broker.h"
#include "server/connection.h"

namespace holdfast::server {
namespace {

// Accept failures that mean "no resources now" (out of file descriptors,
// kernel memory): retrying at once cannot succeed and only burns a core.
bool out_of_resources(const asio::error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE ||
         ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

constexpr auto kFirstAcceptBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxAcceptBackoff = std::chrono::milliseconds(1000);
// A refusal episode ends when its limit has refused nothing for this long.
constexpr auto kQuietEpisodeEnd = std::chrono::seconds(10);
// Descriptors the broker needs besides client connections (segments and
// their indexes, the admin listener): the start-up warning's margin.
constexpr rlim_t kFileReserve = 1024;

}  // namespace

const char* to_string(ConnectionLimits::Refusal refusal) {
  switch (refusal) {
    case ConnectionLimits::Refusal::none: return "none";
    case ConnectionLimits::Refusal::max_connections: return "max.connections";
    case ConnectionLimits::Refusal::max_connections_per_ip: return "max.connections.per.ip";
  }
  return "unknown";
}

ConnectionLimits::ConnectionLimits(int64_t max_total, int64_t max_per_ip,
                                   std::map<std::string, int32_t> per_ip_overrides)
    : max_total_(max_total), max_per_ip_(max_per_ip), overrides_(std::move(per_ip_overrides)) {}

int64_t ConnectionLimits::limit_for(const std::string& ip) const {
  auto it = overrides_.find(ip);
  return it == overrides_.end() ? max_per_ip_ : it->second;
}

ConnectionLimits::Admission ConnectionLimits::admit(const std::string& ip) {
  const int64_t per_ip_limit = limit_for(ip);
  {
    std::lock_guard lock(mu_);
    auto it = per_ip_.find(ip);
    const int64_t from_ip = it == per_ip_.end() ? 0 : it->second;
    if (from_ip >= per_ip_limit) return Admission{nullptr, Refusal::max_connections_per_ip, per_ip_limit};
    if (open_ >= max_total_) return Admission{nullptr, Refusal::max_connections, max_total_};
    ++open_;
    ++per_ip_[ip];
  }
  // Built in place: a moved-from temporary would release the place too.
  struct Ticket {
    Ticket(std::shared_ptr<ConnectionLimits> l, std::string a) : limits(std::move(l)), ip(std::move(a)) {}
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { limits->release(ip); }
    std::shared_ptr<ConnectionLimits> limits;
    std::string ip;
  };
  return Admission{std::make_shared<Ticket>(shared_from_this(), ip), Refusal::none, 0};
}

void ConnectionLimits::release(const std::string& ip) {
  std::lock_guard lock(mu_);
  --open_;
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second <= 0) per_ip_.erase(it);
}

int64_t ConnectionLimits::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

int64_t ConnectionLimits::open_from(const std::string& ip) const {
  std::lock_guard lock(mu_);
  auto it = per_ip_.find(ip);
  return it == per_ip_.end() ? 0 : it->second;
}

NetworkServer::NetworkServer(Broker& broker, int threads)
    : broker_(broker),
      limits_(std::make_shared<ConnectionLimits>(broker.config().max_connections,
                                                 broker.config().max_connections_per_ip,
                                                 broker.config().max_connections_per_ip_overrides)),
      closes_(std::make_shared<ConnectionCloseCounts>()) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*contexts_.back()));
    // Create the thread's socket service, and with it its epoll reactor, now.
    // asio creates them with the first socket on a context, and the reactor
    // needs descriptors (epoll, eventfd, timerfd): left to the accept loop,
    // the first connection handed to this thread during an EMFILE episode
    // would throw from the socket's constructor and end the accept loop.
    asio::ip::tcp::socket warm_up(*contexts_.back());
  }
}

NetworkServer::~NetworkServer() { stop(std::chrono::milliseconds(0)); }

Result<void, StartupErrc> NetworkServer::bind(const std::string& host, uint16_t port,
                                              SecurityProtocol protocol, const std::string& name,
                                              std::shared_ptr<asio::ssl::context> tls) {
  const bool needs_tls = protocol == SecurityProtocol::ssl || protocol == SecurityProtocol::sasl_ssl;
  if (needs_tls && !tls) {
    return make_error(StartupErrc::failed, "listener " + name + " (" + to_string(protocol) +
                                               ") has no TLS context");
  }
  if (!needs_tls) tls.reset();
  asio::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error(StartupErrc::failed, "invalid listen address '" + host + "': " + ec.message());
  asio::ip::tcp::endpoint endpoint(address, port);
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(*contexts_[0]);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(StartupErrc::failed, "cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                   ec.message());
  }
  const uint16_t bound = acceptor->local_endpoint().port();
  acceptor->non_blocking(true, ec);  // the accept loop's synchronous retries never block
  listeners_.push_back(Listener{std::move(acceptor), protocol, std::move(tls), name, bound});
  return {};
}

uint16_t NetworkServer::port_of(const std::string& name) const {
  for (const auto& l : listeners_) {
    if (l.name == name) return l.port;
  }
  return 0;
}

void NetworkServer::start() {
  if (started_ || listeners_.empty()) return;
  started_ = true;
  rlimit files{};
  const auto max_connections = static_cast<rlim_t>(broker_.config().max_connections);
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY &&
      files.rlim_cur < max_connections + kFileReserve) {
    HF_WARN("the open-files limit ({}) is below max.connections ({}) plus {} for data files: "
            "accepts will fail with EMFILE before max.connections is reached; raise it "
            "(ulimit -n, LimitNOFILE=) or lower max.connections",
            files.rlim_cur, max_connections, kFileReserve);
  }
  for (size_t i = 0; i < listeners_.size(); ++i) {
    asio::co_spawn(*contexts_[0], accept_loop(i), [name = listeners_[i].name](std::exception_ptr failure) {
      if (!failure) return;
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        HF_ERROR("the accept loop of listener {} failed: {}; it accepts no new connections", name,
                 e.what());
      }
    });
  }
  run_threads();
}

void NetworkServer::run_threads() {
  for (size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([ctx = contexts_[i].get(), i] {
      set_thread_name("hf-net-" + std::to_string(i));
      ctx->run();
    });
  }
}

asio::awaitable<void> NetworkServer::accept_loop(size_t listener) {
  auto& acceptor = listeners_[listener].acceptor;
  const SecurityProtocol protocol = listeners_[listener].protocol;
  const std::shared_ptr<asio::ssl::context> tls = listeners_[listener].tls;
  const std::string name = listeners_[listener].name;
  auto backoff = kFirstAcceptBackoff;
  int64_t failures_in_a_row = 0;
  asio::steady_timer retry_timer(*contexts_[0]);
  while (acceptor && acceptor->is_open() && !accepting_stopped_) {
    auto& context = *contexts_[next_context_++ % contexts_.size()];
    asio::ip::tcp::socket socket(context);
    asio::error_code ec;
    if (failures_in_a_row > 0) {
      // Retrying after a failure: the connections that failed are still
      // queued, and epoll (edge-triggered) will not report them again until
      // another one arrives, so try them now, without blocking.
      acceptor->accept(socket, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec.clear();
        co_await acceptor->async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      }
    } else {
      co_await acceptor->async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (accepting_stopped_ || ec == asio::error::operation_aborted) break;
    if (ec) {
      accept_failures_.fetch_add(1);
      if (ec == asio::error::connection_aborted) continue;  // that client gave up; next
      // Persistent failures (EMFILE above all) would fail again at once: wait,
      // doubling the pause, and say so once per episode rather than per try.
      if (failures_in_a_row++ == 0) {
        HF_WARN("accept failed: {}{}; retrying every {}-{} ms until it succeeds (logged once)",
                ec.message(),
                out_of_resources(ec) ? " (raise the open-files limit, ulimit -n)" : "",
                kFirstAcceptBackoff.count(), kMaxAcceptBackoff.count());
      }
      retry_timer.expires_after(backoff);
      backoff = std::min(backoff * 2, kMaxAcceptBackoff);
      asio::error_code wait_ec;
      co_await retry_timer.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
      continue;
    }
    if (failures_in_a_row > 0) {
      HF_INFO("accepting connections again after {} failed accepts", failures_in_a_row);
      failures_in_a_row = 0;
      backoff = kFirstAcceptBackoff;
    }
    auto admission = admit(socket);
    if (!admission) continue;
    auto connection = std::make_shared<Connection>(broker_, std::move(socket), in_flight_, protocol, tls,
                                                   name);
    connection->hold(std::move(admission), closes_);
    {
      std::lock_guard lock(connections_mutex_);
      std::erase_if(connections_, [](const std::weak_ptr<Connection>& c) { return c.expired(); });
      connections_.push_back(connection);
    }
    connection->start();
  }
}

std::shared_ptr<void> NetworkServer::admit(asio::ip::tcp::socket& socket) {
  asio::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return nullptr;  // the client is gone already (ENOTCONN)
  const std::string ip = endpoint.address().to_string();
  auto admission = limits_->admit(ip);
  const auto now = std::chrono::steady_clock::now();
  end_quiet_episodes(now);
  if (admission.ticket) return std::move(admission.ticket);
  const auto reason = static_cast<size_t>(admission.refused);
  refused_[reason].fetch_add(1);
  RefusalEpisode& episode = episodes_[reason];
  if (episode.refused++ == 0) {
    HF_WARN("refusing connections over {} ({}), first from {}; each is closed at once, counted "
            "in holdfast_connections_refused_total and not logged again until {} s pass "
            "without one",
            to_string(admission.refused), admission.limit, ip, kQuietEpisodeEnd.count());
  }
  episode.last = now;
  socket.close(ec);
  return nullptr;
}

void NetworkServer::end_quiet_episodes(std::chrono::steady_clock::time_point now) {
  for (size_t i = 0; i < episodes_.size(); ++i) {
    RefusalEpisode& episode = episodes_[i];
    if (episode.refused == 0 || now - episode.last < kQuietEpisodeEnd) continue;
    HF_INFO("{} refused {} connections in the last episode",
            to_string(static_cast<ConnectionLimits::Refusal>(i)), episode.refused);
    episode.refused = 0;
  }
}

size_t NetworkServer::open_connections() {
  std::lock_guard lock(connections_mutex_);
  size_t open = 0;
  for (const auto& weak : connections_) open += weak.expired() ? 0 : 1;
  return open;
}

void NetworkServer::on_every_context(const std::function<void()>& fn) {
  std::vector<std::future<void>> done;
  for (auto& context : contexts_) {
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    asio::post(*context, [promise, &fn] {
      fn();
      promise->set_value();
    });
  }
  for (auto& f : done) f.wait();
}

void NetworkServer::stop_accepting() {
  if (!started_ || stopped_ || threads_.empty() || accepting_stopped_.exchange(true)) return;
  // 1. Stop accepting.
  asio::post(*contexts_[0], [this] {
    asio::error_code ec;
    for (auto& l : listeners_) {
      if (l.acceptor) l.acceptor->close(ec);
    }
  });
  on_every_context([] {});
  // 2. Stop reading requests; what is in flight still completes. No
  // connection is added after the barrier above (the accept loop checks
  // accepting_stopped_ on the same thread).
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(connections_mutex_);
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->stop_reading();
  on_every_context([] {});  // every stop_reading has run
}

void NetworkServer::wait_idle(std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void NetworkServer::pause() {
  if (!started_ || stopped_ || threads_.empty()) return;
  for (auto& context : contexts_) context->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void NetworkServer::resume() {
  if (!started_ || stopped_ || !threads_.empty()) return;
  for (auto& context : contexts_) context->restart();
  run_threads();
}

void NetworkServer::stop(std::chrono::milliseconds grace) {
  if (!started_ || stopped_) {
    listeners_.clear();
    return;
  }
  resume();  // after pause(): the last responses still go out
  stop_accepting();
  wait_idle(grace);
  if (in_flight_.load() > 0) {
    HF_WARN("shutdown: {} requests still in flight after {} ms; closing their connections",
            in_flight_.load(), grace.count());
  }
  // Give writers a moment to put the last responses on the wire.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(connections_mutex_);
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->close();
  live.clear();
  for (auto& g : guards_) g.reset();
  for (auto& context : contexts_) context->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  stopped_ = true;
  // Connections hold sockets of these contexts: release them before the contexts.
  {
    std::lock_guard lock(connections_mutex_);
    connections_.clear();
  }
  listeners_.clear();
}

}  // namespace holdfast::server
