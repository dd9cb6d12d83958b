#include "admin/lag_history.h"

namespace holdfast::admin {

void LagHistory::record(int64_t timestamp_ms, const std::map<std::string, int64_t>& lags) {
  std::lock_guard lock(mu_);
  for (auto it = groups_.begin(); it != groups_.end();) {
    it = lags.count(it->first) ? std::next(it) : groups_.erase(it);
  }
  for (const auto& [group, lag] : lags) {
    auto& points = groups_[group];
    points.push_back({timestamp_ms, lag});
    while (points.size() > kLagPoints) points.pop_front();
  }
}

std::vector<LagPoint> LagHistory::points(const std::string& group) const {
  std::lock_guard lock(mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

}  // namespace holdfast::admin
