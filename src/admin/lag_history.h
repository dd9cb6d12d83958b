// A short in-memory history of each consumer group's total lag, sampled by
// the admin server every kLagSampleInterval and kept for the last kLagPoints
// samples (two minutes), so the console's group page draws a lag-over-time
// sparkline as soon as it opens. Lost at restart by design: Prometheus
// (kafka_consumergroup_lag) is the long-term record.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace holdfast::admin {

inline constexpr std::chrono::milliseconds kLagSampleInterval{2000};
inline constexpr size_t kLagPoints = 60;

struct LagPoint {
  int64_t timestamp_ms = 0;
  int64_t total_lag = 0;
};

class LagHistory {
 public:
  // One sample of every group that exists now; groups absent from `lags`
  // (deleted, expired) are forgotten.
  void record(int64_t timestamp_ms, const std::map<std::string, int64_t>& lags);
  // Oldest first; empty for a group never sampled.
  std::vector<LagPoint> points(const std::string& group) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::deque<LagPoint>> groups_;
};

}  // namespace holdfast::admin
