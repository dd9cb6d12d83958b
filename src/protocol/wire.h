// Kafka wire primitives: a bounds-checked Reader over a received frame and a
// Writer that appends to a growable buffer (kafka-protocol.md §1.3–1.4).
//
// Contract of every Reader method: it either returns the value and advances
// the cursor past it, or returns an error and leaves the cursor unspecified
// (callers abandon the frame on the first error). Every length taken from the
// wire is checked against the bytes that remain *before* anything is
// allocated or sliced, so a hostile frame can never make us allocate more
// than a small multiple of its own size (the CVE-2022-34917 class of bug).
// `bytes` and `records` values come back as zero-copy slices of the input.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace holdfast::protocol {

enum class Errc {
  truncated,            // the frame ends before the value does (incl. a length past the end)
  invalid_length,       // a negative length other than -1, or a count that cannot fit
  invalid_value,        // a value that is malformed (overlong varint, null where not allowed)
  unsupported_version,  // an api version outside the range a schema covers
};

const char* errc_name(Errc e);

using Uuid = std::array<uint8_t, 16>;

template <typename T>
using WireResult = Result<T, Errc>;

class Reader {
 public:
  Reader() = default;
  explicit Reader(Bytes buf) : buf_(std::move(buf)) {}

  size_t remaining() const { return buf_.size() - pos_; }
  size_t position() const { return pos_; }
  bool at_end() const { return pos_ == buf_.size(); }
  // The unread part of the input (zero-copy).
  Bytes rest() const { return buf_.slice(pos_); }

  WireResult<int8_t> read_int8();
  WireResult<int16_t> read_int16();
  WireResult<int32_t> read_int32();
  WireResult<int64_t> read_int64();
  WireResult<uint16_t> read_uint16();
  WireResult<uint32_t> read_uint32();
  WireResult<double> read_float64();
  WireResult<bool> read_bool();  // any non-zero byte is true, as in Kafka
  WireResult<Uuid> read_uuid();

  // Unsigned varint of at most 5 bytes (flexible-encoding lengths and tags).
  WireResult<uint32_t> read_uvarint();
  // Zigzag varint / varlong (record fields).
  WireResult<int32_t> read_varint();
  WireResult<int64_t> read_varlong();

  // Strings. `compact` selects the flexible encoding (uvarint N+1) instead of
  // the classic int16 length. The non-nullable forms reject a null marker.
  WireResult<std::string> read_string(bool compact = false);
  WireResult<std::optional<std::string>> read_nullable_string(bool compact = false);

  // Byte strings (`bytes` and `records`): int32 length or uvarint N+1.
  // The value is a slice of the input: no copy.
  WireResult<Bytes> read_bytes(bool compact = false);
  WireResult<std::optional<Bytes>> read_nullable_bytes(bool compact = false);

  // Array element count: int32 or uvarint N+1. Returns -1 for a null array
  // (the caller decides whether null is allowed at this version). A count
  // that could not fit in the remaining bytes, given that every element
  // takes at least `min_element_size` bytes, is an error.
  WireResult<int32_t> read_array_length(bool compact = false, size_t min_element_size = 1);

  // `n` raw bytes as a slice of the input.
  WireResult<Bytes> read_raw(size_t n);
  // A sub-reader over the next `n` bytes; this reader skips past them.
  WireResult<Reader> read_sub_reader(size_t n);

  // One tagged-field buffer header entry: the tag and its payload (a slice).
  struct TaggedField {
    uint32_t tag = 0;
    Bytes data;
  };
  // Reads a whole tagged-field buffer and discards every entry.
  WireResult<void> skip_tagged_fields();
  // Reads the tag and the size-prefixed payload of one entry.
  WireResult<TaggedField> read_tagged_field();

 private:
  Error<Errc> truncated(size_t need) const;
  Bytes buf_;
  size_t pos_ = 0;
};

// Kafka strings carry at most 32767 bytes (an int16 length, and readers,
// ours included, enforce it for the compact form too).
inline constexpr size_t kMaxWireStringBytes = 32767;

// `s` cut to at most kMaxWireStringBytes on a UTF-8 character boundary.
std::string_view clamp_wire_string(std::string_view s);

class Writer {
 public:
  Writer() = default;
  // Appends to `initial` (e.g. after a reserved frame-size prefix).
  explicit Writer(std::vector<uint8_t> initial) : buf_(std::move(initial)) {}

  size_t size() const { return buf_.size(); }
  const std::vector<uint8_t>& buffer() const { return buf_; }
  std::vector<uint8_t> release() { return std::move(buf_); }
  void reserve(size_t n) { buf_.reserve(n); }

  void put_int8(int8_t v) { buf_.push_back(uint8_t(v)); }
  void put_int16(int16_t v);
  void put_int32(int32_t v);
  void put_int64(int64_t v);
  void put_uint16(uint16_t v);
  void put_uint32(uint32_t v);
  void put_float64(double v);
  void put_bool(bool v) { buf_.push_back(v ? 1 : 0); }
  void put_uuid(const Uuid& v) { put_raw(v); }
  void put_uvarint(uint32_t v);
  void put_varint(int32_t v);
  void put_varlong(int64_t v);

  // A string longer than kMaxWireStringBytes is truncated to that limit on a
  // UTF-8 boundary (clamp_wire_string): error messages echo client input, and
  // an unchecked int16 length would corrupt the whole frame.
  void put_string(std::string_view s, bool compact = false);
  void put_nullable_string(const std::optional<std::string>& s, bool compact = false);
  void put_bytes(std::span<const uint8_t> b, bool compact = false);
  void put_bytes(const Bytes& b, bool compact = false) { put_bytes(b.span(), compact); }
  void put_nullable_bytes(const std::optional<Bytes>& b, bool compact = false);
  // `n` = -1 writes the null marker.
  void put_array_length(int32_t n, bool compact = false);
  void put_raw(std::span<const uint8_t> b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
  // An empty tagged-field buffer (one 0x00 byte).
  void put_empty_tagged_fields() { buf_.push_back(0); }
  // One tagged-field entry: tag, uvarint size, payload.
  void put_tagged_field(uint32_t tag, std::span<const uint8_t> payload);

  // Overwrites 4 bytes at `pos` (e.g. a frame size once the frame is built).
  // Requires pos + 4 <= size().
  void patch_int32(size_t pos, int32_t v);

 private:
  std::vector<uint8_t> buf_;
};

// Generated decoders reserve room for an array's announced element count
// only up to a bound; beyond it the vector grows as elements really decode.
// The count itself is already bounded by the remaining bytes divided by the
// element's minimum wire size at the decoded version, but an element's
// in-memory size can be many times its wire size (a 1-byte empty compact
// string is a 32-byte std::string), so an announced count alone must not
// decide how much is allocated: a reservation takes at most
// kDecodeReservePerInputByte bytes per input byte still unread, and never
// more than kMaxDecodeReserveBytes.
inline constexpr size_t kMaxDecodeReserveBytes = 4096;
inline constexpr size_t kDecodeReservePerInputByte = 2;

// How many elements of `element_size` bytes to reserve for an announced
// `count` with `remaining` input bytes unread.
size_t decode_reserve_hint(int32_t count, size_t remaining, size_t element_size);

// Error-path helpers for the generated decoders. A primitive's error
// "truncated (...)" becomes "name: truncated (...)" through field_error; each
// enclosing struct then prefixes its own path through wrap_error, giving
// "ProduceRequest.topic_data[0].name: truncated (...)".
Error<Errc> field_error(const Error<Errc>& inner, std::string_view field);
Error<Errc> wrap_error(const Error<Errc>& inner, std::string_view prefix);
// Same with an array index: "topics[3].name: ...".
Error<Errc> wrap_error(const Error<Errc>& inner, std::string_view array_field, size_t index);

}  // namespace holdfast::protocol
