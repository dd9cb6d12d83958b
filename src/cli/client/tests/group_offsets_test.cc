#include "cli/client/group_offsets.h"

#include <gtest/gtest.h>

namespace holdfast::cli {
namespace {

using Kind = StartPosition::Kind;

TEST(ParseSeekTarget, AcceptsNamesOffsetsAndTimestamps) {
  for (const char* start : {"start", "beginning", "earliest"}) {
    EXPECT_EQ(parse_seek_target(start).value(), (StartPosition{Kind::kBeginning, 0})) << start;
  }
  EXPECT_EQ(parse_seek_target("end").value(), (StartPosition{Kind::kEnd, 0}));
  EXPECT_EQ(parse_seek_target("latest").value(), (StartPosition{Kind::kEnd, 0}));
  EXPECT_EQ(parse_seek_target("42").value(), (StartPosition{Kind::kOffset, 42}));
  EXPECT_EQ(parse_seek_target("@1700000000000").value(),
            (StartPosition{Kind::kTimestamp, 1700000000000}));
}

TEST(ParseSeekTarget, RejectsEverythingElse) {
  for (const char* bad : {"", "START", "-1", "+2", "@", "@x", "1.5"}) {
    auto result = parse_seek_target(bad);
    ASSERT_FALSE(result) << bad;
    EXPECT_NE(result.error().message.find("--to"), std::string::npos);
  }
}

TEST(PartitionLag, IsUnknownWithoutCommit) {
  EXPECT_EQ(partition_lag(-1, 0, 10), std::nullopt);
}

TEST(PartitionLag, CountsFromTheCommitOrTheLogStart) {
  EXPECT_EQ(partition_lag(3, 0, 10), 7);
  EXPECT_EQ(partition_lag(10, 0, 10), 0);
  EXPECT_EQ(partition_lag(2, 5, 10), 5);   // records 2..4 are gone: not lag
  EXPECT_EQ(partition_lag(12, 0, 10), 0);  // commit beyond the end: never negative
}

TEST(SeekOffset, ResolvesEachTarget) {
  EXPECT_EQ(seek_offset({Kind::kBeginning, 0}, 4, 20), 4);
  EXPECT_EQ(seek_offset({Kind::kEnd, 0}, 4, 20), 20);
  EXPECT_EQ(seek_offset({Kind::kOffset, 7}, 4, 20), 7);
  EXPECT_EQ(seek_offset({Kind::kOffset, 1}, 4, 20), 4);    // clamped to the log start
  EXPECT_EQ(seek_offset({Kind::kOffset, 99}, 4, 20), 20);  // clamped to the log end
  EXPECT_EQ(seek_offset({Kind::kTimestamp, 5}, 4, 20, 11), 11);
  EXPECT_EQ(seek_offset({Kind::kTimestamp, 5}, 4, 20, -1), 20);  // nothing that late: the end
}

}  // namespace
}  // namespace holdfast::cli
