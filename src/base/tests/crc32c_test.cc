#include "base/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace holdfast {
namespace {

uint32_t crc_of(const std::string& s) {
  return crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(Crc32c, KnownVectors) {
  // RFC 3720 B.4 and the common check value.
  EXPECT_EQ(crc_of("123456789"), 0xE3069283u);
  EXPECT_EQ(crc_of(""), 0u);
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  std::vector<uint8_t> ones(32, 0xff);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
}

TEST(Crc32c, HardwareAndPortableAgreeOnRandomInput) {
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<uint8_t> data(rng() % 3000);
    for (auto& b : data) b = uint8_t(rng());
    uint32_t seed = rng();
    EXPECT_EQ(crc32c_extend(seed, data.data(), data.size()),
              crc32c_extend_portable(seed, data.data(), data.size()));
  }
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string s = "the quick brown fox jumps over the lazy dog";
  auto* p = reinterpret_cast<const uint8_t*>(s.data());
  uint32_t whole = crc32c(p, s.size());
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(crc32c_extend(crc32c(p, cut), p + cut, s.size() - cut), whole);
  }
}

}  // namespace
}  // namespace holdfast
