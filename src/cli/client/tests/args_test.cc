#include "cli/client/args.h"

#include <gtest/gtest.h>

namespace holdfast::cli {
namespace {

using Kind = StartPosition::Kind;

TEST(ParseStartPosition, AcceptsNamedPositions) {
  EXPECT_EQ(parse_start_position("beginning").value(), (StartPosition{Kind::kBeginning, 0}));
  EXPECT_EQ(parse_start_position("end").value(), (StartPosition{Kind::kEnd, 0}));
}

TEST(ParseStartPosition, AcceptsTheWordsOfGroupSeek) {
  for (const char* word : {"beginning", "earliest", "start"}) {
    EXPECT_EQ(parse_start_position(word).value(), (StartPosition{Kind::kBeginning, 0})) << word;
  }
  EXPECT_EQ(parse_start_position("latest").value(), (StartPosition{Kind::kEnd, 0}));
}

TEST(ParseStartPosition, NegativeIsRelativeToTheEnd) {
  EXPECT_EQ(parse_start_position("-10").value(), (StartPosition{Kind::kFromEnd, 10}));
  EXPECT_EQ(parse_start_position("-1").value(), (StartPosition{Kind::kFromEnd, 1}));
}

TEST(ParseFormat, FieldsLiteralsAndEscapes) {
  using K = FormatPiece::Kind;
  auto pieces = parse_format("%t[%p]@%o %k=%s\\t%T %h %K/%S 100%%\\n").value();
  std::vector<FormatPiece> expected{
      {K::kTopic, ""}, {K::kLiteral, "["}, {K::kPartition, ""}, {K::kLiteral, "]@"},
      {K::kOffset, ""}, {K::kLiteral, " "}, {K::kKey, ""}, {K::kLiteral, "="},
      {K::kValue, ""}, {K::kLiteral, "\t"}, {K::kTimestamp, ""}, {K::kLiteral, " "},
      {K::kHeaders, ""}, {K::kLiteral, " "}, {K::kKeySize, ""}, {K::kLiteral, "/"},
      {K::kValueSize, ""}, {K::kLiteral, " 100%\n"}};
  EXPECT_EQ(pieces, expected);
  EXPECT_FALSE(parse_format("%x").ok());
  EXPECT_FALSE(parse_format("abc%").ok());
}

TEST(PrintFields, TabSeparatedWithTheValueLast) {
  EXPECT_EQ(print_fields_to_format("key,partition,offset").value(), "%k\t%p\t%o\t%s\n");
  EXPECT_EQ(print_fields_to_format("value,key").value(), "%s\t%k\n");
  EXPECT_FALSE(print_fields_to_format("key,colour").ok());
  EXPECT_FALSE(print_fields_to_format("").ok());
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
  for (const char* bad : {"", "begin", "END", "-0", "--1", "-x", "+3", "12x", "@", "@-5", "@abc", " 1", "1 ",
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

namespace holdfast::cli {
namespace {

TEST(ParseCommandConfig, KeyValueLinesCommentsAndBlanks) {
  auto parsed = parse_command_config(
      "# a Kafka tools properties file\n\n! also a comment\n"
      "security.protocol = SASL_PLAINTEXT\r\nsasl.mechanism=SCRAM-SHA-512\nclient.id=a=b\n");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(*parsed, (std::vector<std::string>{"security.protocol=SASL_PLAINTEXT",
                                               "sasl.mechanisms=SCRAM-SHA-512", "client.id=a=b"}));
}

TEST(ParseCommandConfig, JaasConfigBecomesUserNameAndPassword) {
  auto parsed = parse_command_config(
      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
      "username=\"admin\" password=\"s3 cr=t\";\n");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(*parsed,
            (std::vector<std::string>{"sasl.username=admin", "sasl.password=s3 cr=t"}));
}

TEST(ParseCommandConfig, KafkaSslPropertiesBecomeLibrdkafkaOnes) {
  auto pem = parse_command_config(
      "security.protocol=SSL\nssl.truststore.location=/ca.pem\nssl.truststore.type=PEM\n"
      "ssl.truststore.password=ignored\nssl.keystore.type=PEM\n"
      "ssl.keystore.location=/me.pem\nssl.key.password=k\n"
      "ssl.endpoint.identification.algorithm=\nssl.ca.location=/direct.pem\n");
  ASSERT_TRUE(pem) << pem.error().message;
  EXPECT_EQ(*pem, (std::vector<std::string>{
                      "security.protocol=SSL", "ssl.ca.location=/ca.pem",
                      "ssl.certificate.location=/me.pem", "ssl.key.location=/me.pem",
                      "ssl.key.password=k", "ssl.endpoint.identification.algorithm=none",
                      "ssl.ca.location=/direct.pem"}));
  auto pkcs12 = parse_command_config(
      "ssl.keystore.type=PKCS12\nssl.keystore.location=/me.p12\nssl.keystore.password=s\n");
  ASSERT_TRUE(pkcs12) << pkcs12.error().message;
  EXPECT_EQ(*pkcs12, (std::vector<std::string>{"ssl.keystore.location=/me.p12",
                                               "ssl.keystore.password=s"}));
  auto jks = parse_command_config("ssl.truststore.location=/t.jks\nssl.truststore.type=JKS\n");
  ASSERT_FALSE(jks);
  EXPECT_NE(jks.error().message.find("line 1"), std::string::npos);
  EXPECT_NE(jks.error().message.find("PEM"), std::string::npos);
}

TEST(ParseCommandConfig, BadLinesNameTheirNumber) {
  auto no_equals = parse_command_config("security.protocol=SASL_PLAINTEXT\njust words\n");
  ASSERT_FALSE(no_equals);
  EXPECT_NE(no_equals.error().message.find("line 2"), std::string::npos);
  auto no_password = parse_command_config(
      "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
      "username=\"admin\";\n");
  ASSERT_FALSE(no_password);
  EXPECT_NE(no_password.error().message.find("password"), std::string::npos);
}

}  // namespace
}  // namespace holdfast::cli
