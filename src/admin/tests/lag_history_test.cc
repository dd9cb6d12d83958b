#include "admin/lag_history.h"

#include <gtest/gtest.h>

namespace holdfast::admin {
namespace {

TEST(LagHistoryTest, KeepsTheLastPointsPerGroupAndForgetsGoneGroups) {
  LagHistory history;
  EXPECT_TRUE(history.points("billing").empty());
  for (int64_t i = 0; i < int64_t(kLagPoints) + 5; ++i) {
    history.record(1000 + i, {{"billing", i}, {"audit", 7}});
  }
  auto points = history.points("billing");
  ASSERT_EQ(points.size(), kLagPoints);
  EXPECT_EQ(points.front().timestamp_ms, 1005);  // the oldest five dropped
  EXPECT_EQ(points.front().total_lag, 5);
  EXPECT_EQ(points.back().total_lag, int64_t(kLagPoints) + 4);
  history.record(5000, {{"billing", 1}});  // audit is gone
  EXPECT_TRUE(history.points("audit").empty());
  EXPECT_EQ(history.points("billing").back().total_lag, 1);
}

}  // namespace
}  // namespace holdfast::admin
