// holdfast_bench: produce/consume throughput and produce-ack latency against a
// Kafka-protocol broker, through librdkafka. A program that prints figures,
// not a test: each run prints one JSON object on stdout (bench/run.sh
// collects them into a table) and a readable line on stderr.
//
//   holdfast_bench produce --topic T --size 1024 --count N --max-seconds S
//   holdfast_bench consume --topic T --max-seconds S
//   holdfast_bench latency --topic T --rate 5000 --seconds 10 --size 100 [--latencies-out F]
//       (F: every acknowledgement latency in µs, sorted, one per line, for
//       bench/plot_latency.py)
#include <librdkafka/rdkafka.h>

#include <CLI/CLI.hpp>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace {

using holdfast::bench::Clock;
using holdfast::bench::payload;
using holdfast::bench::percentile;
using holdfast::bench::seconds_since;

struct Common {
  std::string brokers = "127.0.0.1:9092";
  std::string topic = "bench";
  std::vector<std::string> properties;  // -X key=value
};

[[noreturn]] void die(const std::string& message) {
  std::cerr << "holdfast_bench: " << message << std::endl;
  std::exit(1);
}

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

rd_kafka_conf_t* make_conf(const Common& common,
                           const std::vector<std::pair<std::string, std::string>>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  auto set = [&](const std::string& key, const std::string& value) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      die("bad property " + key + "=" + value + ": " + errstr);
    }
  };
  set("bootstrap.servers", common.brokers);
  for (const auto& [key, value] : settings) set(key, value);
  for (const auto& property : common.properties) {
    auto at = property.find('=');
    if (at == std::string::npos) die("-X " + property + ": expected key=value");
    set(property.substr(0, at), property.substr(at + 1));
  }
  return conf;
}

Handle make_handle(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (rk == nullptr) die(std::string("cannot create client: ") + errstr);
  return Handle(rk);
}

// ---- produce throughput ---------------------------------------------------------------------

struct ProduceArgs {
  Common common;
  size_t size = 1024;
  int64_t count = 1'000'000;
  double max_seconds = 30;
  std::string acks = "all";
  int linger_ms = 5;
  std::string compression = "none";
  // 0: unwindowed (librdkafka's queue decides). N > 0: at most N messages
  // sent and not yet acknowledged, like an application that bounds what it
  // has in flight (issue 13's windowed run: 1,000 in flight, linger.ms=0).
  int64_t window = 0;
};

struct ProduceTally {
  int64_t delivered = 0;
  int64_t failed = 0;
  std::string first_error;
};

void count_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* tally = static_cast<ProduceTally*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++tally->delivered;
  } else if (tally->failed++ == 0) {
    tally->first_error = rd_kafka_err2str(message->err);
  }
}

nlohmann::ordered_json run_produce(const ProduceArgs& args) {
  ProduceTally tally;
  rd_kafka_conf_t* conf = make_conf(args.common, {{"acks", args.acks},
                                                  {"linger.ms", std::to_string(args.linger_ms)},
                                                  {"compression.codec", args.compression},
                                                  {"queue.buffering.max.messages", "500000"},
                                                  {"message.timeout.ms", "60000"}});
  rd_kafka_conf_set_opaque(conf, &tally);
  rd_kafka_conf_set_dr_msg_cb(conf, count_delivery);
  Handle rk = make_handle(RD_KAFKA_PRODUCER, conf);
  const std::string value = payload(args.size);

  // Warm-up: one message, so metadata (and auto-creation) is out of the timing.
  rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(args.common.topic.c_str()),
                    RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  rd_kafka_flush(rk.get(), 30000);
  if (tally.delivered != 1) die("warm-up message failed: " + tally.first_error);
  tally = ProduceTally{};

  const auto start = Clock::now();
  int64_t sent = 0;
  while (sent < args.count && seconds_since(start) < args.max_seconds) {
    if (args.window > 0 && sent - tally.delivered - tally.failed >= args.window) {
      rd_kafka_poll(rk.get(), 1);
      continue;
    }
    rd_kafka_resp_err_t err =
        rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(args.common.topic.c_str()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk.get(), 1);
      continue;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) die(std::string("produce: ") + rd_kafka_err2str(err));
    ++sent;
    if (sent % 1000 == 0) rd_kafka_poll(rk.get(), 0);
  }
  while (tally.delivered + tally.failed < sent) rd_kafka_poll(rk.get(), 50);
  const double seconds = seconds_since(start);
  const double bytes = static_cast<double>(tally.delivered) * args.size;
  return {{"run", "produce"},
          {"system", "holdfast"},
          {"topic", args.common.topic},
          {"message_bytes", args.size},
          {"acks", args.acks},
          {"linger_ms", args.linger_ms},
          {"compression", args.compression},
          {"window", args.window},
          {"messages", tally.delivered},
          {"failed", tally.failed},
          {"first_error", tally.first_error},
          {"seconds", seconds},
          {"messages_per_s", tally.delivered / seconds},
          {"mb_per_s", bytes / seconds / 1e6}};
}

// ---- consume throughput ---------------------------------------------------------------------

struct ConsumeArgs {
  Common common;
  double max_seconds = 30;
};

nlohmann::ordered_json run_consume(const ConsumeArgs& args) {
  rd_kafka_conf_t* conf = make_conf(args.common, {{"group.id", "holdfast-bench"},
                                                  {"enable.auto.commit", "false"},
                                                  {"enable.partition.eof", "true"},
                                                  {"auto.offset.reset", "earliest"}});
  Handle rk = make_handle(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(rk.get());
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_metadata(rk.get(), 1, nullptr, &metadata, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    die("cannot get metadata");
  }
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(8);
  std::map<int32_t, int64_t> ends;
  for (int t = 0; t < metadata->topic_cnt; ++t) {
    if (args.common.topic != metadata->topics[t].topic) continue;
    for (int p = 0; p < metadata->topics[t].partition_cnt; ++p) {
      int32_t id = metadata->topics[t].partitions[p].id;
      int64_t low = 0, high = 0;
      rd_kafka_query_watermark_offsets(rk.get(), args.common.topic.c_str(), id, &low, &high, 10000);
      if (high > low) ends[id] = high;
      rd_kafka_topic_partition_list_add(assignment, args.common.topic.c_str(), id)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  rd_kafka_metadata_destroy(metadata);
  if (assignment->cnt == 0) die("topic " + args.common.topic + " does not exist");
  rd_kafka_assign(rk.get(), assignment);
  rd_kafka_topic_partition_list_destroy(assignment);

  int64_t messages = 0, bytes = 0;
  Clock::time_point start;
  bool started = false;
  const auto deadline = Clock::now() + std::chrono::duration<double>(args.max_seconds);
  while (!ends.empty() && Clock::now() < deadline) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk.get(), 100);
    if (message == nullptr) continue;
    if (!started) {
      start = Clock::now();  // from the first answer: connection set-up is not throughput
      started = true;
    }
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++messages;
      bytes += static_cast<int64_t>(message->len + message->key_len);
      auto it = ends.find(message->partition);
      if (it != ends.end() && message->offset + 1 >= it->second) ends.erase(it);
    } else if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      auto it = ends.find(message->partition);
      if (it != ends.end() && message->offset >= it->second) ends.erase(it);
    } else {
      std::cerr << "holdfast_bench: consume: " << rd_kafka_message_errstr(message) << std::endl;
    }
    rd_kafka_message_destroy(message);
  }
  const double seconds = started ? seconds_since(start) : 0.0;
  rd_kafka_consumer_close(rk.get());
  return {{"run", "consume"},
          {"system", "holdfast"},
          {"topic", args.common.topic},
          {"messages", messages},
          {"bytes", bytes},
          {"complete", ends.empty()},
          {"seconds", seconds},
          {"messages_per_s", seconds > 0 ? messages / seconds : 0.0},
          {"mb_per_s", seconds > 0 ? bytes / seconds / 1e6 : 0.0}};
}

// ---- fixed-rate produce latency -------------------------------------------------------------

// How the sender paces itself and sees acknowledgements:
//   - "thread" (the default): the sender sleeps until each send time
//     (clock_nanosleep on an absolute time, timer slack 1 ns) and a second
//     thread blocks in rd_kafka_poll, so a delivery report is timed as soon as
//     librdkafka hands it over, as an application with a poll thread sees it;
//   - "poll-sleep": the loop used before 2026-12-01 (issue 13's figures up to
//     then): one thread alternates rd_kafka_poll(0) and a 20 µs sleep (which
//     Linux's default 50 µs timer slack stretches to about 70 µs), so a report
//     waits for the next poll, and the loop's own wake-ups (~14,000/s) compete
//     with the client and the broker for the cores.
struct LatencyArgs {
  Common common;
  double rate = 5000;
  double seconds = 10;
  size_t size = 100;
  std::string acks = "all";
  int linger_ms = 0;
  std::string pacing = "thread";
  std::string latencies_out;  // empty: not written
};

struct LatencyState {
  std::vector<Clock::time_point> sent_at;  // indexed by message number
  std::vector<double> latency_ms;          // touched only by the thread that polls
  int64_t failed = 0;                      // likewise
  std::atomic<int64_t> reported{0};        // delivered + failed
};

void record_latency(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* state = static_cast<LatencyState*>(opaque);
  const auto now = Clock::now();
  auto index = reinterpret_cast<uintptr_t>(message->_private);
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++state->failed;
  } else {
    // sent_at[index] was written before rd_kafka_producev handed the message
    // to librdkafka, whose queues order it before this report.
    state->latency_ms.push_back(
        std::chrono::duration<double, std::milli>(now - state->sent_at[index]).count());
  }
  state->reported.fetch_add(1, std::memory_order_release);
}

void sleep_until(Clock::time_point when) {
  const auto since_epoch = when.time_since_epoch();
  timespec ts{};
  ts.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  ts.tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   since_epoch - std::chrono::seconds(ts.tv_sec))
                   .count();
  // steady_clock is CLOCK_MONOTONIC on Linux (libstdc++).
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

nlohmann::ordered_json run_latency(const LatencyArgs& args) {
  LatencyState state;
  const auto total = static_cast<int64_t>(args.rate * args.seconds);
  state.sent_at.resize(total);
  state.latency_ms.reserve(total);
  rd_kafka_conf_t* conf = make_conf(args.common, {{"acks", args.acks},
                                                  {"linger.ms", std::to_string(args.linger_ms)},
                                                  {"message.timeout.ms", "60000"}});
  rd_kafka_conf_set_opaque(conf, &state);
  rd_kafka_conf_set_dr_msg_cb(conf, record_latency);
  Handle rk = make_handle(RD_KAFKA_PRODUCER, conf);
  const std::string value = payload(args.size);

  rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(args.common.topic.c_str()),
                    RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(nullptr),
                    RD_KAFKA_V_END);
  rd_kafka_flush(rk.get(), 30000);  // warm-up: metadata and connection
  state.latency_ms.clear();
  state.failed = 0;

  state.reported.store(0);
  const bool poll_thread = args.pacing == "thread";
  std::atomic<bool> sending_done{false};
  std::thread poller;
  if (poll_thread) {
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // this thread's sleeps end on time
    poller = std::thread([&] {
      while (!sending_done.load(std::memory_order_acquire) ||
             state.reported.load(std::memory_order_acquire) < total) {
        rd_kafka_poll(rk.get(), 100);
      }
    });
  }

  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / args.rate));
  const auto start = Clock::now();
  auto next = start;
  for (int64_t i = 0; i < total; ++i) {
    if (poll_thread) {
      if (Clock::now() < next) sleep_until(next);
    } else {
      while (Clock::now() < next) {
        rd_kafka_poll(rk.get(), 0);
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      }
    }
    state.sent_at[i] = Clock::now();
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk.get(), RD_KAFKA_V_TOPIC(args.common.topic.c_str()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(i))), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) die(std::string("produce: ") + rd_kafka_err2str(err));
    next += interval;
  }
  const double send_seconds = seconds_since(start);
  sending_done.store(true, std::memory_order_release);
  if (poll_thread) {
    poller.join();
  } else {
    while (state.reported.load() < total) rd_kafka_poll(rk.get(), 10);
  }
  std::sort(state.latency_ms.begin(), state.latency_ms.end());
  if (!args.latencies_out.empty() &&
      !holdfast::bench::write_latencies(args.latencies_out, state.latency_ms)) {
    die("cannot write " + args.latencies_out);
  }
  return {{"run", "latency"},
          {"system", "holdfast"},
          {"topic", args.common.topic},
          {"message_bytes", args.size},
          {"acks", args.acks},
          {"linger_ms", args.linger_ms},
          {"pacing", args.pacing},
          {"client_properties", args.common.properties},
          {"target_rate", args.rate},
          {"achieved_rate", total / send_seconds},
          {"messages", state.latency_ms.size()},
          {"failed", state.failed},
          {"p50_ms", percentile(state.latency_ms, 50)},
          {"p99_ms", percentile(state.latency_ms, 99)},
          {"p999_ms", percentile(state.latency_ms, 99.9)},
          {"max_ms", state.latency_ms.empty() ? 0.0 : state.latency_ms.back()}};
}

void add_common(CLI::App* app, Common& common) {
  app->add_option("--brokers,-b", common.brokers, "Bootstrap brokers")->capture_default_str();
  app->add_option("--topic,-t", common.topic, "Topic")->capture_default_str();
  app->add_option("-X", common.properties, "librdkafka property key=value");
}

void emit(const nlohmann::ordered_json& result) {
  std::cout << result.dump() << std::endl;
  std::cerr << result.dump(2) << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"holdfast_bench: throughput and latency figures for a Kafka-protocol broker"};
  app.require_subcommand(1);

  ProduceArgs produce;
  auto* produce_cmd = app.add_subcommand("produce", "Produce as fast as possible");
  add_common(produce_cmd, produce.common);
  produce_cmd->add_option("--size", produce.size, "Message size in bytes")->capture_default_str();
  produce_cmd->add_option("--count", produce.count, "Messages to send")->capture_default_str();
  produce_cmd->add_option("--max-seconds", produce.max_seconds, "Stop sending after this")
      ->capture_default_str();
  produce_cmd->add_option("--acks", produce.acks, "0, 1 or all")->capture_default_str();
  produce_cmd->add_option("--linger-ms", produce.linger_ms, "linger.ms")->capture_default_str();
  produce_cmd->add_option("--compression", produce.compression, "Codec")->capture_default_str();
  produce_cmd->add_option("--window", produce.window,
                          "At most this many messages unacknowledged (0: unbounded)")
      ->capture_default_str();
  produce_cmd->callback([&] { emit(run_produce(produce)); });

  ConsumeArgs consume;
  auto* consume_cmd = app.add_subcommand("consume", "Read a topic from the beginning to its end");
  add_common(consume_cmd, consume.common);
  consume_cmd->add_option("--max-seconds", consume.max_seconds, "Give up after this")
      ->capture_default_str();
  consume_cmd->callback([&] { emit(run_consume(consume)); });

  LatencyArgs latency;
  auto* latency_cmd =
      app.add_subcommand("latency", "Produce at a fixed rate; ack latency percentiles");
  add_common(latency_cmd, latency.common);
  latency_cmd->add_option("--rate", latency.rate, "Messages per second")->capture_default_str();
  latency_cmd->add_option("--seconds", latency.seconds, "Duration")->capture_default_str();
  latency_cmd->add_option("--size", latency.size, "Message size in bytes")->capture_default_str();
  latency_cmd->add_option("--acks", latency.acks, "0, 1 or all")->capture_default_str();
  latency_cmd->add_option("--linger-ms", latency.linger_ms, "linger.ms")->capture_default_str();
  latency_cmd
      ->add_option("--pacing", latency.pacing,
                   "thread: sleep to each send time, a poll thread times the reports; "
                   "poll-sleep: the single-thread poll/20 us sleep loop used before 2026-12-01")
      ->check(CLI::IsMember({"thread", "poll-sleep"}))
      ->capture_default_str();
  latency_cmd->add_option("--latencies-out", latency.latencies_out,
                          "Write every latency (us, sorted, one per line) here");
  latency_cmd->callback([&] { emit(run_latency(latency)); });

  CLI11_PARSE(app, argc, argv);
  return 0;
}
