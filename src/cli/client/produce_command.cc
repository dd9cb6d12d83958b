// `holdfast produce <topic>`: one message per stdin line, waiting for every
// delivery report before exiting.
#include <csignal>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/client/args.h"
#include "cli/client/client.h"
#include "cli/client/usage.h"
#include "cli/commands.h"

namespace holdfast::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

// SIGINT/SIGTERM without SA_RESTART, so a read of stdin returns at once.
void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// Fails at once when the topic does not exist (and the broker does not create
// it on this metadata request) or has no partition `partition`, instead of
// waiting message.timeout.ms for every message.
void check_topic(rd_kafka_t* rk, const std::string& name, int32_t partition, int timeout_ms) {
  rd_kafka_topic_t* topic = rd_kafka_topic_new(rk, name.c_str(), nullptr);
  std::unique_ptr<rd_kafka_topic_t, void (*)(rd_kafka_topic_t*)> owned(topic,
                                                                        rd_kafka_topic_destroy);
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, topic, &metadata, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fail("produce: cannot get metadata for '" + name + "': " + rd_kafka_err2str(err));
  }
  std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> owned_metadata(
      metadata, rd_kafka_metadata_destroy);
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const auto& t = metadata->topics[i];
    if (name != t.topic) continue;
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      fail("produce: topic '" + name +
           "' does not exist (and the broker does not create topics on use); create it with "
           "'holdfast topic create " + name + "'");
    }
    if (t.err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
      fail("produce: topic '" + name + "': " + rd_kafka_err2str(t.err));
    }
    // Other errors (a leader being elected for a just-created topic) are transient.
    if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR && partition >= 0 && partition >= t.partition_cnt) {
      fail("produce: topic '" + name + "' has no partition " + std::to_string(partition) +
               " (it has " + std::to_string(t.partition_cnt) + ": 0.." +
               std::to_string(t.partition_cnt - 1) + ")",
           kExitUsage);
    }
  }
}

struct ProduceOptions {
  ClientOptions client;
  std::string topic;
  std::string key_separator;
  std::string acks = "all";
  int partition = -1;  // -1: let the partitioner choose (by key hash, or sticky for null keys)
  std::string compression = "none";
  std::vector<std::string> headers;
};

struct DeliveryTally {
  uint64_t delivered = 0;
  uint64_t failed = 0;
  std::string first_error;

  void record_failure(const std::string& error) {
    if (failed++ == 0) first_error = error;
  }
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* tally = static_cast<DeliveryTally*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++tally->delivered;
  } else {
    tally->record_failure(rd_kafka_err2str(message->err));
  }
}

void run_produce(const ProduceOptions& opts) {
  auto acks = parse_acks(opts.acks);
  if (!acks) fail("produce: " + acks.error().message, kExitUsage);
  auto compression = parse_compression(opts.compression);
  if (!compression) fail("produce: " + compression.error().message, kExitUsage);
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& header : opts.headers) {
    auto assignment = parse_assignment(header);
    if (!assignment) fail("produce: -H " + assignment.error().message, kExitUsage);
    headers.push_back(*assignment);
  }

  DeliveryTally tally;
  // A CLI should not sit for librdkafka's default 5 minutes when the broker is
  // gone: give up on a message after 30 s (-X message.timeout.ms=... overrides).
  auto conf = make_conf(
      opts.client,
      {{"acks", *acks}, {"compression.codec", *compression}, {"message.timeout.ms", "30000"}});
  rd_kafka_conf_set_opaque(conf.get(), &tally);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), on_delivery);
  auto rk = make_handle(RD_KAFKA_PRODUCER, std::move(conf));
  check_topic(rk.get(), opts.topic, opts.partition, opts.client.timeout_ms);

  const int32_t partition = opts.partition >= 0 ? opts.partition : RD_KAFKA_PARTITION_UA;
  uint64_t produced = 0;
  install_interrupt_handlers();
  std::ios::sync_with_stdio(false);
  std::string line;
  while (!g_interrupted && std::getline(std::cin, line)) {
    KeyAndValue kv = split_key_value(line, opts.key_separator);
    rd_kafka_headers_t* message_headers = nullptr;
    if (!headers.empty()) {
      message_headers = rd_kafka_headers_new(headers.size());
      for (const auto& [key, value] : headers) {
        rd_kafka_header_add(message_headers, key.data(), key.size(), value.data(), value.size());
      }
    }
    ++produced;
    const void* key = kv.key ? kv.key->data() : nullptr;  // nullptr: a null key
    const size_t key_size = kv.key ? kv.key->size() : 0;
    rd_kafka_resp_err_t err;
    for (;;) {
      err = rd_kafka_producev(
          rk.get(), RD_KAFKA_V_TOPIC(opts.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_size),
          RD_KAFKA_V_VALUE(kv.value.data(), kv.value.size()), RD_KAFKA_V_HEADERS(message_headers),
          RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || g_interrupted) break;
      rd_kafka_poll(rk.get(), 100);  // the local queue is full: serve delivery reports, retry
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (message_headers != nullptr) rd_kafka_headers_destroy(message_headers);
      tally.record_failure(rd_kafka_err2str(err));
    }
    rd_kafka_poll(rk.get(), 0);
  }

  // Every accepted message gets exactly one delivery report, at the latest
  // after message.timeout.ms, so this loop ends.
  while (!g_interrupted && tally.delivered + tally.failed < produced) rd_kafka_poll(rk.get(), 100);
  if (g_interrupted) {
    rd_kafka_poll(rk.get(), 0);  // reports that already arrived
    const uint64_t in_flight = produced - tally.delivered - tally.failed;
    fail("produce: interrupted: " + std::to_string(tally.delivered) + " delivered, " +
             std::to_string(tally.failed) + " failed, " + std::to_string(in_flight) +
             " in flight (not acknowledged: they may or may not be in the log)",
         kExitInterrupted);
  }

  if (tally.failed > 0) {
    fail("produce: " + std::to_string(tally.failed) + " of " + std::to_string(produced) +
         " messages to '" + opts.topic + "' failed (first error: " + tally.first_error + ")");
  }
  std::cerr << "produced " << produced << " messages to '" << opts.topic << "' (acks=" << *acks
            << ", compression=" << *compression << "): " << tally.delivered
            << " delivered, 0 failed" << std::endl;
}

}  // namespace

void add_produce_command(CLI::App& app) {
  auto opts = std::make_shared<ProduceOptions>();
  auto* produce = app.add_subcommand(
      "produce", "Produce stdin lines as messages, one per line; waits for every delivery report");
  produce->add_option("topic", opts->topic, "Topic")->required();
  produce->add_option("-K,--key-separator", opts->key_separator,
                      "Split each line into key and value at the first SEP (no SEP: null key)");
  produce->add_option("--acks", opts->acks, "0, 1 or all")->capture_default_str();
  produce->add_option("-p,--partition", opts->partition, "Partition (default: the partitioner)")
      ->check(at_least(0));
  produce->add_option("-z,--compression", opts->compression, "none, gzip, snappy, lz4 or zstd")
      ->capture_default_str();
  produce->add_option("-H,--header", opts->headers,
                      "Header key=value on every message (repeatable)");
  add_client_options(produce, opts->client);
  produce->callback([opts] { run_produce(*opts); });
}

}  // namespace holdfast::cli
