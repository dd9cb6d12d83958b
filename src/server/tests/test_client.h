// A minimal blocking Kafka client over our own codec, for protocol-level tests
// of the broker (error paths and framing that real clients never exercise).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "protocol/messages.h"
#include "protocol/wire.h"

namespace holdfast::server::testing {

class TestClient {
 public:
  explicit TestClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw std::runtime_error("connect failed");
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~TestClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  // Encodes header + body into one frame; returns its correlation id.
  template <typename Request>
  int32_t send(const Request& request, int16_t version) {
    int32_t correlation_id = next_correlation_id_++;
    send_raw(frame(request, version, correlation_id));
    return correlation_id;
  }

  template <typename Request>
  static std::vector<uint8_t> frame(const Request& request, int16_t version,
                                    int32_t correlation_id) {
    protocol::Writer w;
    w.put_int32(0);
    protocol::RequestHeader header;
    header.api_key = Request::kApiKey;
    header.api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = "holdfast-test";
    header.encode(w, protocol::request_header_version(Request::kApiKey, version));
    request.encode(w, version);
    w.patch_int32(0, static_cast<int32_t>(w.size() - 4));
    return w.release();
  }

  void send_raw(const std::vector<uint8_t>& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      sent += static_cast<size_t>(n);
    }
  }

  // The next response frame (after its size prefix), or nullopt if the broker
  // closed the connection or nothing came within the timeout.
  std::optional<Bytes> read_frame(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    uint8_t size_bytes[4];
    if (!read_exact(size_bytes, 4, timeout)) return std::nullopt;
    std::vector<uint8_t> body(load_be32(size_bytes));
    if (!read_exact(body.data(), body.size(), timeout)) return std::nullopt;
    return Bytes(std::move(body));
  }

  // Reads one response and decodes it; checks the correlation id.
  template <typename Response>
  Response receive(int16_t api_key, int16_t version, int32_t correlation_id) {
    auto f = read_frame();
    if (!f) throw std::runtime_error("no response");
    protocol::Reader r(*f);
    auto corr = r.read_int32();
    if (!corr || *corr != correlation_id) {
      throw std::runtime_error("unexpected correlation id " + std::to_string(corr ? *corr : -1) +
                               ", wanted " + std::to_string(correlation_id));
    }
    if (protocol::response_header_version(api_key, version) >= 1) {
      if (!r.skip_tagged_fields()) throw std::runtime_error("bad response header tags");
    }
    Response response;
    auto decoded = response.decode(r, version);
    if (!decoded) throw std::runtime_error("bad response: " + decoded.error().message);
    return response;
  }

  template <typename Request, typename Response>
  Response call(const Request& request, int16_t version) {
    int32_t corr = send(request, version);
    return receive<Response>(Request::kApiKey, version, corr);
  }

  // Fetch v11 of one partition from `offset`, no waiting, up to 1 MiB.
  protocol::FetchResponse fetch_from(const std::string& topic, int32_t partition = 0,
                                     int64_t offset = 0) {
    protocol::FetchRequest request;
    request.replica_id = -1;
    request.max_wait_ms = 0;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    auto& t = request.topics.emplace_back();
    t.topic = topic;
    auto& p = t.partitions.emplace_back();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    return call<protocol::FetchRequest, protocol::FetchResponse>(request, 11);
  }

  // True if the broker closes the connection within the timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    uint8_t b;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        ssize_t n = ::recv(fd_, &b, 1, 0);
        if (n == 0) return true;
        if (n < 0) return true;
      }
    }
    return false;
  }

 private:
  bool read_exact(uint8_t* out, size_t n, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t got = 0;
    while (got < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      ssize_t r = ::recv(fd_, out + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  }

  int fd_ = -1;
  int32_t next_correlation_id_ = 1;
};

}  // namespace holdfast::server::testing
