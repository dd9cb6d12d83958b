// Primitive readers and writers: encodings, bounds checks and error codes.
#include "protocol/wire.h"

#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace holdfast::protocol {
namespace {

Reader reader_of(std::vector<uint8_t> bytes) { return Reader(Bytes(std::move(bytes))); }

TEST(Wire, FixedWidthIntegersAreBigEndian) {
  Writer w;
  w.put_int8(-2);
  w.put_int16(0x0102);
  w.put_int32(-3);
  w.put_int64(0x0102030405060708LL);
  w.put_uint32(0xfffffffeu);
  w.put_float64(1.5);
  w.put_bool(true);
  std::vector<uint8_t> expected = {0xfe, 0x01, 0x02, 0xff, 0xff, 0xff, 0xfd, 1, 2, 3, 4, 5, 6, 7, 8,
                                   0xff, 0xff, 0xff, 0xfe, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01};
  EXPECT_EQ(w.buffer(), expected);
  Reader r = reader_of(w.release());
  EXPECT_EQ(*r.read_int8(), -2);
  EXPECT_EQ(*r.read_int16(), 0x0102);
  EXPECT_EQ(*r.read_int32(), -3);
  EXPECT_EQ(*r.read_int64(), 0x0102030405060708LL);
  EXPECT_EQ(*r.read_uint32(), 0xfffffffeu);
  EXPECT_EQ(*r.read_float64(), 1.5);
  EXPECT_EQ(*r.read_bool(), true);
  EXPECT_TRUE(r.at_end());
  auto past_end = r.read_int8();
  ASSERT_FALSE(past_end.ok());
  EXPECT_EQ(past_end.code(), Errc::truncated);
}

TEST(Wire, UnsignedVarintRoundTripAndErrors) {
  for (uint32_t v : {0u, 1u, 127u, 128u, 300u, 16383u, 16384u, 0xffffffffu}) {
    Writer w;
    w.put_uvarint(v);
    Reader r = reader_of(w.release());
    auto got = r.read_uvarint();
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, v);
    EXPECT_TRUE(r.at_end());
  }
  EXPECT_EQ(reader_of({0x80, 0x80}).read_uvarint().code(), Errc::truncated);
  // Six bytes, or a value above 32 bits: not a valid unsigned varint here.
  EXPECT_EQ(reader_of({0x80, 0x80, 0x80, 0x80, 0x80, 0x01}).read_uvarint().code(), Errc::invalid_value);
  EXPECT_EQ(reader_of({0xff, 0xff, 0xff, 0xff, 0x7f}).read_uvarint().code(), Errc::invalid_value);
}

TEST(Wire, ZigzagVarints) {
  Writer w;
  w.put_varint(-1);
  w.put_varint(std::numeric_limits<int32_t>::min());
  w.put_varlong(-300);
  w.put_varlong(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(w.buffer()[0], 0x01);  // zigzag(-1) = 1
  Reader r = reader_of(w.release());
  EXPECT_EQ(*r.read_varint(), -1);
  EXPECT_EQ(*r.read_varint(), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(*r.read_varlong(), -300);
  EXPECT_EQ(*r.read_varlong(), std::numeric_limits<int64_t>::max());
}

TEST(Wire, ClassicAndCompactStrings) {
  Writer w;
  w.put_string("abc");
  w.put_nullable_string(std::nullopt);
  w.put_string("abc", /*compact=*/true);
  w.put_nullable_string(std::nullopt, /*compact=*/true);
  std::vector<uint8_t> expected = {0, 3, 'a', 'b', 'c', 0xff, 0xff, 4, 'a', 'b', 'c', 0};
  EXPECT_EQ(w.buffer(), expected);
  Reader r = reader_of(w.release());
  EXPECT_EQ(*r.read_string(), "abc");
  EXPECT_EQ(*r.read_nullable_string(), std::nullopt);
  EXPECT_EQ(*r.read_string(true), "abc");
  auto null_compact = r.read_string(true);  // null where not nullable
  ASSERT_FALSE(null_compact.ok());
  EXPECT_EQ(null_compact.code(), Errc::invalid_value);
}

TEST(Wire, StringLengthIsCheckedBeforeAllocating) {
  EXPECT_EQ(reader_of({0x7f, 0xff, 'a'}).read_string().code(), Errc::truncated);
  EXPECT_EQ(reader_of({0xff, 0xfe}).read_nullable_string().code(), Errc::invalid_length);  // -2
  EXPECT_EQ(reader_of({0xff, 0xff, 0xff, 0xff, 0x0f}).read_string(true).code(), Errc::invalid_length);
}

// An error message that echoes a long client-supplied name must not overflow
// the int16 length (which would corrupt everything after it in the frame).
TEST(Wire, OverlongStringsAreTruncatedToTheWireLimit) {
  for (bool compact : {false, true}) {
    const std::string long_text(40000, 'n');
    Writer w;
    w.put_string(long_text, compact);
    w.put_int32(0x01020304);  // whatever follows must still be where a reader expects it
    w.put_nullable_string(std::optional<std::string>(long_text), compact);
    Reader r = reader_of(w.release());
    auto s = r.read_string(compact);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->size(), kMaxWireStringBytes);
    EXPECT_EQ(*s, long_text.substr(0, kMaxWireStringBytes));
    EXPECT_EQ(*r.read_int32(), 0x01020304);
    auto n = r.read_nullable_string(compact);
    ASSERT_TRUE(n.ok()) << n.error().message;
    EXPECT_EQ((*n)->size(), kMaxWireStringBytes);
    EXPECT_TRUE(r.at_end());
  }
}

TEST(Wire, TruncationKeepsWholeUtf8Characters) {
  // 32766 ASCII bytes then "é" (2 bytes) would end one byte past the limit:
  // the character is dropped whole, not split.
  std::string s(kMaxWireStringBytes - 1, 'a');
  s += "\xc3\xa9" "tail";
  EXPECT_EQ(clamp_wire_string(s).size(), kMaxWireStringBytes - 1);
  // A 3-byte character ("€") straddling the limit by one byte.
  std::string t(kMaxWireStringBytes - 2, 'a');
  t += "\xe2\x82\xac";
  EXPECT_EQ(clamp_wire_string(t).size(), kMaxWireStringBytes - 2);
  // Exactly at the limit nothing changes; a character ending at it is kept.
  std::string u(kMaxWireStringBytes - 2, 'a');
  u += "\xc3\xa9";
  EXPECT_EQ(clamp_wire_string(u), u);
}

TEST(Wire, BytesAreZeroCopySlices) {
  std::vector<uint8_t> frame = {0, 0, 0, 3, 'x', 'y', 'z', 4, 'p', 'q', 'r'};
  Bytes input(frame);
  Reader r(input);
  auto b = r.read_bytes();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->view(), "xyz");
  EXPECT_EQ(b->data(), input.data() + 4);  // points into the frame
  auto c = r.read_nullable_bytes(true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->view(), "pqr");
  EXPECT_EQ(reader_of({0x7f, 0xff, 0xff, 0xff, 1}).read_bytes().code(), Errc::truncated);
  EXPECT_EQ(reader_of({0xff, 0xff, 0xff, 0xfe}).read_nullable_bytes().code(), Errc::invalid_length);
  EXPECT_EQ(*reader_of({0xff, 0xff, 0xff, 0xff}).read_nullable_bytes(), std::nullopt);
}

TEST(Wire, ArrayCountMustFitInRemainingBytes) {
  EXPECT_EQ(*reader_of({0xff, 0xff, 0xff, 0xff}).read_array_length(), -1);
  EXPECT_EQ(*reader_of({0}).read_array_length(true), -1);
  EXPECT_EQ(*reader_of({0, 0, 0, 2, 1, 2}).read_array_length(), 2);
  // Two elements of at least 4 bytes each cannot fit in 2 bytes.
  EXPECT_EQ(reader_of({0, 0, 0, 2, 1, 2}).read_array_length(false, 4).code(), Errc::invalid_length);
  EXPECT_EQ(reader_of({0x7f, 0xff, 0xff, 0xff}).read_array_length().code(), Errc::invalid_length);
  EXPECT_EQ(reader_of({0xff, 0xff, 0xff, 0xfe}).read_array_length().code(), Errc::invalid_length);
  EXPECT_EQ(reader_of({0xff, 0xff, 0xff, 0xff, 0x0f}).read_array_length(true).code(), Errc::invalid_length);
}

TEST(Wire, TaggedFieldsAreSkipped) {
  Writer w;
  w.put_uvarint(2);
  w.put_tagged_field(0, std::vector<uint8_t>{1, 2});
  w.put_tagged_field(900, std::vector<uint8_t>{3});
  w.put_int8(42);
  Reader r = reader_of(w.release());
  ASSERT_TRUE(r.skip_tagged_fields().ok());
  EXPECT_EQ(*r.read_int8(), 42);
  // A tagged field whose size runs past the end.
  EXPECT_EQ(reader_of({1, 0, 5, 1}).skip_tagged_fields().code(), Errc::truncated);
  // A count that cannot be satisfied.
  EXPECT_EQ(reader_of({0xff, 0xff, 0xff, 0xff, 0x0f}).skip_tagged_fields().code(), Errc::truncated);
}

TEST(Wire, PatchInt32ForFrameSizes) {
  Writer w;
  w.put_int32(0);
  w.put_int16(7);
  w.patch_int32(0, int32_t(w.size() - 4));
  std::vector<uint8_t> expected = {0, 0, 0, 2, 0, 7};
  EXPECT_EQ(w.buffer(), expected);
}

TEST(Wire, UuidRoundTrip) {
  Uuid u{};
  for (size_t i = 0; i < u.size(); ++i) u[i] = uint8_t(i * 17);
  Writer w;
  w.put_uuid(u);
  Reader r = reader_of(w.release());
  EXPECT_EQ(*r.read_uuid(), u);
  EXPECT_EQ(reader_of({1, 2, 3}).read_uuid().code(), Errc::truncated);
}

}  // namespace
}  // namespace holdfast::protocol
