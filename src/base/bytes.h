// Byte buffers and big-endian helpers.
//
// `Bytes` is an immutable, reference-counted slice of a shared buffer: slicing
// and copying never copy the bytes. A request frame is read into one buffer and
// the records inside it are handed on as slices, so a produced batch reaches
// the log without a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace holdfast {

class Bytes {
 public:
  Bytes() = default;

  // Takes ownership of `data`.
  explicit Bytes(std::vector<uint8_t> data) {
    auto owner = std::make_shared<std::vector<uint8_t>>(std::move(data));
    data_ = owner->data();
    size_ = owner->size();
    owner_ = std::move(owner);
  }

  // Shares an existing owner; [data, data+size) must lie inside it.
  Bytes(std::shared_ptr<const void> owner, const uint8_t* data, size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}

  static Bytes copy_of(std::span<const uint8_t> s) {
    return Bytes(std::vector<uint8_t>(s.begin(), s.end()));
  }
  static Bytes copy_of(std::string_view s) {
    return Bytes(std::vector<uint8_t>(s.begin(), s.end()));
  }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint8_t operator[](size_t i) const { return data_[i]; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  std::string to_string() const { return std::string(view()); }

  // A sub-slice sharing the same owner. Requires offset + length <= size().
  Bytes slice(size_t offset, size_t length) const { return Bytes(owner_, data_ + offset, length); }
  Bytes slice(size_t offset) const { return slice(offset, size_ - offset); }

  // The owning handle, so that a writer that stamps fields in place (the log
  // stamping base offsets) can be sure nobody else sees a half-written value.
  const std::shared_ptr<const void>& owner() const { return owner_; }

  friend bool operator==(const Bytes& a, const Bytes& b) {
    return a.size_ == b.size_ && (a.size_ == 0 || std::memcmp(a.data_, b.data_, a.size_) == 0);
  }

 private:
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Big-endian loads and stores on raw memory (the wire and the batch header).
inline uint16_t load_be16(const uint8_t* p) { return uint16_t(p[0]) << 8 | uint16_t(p[1]); }
inline uint32_t load_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
inline uint64_t load_be64(const uint8_t* p) {
  return uint64_t(load_be32(p)) << 32 | uint64_t(load_be32(p + 4));
}
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}
inline void store_be64(uint8_t* p, uint64_t v) {
  store_be32(p, uint32_t(v >> 32));
  store_be32(p + 4, uint32_t(v));
}

}  // namespace holdfast
