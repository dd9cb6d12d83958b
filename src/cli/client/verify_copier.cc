#include "cli/client/verify_copier.h"
#include "cli/client/verify_consumers.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <deque>
#include <map>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/client/verify_message.h"

namespace holdfast::cli::verify {
namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_copier_stop = 0;
void copier_stop(int) { g_copier_stop = 1; }

void quiet_log(const rd_kafka_t*, int, const char*, const char*) {}
void loud_log(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  std::cerr << "holdfast verify copier: " << level << " " << fac << " " << buf << std::endl;
}
void quiet_error(rd_kafka_t*, int, const char*, void*) {}

constexpr int kMaxBatch = 200;       // messages per transaction at most
constexpr int kBatchWindowMs = 100;  // a batch closes this long after its first message
constexpr int kCallTimeoutMs = 30000;
constexpr int kExitFatal = 2;

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// One copy on its way: where it came from, and its delivery report.
struct Pending {
  int32_t partition = 0;
  int64_t input_offset = 0;
  MessageId id;
  bool ours = false;  // a well-formed message of this run (others are copied, not reported)
  bool delivered = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int64_t output_offset = -1;
};

void on_copy_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  auto* pending = static_cast<Pending*>(message->_private);
  if (pending == nullptr) return;
  pending->delivered = true;
  pending->err = message->err;
  pending->output_offset = message->offset;
}

[[noreturn]] void die(const std::string& what, const CopierOptions& opts) {
  std::cerr << "holdfast verify copier " << opts.worker_id << ": " << what << std::endl;
  std::_Exit(kExitFatal);
}

// Handles a transactional API error: true if the caller should retry the
// call, false if the transaction must be aborted; exits on a fatal error.
bool retry_or_abort(rd_kafka_error_t* error, const char* call, const CopierOptions& opts) {
  std::string text = rd_kafka_error_string(error);
  bool fatal = rd_kafka_error_is_fatal(error);
  bool retriable = rd_kafka_error_is_retriable(error);
  bool abort = rd_kafka_error_txn_requires_abort(error);
  rd_kafka_error_destroy(error);
  if (opts.verbose) std::cerr << "holdfast verify copier: " << call << ": " << text << std::endl;
  if (fatal) die(std::string(call) + ": " + text, opts);
  if (abort) return false;
  if (retriable) return true;
  die(std::string(call) + ": " + text, opts);
}

// Puts the consumer back at the first offset of `batch` on each partition, so
// an aborted batch is copied again.
void rewind(rd_kafka_t* consumer, const std::string& topic, const std::deque<Pending>& batch) {
  std::map<int32_t, int64_t> first;
  for (const auto& p : batch) {
    auto [it, fresh] = first.emplace(p.partition, p.input_offset);
    if (!fresh) it->second = std::min(it->second, p.input_offset);
  }
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(first.size())));
  for (const auto& [partition, offset] : first) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
  }
  // A partition revoked meanwhile fails to seek: its next owner starts from
  // the group's committed offset, which the aborted batch did not move.
  if (rd_kafka_error_t* error = rd_kafka_seek_partitions(consumer, list.get(), 10000)) {
    rd_kafka_error_destroy(error);
  }
}

}  // namespace

std::string copier_transactional_id(uint64_t run_id, int32_t worker_id) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "holdfast-verify-copier-%016llx-%d",
                static_cast<unsigned long long>(run_id), worker_id);
  return buf;
}

void run_copier_worker(const CopierOptions& opts) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::signal(SIGTERM, copier_stop);
  std::signal(SIGINT, copier_stop);
  std::signal(SIGPIPE, SIG_IGN);
  const bool txn = !opts.non_transactional;
  const std::string tid = copier_transactional_id(opts.run_id, opts.worker_id);

  auto cconf = make_conf(opts.client, {
                                          {"group.id", opts.group},
                                          // Static membership: a replacement takes its
                                          // predecessor's place without waiting out its session.
                                          {"group.instance.id", tid},
                                          {"client.id", "holdfast-verify-copier"},
                                          {"enable.auto.commit", "false"},
                                          {"auto.offset.reset", "earliest"},
                                          {"isolation.level", "read_committed"},
                                          {"session.timeout.ms", "6000"},
                                          {"heartbeat.interval.ms", "1000"},
                                          {"max.poll.interval.ms", "30000"},
                                      });
  rd_kafka_conf_set_log_cb(cconf.get(), opts.verbose ? loud_log : quiet_log);
  if (!opts.verbose) rd_kafka_conf_set_error_cb(cconf.get(), quiet_error);
  auto consumer = make_handle(RD_KAFKA_CONSUMER, std::move(cconf));
  rd_kafka_poll_set_consumer(consumer.get());

  std::vector<std::pair<std::string, std::string>> pdefaults{
      {"client.id", "holdfast-verify-copier"},
      {"linger.ms", "5"},
      {"acks", "all"},
      {"enable.idempotence", "true"},
      {"message.timeout.ms", "10000"},  // librdkafka: at most transaction.timeout.ms
  };
  if (txn) {
    pdefaults.push_back({"transactional.id", tid});
    // A transaction left open (a copier killed with no replacement) is aborted
    // by the coordinator after this long, so the LSO moves on.
    pdefaults.push_back({"transaction.timeout.ms", "10000"});
  }
  auto pconf = make_conf(opts.client, pdefaults);
  rd_kafka_conf_set_dr_msg_cb(pconf.get(), on_copy_delivery);
  rd_kafka_conf_set_log_cb(pconf.get(), opts.verbose ? loud_log : quiet_log);
  if (!opts.verbose) rd_kafka_conf_set_error_cb(pconf.get(), quiet_error);
  auto producer = make_handle(RD_KAFKA_PRODUCER, std::move(pconf));

  if (txn) {
    // Fences the previous incarnation (same transactional.id) and completes
    // whatever it left open.
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    for (;;) {
      rd_kafka_error_t* error = rd_kafka_init_transactions(producer.get(), kCallTimeoutMs);
      if (error == nullptr) break;
      if (g_copier_stop || Clock::now() >= deadline || !rd_kafka_error_is_retriable(error)) {
        std::string text = rd_kafka_error_string(error);
        rd_kafka_error_destroy(error);
        die("init_transactions: " + text, opts);
      }
      rd_kafka_error_destroy(error);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  PartitionListPtr topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), opts.input_topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer.get(), topics.get()); err) {
    die(std::string("cannot subscribe: ") + rd_kafka_err2str(err), opts);
  }

  uint64_t txn_number = 0;
  while (!g_copier_stop) {
    // A batch: up to kMaxBatch messages, closed kBatchWindowMs after its first.
    std::deque<Pending> batch;  // stable addresses: the delivery opaque points in
    std::vector<std::string> values;
    auto first_at = Clock::now();
    while (static_cast<int>(batch.size()) < kMaxBatch && !g_copier_stop) {
      int wait_ms = 200;
      if (!batch.empty()) {
        auto left = std::chrono::milliseconds(kBatchWindowMs) - (Clock::now() - first_at);
        wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count());
        if (wait_ms <= 0) break;
      }
      rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer.get(), wait_ms);
      if (message == nullptr) {
        if (batch.empty()) break;
        continue;
      }
      std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> owned(
          message, rd_kafka_message_destroy);
      if (message->err) continue;
      if (batch.empty()) first_at = Clock::now();
      std::string value(static_cast<const char*>(message->payload), message->len);
      auto decoded = decode_message(opts.run_id, value);
      Pending& p = batch.emplace_back();
      p.partition = message->partition;
      p.input_offset = message->offset;
      p.id = decoded.id;
      p.ours = decoded.status == DecodedMessage::Status::kOk;
      values.push_back(std::move(value));
    }
    if (batch.empty()) continue;
    const uint64_t number = txn_number++;

    if (txn) {
      if (rd_kafka_error_t* error = rd_kafka_begin_transaction(producer.get())) {
        std::string text = rd_kafka_error_string(error);
        rd_kafka_error_destroy(error);
        die("begin_transaction: " + text, opts);
      }
    }
    bool ok = true;
    for (size_t i = 0; i < batch.size() && ok; ++i) {
      for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer.get(), RD_KAFKA_V_TOPIC(opts.output_topic.c_str()),
            RD_KAFKA_V_PARTITION(batch[i].partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(values[i].data(), values[i].size()), RD_KAFKA_V_OPAQUE(&batch[i]),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          rd_kafka_poll(producer.get(), 50);
          continue;
        }
        if (err) {
          ok = false;
          if (opts.verbose) std::cerr << "copier produce: " << rd_kafka_err2str(err) << std::endl;
        }
        break;
      }
    }
    // The delivery reports give each copy's output offset (before the commit).
    rd_kafka_flush(producer.get(), kCallTimeoutMs);
    std::string lines;
    for (const auto& p : batch) {
      if (!p.delivered || p.err) {
        ok = false;
        continue;
      }
      if (!p.ours) continue;
      lines += "m " + std::to_string(number) + " " + std::to_string(p.partition) + " " +
               std::to_string(p.output_offset) + " " + std::to_string(p.id.producer) + " " +
               std::to_string(p.id.seq) + "\n";
    }
    if (!lines.empty() && !write_all(STDOUT_FILENO, lines)) break;  // the parent is gone
    if (opts.processing_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(opts.processing_ms));
    }

    std::map<int32_t, int64_t> next_offsets;
    for (const auto& p : batch) {
      auto& next = next_offsets[p.partition];
      next = std::max(next, p.input_offset + 1);
    }
    PartitionListPtr offsets(rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size())));
    for (const auto& [partition, offset] : next_offsets) {
      rd_kafka_topic_partition_list_add(offsets.get(), opts.input_topic.c_str(), partition)->offset =
          offset;
    }

    if (!txn) {
      // Test-only, at-least-once: the copies are visible; a kill before this
      // commit makes the next owner copy them again.
      if (!ok) {
        rewind(consumer.get(), opts.input_topic, batch);
        continue;
      }
      write_all(STDOUT_FILENO, "c " + std::to_string(number) + "\n");
      rd_kafka_commit(consumer.get(), offsets.get(), 0);
      continue;
    }

    if (ok) {
      for (;;) {
        rd_kafka_consumer_group_metadata_t* metadata =
            rd_kafka_consumer_group_metadata(consumer.get());
        rd_kafka_error_t* error = rd_kafka_send_offsets_to_transaction(
            producer.get(), offsets.get(), metadata, kCallTimeoutMs);
        rd_kafka_consumer_group_metadata_destroy(metadata);
        if (error == nullptr) break;
        if (!retry_or_abort(error, "send_offsets_to_transaction", opts)) {
          ok = false;
          break;
        }
      }
    }
    if (ok) {
      for (;;) {
        rd_kafka_error_t* error = rd_kafka_commit_transaction(producer.get(), kCallTimeoutMs);
        if (error == nullptr) break;
        if (!retry_or_abort(error, "commit_transaction", opts)) {
          ok = false;
          break;
        }
      }
    }
    if (ok) {
      if (!write_all(STDOUT_FILENO, "c " + std::to_string(number) + "\n")) break;
      continue;
    }
    for (;;) {
      rd_kafka_error_t* error = rd_kafka_abort_transaction(producer.get(), kCallTimeoutMs);
      if (error == nullptr) break;
      if (!retry_or_abort(error, "abort_transaction", opts)) die("abort_transaction failed", opts);
    }
    if (!write_all(STDOUT_FILENO, "a " + std::to_string(number) + "\n")) break;
    rewind(consumer.get(), opts.input_topic, batch);
  }
  rd_kafka_consumer_close(consumer.get());
}

// ---- CopyLog ----

void CopyLog::feed(uint64_t instance, int32_t copier, std::string_view line) {
  if (line.size() < 2 || line[1] != ' ') return;
  const char kind = line.front();
  line.remove_prefix(1);
  uint64_t txn = 0;
  if (!parse_number(line, txn)) return;
  std::lock_guard lock(mu_);
  auto key = std::make_pair(instance, txn);
  if (kind == 'm') {
    Copy copy;
    copy.copier = copier;
    if (!parse_number(line, copy.partition) || !parse_number(line, copy.offset) ||
        !parse_number(line, copy.id.producer) || !parse_number(line, copy.id.seq)) {
      return;
    }
    open_[key].push_back(copy);
    return;
  }
  if (kind != 'c' && kind != 'a') return;
  auto it = open_.find(key);
  if (kind == 'c') {
    ++txns_committed_;
    ++committed_by_[instance];
  } else {
    ++txns_aborted_;
  }
  if (it == open_.end()) return;
  for (auto& copy : it->second) {
    copy.fate = kind == 'c' ? CopyFate::kCommitted : CopyFate::kAborted;
    if (kind == 'c') ++committed_;
    done_.push_back(copy);
  }
  open_.erase(it);
}

std::vector<Copy> CopyLog::copies() const {
  std::lock_guard lock(mu_);
  std::vector<Copy> all = done_;
  for (const auto& [key, list] : open_) all.insert(all.end(), list.begin(), list.end());
  return all;
}

uint64_t CopyLog::committed() const {
  std::lock_guard lock(mu_);
  return committed_;
}

uint64_t CopyLog::transactions_committed() const {
  std::lock_guard lock(mu_);
  return txns_committed_;
}

uint64_t CopyLog::transactions_committed_by(uint64_t instance) const {
  std::lock_guard lock(mu_);
  auto it = committed_by_.find(instance);
  return it == committed_by_.end() ? 0 : it->second;
}

uint64_t CopyLog::transactions_aborted() const {
  std::lock_guard lock(mu_);
  return txns_aborted_;
}

}  // namespace holdfast::cli::verify
