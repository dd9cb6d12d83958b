// Offset checkpoint files (recovery-point-offset-checkpoint,
// log-start-offset-checkpoint): Kafka's text format, replaced atomically.
//
//   0                      version (format::kCheckpointVersion)
//   2                      number of entries
//   orders 0 1200          topic partition offset
//   orders 1 877
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "io/file_system.h"
#include "storage/types.h"

namespace holdfast::storage {

using TopicPartition = std::pair<std::string, int32_t>;
using CheckpointEntries = std::map<TopicPartition, int64_t>;

std::string encode_checkpoint(const CheckpointEntries& entries);
// corrupt (with the line at fault) unless the text is exactly a valid checkpoint.
StorageResult<CheckpointEntries> decode_checkpoint(std::string_view text);

// Write temp, fsync, rename, fsync the directory.
StorageResult<void> write_checkpoint(io::FileSystem& fs, const std::string& path,
                                     const CheckpointEntries& entries);
// not_found if the file does not exist; corrupt if it does not parse.
StorageResult<CheckpointEntries> read_checkpoint(io::FileSystem& fs, const std::string& path);

}  // namespace holdfast::storage
