#include "admin/admin_server.h"

#include <httplib.h>
#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "admin/admin_resources.h"
#include "admin/console_assets.h"
#include "base/log.h"

namespace holdfast::admin {
namespace {

// httplib's task queue with named threads (hf-admin-N), so operators can
// tell them from the Kafka reactors in `top -H`.
class NamedThreadPool final : public httplib::TaskQueue {
 public:
  explicit NamedThreadPool(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i] {
        const std::string name = "hf-admin-" + std::to_string(i);
        pthread_setname_np(pthread_self(), name.c_str());
        run();
      });
    }
  }
  ~NamedThreadPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

  // Runs what is queued, then joins the threads.
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

const ConsoleAsset* find_asset(std::string_view path) {
  for (const auto& asset : console_assets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

void send_asset(httplib::Response& res, const ConsoleAsset& asset) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(asset.data.data(), asset.data.size(), std::string(asset.content_type));
}

void send(httplib::Response& res, const Reply& reply) {
  res.status = reply.status;
  res.set_content(reply.body.dump(2) + "\n", "application/json");
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  // 127.0.0.0/8 in dotted-quad form: "127." and then digits and dots only.
  if (!host.starts_with("127.") || host.size() == 4) return false;
  int dots = 0;
  for (char c : host.substr(4)) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 2;
}

AdminServer::AdminServer(server::Broker& broker, AdminOptions options)
    : broker_(broker), options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  const int threads = std::max(1, options_.threads);
  http_->new_task_queue = [threads] { return new NamedThreadPool(threads); };
  // Idle keep-alive connections hold a thread: keep them short.
  http_->set_keep_alive_timeout(2);
  http_->set_keep_alive_max_count(100);
  http_->set_read_timeout(5, 0);
  http_->set_write_timeout(5, 0);
  http_->set_payload_max_length(1 << 20);
  add_routes();
}

AdminServer::~AdminServer() {
  stop();
}

Result<void, AdminErrc> AdminServer::bind() {
  if (options_.port == 0) {
    int port = http_->bind_to_any_port(options_.host);
    if (port <= 0) {
      return make_error(AdminErrc::bind_failed,
                        "cannot listen on " + options_.host + ":0 (admin.listener)");
    }
    port_ = uint16_t(port);
  } else {
    if (!http_->bind_to_port(options_.host, options_.port)) {
      return make_error(AdminErrc::bind_failed, "cannot listen on " + options_.host + ":" +
                                                    std::to_string(options_.port) +
                                                    " (admin.listener): address in use or invalid");
    }
    port_ = options_.port;
  }
  return {};
}

void AdminServer::start() {
  if (listener_.joinable()) return;
  listener_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "hf-admin-accept");
    http_->listen_after_bind();
  });
  lag_sampler_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "hf-admin-lag");
    sample_lag_until_stopped();
  });
  HF_INFO("web console, admin API and /metrics on http://{}:{}/", options_.host, port_);
  if (!is_loopback_host(options_.host)) {
    HF_WARN(
        "admin.listener {}:{} is not a loopback address and the admin API has no "
        "authentication yet: anyone who can reach it can read every message, delete topics "
        "and reset offsets. Keep it on 127.0.0.1 or a trusted network (docs/admin-api.md).",
        options_.host, port_);
  }
}

void AdminServer::stop() {
  if (!listener_.joinable()) return;
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (lag_sampler_.joinable()) lag_sampler_.join();
  http_->stop();
  listener_.join();
}

void AdminServer::sample_lag_until_stopped() {
  std::unique_lock lock(stop_mu_);
  while (!stopping_) {
    lock.unlock();
    // The same totals GET /v1/groups reports (high watermark minus committed).
    const Reply groups = list_groups(broker_);
    if (groups.status == 200) {
      std::map<std::string, int64_t> lags;
      for (const auto& g : groups.body.at("groups")) {
        lags[g.at("group_id").get<std::string>()] = g.at("total_lag").get<int64_t>();
      }
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch());
      lag_history_.record(now.count(), lags);
    }
    lock.lock();
    stop_cv_.wait_for(lock, kLagSampleInterval, [this] { return stopping_; });
  }
}

void AdminServer::add_routes() {
  auto& http = *http_;
  server::Broker& broker = broker_;

  http.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        HF_ERROR("admin API: {} {} failed: {}", req.method, req.path, what);
        send(res, error_reply(500, "UNKNOWN_SERVER_ERROR", what));
      });

  http.Get("/metrics", [&broker](const httplib::Request&, httplib::Response& res) {
    res.set_content(broker.metrics().expose(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/v1/broker", [this, &broker](const httplib::Request&, httplib::Response& res) {
    send(res, get_broker(broker, AdminSettings{options_.host + ":" + std::to_string(port_)}));
  });
  http.Get("/v1/config", [&broker](const httplib::Request&, httplib::Response& res) {
    send(res, get_config(broker));
  });
  http.Get("/v1/topics", [&broker](const httplib::Request&, httplib::Response& res) {
    send(res, list_topics(broker));
  });
  http.Post("/v1/topics", [&broker](const httplib::Request& req, httplib::Response& res) {
    send(res, create_topic(broker, req.body));
  });
  http.Get(R"(/v1/topics/([^/]+))", [&broker](const httplib::Request& req, httplib::Response& res) {
    send(res, get_topic(broker, req.matches[1]));
  });
  http.Delete(R"(/v1/topics/([^/]+))",
              [&broker](const httplib::Request& req, httplib::Response& res) {
                send(res, delete_topic(broker, req.matches[1]));
              });
  http.Get(R"(/v1/topics/([^/]+)/messages)",
           [&broker](const httplib::Request& req, httplib::Response& res) {
             send(res, search_topic_messages(broker, req.matches[1], req.params));
           });
  http.Post(R"(/v1/topics/([^/]+)/messages)",
            [&broker](const httplib::Request& req, httplib::Response& res) {
              send(res, produce_message(broker, req.matches[1], req.body));
            });
  http.Get("/v1/groups", [&broker](const httplib::Request&, httplib::Response& res) {
    send(res, list_groups(broker));
  });
  http.Get(R"(/v1/groups/([^/]+))",
           [this, &broker](const httplib::Request& req, httplib::Response& res) {
             Reply reply = get_group(broker, req.matches[1]);
             if (reply.status == 200) {
               Json history = Json::array();
               for (const auto& p : lag_history_.points(req.matches[1])) {
                 history.push_back({{"timestamp", p.timestamp_ms}, {"total_lag", p.total_lag}});
               }
               reply.body["lag_history"] = std::move(history);
             }
             send(res, reply);
           });
  http.Post(R"(/v1/groups/([^/]+)/offsets)",
            [&broker](const httplib::Request& req, httplib::Response& res) {
              send(res, reset_group_offsets(broker, req.matches[1], req.body));
            });
  // The web console: index.html at / and its assets under /console/.
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    if (const auto* asset = find_asset("index.html")) send_asset(res, *asset);
  });
  http.Get(R"(/console/([A-Za-z0-9._-]+))",
           [](const httplib::Request& req, httplib::Response& res) {
             const auto* asset = find_asset(req.matches[1].str());
             if (asset == nullptr) {
               send(res, error_reply(404, "NOT_FOUND", "no such console file: " + req.path));
               return;
             }
             send_asset(res, *asset);
           });
  // Everything else: a JSON 404 rather than httplib's empty page.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send(res, error_reply(404, "NOT_FOUND", "no such resource: " + req.method + " " + req.path));
    } else if (res.status == 400) {
      send(res, error_reply(400, "INVALID_REQUEST", "malformed HTTP request"));
    }
  });
}

}  // namespace holdfast::admin
