#include "base/varint.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

namespace holdfast {
namespace {

TEST(Varint, ZigzagRoundTrip) {
  for (int64_t v : {int64_t(0), int64_t(-1), int64_t(1), int64_t(-64), int64_t(63),
                    std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(zigzag_decode64(zigzag_encode64(v)), v);
  }
  for (int32_t v : {0, -1, 1, std::numeric_limits<int32_t>::min(),
                    std::numeric_limits<int32_t>::max()}) {
    EXPECT_EQ(zigzag_decode32(zigzag_encode32(v)), v);
  }
  EXPECT_EQ(zigzag_encode32(-1), 1u);
  EXPECT_EQ(zigzag_encode32(1), 2u);
}

TEST(Varint, SignedRoundTripAndSizes) {
  uint8_t buf[kMaxVarint64Bytes];
  for (int64_t v : {int64_t(0), int64_t(-1), int64_t(300), int64_t(-300),
                    std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    size_t n = put_varint64(buf, v);
    const uint8_t* p = buf;
    auto got = get_varint64(p, buf + n);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, v);
    EXPECT_EQ(p, buf + n);
  }
  EXPECT_EQ(put_varint64(buf, std::numeric_limits<int64_t>::min()), 10u);
}

TEST(Varint, TruncatedAndOverlongAreRejected) {
  uint8_t truncated[] = {0x80, 0x80};
  const uint8_t* p = truncated;
  EXPECT_FALSE(get_uvarint(p, truncated + 2, kMaxVarint64Bytes));
  uint8_t overlong[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  p = overlong;
  EXPECT_FALSE(get_varint32(p, overlong + sizeof(overlong)));
  uint8_t too_big[] = {0xff, 0xff, 0xff, 0xff, 0x1f};  // > UINT32_MAX
  p = too_big;
  EXPECT_FALSE(get_uvarint(p, too_big + sizeof(too_big), kMaxVarint32Bytes));
}

TEST(Varint, UnsignedKnownEncoding) {
  uint8_t buf[kMaxVarint64Bytes];
  EXPECT_EQ(put_uvarint(buf, 300), 2u);
  EXPECT_EQ(buf[0], 0xAC);
  EXPECT_EQ(buf[1], 0x02);
  EXPECT_EQ(uvarint_size(300), 2u);
  EXPECT_EQ(uvarint_size(127), 1u);
}

}  // namespace
}  // namespace holdfast
