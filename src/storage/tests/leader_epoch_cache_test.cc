// LeaderEpochCache operations and its checkpoint file.
#include "storage/leader_epoch_cache.h"

#include <gtest/gtest.h>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"

namespace holdfast::storage {
namespace {

using Entries = std::vector<EpochEntry>;

TEST(LeaderEpochCache, AssignAppendsNewEpochsAndIgnoresStaleOnes) {
  LeaderEpochCache cache;
  EXPECT_FALSE(cache.latest_epoch());
  EXPECT_TRUE(cache.assign(0, 0));
  EXPECT_FALSE(cache.assign(0, 5));  // same epoch, later offset: nothing new
  EXPECT_TRUE(cache.assign(2, 10));
  EXPECT_FALSE(cache.assign(1, 20));  // stale epoch
  EXPECT_FALSE(cache.assign(-1, 30));
  EXPECT_FALSE(cache.assign(3, -1));
  EXPECT_EQ(cache.entries(), (Entries{{0, 0}, {2, 10}}));
  EXPECT_EQ(cache.latest_epoch(), 2);
  EXPECT_EQ(cache.latest_entry(), (EpochEntry{2, 10}));
}

TEST(LeaderEpochCache, AssignKeepsStartOffsetsIncreasing) {
  LeaderEpochCache cache(Entries{{0, 0}, {1, 10}, {2, 20}});
  // Epoch 5 at 10 (say two elections with no batch in between and a log cut
  // back to 10): epochs 1 and 2 start at or after it and cover nothing.
  EXPECT_TRUE(cache.assign(5, 10));
  EXPECT_EQ(cache.entries(), (Entries{{0, 0}, {5, 10}}));
  // The latest epoch's start moves earlier, never later.
  EXPECT_TRUE(cache.assign(5, 7));
  EXPECT_EQ(cache.entries(), (Entries{{0, 0}, {5, 7}}));
  // Two epochs with no batch between them: the later one replaces it.
  EXPECT_TRUE(cache.assign(6, 7));
  EXPECT_EQ(cache.entries(), (Entries{{0, 0}, {6, 7}}));
}

TEST(LeaderEpochCache, EndOffsetForFollowsKip279) {
  const int64_t log_end = 50;
  LeaderEpochCache empty;
  EXPECT_TRUE(empty.end_offset_for(0, log_end).undefined());

  LeaderEpochCache cache(Entries{{2, 10}, {4, 20}, {7, 35}});
  // The latest epoch ends at the log end.
  EXPECT_EQ(cache.end_offset_for(7, log_end), (EpochEndOffset{7, 50}));
  // A known epoch ends where the next one starts.
  EXPECT_EQ(cache.end_offset_for(2, log_end), (EpochEndOffset{2, 20}));
  EXPECT_EQ(cache.end_offset_for(4, log_end), (EpochEndOffset{4, 35}));
  // An unknown epoch between two known ones: the largest known epoch below
  // it, ending where the next known one starts.
  EXPECT_EQ(cache.end_offset_for(3, log_end), (EpochEndOffset{2, 20}));
  EXPECT_EQ(cache.end_offset_for(6, log_end), (EpochEndOffset{4, 35}));
  // Before the first epoch: the requested epoch, ending where the log's
  // history now starts.
  EXPECT_EQ(cache.end_offset_for(1, log_end), (EpochEndOffset{1, 10}));
  EXPECT_EQ(cache.end_offset_for(0, log_end), (EpochEndOffset{0, 10}));
  // Above the latest epoch, or undefined: undefined.
  EXPECT_EQ(cache.end_offset_for(8, log_end), (EpochEndOffset{-1, -1}));
  EXPECT_EQ(cache.end_offset_for(-1, log_end), (EpochEndOffset{-1, -1}));
}

TEST(LeaderEpochCache, TruncateFromEndDropsEntriesAtOrPastTheNewEnd) {
  LeaderEpochCache cache(Entries{{0, 0}, {1, 10}, {2, 20}});
  EXPECT_FALSE(cache.truncate_from_end(25));
  EXPECT_FALSE(cache.truncate_from_end(-1));
  EXPECT_TRUE(cache.truncate_from_end(20));
  EXPECT_EQ(cache.entries(), (Entries{{0, 0}, {1, 10}}));
  EXPECT_TRUE(cache.truncate_from_end(5));
  EXPECT_EQ(cache.entries(), (Entries{{0, 0}}));
  EXPECT_TRUE(cache.truncate_from_end(0));
  EXPECT_TRUE(cache.empty());
}

TEST(LeaderEpochCache, TruncateFromStartKeepsTheEpochHoldingTheNewStart) {
  LeaderEpochCache cache(Entries{{0, 0}, {1, 10}, {2, 20}});
  EXPECT_FALSE(cache.truncate_from_start(0));
  EXPECT_TRUE(cache.truncate_from_start(15));
  EXPECT_EQ(cache.entries(), (Entries{{1, 15}, {2, 20}}));
  EXPECT_TRUE(cache.truncate_from_start(20));
  EXPECT_EQ(cache.entries(), (Entries{{2, 20}}));
  EXPECT_TRUE(cache.truncate_from_start(30));
  EXPECT_EQ(cache.entries(), (Entries{{2, 30}}));
  // A start before every entry changes nothing.
  LeaderEpochCache later(Entries{{3, 40}});
  EXPECT_FALSE(later.truncate_from_start(10));
  EXPECT_EQ(later.entries(), (Entries{{3, 40}}));
}

TEST(LeaderEpochCheckpoint, RoundTripsKafkasTextFormat) {
  Entries entries{{0, 0}, {3, 1200}};
  std::string text = encode_leader_epoch_checkpoint(entries);
  EXPECT_EQ(text, "0\n2\n0 0\n3 1200\n");
  auto decoded = decode_leader_epoch_checkpoint(text);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(*decoded, entries);
  EXPECT_EQ(*decode_leader_epoch_checkpoint("0\n0\n"), Entries{});
}

TEST(LeaderEpochCheckpoint, RejectsAnythingButAValidFile) {
  for (std::string_view bad : {
           "",                       // empty
           "1\n0\n",                 // unknown version
           "0\n2\n0 0\n",            // count says 2, 1 follows
           "0\n1\n0 0",              // torn: no final newline
           "0\n1\n0\n",              // no offset
           "0\n1\nx 0\n",            // not a number
           "0\n1\n0 0 7\n",          // extra field
           "0\n2\n3 10\n2 20\n",     // epochs go backwards
           "0\n2\n1 10\n2 10\n",     // start offsets do not increase
           "0\n1\n-1 0\n",           // negative epoch
       }) {
    auto decoded = decode_leader_epoch_checkpoint(bad);
    ASSERT_FALSE(decoded.ok()) << "accepted: '" << bad << "'";
    EXPECT_EQ(decoded.code(), Errc::corrupt);
  }
}

TEST(LeaderEpochCheckpoint, WritesAndReadsTheFileAtomically) {
  io::testing::TempDir dir;
  io::PosixFileSystem fs;
  const std::string path = dir.path() + "/leader-epoch-checkpoint";
  auto missing = read_leader_epoch_checkpoint(fs, path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), Errc::not_found);
  ASSERT_TRUE(write_leader_epoch_checkpoint(fs, path, {{0, 0}, {1, 7}}));
  ASSERT_TRUE(write_leader_epoch_checkpoint(fs, path, {{0, 0}, {1, 7}, {4, 9}}));
  auto read = read_leader_epoch_checkpoint(fs, path);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(*read, (Entries{{0, 0}, {1, 7}, {4, 9}}));
  EXPECT_FALSE(fs.exists(path + ".tmp"));
}

}  // namespace
}  // namespace holdfast::storage
