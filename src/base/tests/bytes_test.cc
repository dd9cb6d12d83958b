#include "base/bytes.h"

#include <gtest/gtest.h>

namespace holdfast {
namespace {

TEST(Bytes, SliceSharesOwnerAndOutlivesParent) {
  Bytes inner;
  {
    Bytes whole = Bytes::copy_of(std::string_view("hello world"));
    inner = whole.slice(6, 5);
  }
  EXPECT_EQ(inner.view(), "world");
  EXPECT_EQ(inner.slice(1).view(), "orld");
}

TEST(Bytes, BigEndianHelpers) {
  uint8_t buf[8];
  store_be32(buf, 0x01020304);
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(load_be32(buf), 0x01020304u);
  store_be64(buf, 0x0102030405060708ull);
  EXPECT_EQ(load_be64(buf), 0x0102030405060708ull);
  store_be16(buf, 0xBEEF);
  EXPECT_EQ(load_be16(buf), 0xBEEFu);
}

}  // namespace
}  // namespace holdfast
