// Helpers for the metadata log tests: a subscriber that records what it is
// told, bounded waits on conditions, appends waited for with a deadline, and
// free TCP ports on 127.0.0.1 for Raft members.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "metadata/metadata_log.h"

namespace holdfast::metadata::testing {

using namespace std::chrono_literals;

// Generous: the test machine's cores are shared by many builds and tests.
// Every wait is bounded by it; none is a timing assertion.
constexpr auto kWait = 30s;

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
inline bool wait_until(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Records every event a metadata log delivers, as the encoded record (so
// sequences compare with ==), and counts whole-image replacements.
class Recorder {
 public:
  MetadataListener listener() {
    return [this](const MetadataEvent& event) {
      std::lock_guard lock(mutex_);
      if (event.record != nullptr) {
        records_.push_back(encode_record(*event.record));
        indexes_.push_back(event.image->last_record_index);
      } else {
        ++restores_;
      }
      last_image_ = event.image;
    };
  }
  std::vector<std::string> records() const {
    std::lock_guard lock(mutex_);
    return records_;
  }
  std::vector<int64_t> indexes() const {
    std::lock_guard lock(mutex_);
    return indexes_;
  }
  size_t size() const {
    std::lock_guard lock(mutex_);
    return records_.size();
  }
  int restores() const {
    std::lock_guard lock(mutex_);
    return restores_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> records_;
  std::vector<int64_t> indexes_;
  int restores_ = 0;
  ImagePtr last_image_;
};

// Appends and waits for the completion (bounded); a timeout reads as shut_down
// with a message saying so.
inline Result<ImagePtr, Errc> append_and_wait(MetadataLog& log, MetadataRecord record,
                                              std::chrono::milliseconds timeout = kWait) {
  auto promise = std::make_shared<std::promise<Result<ImagePtr, Errc>>>();
  auto future = promise->get_future();
  log.append(std::move(record),
             [promise](Result<ImagePtr, Errc> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(timeout) != std::future_status::ready) {
    return make_error(Errc::shut_down, "test: append did not complete in time");
  }
  return future.get();
}

// Appends `record` on members[leader()] (leader() < 0: none within its
// wait), retrying while leadership moves (not_leader means nothing was
// appended, so the retry is safe).
template <typename Members>
Result<ImagePtr, Errc> append_on_leader(const Members& members, const std::function<int()>& leader,
                                        const MetadataRecord& record) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (true) {
    const int index = leader();
    if (index < 0) return make_error(Errc::not_leader, "test: no leader");
    auto result = append_and_wait(*members[size_t(index)], record);
    if (result || result.code() != Errc::not_leader ||
        std::chrono::steady_clock::now() >= deadline) {
      return result;
    }
  }
}

// Waits until every running member (non-null in `members`) holds `image`.
template <typename Members>
bool all_running_hold(const Members& members, const std::string& image) {
  return wait_until([&] {
    for (const auto& member : members) {
      if (member && encode_image(*member->current()) != image) return false;
    }
    return true;
  });
}

// A registration of broker `id` (epoch 1) with one PLAINTEXT endpoint.
inline BrokerRegistered test_broker(int32_t id, std::string rack = "") {
  TopicId incarnation{};
  incarnation[0] = uint8_t(id);
  incarnation[15] = 1;
  return BrokerRegistered{id, 1, incarnation, {{"PLAINTEXT", "127.0.0.1", 9092 + id}}, std::move(rack)};
}

// Broker `id` registered (as test_broker) and unfenced: it may lead and hold replicas.
inline std::vector<MetadataRecord> live_broker(int32_t id) {
  return {test_broker(id), BrokerUnfenced{id, 1}};
}

// `count` fresh partitions, each on `node` alone (it leads, epochs 0).
inline std::vector<PartitionState> on_node(int32_t node, int32_t count) {
  return std::vector<PartitionState>(size_t(count), sole_node_partition(node));
}

// `n` distinct free TCP ports on 127.0.0.1 (held open together while picked).
inline std::vector<int> free_ports(size_t n) {
  std::vector<int> fds, ports;
  for (size_t i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("bind");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) ::close(fd);
  return ports;
}

}  // namespace holdfast::metadata::testing
