#include "storage/checkpoint.h"

#include <gtest/gtest.h>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "storage/format.h"

namespace holdfast::storage {
namespace {

TEST(Checkpoint, KafkaTextFormatRoundTrips) {
  CheckpointEntries entries{{{"orders", 0}, 1200}, {{"my-topic.v2", 11}, 7}};
  std::string text = encode_checkpoint(entries);
  EXPECT_EQ(text, "0\n2\nmy-topic.v2 11 7\norders 0 1200\n");
  auto decoded = decode_checkpoint(text);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, entries);
  EXPECT_TRUE(decode_checkpoint("0\n0\n").ok());
}

TEST(Checkpoint, DamagedTextIsCorrupt) {
  for (const char* bad : {"", "1\n0\n", "0\n2\nt 0 1\n", "0\n1\nt 0 1", "0\n1\nt x 1\n",
                          "0\n1\nt 0\n", "0\n1\n 0 1\n"}) {
    auto r = decode_checkpoint(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.code(), Errc::corrupt);
    }
  }
}

TEST(Checkpoint, WriteAndReadThroughTheFileSystem) {
  io::testing::TempDir dir;
  io::PosixFileSystem fs;
  std::string path = dir / "recovery-point-offset-checkpoint";
  EXPECT_EQ(read_checkpoint(fs, path).code(), Errc::not_found);
  CheckpointEntries entries{{{"t", 0}, 5}};
  ASSERT_TRUE(write_checkpoint(fs, path, entries).ok());
  entries[{"t", 1}] = 9;
  ASSERT_TRUE(write_checkpoint(fs, path, entries).ok());
  auto back = read_checkpoint(fs, path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, entries);
}

TEST(Format, NamesRoundTrip) {
  EXPECT_EQ(format::segment_file_name(42, format::kLogSuffix), "00000000000000000042.log");
  EXPECT_EQ(format::parse_segment_file_name("00000000000000000042.log", format::kLogSuffix), 42);
  EXPECT_EQ(format::parse_segment_file_name("0000000000000000042.log", format::kLogSuffix),
            std::nullopt);
  EXPECT_EQ(format::parse_segment_file_name("00000000000000000042.index", format::kLogSuffix),
            std::nullopt);
  auto tp = format::parse_partition_dir_name("my-topic-12");
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->first, "my-topic");
  EXPECT_EQ(tp->second, 12);
  EXPECT_FALSE(format::parse_partition_dir_name("nodash").has_value());
  EXPECT_FALSE(format::parse_partition_dir_name("t-x").has_value());
  EXPECT_FALSE(format::is_valid_topic_name("a b"));
  EXPECT_FALSE(format::is_valid_topic_name(".."));
}

}  // namespace
}  // namespace holdfast::storage
