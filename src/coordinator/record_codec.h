// Big-endian writer and reader of the internal topics' record keys and
// values (Kafka's fixed-width, non-flexible encoding: int16-length strings,
// int32-length bytes). Shared by __consumer_offsets and __transaction_state.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "base/bytes.h"

namespace holdfast::coordinator::codec {

class Out {
 public:
  void i8(int8_t v) { buf_.push_back(char(v)); }
  void i16(int16_t v) { be(uint16_t(v), 2); }
  void i32(int32_t v) { be(uint32_t(v), 4); }
  void i64(int64_t v) { be(uint64_t(v), 8); }
  void str(const std::string& s) {
    i16(static_cast<int16_t>(s.size()));
    buf_.append(s);
  }
  void nullable_str(const std::optional<std::string>& s) {
    if (!s) return i16(-1);
    str(*s);
  }
  // int32 length: commit metadata may be long.
  void long_nullable_str(const std::optional<std::string>& s) {
    if (!s) return i32(-1);
    i32(static_cast<int32_t>(s->size()));
    buf_.append(*s);
  }
  void bytes(const Bytes& b) {
    i32(static_cast<int32_t>(b.size()));
    buf_.append(b.view());
  }
  std::string take() { return std::move(buf_); }

 private:
  void be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) buf_.push_back(char((v >> (8 * i)) & 0xff));
  }
  std::string buf_;
};

class In {
 public:
  explicit In(std::span<const uint8_t> d) : d_(d) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == d_.size(); }
  int8_t i8() { return int8_t(be(1)); }
  int16_t i16() { return int16_t(be(2)); }
  int32_t i32() { return int32_t(be(4)); }
  int64_t i64() { return int64_t(be(8)); }
  std::string str() {
    int16_t n = i16();
    if (n < 0) {
      ok_ = false;
      return {};
    }
    return raw(size_t(n));
  }
  std::optional<std::string> nullable_str() {
    int16_t n = i16();
    if (n < 0) return std::nullopt;
    return raw(size_t(n));
  }
  std::optional<std::string> long_nullable_str() {
    int32_t n = i32();
    if (n < 0) return std::nullopt;
    return raw(size_t(n));
  }
  Bytes bytes() {
    int32_t n = i32();
    if (n < 0) {
      ok_ = false;
      return {};
    }
    std::string s = raw(size_t(n));
    return Bytes::copy_of(std::string_view(s));
  }

 private:
  uint64_t be(int n) {
    if (!ok_ || d_.size() - pos_ < size_t(n)) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | d_[pos_++];
    return v;
  }
  std::string raw(size_t n) {
    if (!ok_ || d_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(d_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
  bool ok_ = true;
};


}  // namespace holdfast::coordinator::codec
