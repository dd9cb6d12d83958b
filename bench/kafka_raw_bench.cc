// kafka_raw_bench: acknowledgement latency through the thinnest Kafka client,
// built like redis_bench so that the two brokers are timed alike (issue 13).
// A program that prints figures, not a test, and not a client for anything
// else: it only measures.
//
//   kafka_raw_bench latency --brokers 127.0.0.1:9092 --topic T --partition 0
//                           --rate 5000 --seconds 15 --size 100
//       One connection with TCP_NODELAY (as hiredis sets), one thread: each
//       message is its own ProduceRequest v3 (acks=-1, one record batch v2 of
//       one record, no producer id), written at its send time (open loop: a
//       slow response does not delay the next send); between sends the thread
//       waits for responses in ppoll. Latency from handing the request to the
//       socket to its response parsed, as redis_bench measures an XADD.
//       Prints one JSON object in holdfast_bench's shape ("client": "raw").
//
// librdkafka (holdfast_bench) hands each message from the application thread
// to its broker thread and each delivery report back; redis_bench has no such
// hops. This program has none either, so the difference between the two
// Holdfast figures is the client library's, and the difference between this
// one and redis_bench's is the brokers'.
//
// Kafka answers one connection's requests in order, so the n-th response
// belongs to the n-th request (checked by correlation id). The topic must
// exist and the broker must lead the partition (a single broker does).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "bench_util.h"
#include "protocol/messages.h"
#include "protocol/wire.h"
#include "record/batch.h"

namespace {

using holdfast::bench::Clock;
using holdfast::bench::payload;
using holdfast::bench::percentile;
using holdfast::bench::seconds_since;

constexpr int16_t kProduceVersion = 3;

[[noreturn]] void die(const std::string& message) {
  std::cerr << "kafka_raw_bench: " << message << std::endl;
  std::exit(1);
}

// A whole ProduceRequest v3 frame (size prefix included), acks=-1: one
// partition, one batch of one record with a null key, built by the broker's
// own codec (record::BatchBuilder, the generated protocol messages).
std::vector<uint8_t> produce_frame(int32_t correlation_id, const std::string& topic,
                                   int32_t partition, const std::string& value,
                                   int64_t timestamp_ms) {
  namespace protocol = holdfast::protocol;
  protocol::ProduceRequest request;
  request.acks = -1;
  request.timeout_ms = 30000;
  auto& topic_data = request.topic_data.emplace_back();
  topic_data.name = topic;
  auto& partition_data = topic_data.partition_data.emplace_back();
  partition_data.index = partition;
  partition_data.records =
      holdfast::record::BatchBuilder().add(std::nullopt, value, timestamp_ms).build();
  protocol::RequestHeader header;
  header.api_key = protocol::ProduceRequest::kApiKey;
  header.api_version = kProduceVersion;
  header.correlation_id = correlation_id;
  header.client_id = "kafka_raw_bench";
  return protocol::encode_request_frame(header, request);
}

int connect_to(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) die("--brokers must be host:port");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(address.substr(0, colon).c_str(), address.substr(colon + 1).c_str(), &hints,
                  &found) != 0 ||
      !found) {
    die("cannot resolve " + address);
  }
  int fd = socket(found->ai_family, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    die("cannot connect to " + address + ": " + std::strerror(errno));
  }
  freeaddrinfo(found);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void write_all(int fd, const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die(std::string("send: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

// Reads responses as they arrive; calls on_response(correlation_id, error_code)
// for each whole one.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}

  // Waits up to `timeout` for the socket to be readable, then reads and parses.
  template <typename OnResponse>
  void receive(Clock::duration timeout, OnResponse&& on_response) {
    pollfd p{fd_, POLLIN, 0};
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
    if (ns < 0) ns = 0;
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    int ready = ppoll(&p, 1, &ts, nullptr);
    if (ready < 0 && errno != EINTR) die("poll failed");
    if (ready <= 0) return;
    uint8_t chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n == 0) die("connection closed by the broker");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) return;
      die(std::string("recv: ") + std::strerror(errno));
    }
    buffer_.insert(buffer_.end(), chunk, chunk + n);
    size_t at = 0;
    while (buffer_.size() - at >= 4) {
      const uint32_t size = holdfast::load_be32(buffer_.data() + at);
      if (size < 4 || size > 64 * 1024 * 1024) die("bad response size " + std::to_string(size));
      if (buffer_.size() - at - 4 < size) break;
      on_response(parse(buffer_.data() + at + 4, size));
      at += 4 + size;
    }
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(at));
  }

 private:
  struct Parsed {
    int32_t correlation_id;
    int16_t error_code;
  };
  // A ProduceResponse of one partition: its correlation id and error code.
  static Parsed parse(const uint8_t* p, uint32_t size) {
    namespace protocol = holdfast::protocol;
    protocol::Reader reader(holdfast::Bytes::copy_of(std::span<const uint8_t>(p, size)));
    protocol::ResponseHeader header;
    protocol::ProduceResponse response;
    if (!header.decode(reader, protocol::response_header_version(protocol::ProduceResponse::kApiKey,
                                                                 kProduceVersion)) ||
        !response.decode(reader, kProduceVersion)) {
      die("a response that does not decode as ProduceResponse v" + std::to_string(kProduceVersion));
    }
    if (response.responses.size() != 1 || response.responses[0].partition_responses.size() != 1) {
      die("a response without exactly one partition");
    }
    return {header.correlation_id, response.responses[0].partition_responses[0].error_code};
  }

  int fd_;
  std::vector<uint8_t> buffer_;
};

struct LatencyArgs {
  std::string brokers = "127.0.0.1:9092";
  std::string topic = "bench";
  int32_t partition = 0;
  size_t size = 100;
  double rate = 5000;
  double seconds = 10;
  std::string latencies_out;
};

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::ordered_json run_latency(const LatencyArgs& args) {
  const int fd = connect_to(args.brokers);
  Reader reader(fd);
  const std::string value = payload(args.size);
  const auto total = static_cast<int64_t>(args.rate * args.seconds);
  std::vector<Clock::time_point> sent_at(total);
  std::vector<double> latency_ms;
  latency_ms.reserve(total);
  int64_t responses = 0, failed = 0;
  int first_error = 0;
  auto on_response = [&](const auto& r) {
    if (r.correlation_id != responses) {
      die("response " + std::to_string(r.correlation_id) + " where " + std::to_string(responses) +
          " was due");
    }
    if (r.error_code != 0) {
      if (failed++ == 0) first_error = r.error_code;
    } else {
      latency_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - sent_at[responses]).count());
    }
    ++responses;
  };

  // Warm-up: one produce answered before the clock starts (its own correlation id).
  {
    write_all(fd, produce_frame(-1, args.topic, args.partition, value, wall_ms()));
    bool answered = false;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!answered && Clock::now() < deadline) {
      reader.receive(std::chrono::milliseconds(100), [&](const auto& r) {
        if (r.correlation_id != -1) die("unexpected warm-up response");
        if (r.error_code != 0) {
          die("warm-up produce failed with error code " + std::to_string(r.error_code) +
              " (does the topic exist, and does this broker lead the partition?)");
        }
        answered = true;
      });
    }
    if (!answered) die("no response to the warm-up produce in 30 s");
  }

  const double send_seconds = holdfast::bench::send_at_fixed_rate(
      total, args.rate,
      [&](int64_t i) {
        // Built before the timestamp: the latency covers the broker, not the encoding.
        auto frame =
            produce_frame(static_cast<int32_t>(i), args.topic, args.partition, value, wall_ms());
        sent_at[i] = Clock::now();
        write_all(fd, frame);
      },
      [&](Clock::duration left) { reader.receive(left, on_response); });
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (responses < total && Clock::now() < deadline) {
    reader.receive(std::chrono::milliseconds(100), on_response);
  }
  close(fd);
  std::sort(latency_ms.begin(), latency_ms.end());
  if (!args.latencies_out.empty() &&
      !holdfast::bench::write_latencies(args.latencies_out, latency_ms)) {
    die("cannot write " + args.latencies_out);
  }
  return {{"run", "latency"},
          {"system", "holdfast"},
          {"client", "raw"},
          {"topic", args.topic},
          {"message_bytes", args.size},
          {"acks", "all"},
          {"linger_ms", 0},
          {"target_rate", args.rate},
          {"achieved_rate", total / send_seconds},
          {"messages", latency_ms.size()},
          {"failed", failed + (total - responses)},
          {"first_error", first_error},
          {"p50_ms", percentile(latency_ms, 50)},
          {"p99_ms", percentile(latency_ms, 99)},
          {"p999_ms", percentile(latency_ms, 99.9)},
          {"max_ms", latency_ms.empty() ? 0.0 : latency_ms.back()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "kafka_raw_bench: produce-ack latency through a one-thread Kafka client "
      "(the counterpart of redis_bench; issue 13)"};
  app.require_subcommand(1);
  LatencyArgs latency;
  auto* cmd = app.add_subcommand("latency", "Produce at a fixed rate; ack latency percentiles");
  cmd->add_option("-b,--brokers", latency.brokers, "The broker (host:port)")->capture_default_str();
  cmd->add_option("-t,--topic", latency.topic, "Topic (must exist)")->capture_default_str();
  cmd->add_option("--partition", latency.partition, "Partition")->capture_default_str();
  cmd->add_option("--size", latency.size, "Message size in bytes")->capture_default_str();
  cmd->add_option("--rate", latency.rate, "Messages per second")->capture_default_str();
  cmd->add_option("--seconds", latency.seconds, "Duration")->capture_default_str();
  cmd->add_option("--latencies-out", latency.latencies_out,
                  "Write every latency (us, sorted, one per line) here");
  cmd->callback([&] {
    auto result = run_latency(latency);
    std::cout << result.dump() << std::endl;
    std::cerr << result.dump(2) << std::endl;
  });
  CLI11_PARSE(app, argc, argv);
  return 0;
}
