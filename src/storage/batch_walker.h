// One walk over the record batches stored in a byte range of a segment file.
//
// Every caller that needs "the batches of a segment, checked" uses this: the
// segment load at start-up (framing only for trusted segments, framing and
// CRC for the ones recovery scans) and `holdfast log check|repair`. A batch is
// good when its 61-byte header is whole and has magic 2, its length covers at
// least the header and fits before `end`, its offsets do not go backwards
// (base offset >= the previous batch's last offset + 1, last offset delta >= 0,
// within a u32 of the segment base) and, with CRC checking on, its CRC-32C
// matches. The walk stops at the first bad batch and says where and why; it
// never changes the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/file_system.h"
#include "record/batch.h"
#include "storage/types.h"

namespace holdfast::storage {

// A bad batch: the file, the byte position where it starts, what is wrong.
struct BatchDamage {
  std::string file;
  uint64_t position = 0;
  std::string reason;
  std::string describe() const;  // "<file> at byte <position>: <reason>"
};

struct WalkedBatch {
  uint64_t position;  // where the batch starts in the file
  record::BatchHeader header;
};

class BatchWalker {
 public:
  // Walks [from, end) of `file` (named `path` in damage reports). The first
  // batch's base offset must be >= next_offset; segment_base bounds the
  // relative offsets (format::kMaxRelativeOffset).
  BatchWalker(const io::File& file, std::string path, uint64_t from, uint64_t end,
              int64_t segment_base, int64_t next_offset, bool check_crc);

  // The next good batch; nullopt at `end` or at the first bad batch (then
  // damage() is set and position() is where the bad batch starts). A read
  // error is returned as io_error (the walk cannot go on).
  StorageResult<std::optional<WalkedBatch>> next();

  // Start of the next batch: `end` after a complete walk, else the bad batch.
  uint64_t position() const { return position_; }
  // The last good batch's last offset + 1 (next_offset as given before any).
  int64_t next_offset() const { return next_offset_; }
  const std::optional<BatchDamage>& damage() const { return damage_; }

 private:
  std::optional<WalkedBatch> stop(std::string reason);

  const io::File& file_;
  std::string path_;
  uint64_t position_;
  uint64_t end_;
  int64_t segment_base_;
  int64_t next_offset_;
  bool check_crc_;
  std::optional<BatchDamage> damage_;
  std::vector<uint8_t> buffer_;
};

// The position of the first batch starting in [from, end) whose framing and
// CRC are good, found by trying every byte position. A hit after a bad batch
// means the damage is not a torn tail: bytes that were written later are
// intact. Reads the range once, in windows.
StorageResult<std::optional<uint64_t>> find_valid_batch(const io::File& file, uint64_t from,
                                                        uint64_t end);

}  // namespace holdfast::storage
