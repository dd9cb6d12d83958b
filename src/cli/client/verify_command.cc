// `holdfast verify`: produce uniquely identified, checksummed messages, consume
// them in a consumer group whose members may be SIGKILLed, drain every
// partition at the end, and check the history (verify_checker.h). Only
// standard client features, so it runs against any Kafka-compatible cluster.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cli/client/args.h"
#include "cli/client/client.h"
#include "cli/client/usage.h"
#include "cli/client/verify_checker.h"
#include "cli/client/verify_consumers.h"
#include "cli/client/verify_copier.h"
#include "cli/client/verify_message.h"
#include "cli/commands.h"

namespace holdfast::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using verify::MessageId;
using verify::Read;
using verify::Send;
using verify::SendOutcome;

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

struct VerifyOptions {
  ClientOptions client;
  std::string topic;
  int64_t messages = -1;  // -1: 10000 unless --duration is given
  int partitions = 3;
  int replication = -1;
  double rate = 0;  // messages/s over all producers; 0: as fast as possible
  std::string acks = "all";
  bool idempotent = false;
  int producers = 1;
  int consumers = 1;
  std::string group;
  double crash_consumers_every = 0;  // seconds; 0: never
  double duration = 0;               // seconds; 0: until --messages are sent
  int message_size = 100;
  double settle_timeout = 60;  // seconds, bound on the group catch-up and on the drain each
  double idle_timeout = 15;    // seconds without progress that end a wait early
  std::string report_path;
  int processing_ms = 0;  // consumers' "processing" time between recording and committing a batch
  bool cleanup = false;   // delete the topic (if this run created it) and the group afterwards
  bool no_progress = false;
  // --transactional: a copier stage between the input topic and the output.
  bool transactional = false;
  std::string output_topic;  // default: <topic>.out
  int copiers = 1;
  double crash_copiers_every = 0;  // seconds; 0: never
  int copier_processing_ms = 0;    // copiers' time between producing and committing a batch
  bool copier_non_transactional = false;  // test-only: at-least-once copies (duplicates)
  // Hidden: consumer worker mode.
  bool internal_worker = false;
  bool internal_copier = false;
  bool internal_read_committed = false;
  std::string internal_run_id;
  int internal_worker_id = 0;
};

void quiet_log(const rd_kafka_t*, int, const char*, const char*) {}
void quiet_error(rd_kafka_t*, int, const char*, void*) {}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string fmt_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---- Live counters and the progress line ----

struct Progress {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> kills{0};
  std::atomic<const char*> phase{"producing"};
  uint64_t target = 0;  // 0: duration-bound
  double duration = 0;
  Clock::time_point start = Clock::now();
};

class ProgressLine {
 public:
  ProgressLine(Progress& p, const verify::ConsumerFleet* fleet, bool enabled)
      : p_(p), fleet_(fleet), enabled_(enabled) {
    if (enabled_) thread_ = std::thread([this] { loop(); });
  }
  ~ProgressLine() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    done_ = true;
    thread_.join();
    draw();
    std::fputc('\n', stderr);
  }

 private:
  void loop() {
    while (!done_) {
      draw();
      std::this_thread::sleep_for(200ms);
    }
  }
  void draw() {
    double fraction = 0;
    if (p_.target > 0) fraction = double(p_.acked + p_.failed) / double(p_.target);
    else if (p_.duration > 0) fraction = seconds_since(p_.start) / p_.duration;
    fraction = std::clamp(fraction, 0.0, 1.0);
    constexpr int kWidth = 24;
    int filled = static_cast<int>(fraction * kWidth);
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr,
                 "\r[%s] %3d%% %-9s sent %llu  acked %llu  failed %llu  processed %llu  kills "
                 "%llu  %.0fs   ",
                 bar.c_str(), static_cast<int>(fraction * 100), p_.phase.load(),
                 static_cast<unsigned long long>(p_.sent.load()),
                 static_cast<unsigned long long>(p_.acked.load()),
                 static_cast<unsigned long long>(p_.failed.load()),
                 static_cast<unsigned long long>(fleet_ ? fleet_->processed() : 0),
                 static_cast<unsigned long long>(p_.kills.load()), seconds_since(p_.start));
    std::fflush(stderr);
  }
  Progress& p_;
  const verify::ConsumerFleet* fleet_;
  bool enabled_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// ---- Producers ----

struct ProducerState {
  uint32_t index = 0;
  std::deque<Send> sends;  // stable addresses: a message's opaque points at its Send
  Progress* progress = nullptr;
  uint64_t reports = 0;
  std::map<std::string, uint64_t> errors;  // delivery error -> count
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* state = static_cast<ProducerState*>(opaque);
  auto* send = static_cast<Send*>(message->_private);
  ++state->reports;
  send->partition = message->partition;
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    send->outcome = SendOutcome::kAcked;
    send->offset = message->offset >= 0 ? message->offset : -1;
    ++state->progress->acked;
  } else {
    send->outcome = SendOutcome::kFailed;
    send->error = rd_kafka_err2str(message->err);
    ++state->errors[send->error];
    ++state->progress->failed;
  }
}

struct ProduceLimits {
  uint64_t messages = 0;  // 0: unlimited (duration-bound)
  double duration = 0;    // 0: unlimited (count-bound)
  double rate = 0;        // this producer's messages/s; 0: unlimited
};

void run_producer(const VerifyOptions& opts, const std::string& acks, uint64_t run_id,
                  int32_t partitions, const ProduceLimits& limits, ProducerState& state) {
  std::vector<std::pair<std::string, std::string>> defaults{
      {"acks", acks},
      {"message.timeout.ms", "60000"},
      {"linger.ms", "5"},
      {"client.id", "holdfast-verify-producer"},
  };
  if (opts.idempotent) defaults.push_back({"enable.idempotence", "true"});
  auto conf = make_conf(opts.client, defaults);
  rd_kafka_conf_set_opaque(conf.get(), &state);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), on_delivery);
  if (!opts.client.verbose) {
    rd_kafka_conf_set_log_cb(conf.get(), quiet_log);
    rd_kafka_conf_set_error_cb(conf.get(), quiet_error);
  }
  auto rk = make_handle(RD_KAFKA_PRODUCER, std::move(conf));

  const auto start = Clock::now();
  for (uint64_t seq = 0;; ++seq) {
    if (g_interrupted) break;
    if (limits.messages > 0 && seq >= limits.messages) break;
    double elapsed = seconds_since(start);
    if (limits.duration > 0 && elapsed >= limits.duration) break;
    if (limits.rate > 0) {
      double due = double(seq) / limits.rate;
      while (due > elapsed && !g_interrupted) {
        rd_kafka_poll(rk.get(), std::max(1, static_cast<int>((due - elapsed) * 1000)));
        elapsed = seconds_since(start);
      }
    }
    MessageId id{state.index, seq};
    Send& send = state.sends.emplace_back();
    send.id = id;
    send.partition = static_cast<int32_t>((seq + state.index) % uint64_t(partitions));
    std::string value = verify::encode_message(run_id, id, static_cast<size_t>(opts.message_size));
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk.get(), RD_KAFKA_V_TOPIC(opts.topic.c_str()), RD_KAFKA_V_PARTITION(send.partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(value.data(), value.size()),
          RD_KAFKA_V_OPAQUE(&send), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !g_interrupted) {
        rd_kafka_poll(rk.get(), 50);
        continue;
      }
      if (err) {
        send.outcome = SendOutcome::kFailed;
        send.error = rd_kafka_err2str(err);
        ++state.errors[send.error];
        ++state.progress->failed;
        ++state.reports;
      }
      break;
    }
    ++state.progress->sent;
    rd_kafka_poll(rk.get(), 0);
  }
  // Every accepted message gets one delivery report by message.timeout.ms;
  // bounded anyway, and interruptible.
  const auto flush_deadline = Clock::now() + 180s;
  while (state.reports < state.sends.size() && Clock::now() < flush_deadline) {
    rd_kafka_poll(rk.get(), 100);
    if (g_interrupted) {
      rd_kafka_purge(rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(rk.get(), 100);
      break;
    }
  }
  if (state.reports < state.sends.size() && !g_interrupted) {
    // Past the bound with messages still unreported: purge them (their
    // reports say so: failed, never acknowledged, so never counted as lost)
    // rather than let the handle's destruction wait on them.
    std::fprintf(stderr,
                 "holdfast verify: producer %u: %zu message(s) without a delivery report after "
                 "180 s; purged (not acknowledged)\n",
                 unsigned(state.index), state.sends.size() - state.reports);
    rd_kafka_purge(rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    const auto purge_deadline = Clock::now() + 10s;
    while (state.reports < state.sends.size() && Clock::now() < purge_deadline) {
      rd_kafka_poll(rk.get(), 100);
    }
  }
}

// ---- Topic ----

// Creates the topic if it is missing (setting `created`) and waits until every
// partition has a leader; returns the partition count.
int32_t ensure_topic(const VerifyOptions& opts, const std::string& name, int wanted_partitions,
                     bool& created) {
  created = false;
  auto conf = make_conf(opts.client, {{"client.id", "holdfast-verify-admin"}});
  if (!opts.client.verbose) {
    rd_kafka_conf_set_log_cb(conf.get(), quiet_log);
    rd_kafka_conf_set_error_cb(conf.get(), quiet_error);
  }
  auto rk = make_handle(RD_KAFKA_PRODUCER, std::move(conf));
  bool exists = false;
  for (const auto& t : fetch_all_topics(rk.get(), opts.client.timeout_ms)) {
    if (t.name == name && t.error == RD_KAFKA_RESP_ERR_NO_ERROR) exists = true;
  }
  if (!exists) {
    char errstr[512];
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(name.c_str(), wanted_partitions,
                                                       opts.replication, errstr, sizeof errstr);
    if (topic == nullptr) fail(std::string("verify: ") + errstr, kExitUsage);
    QueuePtr queue(rd_kafka_queue_new(rk.get()));
    rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(admin, opts.client.timeout_ms, errstr, sizeof errstr);
    rd_kafka_CreateTopics(rk.get(), &topic, 1, admin, queue.get());
    rd_kafka_AdminOptions_destroy(admin);
    rd_kafka_NewTopic_destroy(topic);
    auto event = wait_admin_result(queue.get(), opts.client.timeout_ms, "create topic " + name);
    size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
    for (size_t i = 0; i < count; ++i) {
      auto err = rd_kafka_topic_result_error(results[i]);
      if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char* msg = rd_kafka_topic_result_error_string(results[i]);
        fail("verify: cannot create topic '" + name + "': " + (msg ? msg : rd_kafka_err2str(err)));
      }
      if (!err) created = true;
    }
  }
  // Wait (bounded) until every partition has a leader.
  const auto deadline = Clock::now() + std::chrono::milliseconds(opts.client.timeout_ms);
  for (;;) {
    for (const auto& t : fetch_all_topics(rk.get(), opts.client.timeout_ms)) {
      if (t.name != name || t.error || t.partitions.empty()) continue;
      bool ready = std::all_of(t.partitions.begin(), t.partitions.end(),
                               [](const PartitionInfo& p) { return p.leader >= 0 && !p.error; });
      if (ready) return static_cast<int32_t>(t.partitions.size());
    }
    if (Clock::now() >= deadline) fail("verify: topic '" + name + "' has no leader for every partition");
    std::this_thread::sleep_for(200ms);
  }
}

// ---- Drain ----

struct DrainResult {
  std::vector<Read> reads;
  bool complete = false;
  double seconds = 0;
};

// Reads every partition from the beginning (assign, no group) until each one
// reached `targets[p]` (one past the highest acknowledged offset) or its end
// stops moving for `idle` seconds, within `timeout` seconds overall.
DrainResult drain(const VerifyOptions& opts, const std::string& topic, const std::string& name,
                  bool read_committed, uint64_t run_id, int32_t partitions,
                  const std::vector<int64_t>& acked_targets) {
  DrainResult result;
  const auto start = Clock::now();
  auto conf = make_conf(opts.client, {
                                         {"group.id", "holdfast-verify-" + name + "-" + hex64(run_id)},
                                         {"isolation.level", read_committed ? "read_committed"
                                                                            : "read_uncommitted"},
                                         {"client.id", "holdfast-verify-drain"},
                                         {"enable.auto.commit", "false"},
                                         {"enable.auto.offset.store", "false"},
                                         {"enable.partition.eof", "true"},
                                         {"auto.offset.reset", "earliest"},
                                     });
  if (!opts.client.verbose) {
    rd_kafka_conf_set_log_cb(conf.get(), quiet_log);
    rd_kafka_conf_set_error_cb(conf.get(), quiet_error);
  }
  auto rk = make_handle(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(rk.get());
  auto* list = rd_kafka_topic_partition_list_new(partitions);
  for (int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);

  // Also read whatever the log holds beyond the acknowledged offsets (unacknowledged
  // messages, duplicates): up to each partition's end when the drain starts.
  std::vector<int64_t> targets = acked_targets;
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t low = 0, high = -1;
    if (rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high,
                                         opts.client.timeout_ms) == 0) {
      targets[p] = std::max(targets[p], high);
    }
  }
  std::vector<int64_t> next(partitions, 0);     // next offset to read (per position seen)
  std::vector<int64_t> end(partitions, -1);     // last known end (high watermark)
  std::vector<bool> at_eof(partitions, false);  // reached the end last time we looked
  auto last_progress = Clock::now();
  auto last_watermarks = Clock::now() - 10s;
  auto reached_all = [&] {
    for (int32_t p = 0; p < partitions; ++p) {
      if (next[p] < targets[p]) return false;
    }
    return true;
  };
  while (!g_interrupted) {
    if (reached_all()) {
      result.complete = true;  // refined below with the final watermarks
      break;
    }
    double elapsed = seconds_since(start);
    if (elapsed > opts.settle_timeout) break;
    // Everything up to each partition's end is read, and the ends have not moved:
    // what is missing is not coming.
    bool all_at_end = std::all_of(at_eof.begin(), at_eof.end(), [](bool b) { return b; });
    if (all_at_end && seconds_since(last_progress) > std::min(opts.idle_timeout, 5.0)) break;
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk.get(), 100);
    if (Clock::now() - last_watermarks > 1s) {
      last_watermarks = Clock::now();
      for (int32_t p = 0; p < partitions; ++p) {
        int64_t low = 0, high = 0;
        if (rd_kafka_get_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high) == 0 &&
            high >= 0) {
          end[p] = high;
        }
      }
    }
    if (message == nullptr) continue;
    std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> owned(message,
                                                                             rd_kafka_message_destroy);
    int32_t p = message->partition;
    if (p < 0 || p >= partitions) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_eof[p] = true;
      end[p] = std::max(end[p], message->offset);
      // Everything before the end was returned (read_committed: control
      // records and aborted data included, which are never returned).
      next[p] = std::max(next[p], message->offset);
      continue;
    }
    if (message->err) continue;  // transient (the client retries)
    at_eof[p] = false;
    last_progress = Clock::now();
    auto decoded = verify::decode_message(
        run_id, std::string_view(static_cast<const char*>(message->payload), message->len));
    Read read;
    read.partition = p;
    read.offset = message->offset;
    read.status = decoded.status;
    read.id = decoded.id;
    result.reads.push_back(read);
    next[p] = std::max(next[p], message->offset + 1);
  }
  // Complete: every partition read up to its current end.
  bool complete = true;
  for (int32_t p = 0; p < partitions; ++p) {
    int64_t low = 0, high = -1;
    if (rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high,
                                         opts.client.timeout_ms) != 0) {
      high = end[p];
    }
    if (high < 0 || next[p] < high) {
      // An empty partition (or one whose every record was removed) is complete at its end.
      if (!(high >= 0 && low >= high)) complete = false;
    }
  }
  result.complete = complete;
  rd_kafka_consumer_close(rk.get());
  result.seconds = seconds_since(start);
  return result;
}

// ---- Cleanup ----

// --cleanup: deletes the group (if one was used) and the topic if this run
// created it. Failures are reported but do not change the verdict.
void cleanup(const VerifyOptions& opts, const std::string& topic, bool created_topic,
             const std::string& group) {
  auto conf = make_conf(opts.client, {{"client.id", "holdfast-verify-admin"}});
  if (!opts.client.verbose) {
    rd_kafka_conf_set_log_cb(conf.get(), quiet_log);
    rd_kafka_conf_set_error_cb(conf.get(), quiet_error);
  }
  auto rk = make_handle(RD_KAFKA_PRODUCER, std::move(conf));
  if (!group.empty()) {
    auto error = delete_group(rk.get(), group, opts.client.timeout_ms);
    if (error.empty()) {
      std::cerr << "holdfast verify: deleted group '" << group << "'" << std::endl;
    } else {
      std::cerr << "holdfast verify: cannot delete group '" << group << "': " << error << std::endl;
    }
  }
  if (!created_topic) {
    std::cerr << "holdfast verify: kept topic '" << topic << "' (it existed before this run)"
              << std::endl;
    return;
  }
  auto error = delete_topic(rk.get(), topic, opts.client.timeout_ms);
  if (error.empty()) {
    std::cerr << "holdfast verify: deleted topic '" << topic << "'" << std::endl;
  } else {
    std::cerr << "holdfast verify: cannot delete topic '" << topic << "': " << error
              << std::endl;
  }
}

// ---- Copiers ----

// Waits until the copier group's committed offsets reach the input's end on
// every partition (everything copied and committed), restarting copiers that
// exited by themselves. Bounded by --settle-timeout, and ends early after
// --idle-timeout without progress. Returns whether it got there.
bool wait_for_copiers(const VerifyOptions& opts, const std::string& copier_group,
                      int32_t partitions, verify::ConsumerFleet& copiers,
                      const std::function<void()>& crash_tick) {
  auto conf = make_conf(opts.client, {
                                         {"group.id", copier_group},
                                         {"client.id", "holdfast-verify-admin"},
                                         {"enable.auto.commit", "false"},
                                     });
  if (!opts.client.verbose) {
    rd_kafka_conf_set_log_cb(conf.get(), quiet_log);
    rd_kafka_conf_set_error_cb(conf.get(), quiet_error);
  }
  auto rk = make_handle(RD_KAFKA_CONSUMER, std::move(conf));
  const auto start = Clock::now();
  auto last_progress = Clock::now();
  int64_t last_sum = -1;
  while (!g_interrupted && seconds_since(start) < opts.settle_timeout) {
    copiers.replace_exited();
    crash_tick();
    PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
    for (int32_t p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), opts.topic.c_str(), p);
    }
    bool done = false;
    if (rd_kafka_committed(rk.get(), list.get(), opts.client.timeout_ms) == 0) {
      done = true;
      int64_t sum = 0;
      for (int i = 0; i < list->cnt; ++i) {
        const auto& tp = list->elems[i];
        int64_t committed = tp.err ? -1 : tp.offset;
        int64_t low = 0, high = -1;
        if (rd_kafka_query_watermark_offsets(rk.get(), opts.topic.c_str(), tp.partition, &low,
                                             &high, opts.client.timeout_ms) != 0) {
          done = false;
          continue;
        }
        if (committed < high && high > low) done = false;
        sum += std::max<int64_t>(committed, 0);
      }
      if (sum != last_sum) {
        last_sum = sum;
        last_progress = Clock::now();
      }
    }
    if (done) return true;
    if (seconds_since(last_progress) > opts.idle_timeout) break;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

// ---- The run ----

std::string self_executable() {
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) fail("verify: cannot find my own executable (/proc/self/exe)");
  return std::string(path, static_cast<size_t>(n));
}

void run_verify(const VerifyOptions& opts) {
  if (opts.internal_worker) {
    verify::WorkerOptions w;
    w.client = opts.client;
    w.client.preflight = false;  // a replacement may start while the broker restarts
    w.topic = opts.topic;
    w.group = opts.group;
    w.run_id = std::stoull(opts.internal_run_id, nullptr, 16);
    w.worker_id = opts.internal_worker_id;
    w.verbose = opts.client.verbose;
    w.processing_ms = opts.processing_ms;
    w.read_committed = opts.internal_read_committed;
    verify::run_consumer_worker(w);
    return;
  }
  if (opts.internal_copier) {
    verify::CopierOptions c;
    c.client = opts.client;
    c.client.preflight = false;
    c.input_topic = opts.topic;
    c.output_topic = opts.output_topic;
    c.group = opts.group;
    c.run_id = std::stoull(opts.internal_run_id, nullptr, 16);
    c.worker_id = opts.internal_worker_id;
    c.verbose = opts.client.verbose;
    c.non_transactional = opts.copier_non_transactional;
    c.processing_ms = opts.copier_processing_ms;
    verify::run_copier_worker(c);
    return;
  }
  if (!opts.transactional &&
      (opts.crash_copiers_every > 0 || !opts.output_topic.empty() ||
       opts.copier_non_transactional || opts.copier_processing_ms > 0)) {
    fail("verify: --output-topic, --copiers, --crash-copiers-every need --transactional", kExitUsage);
  }
  const std::string output_topic =
      opts.output_topic.empty() ? opts.topic + ".out" : opts.output_topic;
  if (opts.transactional && output_topic == opts.topic) {
    fail("verify: --output-topic must differ from --topic", kExitUsage);
  }
  auto acks = parse_acks(opts.acks);
  if (!acks) fail("verify: " + acks.error().message, kExitUsage);
  if (opts.idempotent && *acks != "all") {
    fail("verify: --idempotent needs --acks all (idempotent producers always use acks=all)",
         kExitUsage);
  }
  const uint64_t messages =
      opts.messages >= 0 ? uint64_t(opts.messages) : (opts.duration > 0 ? 0 : 10000);
  if (messages == 0 && opts.duration <= 0) fail("verify: --messages 0 needs --duration", kExitUsage);

  std::random_device entropy;
  std::mt19937_64 random((uint64_t(entropy()) << 32) ^ entropy() ^
                         uint64_t(Clock::now().time_since_epoch().count()));
  const uint64_t run_id = random();
  const std::string group = opts.group.empty() ? "holdfast-verify-" + hex64(run_id) : opts.group;
  const auto started = Clock::now();

  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  std::signal(SIGPIPE, SIG_IGN);

  bool created_topic = false;
  const int32_t partitions = ensure_topic(opts, opts.topic, opts.partitions, created_topic);
  bool created_output = false;
  const std::string copier_group = "holdfast-verify-copier-" + hex64(run_id);
  if (opts.transactional) {
    int32_t out_partitions = ensure_topic(opts, output_topic, partitions, created_output);
    if (out_partitions < partitions) {
      fail("verify: the output topic '" + output_topic + "' has " +
               std::to_string(out_partitions) + " partitions, fewer than '" + opts.topic +
               "' (" + std::to_string(partitions) + ")",
           kExitUsage);
    }
  }
  std::cerr << "holdfast verify: run " << hex64(run_id) << " on '" << opts.topic << "' ("
            << partitions << " partitions), "
            << (messages > 0 ? std::to_string(messages) + " messages" : std::string("messages"))
            << (opts.duration > 0 ? " for " + fmt_seconds(opts.duration) + " s" : "")
            << ", acks=" << *acks << (opts.idempotent ? ", idempotent" : "") << ", "
            << opts.producers << " producer(s), " << opts.consumers << " consumer(s)"
            << (opts.consumers > 0 ? " in group " + group : "")
            << (opts.crash_consumers_every > 0
                    ? ", killing one every " + fmt_seconds(opts.crash_consumers_every) + " s"
                    : "")
            << std::endl;
  if (opts.transactional) {
    std::cerr << "holdfast verify: " << opts.copiers << " "
              << (opts.copier_non_transactional ? "NON-TRANSACTIONAL (test-only) " : "")
              << "copier(s) in group " << copier_group << ": '" << opts.topic << "' -> '"
              << output_topic << "', consumers read '" << output_topic << "' read_committed"
              << (opts.crash_copiers_every > 0
                      ? ", killing a copier every " + fmt_seconds(opts.crash_copiers_every) + " s"
                      : "")
              << std::endl;
  }

  Progress progress;
  progress.target = messages;
  progress.duration = opts.duration;

  // Copiers (--transactional), then consumers, so the groups form while producing.
  verify::CopyLog copy_log;
  std::unique_ptr<verify::ConsumerFleet> copiers;
  if (opts.transactional) {
    std::vector<std::string> args{"verify", "--internal-copier", "--topic", opts.topic,
                                  "--output-topic", output_topic, "--group", copier_group,
                                  "--internal-run-id", hex64(run_id),
                                  "--brokers", opts.client.brokers};
    for (const auto& x : opts.client.properties) {
      args.push_back("-X");
      args.push_back(x);
    }
    if (opts.client.verbose) args.push_back("--verbose");
    if (opts.copier_non_transactional) args.push_back("--copier-non-transactional");
    if (opts.copier_processing_ms > 0) {
      args.push_back("--copier-processing-ms");
      args.push_back(std::to_string(opts.copier_processing_ms));
    }
    copiers = std::make_unique<verify::ConsumerFleet>(
        self_executable(), args,
        [&copy_log](uint64_t instance, int32_t id, std::string_view line) {
          copy_log.feed(instance, id, line);
        },
        /*stable_ids=*/true);
    try {
      for (int i = 0; i < opts.copiers; ++i) copiers->start_one();
    } catch (const std::exception& e) {
      fail(std::string("verify: ") + e.what());
    }
  }
  std::unique_ptr<verify::ConsumerFleet> fleet;
  if (opts.consumers > 0) {
    std::vector<std::string> args{"verify", "--internal-consumer", "--topic",
                                  opts.transactional ? output_topic : opts.topic,
                                  "--group", group, "--internal-run-id", hex64(run_id),
                                  "--brokers", opts.client.brokers};
    if (opts.transactional) args.push_back("--internal-read-committed");
    for (const auto& x : opts.client.properties) {
      args.push_back("-X");
      args.push_back(x);
    }
    if (opts.client.verbose) args.push_back("--verbose");
    if (opts.processing_ms > 0) {
      args.push_back("--processing-ms");
      args.push_back(std::to_string(opts.processing_ms));
    }
    fleet = std::make_unique<verify::ConsumerFleet>(self_executable(), args);
    try {
      for (int i = 0; i < opts.consumers; ++i) fleet->start_one();
    } catch (const std::exception& e) {
      fail(std::string("verify: ") + e.what());
    }
  }
  const bool show_progress = !opts.no_progress && ::isatty(STDERR_FILENO);
  ProgressLine progress_line(progress, fleet.get(), show_progress);

  // Producers.
  std::vector<std::unique_ptr<ProducerState>> producers;
  std::vector<std::thread> threads;
  std::atomic<int> producing{opts.producers};
  for (int i = 0; i < opts.producers; ++i) {
    auto state = std::make_unique<ProducerState>();
    state->index = static_cast<uint32_t>(i);
    state->progress = &progress;
    ProduceLimits limits;
    if (messages > 0) {
      limits.messages = messages / opts.producers + (uint64_t(i) < messages % opts.producers ? 1 : 0);
    }
    limits.duration = opts.duration;
    limits.rate = opts.rate > 0 ? opts.rate / opts.producers : 0;
    producers.push_back(std::move(state));
    ProducerState* s = producers.back().get();
    threads.emplace_back([&, s, limits] {
      try {
        run_producer(opts, *acks, run_id, partitions, limits, *s);
      } catch (const CLI::RuntimeError&) {
        g_interrupted = 1;  // fail() printed why
      }
      --producing;
    });
  }

  // Consumer crashes while producing.
  auto next_kill = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(opts.crash_consumers_every));
  // Copier kills: every --crash-copiers-every seconds while producing and
  // copying, one of the copiers that committed a transaction since it started
  // (so every incarnation makes progress, and kills land in its later work).
  auto next_copier_kill = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(opts.crash_copiers_every));
  auto copier_crash_tick = [&] {
    if (!copiers || g_interrupted || opts.crash_copiers_every <= 0) return;
    if (Clock::now() < next_copier_kill) return;
    bool killed = copiers->kill_random_and_replace(random, [&copy_log](uint64_t instance) {
      return copy_log.transactions_committed_by(instance) > 0;
    });
    if (killed) {
      next_copier_kill = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(opts.crash_copiers_every));
    }
  };
  while (producing > 0) {
    std::this_thread::sleep_for(50ms);
    if (copiers && !g_interrupted) {
      copiers->replace_exited();
      copier_crash_tick();
    }
    if (fleet && opts.crash_consumers_every > 0 && Clock::now() >= next_kill && !g_interrupted) {
      if (fleet->kill_random_and_replace(random)) ++progress.kills;
      next_kill = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(opts.crash_consumers_every));
    }
  }
  for (auto& t : threads) t.join();
  const double produce_seconds = seconds_since(started);

  verify::History history;
  for (auto& p : producers) {
    for (auto& s : p->sends) history.sends.push_back(std::move(s));
  }

  // --transactional: let the copiers catch up with the input (their group's
  // committed offsets reach its end), then stop them (each finishes its
  // transaction), so the output is complete and stable before it is read.
  double copy_seconds = 0;
  bool copied_all = true;
  if (copiers) {
    progress.phase = "copying";
    const auto start = Clock::now();
    copied_all = wait_for_copiers(opts, copier_group, partitions, *copiers, copier_crash_tick);
    copiers->stop_all(15000);
    copy_seconds = seconds_since(start);
  }

  // Let the group catch up with everything acknowledged.
  double group_seconds = 0;
  if (fleet) {
    progress.phase = "settling";
    const auto start = Clock::now();
    std::unordered_set<uint64_t> pending;  // acknowledged ids not yet processed, packed
    auto pack = [](const MessageId& id) { return (uint64_t(id.producer) << 40) | id.seq; };
    for (const auto& s : history.sends) {
      if (s.outcome == SendOutcome::kAcked) pending.insert(pack(s.id));
    }
    size_t seen = 0;
    uint64_t last_count = fleet->processed();
    auto last_progress = Clock::now();
    while (!pending.empty() && !g_interrupted && seconds_since(start) < opts.settle_timeout) {
      for (const auto& read : fleet->reads_since(seen)) {
        ++seen;
        if (read.status == verify::DecodedMessage::Status::kOk) pending.erase(pack(read.id));
      }
      if (pending.empty()) break;
      if (fleet->processed() != last_count) {
        last_count = fleet->processed();
        last_progress = Clock::now();
      } else if (seconds_since(last_progress) > opts.idle_timeout) {
        break;
      }
      std::this_thread::sleep_for(100ms);
    }
    fleet->stop_all(15000);
    history.group_reads = fleet->reads_since(0);
    group_seconds = seconds_since(start);
  } else {
    history.group_used = false;
  }

  // Final drain up to one past each partition's highest acknowledged offset.
  progress.phase = "draining";
  std::vector<int64_t> targets(partitions, 0);
  for (const auto& s : history.sends) {
    if (s.outcome == SendOutcome::kAcked && s.partition >= 0 && s.partition < partitions) {
      targets[s.partition] = std::max(targets[s.partition], s.offset + 1);
    }
  }
  DrainResult drained = drain(opts, opts.topic, "drain", false, run_id, partitions, targets);
  history.drain_reads = std::move(drained.reads);
  history.drain_complete = drained.complete;
  if (copiers) {
    history.transactional = true;
    history.copies = copy_log.copies();
    const std::vector<int64_t> none(partitions, 0);
    DrainResult committed =
        drain(opts, output_topic, "drain-committed", true, run_id, partitions, none);
    history.output_committed_reads = std::move(committed.reads);
    history.output_drain_complete = committed.complete;
    DrainResult all = drain(opts, output_topic, "drain-uncommitted", false, run_id, partitions, none);
    history.output_uncommitted_reads = std::move(all.reads);
    drained.seconds += committed.seconds + all.seconds;
  }
  history.interrupted = g_interrupted != 0;
  progress_line.stop();

  verify::Report report = verify::check(history);
  std::map<std::string, uint64_t> errors;
  for (const auto& p : producers) {
    for (const auto& [e, n] : p->errors) errors[e] += n;
  }

  std::cout << verify::report_summary(report);
  if (!errors.empty()) {
    std::cout << "  delivery errors:";
    for (const auto& [e, n] : errors) std::cout << " " << e << " x" << n << ";";
    std::cout << '\n';
  }
  if (fleet) {
    std::cout << "  consumers: " << opts.consumers << ", killed " << fleet->kills()
              << (fleet->unexpected_exits() ? ", " + std::to_string(fleet->unexpected_exits()) +
                                                   " exited by themselves"
                                            : "")
              << '\n';
    if (opts.crash_consumers_every > 0 && fleet->kills() == 0) {
      char hint[256];
      std::snprintf(hint, sizeof hint,
                    "  note: no consumer was killed: producing took %.1f s, less than "
                    "--crash-consumers-every %s s; give a longer --duration (or more --messages) "
                    "or a shorter period\n",
                    produce_seconds, fmt_seconds(opts.crash_consumers_every).c_str());
      std::cout << hint;
    }
  }
  if (copiers) {
    std::cout << "  copiers: " << opts.copiers << ", killed " << copiers->kills()
              << (copiers->unexpected_exits() ? ", " + std::to_string(copiers->unexpected_exits()) +
                                                     " exited by themselves (replaced)"
                                              : "")
              << ", transactions committed " << copy_log.transactions_committed() << ", aborted "
              << copy_log.transactions_aborted()
              << (copied_all ? "" : "; warning: the copiers did not reach the input's end")
              << '\n';
    if (opts.crash_copiers_every > 0 && copiers->kills() == 0) {
      std::cout << "  note: no copier was killed: producing was shorter than "
                   "--crash-copiers-every; give a longer --duration, a --rate, or a shorter "
                   "period\n";
    }
  }
  char timing[200];
  std::snprintf(timing, sizeof timing,
                "  time: produce %.1f s, copy %.1f s, group settle %.1f s, drain %.1f s, total "
                "%.1f s\n",
                produce_seconds, copy_seconds, group_seconds, drained.seconds,
                seconds_since(started));
  std::cout << timing << std::flush;

  if (!opts.report_path.empty()) {
    nlohmann::ordered_json json = verify::report_json(report);
    json["run_id"] = hex64(run_id);
    json["settings"] = {
        {"brokers", opts.client.brokers}, {"topic", opts.topic},
        {"partitions", partitions},       {"messages", messages},
        {"duration_s", opts.duration},    {"rate", opts.rate},
        {"acks", *acks},                  {"idempotent", opts.idempotent},
        {"producers", opts.producers},    {"consumers", opts.consumers},
        {"group", group},                 {"crash_consumers_every_s", opts.crash_consumers_every},
        {"message_size", opts.message_size}, {"processing_ms", opts.processing_ms},
    };
    if (copiers) {
      json["settings"]["transactional"] = true;
      json["settings"]["output_topic"] = output_topic;
      json["settings"]["copiers"] = opts.copiers;
      json["settings"]["crash_copiers_every_s"] = opts.crash_copiers_every;
      json["settings"]["copier_processing_ms"] = opts.copier_processing_ms;
      if (opts.copier_non_transactional) json["settings"]["copier_non_transactional"] = true;
      json["copier_kills"] = copiers->kills();
      json["copier_unexpected_exits"] = copiers->unexpected_exits();
      json["copier_transactions"] = {{"committed", copy_log.transactions_committed()},
                                     {"aborted", copy_log.transactions_aborted()}};
      json["copied_all"] = copied_all;
    }
    json["delivery_errors"] = errors;
    json["consumer_kills"] = fleet ? fleet->kills() : 0;
    json["consumer_unexpected_exits"] = fleet ? fleet->unexpected_exits() : 0;
    json["timing_s"] = {{"produce", produce_seconds},
                        {"copy", copy_seconds},
                        {"group_settle", group_seconds},
                        {"drain", drained.seconds},
                        {"total", seconds_since(started)}};
    std::ofstream out(opts.report_path);
    out << json.dump(2) << '\n';
    if (!out) fail("verify: cannot write the report to " + opts.report_path);
  }
  if (opts.cleanup) {
    cleanup(opts, opts.topic, created_topic, fleet ? group : std::string());
    if (copiers) cleanup(opts, output_topic, created_output, copier_group);
  }
  if (report.verdict() == verify::Report::Verdict::kInconclusive) {
    fail("verify: interrupted: INCONCLUSIVE (" + std::to_string(report.unconfirmed) +
             " acknowledged messages not read back yet; none counted as lost)",
         kExitInterrupted);
  }
  if (!report.valid()) {
    fail("verify: FAILED: " + std::to_string(report.lost) + " lost, " +
         std::to_string(report.corrupted) + " corrupted, " +
         std::to_string(report.inconsistent_offsets) + " inconsistent offsets, " +
         std::to_string(report.unexpected) + " unexpected" +
         (report.transactional ? ", " + std::to_string(report.output_lost) + " output lost, " +
                                     std::to_string(report.output_duplicates) +
                                     " output duplicates, " +
                                     std::to_string(report.aborted_reads) + " aborted reads"
                               : std::string()));
  }
}

}  // namespace

void add_verify_command(CLI::App& app) {
  auto opts = std::make_shared<VerifyOptions>();
  auto* cmd = app.add_subcommand(
      "verify",
      "Check delivery end to end: produce, consume in a group (optionally killing consumers), "
      "drain, and report lost, duplicated, corrupted, inconsistent and reordered messages");
  cmd->add_option("--topic,-t", opts->topic, "Topic (created if missing)")->required();
  cmd->add_option("--messages,-n", opts->messages, "Messages to send (default 10000; with "
                                                   "--duration: no limit)")
      ->check(at_least(0));
  cmd->add_option("--partitions", opts->partitions, "Partitions when creating the topic")
      ->capture_default_str()
      ->check(between(1, 100000));
  reject_option(cmd, "-p", "-p is a partition index in produce and consume; give the count as --partitions N");
  cmd->add_option("--replication-factor", opts->replication,
                  "Replication factor when creating the topic (-1: the broker's default)")
      ->capture_default_str();
  cmd->add_option("--rate", opts->rate, "Messages per second over all producers (0: unlimited)")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--acks", opts->acks, "0, 1 or all")->capture_default_str();
  cmd->add_flag("--idempotent", opts->idempotent, "Idempotent producers (enable.idempotence)");
  cmd->add_option("--producers", opts->producers, "Producer instances (threads, one client each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--consumers,-c", opts->consumers,
                  "Consumer processes in one group (0: no group, drain only)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  cmd->add_option("--group,-g", opts->group, "Group id (default: holdfast-verify-<run id>)");
  cmd->add_option("--crash-consumers-every", opts->crash_consumers_every,
                  "SIGKILL a random consumer every S seconds while producing, and start a new one")
      ->check(at_least(0));
  cmd->add_option("--duration,-d", opts->duration, "Produce for D seconds")
      ->check(at_least(0));
  cmd->add_option("--message-size", opts->message_size, "Bytes per message (at least the header)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--settle-timeout", opts->settle_timeout,
                  "Seconds to wait for the group to catch up, and for the drain, each")
      ->capture_default_str()
      ->check(at_least(0.1));
  cmd->add_option("--idle-timeout", opts->idle_timeout,
                  "End the group catch-up early after S seconds without progress")
      ->capture_default_str()
      ->check(at_least(0.1));
  cmd->add_option("--report", opts->report_path, "Write the JSON report to this file");
  cmd->add_option("--processing-ms", opts->processing_ms,
                  "Each consumer spends N ms \"processing\" a batch between recording it and "
                  "committing its offsets (makes redelivery after a kill visible)")
      ->capture_default_str()
      ->check(CLI::Range(0, 60000));
  cmd->add_flag("--cleanup", opts->cleanup,
                "Afterwards delete the group, and the topic if this run created it");
  cmd->add_flag("--no-progress", opts->no_progress, "No progress line even on a terminal");
  cmd->add_flag("--transactional", opts->transactional,
                "Put a transactional copier stage between the producers and the consumers: it "
                "copies --topic to --output-topic exactly once (read_committed, offsets sent to "
                "each transaction); the consumers and the drain read the output read_committed");
  cmd->add_option("--output-topic", opts->output_topic,
                  "--transactional: the copiers' output topic (default <topic>.out; created "
                  "with the input's partition count)");
  cmd->add_option("--copiers", opts->copiers, "--transactional: copier processes in one group")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--crash-copiers-every", opts->crash_copiers_every,
                  "--transactional: SIGKILL a copier every S seconds while producing and copying "
                  "(one that committed a transaction since it started), and start a replacement "
                  "with the same transactional.id")
      ->check(at_least(0));
  cmd->add_option("--copier-processing-ms", opts->copier_processing_ms,
                  "--transactional: each copier spends N ms between producing a batch's copies "
                  "and committing the transaction (copier kills then land inside transactions)")
      ->capture_default_str()
      ->check(CLI::Range(0, 60000));
  // Hidden, TEST-ONLY: the negative control of --transactional (copies at
  // least once: produce, flush, commit offsets; no transaction). Expect
  // output_duplicates > 0 under --crash-copiers-every.
  cmd->add_flag("--copier-non-transactional", opts->copier_non_transactional)->group("");
  // Hidden: how the command re-executes itself as a consumer process.
  cmd->add_flag("--internal-consumer", opts->internal_worker)->group("");
  cmd->add_flag("--internal-copier", opts->internal_copier)->group("");
  cmd->add_flag("--internal-read-committed", opts->internal_read_committed)->group("");
  cmd->add_option("--internal-run-id", opts->internal_run_id)->group("");
  cmd->add_option("--internal-worker-id", opts->internal_worker_id)->group("");
  add_client_options(cmd, opts->client);
  cmd->callback([opts] { run_verify(*opts); });
}

}  // namespace holdfast::cli
