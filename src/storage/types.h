// Vocabulary of the storage module: error codes, configuration, results.
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"

namespace holdfast::storage {

enum class Errc {
  io_error,
  offset_out_of_range,
  corrupt,
  not_found,
  already_exists,
  invalid_argument,
  closed,
  // Idempotent producer checks (PartitionLog::append, producer_state.h).
  out_of_order_sequence,   // a gap, a non-zero first sequence in a new epoch, or a retry too old to match
  invalid_producer_epoch,  // an epoch older than the partition has seen for the producer id
  // A durability waiter whose offset a truncation removed (PartitionLog::
  // truncate_to / truncate_fully_and_start_at): the records it waited for are
  // gone and must never be acknowledged.
  truncated,
  // A transaction marker from a coordinator epoch older than the last
  // marker's for that producer (Kafka's TransactionCoordinatorFencedException).
  coordinator_fenced,
};
const char* to_string(Errc code);

template <typename T>
using StorageResult = Result<T, Errc>;

enum class FlushMode { always, interval, never };

struct LogConfig {
  int64_t segment_bytes = 1 << 30;
  int64_t segment_ms = 7LL * 24 * 3600 * 1000;
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // -1 = keep forever
  int64_t retention_bytes = -1;                   // -1 = no size limit
  int32_t index_interval_bytes = 4096;
  int32_t max_message_bytes = 1048588;
  FlushMode flush_mode = FlushMode::always;
  int64_t flush_interval_ms = 1000;
  bool log_append_time = false;  // message.timestamp.type=LogAppendTime
  // cleanup.policy contains "compact": the log cleaner (log_cleaner.h) keeps
  // only the latest record per key in non-active segments below the high
  // watermark. Retention applies as well only if the policy also has "delete".
  bool compact = false;
  // A tombstone (null value) that is the latest for its key is kept while its
  // batch's MaxTimestamp is younger than this (delete.retention.ms).
  int64_t delete_retention_ms = 86400000;
  // Clean only when dirty bytes / cleanable bytes >= this (min.cleanable.dirty.ratio).
  double min_cleanable_dirty_ratio = 0.5;
  // A segment is cleanable only when its largest timestamp is at least this old
  // (min.compaction.lag.ms).
  int64_t min_compaction_lag_ms = 0;
};

struct AppendResult {
  int64_t base_offset;
  int64_t last_offset;
  int64_t log_append_time_ms;  // -1 unless LogAppendTime
  // True when the batch was a retry of one of the producer's last five
  // batches: nothing was written and the offsets are the ORIGINAL batch's.
  // The caller must not acknowledge before last_offset + 1 is durable.
  bool duplicate = false;
};

// A ListOffsets answer: the offset of a record and that record's timestamp.
struct TimestampAndOffset {
  int64_t timestamp;
  int64_t offset;
  friend bool operator==(const TimestampAndOffset&, const TimestampAndOffset&) = default;
};

struct ReadResult {
  Bytes records;  // whole batches, possibly empty
  int64_t high_watermark;
  int64_t log_start_offset;
  int64_t log_end_offset;
  // The bound of a read_committed read (replication::Partition), else -1.
  int64_t last_stable_offset = -1;
};

}  // namespace holdfast::storage
