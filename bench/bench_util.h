// Helpers shared by the bench clients (holdfast_bench, redis_bench,
// kafka_raw_bench), so that they send the same bytes and compute their
// figures the same way.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace holdfast::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A message's value: `size` letters from a fixed seed, the same in every client.
inline std::string payload(size_t size) {
  std::mt19937 rng(42);
  std::string out(size, '\0');
  for (auto& c : out) c = static_cast<char>('a' + rng() % 26);
  return out;
}

// The p-th percentile (0-100) of sorted values, nearest rank; 0 when empty.
inline double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p / 100.0 * (sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

// Writes every latency (given in ms, sorted) in µs, one per line, for
// bench/plot_latency.py; false when the file cannot be written.
inline bool write_latencies(const std::string& path, const std::vector<double>& sorted_ms) {
  std::ofstream out(path);
  for (double ms : sorted_ms) out << ms * 1000.0 << '\n';
  return static_cast<bool>(out);
}

// The open-loop sender of the one-thread clients: calls send(i) at each
// message's send time (`rate` per second, a slow response does not delay the
// next send) and wait(d) with the time left until the next one, in which the
// client reads what has arrived. Returns the seconds the sending took.
template <typename Send, typename Wait>
double send_at_fixed_rate(int64_t total, double rate, Send&& send, Wait&& wait) {
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto start = Clock::now();
  auto next = start;
  for (int64_t i = 0; i < total;) {
    const auto now = Clock::now();
    if (now >= next) {
      send(i);
      ++i;
      next += interval;
    } else {
      wait(next - now);
    }
  }
  return seconds_since(start);
}

}  // namespace holdfast::bench
