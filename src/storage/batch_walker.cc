#include "storage/batch_walker.h"

#include <fmt/format.h>

#include <algorithm>

#include "storage/format.h"
#include "storage/segment.h"

namespace holdfast::storage {

using record::BatchHeader;
using record::kBatchHeaderSize;
using record::kLogOverhead;

std::string BatchDamage::describe() const {
  return fmt::format("{} at byte {}: {}", file, position, reason);
}

BatchWalker::BatchWalker(const io::File& file, std::string path, uint64_t from, uint64_t end,
                         int64_t segment_base, int64_t next_offset, bool check_crc)
    : file_(file),
      path_(std::move(path)),
      position_(from),
      end_(end),
      segment_base_(segment_base),
      next_offset_(next_offset),
      check_crc_(check_crc) {}

std::optional<WalkedBatch> BatchWalker::stop(std::string reason) {
  damage_ = BatchDamage{path_, position_, std::move(reason)};
  return std::nullopt;
}

StorageResult<std::optional<WalkedBatch>> BatchWalker::next() {
  if (damage_ || position_ >= end_) return std::optional<WalkedBatch>();
  const uint64_t left = end_ - position_;
  if (left < kBatchHeaderSize) {
    return stop(fmt::format("only {} bytes left, too few for a batch header of {}", left,
                            kBatchHeaderSize));
  }
  uint8_t raw[kBatchHeaderSize];
  auto n = file_.read_at(position_, raw);
  if (!n) return io_failure(n.error());
  if (*n != kBatchHeaderSize) {
    return stop(fmt::format("short read of the batch header ({} of {} bytes)", *n,
                            kBatchHeaderSize));
  }
  auto header = record::parse_batch_header(raw);
  if (!header) return stop(header.error().message);
  if (header->length < int32_t(kBatchHeaderSize - kLogOverhead)) {
    return stop(fmt::format("batch length {} is smaller than the header", header->length));
  }
  if (header->size_in_bytes() > left) {
    return stop(fmt::format("batch length {} runs past the end ({} bytes left)", header->length,
                            left));
  }
  if (header->base_offset < next_offset_ || header->last_offset_delta < 0 ||
      header->last_offset() - segment_base_ > format::kMaxRelativeOffset) {
    return stop(fmt::format("batch offsets {}..{} do not follow offset {} in segment {}",
                            header->base_offset, header->last_offset(), next_offset_ - 1,
                            segment_base_));
  }
  if (check_crc_) {
    buffer_.resize(header->size_in_bytes());
    auto read = file_.read_at(position_, buffer_);
    if (!read) return io_failure(read.error());
    if (*read != buffer_.size()) {
      return stop(fmt::format("short read of the batch ({} of {} bytes)", *read, buffer_.size()));
    }
    if (auto checked = record::check_batch(buffer_); !checked) {
      return stop(checked.error().message);
    }
  }
  WalkedBatch batch{position_, *header};
  position_ += header->size_in_bytes();
  next_offset_ = header->last_offset() + 1;
  return std::optional<WalkedBatch>(batch);
}

StorageResult<std::optional<uint64_t>> find_valid_batch(const io::File& file, uint64_t from,
                                                        uint64_t end) {
  constexpr uint64_t kWindowBytes = 4 << 20;
  std::vector<uint8_t> window;
  uint64_t window_start = from;
  std::vector<uint8_t> whole;  // a candidate that does not fit the window
  for (uint64_t p = from; p + kBatchHeaderSize <= end; ++p) {
    if (p + kBatchHeaderSize > window_start + window.size()) {
      window_start = p;
      window.resize(std::min(kWindowBytes, end - p));
      auto n = file.read_at(p, window);
      if (!n) return io_failure(n.error());
      window.resize(*n);
      if (window.size() < kBatchHeaderSize) break;  // the file is shorter than `end`
    }
    const uint8_t* h = window.data() + (p - window_start);
    // Cheap filters first: the magic byte and a length that fits.
    if (int8_t(h[record::kMagicOffset]) != record::kMagicV2) continue;
    const auto length = int32_t(load_be32(h + record::kLengthOffset));
    if (length < int32_t(kBatchHeaderSize - kLogOverhead)) continue;
    const uint64_t size = kLogOverhead + uint64_t(length);
    if (p + size > end) continue;
    std::span<const uint8_t> candidate;
    if (p + size <= window_start + window.size()) {
      candidate = {h, size};
    } else {
      whole.resize(size);
      auto n = file.read_at(p, whole);
      if (!n) return io_failure(n.error());
      if (*n != size) continue;
      candidate = whole;
    }
    if (record::check_batch(candidate)) return std::optional<uint64_t>(p);
  }
  return std::optional<uint64_t>();
}

}  // namespace holdfast::storage
