// redis_bench: the durable peer of holdfast_bench (issue 13) — Redis Streams
// through hiredis, one XADD per message, on one connection. A program that
// prints figures, not a test: each run prints one JSON object on stdout in the
// shape of holdfast_bench's (bench/run.sh puts both in one table) and a
// readable copy on stderr.
//
//   redis_bench latency --port P --key K --rate 5000 --seconds 15 --size 1024
//       XADDs sent at a fixed rate (open loop: a slow reply does not delay the
//       next send); latency from handing the command to the socket to its reply
//       parsed; p50/p99/p99.9/max; --latencies-out writes every latency (µs,
//       sorted, one per line) for bench/plot_latency.py.
//   redis_bench produce --port P --key K --size 1024 --count N --max-seconds S --window 1000
//       pipelined XADDs, at most --window sent and not yet answered (split
//       evenly over --connections, default 1). Redis reads at most 16 KiB of
//       one connection's commands per event-loop pass (one AOF fsync), so one
//       connection caps how many 1 KiB XADDs share an fsync.
//
// Redis answers one connection's commands in order, so the n-th reply belongs
// to the n-th XADD. With `appendfsync always` Redis fsyncs its AOF before it
// writes the replies of an event-loop pass, so a reply means durable, like a
// Holdfast acks=all acknowledgement under flush.policy=always.
#include <hiredis/hiredis.h>
#include <poll.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using holdfast::bench::Clock;
using holdfast::bench::payload;
using holdfast::bench::percentile;
using holdfast::bench::seconds_since;

struct Common {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string key = "bench";
  size_t size = 1024;
};

[[noreturn]] void die(const std::string& message) {
  std::cerr << "redis_bench: " << message << std::endl;
  std::exit(1);
}

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};

// One blocking hiredis connection, used without blocking on reads: replies
// are read only after poll() says the socket is readable.
class Connection {
 public:
  explicit Connection(const Common& common) {
    context_.reset(redisConnectWithTimeout(common.host.c_str(), common.port, timeval{10, 0}));
    if (!context_ || context_->err) {
      die("cannot connect to " + common.host + ":" + std::to_string(common.port) + ": " +
          (context_ ? context_->errstr : "out of memory"));
    }
  }

  // Queues one XADD key * v <value>; send() hands queued commands to the socket.
  void append_xadd(const std::string& key, const std::string& value) {
    if (redisAppendCommand(context_.get(), "XADD %s * v %b", key.c_str(), value.data(),
                           value.size()) != REDIS_OK) {
      die(std::string("append: ") + context_->errstr);
    }
  }

  void send() {
    int done = 0;
    while (!done) {
      if (redisBufferWrite(context_.get(), &done) != REDIS_OK) {
        die(std::string("write: ") + context_->errstr);
      }
    }
  }

  int fd() const { return context_->fd; }

  // Waits up to `timeout` for the socket to be readable, reads what is there
  // and calls on_reply(is_error, error_text) for each complete reply.
  template <typename OnReply>
  void receive(Clock::duration timeout, OnReply&& on_reply) {
    if (parse(on_reply)) return;
    pollfd fd{context_->fd, POLLIN, 0};
    if (wait_readable(&fd, 1, timeout) > 0) read(fd.revents, on_reply);
  }

  // After poll() reported `revents` for fd(): reads and parses what arrived.
  template <typename OnReply>
  void read(short revents, OnReply&& on_reply) {
    if (revents == 0) return;
    if ((revents & POLLIN) == 0) die("connection closed by the server");
    if (redisBufferRead(context_.get()) != REDIS_OK) {
      die(std::string("read: ") + context_->errstr);
    }
    parse(on_reply);
  }

  // Hands every complete reply already buffered to on_reply; false when none was.
  template <typename OnReply>
  bool parse(OnReply& on_reply) {
    bool any = false;
    for (;;) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(context_.get(), &raw) != REDIS_OK) {
        die(std::string("protocol: ") + context_->errstr);
      }
      if (raw == nullptr) return any;
      auto* reply = static_cast<redisReply*>(raw);
      bool error = reply->type == REDIS_REPLY_ERROR;
      on_reply(error, error ? std::string(reply->str, reply->len) : std::string());
      freeReplyObject(reply);
      any = true;
    }
  }

  static int wait_readable(pollfd* fds, size_t count, Clock::duration timeout) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
    if (ns < 0) ns = 0;
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    int ready = ppoll(fds, count, &ts, nullptr);
    if (ready < 0 && errno != EINTR) die("poll failed");
    return ready;
  }

 private:
  std::unique_ptr<redisContext, ContextDeleter> context_;
};

// ---- fixed-rate XADD latency ------------------------------------------------------------------

struct LatencyArgs {
  Common common;
  double rate = 5000;
  double seconds = 10;
  std::string latencies_out;
};

nlohmann::ordered_json run_latency(const LatencyArgs& args) {
  Connection connection(args.common);
  const std::string value = payload(args.common.size);
  const auto total = static_cast<int64_t>(args.rate * args.seconds);
  std::vector<Clock::time_point> sent_at(total);
  std::vector<double> latency_ms;
  latency_ms.reserve(total);
  int64_t replies = 0, failed = 0;
  std::string first_error;
  auto on_reply = [&](bool error, const std::string& text) {
    if (error) {
      if (failed++ == 0) first_error = text;
    } else {
      latency_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - sent_at[replies]).count());
    }
    ++replies;
  };

  // Warm-up: one XADD answered before the clock starts (connection, key creation).
  connection.append_xadd(args.common.key, value);
  connection.send();
  {
    int64_t warm = 0;
    auto count = [&](bool error, const std::string& text) {
      if (error) die("warm-up XADD failed: " + text);
      ++warm;
    };
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (warm == 0 && Clock::now() < deadline) {
      connection.receive(std::chrono::milliseconds(100), count);
    }
    if (warm == 0) die("no reply to the warm-up XADD in 30 s");
  }

  const double send_seconds = holdfast::bench::send_at_fixed_rate(
      total, args.rate,
      [&](int64_t i) {
        sent_at[i] = Clock::now();
        connection.append_xadd(args.common.key, value);
        connection.send();
      },
      [&](Clock::duration left) { connection.receive(left, on_reply); });
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (replies < total && Clock::now() < deadline) {
    connection.receive(std::chrono::milliseconds(100), on_reply);
  }
  std::sort(latency_ms.begin(), latency_ms.end());
  if (!args.latencies_out.empty() &&
      !holdfast::bench::write_latencies(args.latencies_out, latency_ms)) {
    die("cannot write " + args.latencies_out);
  }
  return {{"run", "latency"},
          {"system", "redis"},
          {"topic", args.common.key},
          {"message_bytes", args.common.size},
          {"acks", "appendfsync always"},
          {"target_rate", args.rate},
          {"achieved_rate", total / send_seconds},
          {"messages", latency_ms.size()},
          {"failed", failed + (total - replies)},
          {"first_error", first_error},
          {"p50_ms", percentile(latency_ms, 50)},
          {"p99_ms", percentile(latency_ms, 99)},
          {"p999_ms", percentile(latency_ms, 99.9)},
          {"max_ms", latency_ms.empty() ? 0.0 : latency_ms.back()}};
}

// ---- pipelined XADD throughput ----------------------------------------------------------------

struct ProduceArgs {
  Common common;
  int64_t count = 1'000'000;
  double max_seconds = 30;
  int64_t window = 1000;
  int connections = 1;  // each with window / connections in flight
};

nlohmann::ordered_json run_produce(const ProduceArgs& args) {
  if (args.connections < 1 || args.window < args.connections) {
    die("need --connections >= 1 and --window >= --connections");
  }
  std::vector<std::unique_ptr<Connection>> connections;
  for (int i = 0; i < args.connections; ++i) {
    connections.push_back(std::make_unique<Connection>(args.common));
  }
  const std::string value = payload(args.common.size);
  // Per connection: sent and answered; the window is split evenly between them.
  std::vector<int64_t> sent(args.connections, 0), answered(args.connections, 0);
  const int64_t per_connection = args.window / args.connections;
  int64_t total_sent = 0, replies = 0, failed = 0;
  std::string first_error;
  std::vector<pollfd> fds(args.connections);
  auto counter = [&](int i) {
    return [&, i](bool error, const std::string& text) {
      if (error && failed++ == 0) first_error = text;
      ++answered[i];
      ++replies;
    };
  };
  // Waits up to `timeout` for any connection to be readable, then reads all
  // that are.
  auto receive_all = [&](Clock::duration timeout) {
    for (int i = 0; i < args.connections; ++i) {
      auto on_reply = counter(i);
      if (connections[i]->parse(on_reply)) timeout = Clock::duration::zero();
      fds[i] = pollfd{connections[i]->fd(), POLLIN, 0};
    }
    if (Connection::wait_readable(fds.data(), fds.size(), timeout) <= 0) return;
    for (int i = 0; i < args.connections; ++i) connections[i]->read(fds[i].revents, counter(i));
  };

  const auto start = Clock::now();
  while (total_sent < args.count && seconds_since(start) < args.max_seconds) {
    for (int i = 0; i < args.connections; ++i) {
      bool appended = false;
      while (sent[i] - answered[i] < per_connection && total_sent < args.count) {
        connections[i]->append_xadd(args.common.key, value);
        ++sent[i];
        ++total_sent;
        appended = true;
      }
      if (appended) connections[i]->send();
    }
    receive_all(std::chrono::milliseconds(1000));
  }
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (replies < total_sent && Clock::now() < deadline) {
    receive_all(std::chrono::milliseconds(100));
  }
  const double seconds = seconds_since(start);
  const int64_t delivered = replies - failed;
  const double bytes = static_cast<double>(delivered) * args.common.size;
  return {{"run", "produce"},
          {"system", "redis"},
          {"topic", args.common.key},
          {"message_bytes", args.common.size},
          {"acks", "appendfsync always"},
          {"linger_ms", 0},
          {"window", per_connection * args.connections},
          {"messages", delivered},
          {"connections", args.connections},
          {"failed", failed + (total_sent - replies)},
          {"first_error", first_error},
          {"seconds", seconds},
          {"messages_per_s", delivered / seconds},
          {"mb_per_s", bytes / seconds / 1e6}};
}

void add_common(CLI::App* app, Common& common) {
  app->add_option("--host", common.host, "Redis host")->capture_default_str();
  app->add_option("--port,-p", common.port, "Redis port")->capture_default_str();
  app->add_option("--key,-k", common.key, "Stream key")->capture_default_str();
  app->add_option("--size", common.size, "Message (field value) size in bytes")
      ->capture_default_str();
}

void emit(const nlohmann::ordered_json& result) {
  std::cout << result.dump() << std::endl;
  std::cerr << result.dump(2) << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"redis_bench: Redis Streams XADD throughput and latency (the peer in issue 13)"};
  app.require_subcommand(1);

  LatencyArgs latency;
  auto* latency_cmd = app.add_subcommand("latency", "XADD at a fixed rate; reply latency");
  add_common(latency_cmd, latency.common);
  latency_cmd->add_option("--rate", latency.rate, "Messages per second")->capture_default_str();
  latency_cmd->add_option("--seconds", latency.seconds, "Duration")->capture_default_str();
  latency_cmd->add_option("--latencies-out", latency.latencies_out,
                          "Write every latency (us, sorted, one per line) here");
  latency_cmd->callback([&] { emit(run_latency(latency)); });

  ProduceArgs produce;
  auto* produce_cmd = app.add_subcommand("produce", "Pipelined XADDs as fast as possible");
  add_common(produce_cmd, produce.common);
  produce_cmd->add_option("--count", produce.count, "Messages to send")->capture_default_str();
  produce_cmd->add_option("--max-seconds", produce.max_seconds, "Stop sending after this")
      ->capture_default_str();
  produce_cmd->add_option("--window", produce.window, "At most this many unanswered")
      ->capture_default_str();
  produce_cmd->add_option("--connections", produce.connections,
                          "Connections sharing the window (one stream key)")
      ->capture_default_str();
  produce_cmd->callback([&] { emit(run_produce(produce)); });

  CLI11_PARSE(app, argc, argv);
  return 0;
}
