#include "cli/client/args.h"

#include <gtest/gtest.h>

namespace holdfast::cli {
namespace {

using Kind = StartPosition::Kind;

TEST(ParseStartPosition, AcceptsNamedPositions) {
  EXPECT_EQ(parse_start_position("beginning").value(), (StartPosition{Kind::kBeginning, 0}));
  EXPECT_EQ(parse_start_position("end").value(), (StartPosition{Kind::kEnd, 0}));
}

TEST(ParseStartPosition, AcceptsOffsets) {
  EXPECT_EQ(parse_start_position("0").value(), (StartPosition{Kind::kOffset, 0}));
  EXPECT_EQ(parse_start_position("1234567890123").value(),
            (StartPosition{Kind::kOffset, 1234567890123}));
}

TEST(ParseStartPosition, AcceptsTimestamps) {
  EXPECT_EQ(parse_start_position("@1700000000000").value(),
            (StartPosition{Kind::kTimestamp, 1700000000000}));
  EXPECT_EQ(parse_start_position("@0").value(), (StartPosition{Kind::kTimestamp, 0}));
}

TEST(ParseStartPosition, RejectsEverythingElse) {
  for (const char* bad : {"", "begin", "END", "-1", "+3", "12x", "@", "@-5", "@abc", " 1", "1 ",
                          "99999999999999999999"}) {
    auto result = parse_start_position(bad);
    EXPECT_FALSE(result.ok()) << "accepted '" << bad << "'";
    if (!result.ok()) {
      EXPECT_NE(result.error().message.find("--from"), std::string::npos);
    }
  }
}

TEST(SplitKeyValue, SplitsAtTheFirstSeparator) {
  EXPECT_EQ(split_key_value("k:v", ":"), (KeyAndValue{"k", "v"}));
  EXPECT_EQ(split_key_value("k:v:w", ":"), (KeyAndValue{"k", "v:w"}));
  EXPECT_EQ(split_key_value("key::value", "::"), (KeyAndValue{"key", "value"}));
}

TEST(SplitKeyValue, EmptyPartsStayEmptyNotNull) {
  EXPECT_EQ(split_key_value(":v", ":"), (KeyAndValue{"", "v"}));
  EXPECT_EQ(split_key_value("k:", ":"), (KeyAndValue{"k", ""}));
}

TEST(SplitKeyValue, WithoutTheSeparatorTheKeyIsNull) {
  EXPECT_EQ(split_key_value("just a value", ":"), (KeyAndValue{std::nullopt, "just a value"}));
  EXPECT_EQ(split_key_value("a:b", ""), (KeyAndValue{std::nullopt, "a:b"}));
  EXPECT_EQ(split_key_value("", ":"), (KeyAndValue{std::nullopt, ""}));
}

TEST(ParseAssignment, SplitsAtTheFirstEquals) {
  auto kv = parse_assignment("retention.ms=1000");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "retention.ms");
  EXPECT_EQ(kv->second, "1000");
  auto nested = parse_assignment("a=b=c");
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(nested->first, "a");
  EXPECT_EQ(nested->second, "b=c");
  auto empty_value = parse_assignment("trace-id=");
  ASSERT_TRUE(empty_value.ok());
  EXPECT_EQ(empty_value->second, "");
}

TEST(ParseAssignment, RejectsMissingKeyOrEquals) {
  EXPECT_FALSE(parse_assignment("novalue").ok());
  EXPECT_FALSE(parse_assignment("=value").ok());
  EXPECT_FALSE(parse_assignment("").ok());
}

TEST(ParseAcks, MapsToLibrdkafkaValues) {
  EXPECT_EQ(parse_acks("0").value(), "0");
  EXPECT_EQ(parse_acks("1").value(), "1");
  EXPECT_EQ(parse_acks("all").value(), "all");
  EXPECT_EQ(parse_acks("-1").value(), "all");
  EXPECT_FALSE(parse_acks("2").ok());
  EXPECT_FALSE(parse_acks("ALL").ok());
}

TEST(ParseCompression, AcceptsKnownCodecsOnly) {
  for (const char* codec : {"none", "gzip", "snappy", "lz4", "zstd"}) {
    EXPECT_EQ(parse_compression(codec).value(), codec);
  }
  EXPECT_FALSE(parse_compression("brotli").ok());
  EXPECT_FALSE(parse_compression("").ok());
}

TEST(ParseInteger, ChecksRangeAndTrailingCharacters) {
  EXPECT_EQ(parse_integer("42", 0, 100).value(), 42);
  EXPECT_FALSE(parse_integer("101", 0, 100).ok());
  EXPECT_FALSE(parse_integer("-1", 0, 100).ok());
  EXPECT_FALSE(parse_integer("4 2", 0, 100).ok());
  EXPECT_FALSE(parse_integer("", 0, 100).ok());
}

}  // namespace
}  // namespace holdfast::cli
