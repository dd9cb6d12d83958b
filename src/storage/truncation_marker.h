// The truncation-in-progress file of a partition directory (format.h,
// docs/storage-format.md): written durably before a replica's truncation
// touches any file, removed once the truncation and the recovery point are
// durable, finished by PartitionLog::load if a crash left it behind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "io/file_system.h"
#include "storage/types.h"

namespace holdfast::storage {

struct TruncationMarker {
  enum class Kind { end, start };
  Kind kind = Kind::end;
  // end: the log ends at (at most) this offset; start: the log is empty and
  // starts here.
  int64_t offset = 0;
  friend bool operator==(const TruncationMarker&, const TruncationMarker&) = default;
};

std::string encode_truncation_marker(const TruncationMarker& marker);
// corrupt unless `text` is exactly one valid marker.
StorageResult<TruncationMarker> decode_truncation_marker(std::string_view text);
// Write temp, fsync, rename, fsync the directory.
StorageResult<void> write_truncation_marker(io::FileSystem& fs, const std::string& dir,
                                            const TruncationMarker& marker);
// nullopt if there is none; corrupt if it does not parse.
StorageResult<std::optional<TruncationMarker>> read_truncation_marker(io::FileSystem& fs,
                                                                      const std::string& dir);
// Removes it and syncs the directory.
StorageResult<void> remove_truncation_marker(io::FileSystem& fs, const std::string& dir);
// Removes every segment file (.log, .index, .timeindex), producer snapshot and
// the leader-epoch-checkpoint of `dir`, then syncs the directory
// (truncate_fully_and_start_at and its completion at load).
StorageResult<void> remove_partition_data_files(io::FileSystem& fs, const std::string& dir);

}  // namespace holdfast::storage
