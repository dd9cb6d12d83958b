#include "protocol/wire.h"

#include <bit>
#include <cstring>
#include <string>

#include "base/varint.h"

namespace holdfast::protocol {

const char* errc_name(Errc e) {
  switch (e) {
    case Errc::truncated: return "truncated";
    case Errc::invalid_length: return "invalid_length";
    case Errc::invalid_value: return "invalid_value";
    case Errc::unsupported_version: return "unsupported_version";
  }
  return "unknown";
}

namespace {

Error<Errc> bad_length(int64_t len, size_t remaining) {
  return make_error(Errc::invalid_length, "invalid_length (length " + std::to_string(len) +
                                              ", " + std::to_string(remaining) + " bytes remain)");
}

}  // namespace

Error<Errc> Reader::truncated(size_t need) const {
  return make_error(Errc::truncated, "truncated (need " + std::to_string(need) + " bytes, " +
                                         std::to_string(remaining()) + " remain)");
}

WireResult<int8_t> Reader::read_int8() {
  if (remaining() < 1) return truncated(1);
  return int8_t(buf_[pos_++]);
}

WireResult<int16_t> Reader::read_int16() {
  if (remaining() < 2) return truncated(2);
  auto v = int16_t(load_be16(buf_.data() + pos_));
  pos_ += 2;
  return v;
}

WireResult<int32_t> Reader::read_int32() {
  if (remaining() < 4) return truncated(4);
  auto v = int32_t(load_be32(buf_.data() + pos_));
  pos_ += 4;
  return v;
}

WireResult<int64_t> Reader::read_int64() {
  if (remaining() < 8) return truncated(8);
  auto v = int64_t(load_be64(buf_.data() + pos_));
  pos_ += 8;
  return v;
}

WireResult<uint16_t> Reader::read_uint16() {
  if (remaining() < 2) return truncated(2);
  auto v = load_be16(buf_.data() + pos_);
  pos_ += 2;
  return v;
}

WireResult<uint32_t> Reader::read_uint32() {
  if (remaining() < 4) return truncated(4);
  auto v = load_be32(buf_.data() + pos_);
  pos_ += 4;
  return v;
}

WireResult<double> Reader::read_float64() {
  if (remaining() < 8) return truncated(8);
  auto v = std::bit_cast<double>(load_be64(buf_.data() + pos_));
  pos_ += 8;
  return v;
}

WireResult<bool> Reader::read_bool() {
  if (remaining() < 1) return truncated(1);
  return buf_[pos_++] != 0;
}

WireResult<Uuid> Reader::read_uuid() {
  if (remaining() < 16) return truncated(16);
  Uuid u;
  std::memcpy(u.data(), buf_.data() + pos_, 16);
  pos_ += 16;
  return u;
}

WireResult<uint32_t> Reader::read_uvarint() {
  const uint8_t* p = buf_.data() + pos_;
  const uint8_t* end = buf_.data() + buf_.size();
  const uint8_t* start = p;
  auto v = get_uvarint(p, end, kMaxVarint32Bytes);
  if (!v) {
    // Distinguish running out of input from an overlong encoding.
    size_t avail = size_t(end - start);
    bool ended = true;
    for (size_t i = 0; i < avail && i < kMaxVarint32Bytes; ++i) {
      if ((start[i] & 0x80) == 0) ended = false;
    }
    if (ended && avail < kMaxVarint32Bytes) return truncated(avail + 1);
    return make_error(Errc::invalid_value, "invalid_value (malformed unsigned varint)");
  }
  pos_ += size_t(p - start);
  return uint32_t(*v);
}

WireResult<int32_t> Reader::read_varint() {
  const uint8_t* p = buf_.data() + pos_;
  const uint8_t* start = p;
  auto v = get_varint32(p, buf_.data() + buf_.size());
  if (!v) return make_error(Errc::invalid_value, "invalid_value (malformed or truncated varint)");
  pos_ += size_t(p - start);
  return *v;
}

WireResult<int64_t> Reader::read_varlong() {
  const uint8_t* p = buf_.data() + pos_;
  const uint8_t* start = p;
  auto v = get_varint64(p, buf_.data() + buf_.size());
  if (!v) return make_error(Errc::invalid_value, "invalid_value (malformed or truncated varlong)");
  pos_ += size_t(p - start);
  return *v;
}

namespace {

// Reads a length prefix and normalises it to: -1 = null, otherwise >= 0.
// Anything else (negative non -1, compact values above INT32_MAX) is an error.
template <typename R>
WireResult<int64_t> read_length_prefix(R& r, bool compact, bool int16_len) {
  if (compact) {
    auto v = r.read_uvarint();
    if (!v) return v.error();
    return int64_t(*v) - 1;
  }
  if (int16_len) {
    auto v = r.read_int16();
    if (!v) return v.error();
    return int64_t(*v);
  }
  auto v = r.read_int32();
  if (!v) return v.error();
  return int64_t(*v);
}

}  // namespace

WireResult<std::optional<std::string>> Reader::read_nullable_string(bool compact) {
  auto len = read_length_prefix(*this, compact, /*int16_len=*/true);
  if (!len) return len.error();
  if (*len == -1) return std::optional<std::string>();
  if (*len < 0 || *len > INT16_MAX) return bad_length(*len, remaining());
  if (uint64_t(*len) > remaining()) return truncated(size_t(*len));
  std::string s(reinterpret_cast<const char*>(buf_.data() + pos_), size_t(*len));
  pos_ += size_t(*len);
  return std::optional<std::string>(std::move(s));
}

WireResult<std::string> Reader::read_string(bool compact) {
  auto s = read_nullable_string(compact);
  if (!s) return s.error();
  if (!s->has_value()) return make_error(Errc::invalid_value, "invalid_value (null string where not nullable)");
  return std::move(**s);
}

WireResult<std::optional<Bytes>> Reader::read_nullable_bytes(bool compact) {
  auto len = read_length_prefix(*this, compact, /*int16_len=*/false);
  if (!len) return len.error();
  if (*len == -1) return std::optional<Bytes>();
  if (*len < 0 || *len > INT32_MAX) return bad_length(*len, remaining());
  if (uint64_t(*len) > remaining()) return truncated(size_t(*len));
  Bytes b = buf_.slice(pos_, size_t(*len));
  pos_ += size_t(*len);
  return std::optional<Bytes>(std::move(b));
}

WireResult<Bytes> Reader::read_bytes(bool compact) {
  auto b = read_nullable_bytes(compact);
  if (!b) return b.error();
  if (!b->has_value()) return make_error(Errc::invalid_value, "invalid_value (null bytes where not nullable)");
  return std::move(**b);
}

WireResult<int32_t> Reader::read_array_length(bool compact, size_t min_element_size) {
  auto len = read_length_prefix(*this, compact, /*int16_len=*/false);
  if (!len) return len.error();
  if (*len == -1) return int32_t(-1);
  if (min_element_size == 0) min_element_size = 1;
  if (*len < 0 || *len > INT32_MAX || uint64_t(*len) > remaining() / min_element_size) {
    return bad_length(*len, remaining());
  }
  return int32_t(*len);
}

WireResult<Bytes> Reader::read_raw(size_t n) {
  if (n > remaining()) return truncated(n);
  Bytes b = buf_.slice(pos_, n);
  pos_ += n;
  return b;
}

WireResult<Reader> Reader::read_sub_reader(size_t n) {
  auto b = read_raw(n);
  if (!b) return b.error();
  return Reader(std::move(*b));
}

WireResult<Reader::TaggedField> Reader::read_tagged_field() {
  auto tag = read_uvarint();
  if (!tag) return tag.error();
  auto size = read_uvarint();
  if (!size) return size.error();
  auto data = read_raw(*size);  // checks the size against what remains
  if (!data) return data.error();
  return TaggedField{*tag, std::move(*data)};
}

WireResult<void> Reader::skip_tagged_fields() {
  auto count = read_uvarint();
  if (!count) return count.error();
  // Each entry takes at least two bytes (tag and size), so a huge count ends
  // in a truncation error after consuming the input, never in a long loop.
  for (uint32_t i = 0; i < *count; ++i) {
    auto f = read_tagged_field();
    if (!f) return f.error();
  }
  return {};
}

void Writer::put_int16(int16_t v) {
  uint8_t b[2];
  store_be16(b, uint16_t(v));
  buf_.insert(buf_.end(), b, b + 2);
}

void Writer::put_int32(int32_t v) {
  uint8_t b[4];
  store_be32(b, uint32_t(v));
  buf_.insert(buf_.end(), b, b + 4);
}

void Writer::put_int64(int64_t v) {
  uint8_t b[8];
  store_be64(b, uint64_t(v));
  buf_.insert(buf_.end(), b, b + 8);
}

void Writer::put_uint16(uint16_t v) {
  uint8_t b[2];
  store_be16(b, v);
  buf_.insert(buf_.end(), b, b + 2);
}

void Writer::put_uint32(uint32_t v) {
  uint8_t b[4];
  store_be32(b, v);
  buf_.insert(buf_.end(), b, b + 4);
}

void Writer::put_float64(double v) { put_int64(int64_t(std::bit_cast<uint64_t>(v))); }

void Writer::put_uvarint(uint32_t v) {
  uint8_t b[kMaxVarint64Bytes];
  size_t n = holdfast::put_uvarint(b, v);
  buf_.insert(buf_.end(), b, b + n);
}

void Writer::put_varint(int32_t v) {
  uint8_t b[kMaxVarint64Bytes];
  size_t n = put_varint32(b, v);
  buf_.insert(buf_.end(), b, b + n);
}

void Writer::put_varlong(int64_t v) {
  uint8_t b[kMaxVarint64Bytes];
  size_t n = put_varint64(b, v);
  buf_.insert(buf_.end(), b, b + n);
}

std::string_view clamp_wire_string(std::string_view s) {
  if (s.size() <= kMaxWireStringBytes) return s;
  // Cut before the character that straddles the limit: step back over UTF-8
  // continuation bytes (10xxxxxx) so that no character is split.
  size_t cut = kMaxWireStringBytes;
  while (cut > 0 && (uint8_t(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

void Writer::put_string(std::string_view s, bool compact) {
  s = clamp_wire_string(s);
  if (compact) {
    put_uvarint(uint32_t(s.size() + 1));
  } else {
    put_int16(int16_t(s.size()));
  }
  buf_.insert(buf_.end(), s.begin(), s.end());
}

void Writer::put_nullable_string(const std::optional<std::string>& s, bool compact) {
  if (!s) {
    if (compact) {
      put_uvarint(0);
    } else {
      put_int16(-1);
    }
    return;
  }
  put_string(*s, compact);
}

void Writer::put_bytes(std::span<const uint8_t> b, bool compact) {
  if (compact) {
    put_uvarint(uint32_t(b.size() + 1));
  } else {
    put_int32(int32_t(b.size()));
  }
  put_raw(b);
}

void Writer::put_nullable_bytes(const std::optional<Bytes>& b, bool compact) {
  if (!b) {
    if (compact) {
      put_uvarint(0);
    } else {
      put_int32(-1);
    }
    return;
  }
  put_bytes(b->span(), compact);
}

void Writer::put_array_length(int32_t n, bool compact) {
  if (compact) {
    put_uvarint(n < 0 ? 0 : uint32_t(n) + 1);
  } else {
    put_int32(n < 0 ? -1 : n);
  }
}

void Writer::put_tagged_field(uint32_t tag, std::span<const uint8_t> payload) {
  put_uvarint(tag);
  put_uvarint(uint32_t(payload.size()));
  put_raw(payload);
}

void Writer::patch_int32(size_t pos, int32_t v) { store_be32(buf_.data() + pos, uint32_t(v)); }

size_t decode_reserve_hint(int32_t count, size_t remaining, size_t element_size) {
  if (count <= 0) return 0;
  size_t bytes = remaining * kDecodeReservePerInputByte;
  if (bytes > kMaxDecodeReserveBytes) bytes = kMaxDecodeReserveBytes;
  const size_t cap = element_size > 0 && bytes / element_size > 0 ? bytes / element_size : 1;
  return size_t(count) < cap ? size_t(count) : cap;
}

Error<Errc> field_error(const Error<Errc>& inner, std::string_view field) {
  std::string m(field);
  m += ": ";
  m += inner.message.empty() ? errc_name(inner.code) : inner.message;
  return make_error(inner.code, std::move(m));
}

Error<Errc> wrap_error(const Error<Errc>& inner, std::string_view prefix) {
  std::string m(prefix);
  m += '.';
  m += inner.message;
  return make_error(inner.code, std::move(m));
}

Error<Errc> wrap_error(const Error<Errc>& inner, std::string_view array_field, size_t index) {
  std::string m(array_field);
  m += '[';
  m += std::to_string(index);
  m += "].";
  m += inner.message;
  return make_error(inner.code, std::move(m));
}

}  // namespace holdfast::protocol
