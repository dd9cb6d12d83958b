// Clocks. Wall time (milliseconds since the epoch) is what Kafka timestamps
// use; the steady clock is for timeouts.
#pragma once

#include <chrono>
#include <cstdint>

namespace holdfast {

inline int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t steady_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

using SteadyClock = std::chrono::steady_clock;

}  // namespace holdfast
