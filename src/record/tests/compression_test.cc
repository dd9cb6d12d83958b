#include "record/compression.h"

#include <gtest/gtest.h>
#include <snappy.h>

#include <random>

namespace holdfast::record {
namespace {

const Compression kCodecs[] = {Compression::gzip, Compression::snappy, Compression::lz4,
                               Compression::zstd};

std::vector<uint8_t> sample(size_t n, uint32_t seed, bool compressible) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = compressible ? uint8_t("abcdefgh"[rng() % 8]) : uint8_t(rng());
  return out;
}

class CodecTest : public ::testing::TestWithParam<Compression> {};

TEST_P(CodecTest, RoundTripsSmallLargeAndEmpty) {
  for (size_t n : {size_t(0), size_t(1), size_t(100), size_t(70000), size_t(1 << 20)}) {
    for (bool compressible : {true, false}) {
      auto input = sample(n, uint32_t(n), compressible);
      auto packed = compress(GetParam(), input);
      ASSERT_TRUE(packed.ok());
      auto unpacked = decompress(GetParam(), *packed, 2 << 20);
      ASSERT_TRUE(unpacked.ok()) << n << ": " << unpacked.error().message;
      EXPECT_EQ(*unpacked, input) << n;
    }
  }
}

TEST_P(CodecTest, OutputBeyondTheBoundIsAnErrorNotAnAllocation) {
  std::vector<uint8_t> zeros(8 << 20, 0);
  auto packed = compress(GetParam(), zeros);
  ASSERT_TRUE(packed.ok());
  auto unpacked = decompress(GetParam(), *packed, 1 << 20);
  ASSERT_FALSE(unpacked.ok());
  EXPECT_EQ(unpacked.code(), Errc::message_too_large);
  EXPECT_NE(unpacked.error().message.find("bound"), std::string::npos);
}

TEST_P(CodecTest, DamagedInputIsCorruptNeverACrash) {
  auto input = sample(50000, 7, true);
  auto packed = compress(GetParam(), input);
  ASSERT_TRUE(packed.ok());
  // Every truncation point of the first few hundred bytes and the tail.
  for (size_t cut = 0; cut < packed->size();
       cut += (cut < 300 || cut > packed->size() - 300) ? 1 : 97) {
    std::span<const uint8_t> prefix(packed->data(), cut);
    auto r = decompress(GetParam(), prefix, 1 << 20);
    if (r.ok()) {
      EXPECT_LE(r->size(), input.size());  // some prefixes are valid streams
    }
  }
  std::mt19937 rng(1);
  for (int i = 0; i < 300; ++i) {
    auto damaged = *packed;
    damaged[rng() % damaged.size()] ^= uint8_t(1 << (rng() % 8));
    auto r = decompress(GetParam(), damaged, 1 << 20);
    if (r.ok()) {
      EXPECT_LE(r->size(), size_t(1 << 20));
    }
  }
  auto garbage = sample(1000, 3, false);
  auto r = decompress(GetParam(), garbage, 1 << 20);
  if (!r.ok()) {
    EXPECT_EQ(r.code(), Errc::corrupt_message);
  }
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CodecTest, ::testing::ValuesIn(kCodecs),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(Snappy, AcceptsRawSnappyAsLibrdkafkaSendsIt) {
  auto input = sample(100000, 5, true);
  std::string raw;
  snappy::Compress(reinterpret_cast<const char*>(input.data()), input.size(), &raw);
  std::span<const uint8_t> packed(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  auto unpacked = decompress(Compression::snappy, packed, 1 << 20);
  ASSERT_TRUE(unpacked.ok()) << unpacked.error().message;
  EXPECT_EQ(*unpacked, input);
}

TEST(Snappy, WritesXerialFramingAsTheJavaClientDoes) {
  auto input = sample(100000, 5, true);
  auto packed = compress(Compression::snappy, input);
  ASSERT_TRUE(packed.ok());
  const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
  ASSERT_GE(packed->size(), 16u);
  EXPECT_TRUE(std::equal(magic, magic + 8, packed->begin()));
  // 100000 bytes in 32 KiB blocks: four blocks, each with its own length.
  size_t pos = 16, blocks = 0;
  while (pos < packed->size()) {
    uint32_t n = uint32_t((*packed)[pos]) << 24 | uint32_t((*packed)[pos + 1]) << 16 |
                 uint32_t((*packed)[pos + 2]) << 8 | (*packed)[pos + 3];
    pos += 4 + n;
    ++blocks;
  }
  EXPECT_EQ(pos, packed->size());
  EXPECT_EQ(blocks, 4u);
}

TEST(Snappy, LyingLengthPreambleIsBoundedBeforeAllocating) {
  // A raw snappy block whose preamble claims 4 GiB.
  std::vector<uint8_t> lie = {0x80, 0x80, 0x80, 0x80, 0x0f, 0x00};
  auto r = decompress(Compression::snappy, lie, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::message_too_large);
}

TEST(Compression, UnknownCodecIsUnsupported) {
  std::vector<uint8_t> data = {1, 2, 3};
  auto r = decompress(Compression(6), data, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::unsupported_compression);
}

}  // namespace
}  // namespace holdfast::record
