// On-disk format constants. docs/storage-format.md is the prose spec; every
// constant here is mirrored there and the two change together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace holdfast::storage::format {

// <data.dir>/<topic>-<partition>/<20-digit base offset><suffix>
constexpr std::string_view kLogSuffix = ".log";
constexpr std::string_view kIndexSuffix = ".index";
constexpr std::string_view kTimeIndexSuffix = ".timeindex";
// Producer state as of the named offset (idempotence), written at segment roll
// and at clean shutdown.
constexpr std::string_view kSnapshotSuffix = ".snapshot";
// Aborted-transaction index of a segment (txn_index.h): 34-byte entries,
// appended when an ABORT marker is, synced with the segment, present only
// when the segment holds an ABORT marker.
constexpr std::string_view kTxnIndexSuffix = ".txnindex";
constexpr size_t kOffsetDigits = 20;
// Suffix of a file being replaced atomically (write, fsync, rename, fsync dir).
constexpr std::string_view kTempSuffix = ".tmp";
// Log cleaner (docs/storage-format.md, "Compaction"): <base>.log.cleaned is a
// cleaned segment being written (deleted at load); <base>.log.swap is a
// complete, synced one that replaces <base>.log (renamed over it at load).
constexpr std::string_view kCleanedSuffix = ".log.cleaned";
constexpr std::string_view kSwapSuffix = ".log.swap";

// Offset index entry: relative offset (u32 BE, batch base offset - segment
// base offset), file position of that batch (u32 BE).
constexpr size_t kOffsetIndexEntrySize = 8;
// Time index entry: max timestamp so far (i64 BE), relative offset of the
// first batch that reached it (u32 BE).
constexpr size_t kTimeIndexEntrySize = 12;

// Data-dir-level files. Checkpoints are text: a version line, a count line,
// then one "topic partition offset" line per partition.
constexpr std::string_view kRecoveryPointCheckpointFile = "recovery-point-offset-checkpoint";
constexpr std::string_view kLogStartOffsetCheckpointFile = "log-start-offset-checkpoint";
constexpr int kCheckpointVersion = 0;
// Partition-dir-level: the partition's leader epochs (leader_epoch_cache.h),
// "epoch start_offset" lines in the same text format.
constexpr std::string_view kLeaderEpochCheckpointFile = "leader-epoch-checkpoint";
// Partition-dir-level: a truncation in progress (PartitionLog::truncate_to,
// truncate_fully_and_start_at), written durably before the first file is
// touched and removed once the truncation and the recovery point are durable.
// Text: the version line, then "end <offset>" (the log ends at offset) or
// "start <offset>" (the log is empty and starts at offset). load() finishes
// the truncation it names.
constexpr std::string_view kTruncationFile = "truncation-in-progress";
// Present only between a clean shutdown and the next start.
constexpr std::string_view kCleanShutdownFile = ".kafka_cleanshutdown";

// Producer state snapshot: version (u16), CRC-32C (u32) of every byte after
// it, offset (i64), entry count (i32), then per entry producer id (i64), epoch
// (i16), last update ms (i64), batch count (u8, <= 5), and per batch first
// sequence (i32), last sequence (i32), base offset (i64), last offset (i64),
// max timestamp (i64). Version 2 (transactions) adds to each entry, after
// the last update ms, the first offset of the ongoing transaction (i64, -1:
// none) and the coordinator epoch of the last marker (i32, -1: none).
// Version 1 still loads (no transactions).
constexpr uint16_t kSnapshotVersion = 2;
constexpr uint16_t kSnapshotVersionV1 = 1;
constexpr size_t kSnapshotHeaderSize = 2 + 4 + 8 + 4;
constexpr size_t kSnapshotEntryHeaderSizeV1 = 8 + 2 + 8 + 1;
constexpr size_t kSnapshotEntryHeaderSize = 8 + 2 + 8 + 8 + 4 + 1;
constexpr size_t kSnapshotBatchSize = 4 + 4 + 8 + 8 + 8;

// A segment never spans more relative offsets than a u32 index entry holds.
constexpr int64_t kMaxRelativeOffset = 0x7fffffff;
// Segment positions are u32 in the index, so a segment stays below 2 GiB.
constexpr int64_t kMaxSegmentBytes = 0x7fffffff;

std::string segment_file_name(int64_t base_offset, std::string_view suffix);
// The base offset of "<20 digits><suffix>", or nullopt for any other name.
std::optional<int64_t> parse_segment_file_name(std::string_view name, std::string_view suffix);

std::string partition_dir_name(std::string_view topic, int32_t partition);
// "<topic>-<partition>" split at the last '-'; nullopt if it is not one.
std::optional<std::pair<std::string, int32_t>> parse_partition_dir_name(std::string_view name);

// Kafka's legal topic names: 1-249 characters of [a-zA-Z0-9._-], not "." or "..".
bool is_valid_topic_name(std::string_view topic);

// A partition directory set aside at start-up because the metadata does not
// know its topic (Kafka's naming): `<topic>-<partition>.<32 hex digits>-stray`.
// Kept for an operator, never loaded (it does not parse as a partition).
constexpr std::string_view kStrayDirSuffix = "-stray";
// Written (atomically) into a partition directory before LogManager::remove
// deletes anything in it; a directory holding it at start is a deletion a
// crash interrupted, which LogManager::open finishes instead of loading it.
constexpr std::string_view kDeletionFile = "deletion-in-progress";
// `dir_name` + "." + a random unique id + `suffix`.
std::string set_aside_dir_name(std::string_view dir_name, std::string_view suffix);

}  // namespace holdfast::storage::format
