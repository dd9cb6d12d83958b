#include "admin/message_search.h"

#include <algorithm>

namespace holdfast::admin {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes read from the log per step; a batch larger than this is still read
// whole (min_one_batch).
constexpr size_t kReadChunkBytes = 1 << 20;

bool header_matches(const std::string& filter, const std::vector<record::Header>& headers) {
  const auto eq = filter.find('=');
  const std::string_view name =
      eq == std::string::npos ? std::string_view(filter) : std::string_view(filter).substr(0, eq);
  for (const auto& h : headers) {
    if (h.key != name) continue;
    if (eq == std::string::npos) return true;
    const std::string_view wanted = std::string_view(filter).substr(eq + 1);
    if (h.value && h.value->view() == wanted) return true;
  }
  return false;
}

}  // namespace

bool record_matches(const SearchQuery& query, const record::Record& r) {
  if (query.key && (!r.key || r.key->view() != *query.key)) return false;
  if (query.value && (!r.value || r.value->view().find(*query.value) == std::string_view::npos)) {
    return false;
  }
  if (query.header && !header_matches(*query.header, r.headers)) return false;
  if (query.timestamp && r.timestamp < *query.timestamp) return false;
  return true;
}

SearchResult search_messages(const std::vector<storage::PartitionLog*>& logs,
                             const SearchQuery& query, const SearchBudget& budget) {
  SearchResult result;
  const auto deadline = Clock::now() + budget.max_scan_time;
  auto out_of_budget = [&] {
    return result.scanned_bytes >= budget.max_scan_bytes || Clock::now() >= deadline;
  };
  for (auto* log : logs) {
    PartitionScan scan;
    scan.partition = log->partition();
    scan.high_watermark = log->high_watermark();
    int64_t start = log->log_start_offset();
    if (query.offset) start = std::max(start, *query.offset);
    if (query.timestamp) {
      auto found = log->offset_for_timestamp(*query.timestamp);
      start = std::max(start, found ? found->offset : scan.high_watermark);
    }
    start = std::min(start, scan.high_watermark);
    scan.start_offset = start;
    int64_t position = start;
    bool stop = result.records.size() >= query.limit || result.budget_exhausted;
    while (!stop && position < scan.high_watermark) {
      if (out_of_budget()) {
        result.budget_exhausted = true;
        break;
      }
      auto read = log->read(position, kReadChunkBytes, /*min_one_batch=*/true, scan.high_watermark);
      if (!read) {
        if (read.code() == storage::Errc::offset_out_of_range) {
          // Retention moved the log start past us: continue from there.
          const int64_t log_start = log->log_start_offset();
          if (log_start > position) {
            position = log_start;
            continue;
          }
        }
        result.error = "partition " + std::to_string(scan.partition) + ": " + read.error().message;
        break;
      }
      if (read->records.empty()) break;
      std::span<const uint8_t> data = read->records.span();
      size_t at = 0;
      while (at < data.size()) {
        auto header = record::check_batch(data.subspan(at));
        if (!header) {
          result.error = "partition " + std::to_string(scan.partition) +
                         ": undecodable batch at "
                         "offset " +
                         std::to_string(position);
          stop = true;
          break;
        }
        const size_t batch_size = header->size_in_bytes();
        const auto batch = data.subspan(at, batch_size);
        at += batch_size;
        if (header->last_offset() < position) continue;  // before the start point
        result.scanned_bytes += batch_size;
        if (!header->is_control()) {
          auto records = record::decode_records(batch);
          if (!records) {
            result.error = "partition " + std::to_string(scan.partition) +
                           ": cannot decode the batch at offset " +
                           std::to_string(header->base_offset) + ": " + records.error().message;
            stop = true;
            break;
          }
          for (auto& r : *records) {
            if (r.offset < position) continue;
            if (!record_matches(query, r)) continue;
            result.records.push_back(FoundRecord{scan.partition, std::move(r)});
            if (result.records.size() >= query.limit) {
              position = result.records.back().record.offset + 1;
              stop = true;
              break;
            }
          }
        }
        if (stop) break;
        position = header->last_offset() + 1;
        // At the end nothing is left to scan: not "exhausted".
        if (position < scan.high_watermark && out_of_budget()) {
          result.budget_exhausted = true;
          stop = true;
          break;
        }
      }
    }
    scan.next_offset = position;
    scan.reached_end = position >= scan.high_watermark;
    result.partitions.push_back(scan);
  }
  return result;
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = uint8_t(text[i]);
    size_t extra = 0;
    uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = uint8_t(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((extra == 1 && code < 0x80) || (extra == 2 && code < 0x800) ||
        (extra == 3 && code < 0x10000) || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string base64_encode(std::span<const uint8_t> data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t n = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8) | data[i + 2];
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == data.size()) {
    const uint32_t n = uint32_t(data[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    const uint32_t n = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace holdfast::admin
