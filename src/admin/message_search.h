// Server-side message search (GET /v1/topics/{t}/messages): scans a
// partition's log directly from a start point (offset, timestamp or log
// start) up to its high watermark, decompressing batches with the record
// module's decoder, and returns the first `limit` records that match every
// filter given. Bounded by a scan budget in bytes and time; the result says
// where to continue. Never goes through a consumer group, never changes
// offsets. Thread safety: PartitionLog reads may run on any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "record/batch.h"
#include "storage/partition_log.h"

namespace holdfast::admin {

struct SearchQuery {
  std::optional<int64_t> offset;     // start here (clamped to the log start)
  std::optional<int64_t> timestamp;  // or at the first record with timestamp >= this
  size_t limit = 20;
  std::optional<std::string> key;     // exact key
  std::optional<std::string> value;   // substring of the value
  std::optional<std::string> header;  // "name" (present) or "name=value" (exact)
};

struct SearchBudget {
  uint64_t max_scan_bytes = 64ull << 20;
  std::chrono::milliseconds max_scan_time{2000};
};

struct FoundRecord {
  int32_t partition = 0;
  record::Record record;
};

struct PartitionScan {
  int32_t partition = 0;
  int64_t start_offset = 0;
  int64_t next_offset = 0;     // continue here
  int64_t high_watermark = 0;  // scanned up to (not including) this at most
  bool reached_end = false;    // next_offset == high watermark when the scan stopped
};

struct SearchResult {
  std::vector<FoundRecord> records;
  std::vector<PartitionScan> partitions;
  uint64_t scanned_bytes = 0;
  bool budget_exhausted = false;
  std::string error;  // a batch that could not be decoded (corrupt data); empty if none
};

// The filters of `query` on one record.
bool record_matches(const SearchQuery& query, const record::Record& r);

// Scans `logs` (one per partition, in this order) one after the other until
// `limit` matches, the budget, or the end of every log. The clock starts at
// the call.
SearchResult search_messages(const std::vector<storage::PartitionLog*>& logs,
                             const SearchQuery& query, const SearchBudget& budget);

// ---- Encoding helpers for the JSON response ----
bool is_valid_utf8(std::string_view text);
std::string base64_encode(std::span<const uint8_t> data);

}  // namespace holdfast::admin
