// `holdfast produce <topic>`: one message per stdin line, waiting for every
// delivery report before exiting.
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/client/args.h"
#include "cli/client/client.h"
#include "cli/commands.h"

namespace holdfast::cli {
namespace {

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

  const int32_t partition = opts.partition >= 0 ? opts.partition : RD_KAFKA_PARTITION_UA;
  uint64_t produced = 0;
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
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
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
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
  while (tally.delivered + tally.failed < produced) rd_kafka_poll(rk.get(), 100);

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
      ->check(CLI::NonNegativeNumber);
  produce->add_option("-z,--compression", opts->compression, "none, gzip, snappy, lz4 or zstd")
      ->capture_default_str();
  produce->add_option("-H,--header", opts->headers,
                      "Header key=value on every message (repeatable)");
  add_client_options(produce, opts->client);
  produce->callback([opts] { run_produce(*opts); });
}

}  // namespace holdfast::cli
