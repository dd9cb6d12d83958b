// Offline check and repair of one partition directory, for `holdfast log
// check|repair` (docs/operations.md, "Corrupt segments"). Unlike start-up
// recovery, the check walks every batch of every segment with CRC checks and
// goes on after damage, so it reports all of it. Repair is the only code that
// cuts a log at damage that is not a torn tail, and only on an operator's
// request, with no broker running on the directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/file_system.h"
#include "storage/batch_walker.h"
#include "storage/types.h"

namespace holdfast::storage {

struct SegmentCheck {
  int64_t base_offset = 0;
  std::string path;
  uint64_t size = 0;       // bytes in the file
  uint64_t batches = 0;    // good batches found
  int64_t next_offset = 0;  // last good batch's last offset + 1 (base if none)
};

struct PartitionCheck {
  std::vector<SegmentCheck> segments;  // by base offset
  std::vector<BatchDamage> damage;     // every damaged stretch, in log order
  uint64_t batches = 0;
  // The log up to the first damage: repair keeps segments [0, cut_segment)
  // whole, cuts segment cut_segment at cut_position and removes every later
  // segment (and cut_segment itself when it is cut to nothing and is not the
  // first). Unset when there is no damage.
  std::optional<size_t> cut_segment;
  uint64_t cut_position = 0;
  int64_t end_after_repair = 0;  // the log end offset once repaired

  bool clean() const { return damage.empty(); }
  // Bytes repair would remove.
  uint64_t bytes_removed() const;
  // Good batches after the first damage that repair would remove.
  uint64_t good_batches_removed = 0;
};

// Reads every segment of `dir`; changes nothing. Errors: io_error / not_found
// when the directory or a file cannot be read.
StorageResult<PartitionCheck> check_partition(io::FileSystem& fs, const std::string& dir);

// Applies check.cut_*: truncates, removes later segment files and the cut
// segment's index files (rebuilt at the next start), syncs. The caller makes
// sure no broker has the directory open.
StorageResult<void> repair_partition(io::FileSystem& fs, const std::string& dir,
                                     const PartitionCheck& check);

}  // namespace holdfast::storage
