// Variable-length integers.
//
// Two families that must not be mixed up (kafka-protocol.md §2.2):
//  - zigzag varint/varlong: signed, used inside records (lengths, deltas);
//  - unsigned varint: used by the flexible protocol encoding (compact lengths,
//    tag numbers and sizes). No zigzag.
// Both are base-128, least significant group first, MSB = continuation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace holdfast {

constexpr size_t kMaxVarint32Bytes = 5;
constexpr size_t kMaxVarint64Bytes = 10;

inline uint32_t zigzag_encode32(int32_t v) { return (uint32_t(v) << 1) ^ uint32_t(v >> 31); }
inline uint64_t zigzag_encode64(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
inline int32_t zigzag_decode32(uint32_t v) { return int32_t((v >> 1) ^ (~(v & 1) + 1)); }
inline int64_t zigzag_decode64(uint64_t v) { return int64_t((v >> 1) ^ (~(v & 1) + 1)); }

// Writes an unsigned varint into out (room for kMaxVarint64Bytes); returns bytes written.
inline size_t put_uvarint(uint8_t* out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = uint8_t(v) | 0x80;
    v >>= 7;
  }
  out[n++] = uint8_t(v);
  return n;
}

inline size_t uvarint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Reads an unsigned varint of at most max_bytes from [p, end). On success
// returns the value and advances p; on truncation or overlong encoding returns
// nullopt and leaves p unspecified.
inline std::optional<uint64_t> get_uvarint(const uint8_t*& p, const uint8_t* end,
                                           size_t max_bytes) {
  uint64_t result = 0;
  for (size_t i = 0; i < max_bytes; ++i) {
    if (p >= end) return std::nullopt;
    uint8_t b = *p++;
    result |= uint64_t(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (max_bytes == kMaxVarint32Bytes && result > UINT32_MAX) return std::nullopt;
      return result;
    }
  }
  return std::nullopt;
}

inline std::optional<int32_t> get_varint32(const uint8_t*& p, const uint8_t* end) {
  auto v = get_uvarint(p, end, kMaxVarint32Bytes);
  if (!v) return std::nullopt;
  return zigzag_decode32(uint32_t(*v));
}

inline std::optional<int64_t> get_varint64(const uint8_t*& p, const uint8_t* end) {
  auto v = get_uvarint(p, end, kMaxVarint64Bytes);
  if (!v) return std::nullopt;
  return zigzag_decode64(*v);
}

inline size_t put_varint32(uint8_t* out, int32_t v) { return put_uvarint(out, zigzag_encode32(v)); }
inline size_t put_varint64(uint8_t* out, int64_t v) { return put_uvarint(out, zigzag_encode64(v)); }

}  // namespace holdfast
