#include "replication/partition.h"

#include <fmt/format.h>

namespace holdfast::replication {

Partition::Partition(storage::LogManager& logs, storage::PartitionLog& log)
    : logs_(logs), log_(log) {}

storage::StorageResult<storage::AppendResult> Partition::append(std::span<const uint8_t> batch,
                                                                const record::BatchHeader& header) {
  // The idempotence check runs inside the log's append, under its lock, so
  // concurrent produces of one producer are checked in append order.
  return log_.append(batch, header);  // stamped with the log's leader epoch
}

// Single-node mode: this replica is the whole ISR, so the high watermark is
// the log's own acknowledgeable offset (durable under flush.policy=always).
int64_t Partition::high_watermark() const { return log_.high_watermark(); }

bool Partition::high_watermark_reached(int64_t end_offset) const {
  return high_watermark() >= end_offset;
}

void Partition::wait_for_high_watermark(int64_t end_offset, HighWatermarkCallback done) {
  // With the ISR being this replica alone, "the high watermark passes
  // end_offset" is "the log's flusher made end_offset acknowledgeable": the
  // log raises its high watermark before it completes durability waiters.
  // With followers this becomes a waiter list of our own, completed as the
  // ISR's fsynced offsets advance.
  logs_.wait_durable(&log_, end_offset, std::move(done));
}

storage::StorageResult<storage::ReadResult> Partition::read(int64_t offset, size_t max_bytes,
                                                            bool min_one_batch) const {
  const int64_t bound = high_watermark();
  auto read = log_.read(offset, max_bytes, min_one_batch, bound);
  if (read) read->high_watermark = bound;
  return read;
}

std::optional<storage::TimestampAndOffset> Partition::offset_for_timestamp(
    int64_t timestamp) const {
  // The log only looks below its own high watermark; the partition's is never
  // above it, so cap to ours as well.
  const int64_t bound = high_watermark();
  auto found = log_.offset_for_timestamp(timestamp);
  if (found && found->offset >= bound) return std::nullopt;
  return found;
}

storage::StorageResult<int64_t> Partition::delete_records_before(int64_t offset) {
  const int64_t bound = high_watermark();
  if (offset == -1) offset = bound;
  if (offset < 0 || offset > bound) {
    return make_error(storage::Errc::offset_out_of_range,
                      fmt::format("cannot delete {}-{} records before {}: high watermark is {}",
                                  topic(), index(), offset, bound));
  }
  return log_.delete_records_before(offset);
}

bool Partition::on_log_high_watermark_advanced() { return true; }

}  // namespace holdfast::replication
