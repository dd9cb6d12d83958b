#include "storage/log_cleaner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "base/log.h"
#include "base/varint.h"
#include "storage/format.h"
#include "storage/partition_log.h"

namespace holdfast::storage {

using record::BatchHeader;

namespace {

std::string path_of(const std::string& dir, int64_t base, std::string_view suffix) {
  return io::join_path(dir, format::segment_file_name(base, suffix));
}

// Re-encodes `kept` (records of the batch `h` with CONSECUTIVE offsets,
// non-empty) as one uncompressed batch whose records keep their offsets and
// timestamps, with `base_timestamp` and `attributes` (which carry the delete
// horizon when the cleaner stamps one; record timestamps are deltas from the
// base). Consecutive, because record::decode_records (like produce
// validation) requires offset deltas 0..n-1: a batch with holes would be
// unreadable by our own decoders, so a partly kept batch becomes one batch per
// run of kept offsets.
std::vector<uint8_t> rebuild_batch(const BatchHeader& h, std::span<const record::Record> kept,
                                   int64_t base_timestamp, int16_t attributes) {
  using namespace record;
  const int64_t base = kept.front().offset;
  std::vector<uint8_t> records;
  std::vector<uint8_t> body;
  uint8_t tmp[kMaxVarint64Bytes];
  auto put_varint = [&](int64_t v) {
    size_t n = put_varint64(tmp, v);
    body.insert(body.end(), tmp, tmp + n);
  };
  auto put_bytes = [&](const std::optional<Bytes>& data) {
    if (!data) {
      put_varint(-1);
      return;
    }
    put_varint(int64_t(data->size()));
    body.insert(body.end(), data->data(), data->data() + data->size());
  };
  for (const auto& r : kept) {
    body.clear();
    body.push_back(0);  // record attributes
    put_varint(r.timestamp - base_timestamp);
    put_varint(r.offset - base);
    put_bytes(r.key);
    put_bytes(r.value);
    put_varint(int64_t(r.headers.size()));
    for (const auto& hd : r.headers) {
      put_varint(int64_t(hd.key.size()));
      body.insert(body.end(), hd.key.begin(), hd.key.end());
      put_bytes(hd.value);
    }
    size_t n = put_varint64(tmp, int64_t(body.size()));
    records.insert(records.end(), tmp, tmp + n);
    records.insert(records.end(), body.begin(), body.end());
  }
  std::vector<uint8_t> batch(kBatchHeaderSize + records.size());
  uint8_t* p = batch.data();
  store_be64(p + kBaseOffsetOffset, uint64_t(base));
  store_be32(p + kLengthOffset, uint32_t(batch.size() - kLogOverhead));
  store_be32(p + kPartitionLeaderEpochOffset, uint32_t(h.partition_leader_epoch));
  p[kMagicOffset] = uint8_t(kMagicV2);
  store_be16(p + kAttributesOffset, uint16_t(attributes & ~kCompressionMask));
  store_be32(p + kLastOffsetDeltaOffset, uint32_t(kept.back().offset - base));
  store_be64(p + kBaseTimestampOffset, uint64_t(base_timestamp));
  int64_t max_timestamp = h.max_timestamp;  // LogAppendTime: the batch's, kept
  if (!h.has_log_append_time()) {
    max_timestamp = kept.front().timestamp;
    for (const auto& r : kept) max_timestamp = std::max(max_timestamp, r.timestamp);
  }
  store_be64(p + kMaxTimestampOffset, uint64_t(max_timestamp));
  store_be64(p + kProducerIdOffset, uint64_t(h.producer_id));
  store_be16(p + kProducerEpochOffset, uint16_t(h.producer_epoch));
  store_be32(p + kBaseSequenceOffset, uint32_t(h.base_sequence));
  store_be32(p + kRecordsCountOffset, uint32_t(kept.size()));
  std::memcpy(p + kBatchHeaderSize, records.data(), records.size());
  store_be32(p + kCrcOffset, compute_batch_crc(batch));
  return batch;
}

StorageResult<std::vector<uint8_t>> read_batch(const Segment& s, uint64_t position,
                                               const BatchHeader& h) {
  std::vector<uint8_t> bytes(h.size_in_bytes());
  if (auto r = s.read_exact(position, bytes); !r) return r.error();
  return bytes;
}

Error<Errc> corrupt(const Segment& s, uint64_t position, std::string_view what) {
  return make_error(Errc::corrupt, fmt::format("cleaning {} at {}: {}", s.log_path(), position, what));
}

}  // namespace

StorageResult<void> LogCleaner::recover_swaps(io::FileSystem& fs, const std::string& dir,
                                              bool& dir_changed) {
  auto names = fs.list_dir(dir);
  if (!names) return io_failure(names.error());
  for (const auto& name : *names) {
    if (format::parse_segment_file_name(name, format::kCleanedSuffix)) {
      // Not complete (or not synced) when the broker stopped: the old segment rules.
      HF_WARN("{}: removing the unfinished cleaned segment {}", dir, name);
      if (auto r = fs.remove(io::join_path(dir, name)); !r) return io_failure(r.error());
      dir_changed = true;
    } else if (auto base = format::parse_segment_file_name(name, format::kSwapSuffix)) {
      // Complete and synced before it got this name: finish the swap. The old
      // index files describe the old file; they go first.
      HF_WARN("{}: completing the swap of cleaned segment {}", dir, *base);
      for (auto suffix : {format::kIndexSuffix, format::kTimeIndexSuffix}) {
        auto r = fs.remove(path_of(dir, *base, suffix));
        if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
      }
      if (auto r = fs.rename(io::join_path(dir, name), path_of(dir, *base, format::kLogSuffix));
          !r) {
        return io_failure(r.error());
      }
      dir_changed = true;
    }
  }
  return {};
}

namespace {

// The key map of one round: key -> latest offset in [map_start, map_end).
struct KeyMap {
  std::unordered_map<std::string, int64_t> latest;
  int64_t bytes = 0;
  int64_t map_end = 0;  // every batch below this (from the first dirty offset) is mapped
};

int64_t entry_cost(size_t key_size) {
  return int64_t(key_size) + LogCleaner::kKeyMapEntryOverhead;
}

// Maps keys from the first dirty offset until the map is full or the range
// ends. At least one batch is mapped, so every round makes progress.
StorageResult<KeyMap> build_key_map(const PartitionLog::CleanableRange& range, int64_t limit,
                                    const PartitionLog& log) {
  KeyMap map;
  map.map_end = range.first_dirty_offset;
  bool mapped_any = false;
  std::unordered_set<std::string> fresh;  // keys of this batch not yet in the map
  for (const auto& s : range.segments) {
    if (s->next_offset <= range.first_dirty_offset) continue;
    uint64_t position = 0;
    while (position < s->size) {
      if (log.closed()) return map;
      auto h = s->read_header(position, s->size);
      if (!h) return h.error();
      const uint64_t at = position;
      position += h->size_in_bytes();
      if (h->last_offset() < range.first_dirty_offset) continue;
      if (h->is_control()) {
        map.map_end = h->last_offset() + 1;
        continue;
      }
      auto bytes = read_batch(*s, at, *h);
      if (!bytes) return bytes.error();
      auto records = record::decode_records(*bytes);
      if (!records) return corrupt(*s, at, records.error().message);
      int64_t cost = 0;
      fresh.clear();
      for (const auto& r : *records) {
        if (!r.key) continue;
        const std::string key = r.key->to_string();
        if (!map.latest.count(key) && fresh.insert(key).second) cost += entry_cost(key.size());
      }
      if (mapped_any && map.bytes + cost > limit) return map;  // full: the round ends here
      for (const auto& r : *records) {
        if (r.key) map.latest[r.key->to_string()] = r.offset;
      }
      map.bytes += cost;
      map.map_end = h->last_offset() + 1;
      mapped_any = true;
    }
  }
  return map;
}

int64_t saturating_add(int64_t a, int64_t b) {
  if (b > 0 && a > std::numeric_limits<int64_t>::max() - b) {
    return std::numeric_limits<int64_t>::max();
  }
  return a + b;
}

}  // namespace

StorageResult<LogCleaner::Stats> LogCleaner::clean(PartitionLog& log, int64_t now_ms,
                                                   const Options& options) {
  auto pass = log.begin_cleaning_pass();
  Stats stats;
  const std::string& dir = log.dir();
  auto step = [&](std::string_view name) {
    if (options.hook) options.hook(name);
  };

  for (;;) {
    auto range = log.cleanable_range(now_ms);
    if (!range) break;
    const LogConfig& config = range->config;
    ++stats.rounds;

    // ---- Pass 1: key -> latest offset (bounded), producer id -> base offset of its last batch.
    // Segments in the prefix are immutable and synced; only the cleaner
    // rewrites them. Retention/DeleteRecords may delete them meanwhile: reads
    // go on through the open descriptors and the swap notices.
    auto mapped = build_key_map(*range, options.dedupe_buffer_bytes, log);
    if (!mapped) return mapped.error();
    const KeyMap& map = *mapped;
    if (log.closed()) break;
    std::unordered_map<int64_t, int64_t> producer_last;
    for (const auto& s : range->segments) {
      uint64_t position = 0;
      while (position < s->size) {
        auto h = s->read_header(position, s->size);
        if (!h) return h.error();
        if (!h->is_control() && h->producer_id >= 0) producer_last[h->producer_id] = h->base_offset;
        position += h->size_in_bytes();
      }
    }

    // Keys of records that stay although they may be superseded (batches kept
    // whole): a later tombstone of such a key must stay too, or the old value
    // would come back. Bounded like the key map; past the bound no tombstone
    // is dropped in this round.
    std::unordered_set<std::string> pinned;
    int64_t pinned_bytes = 0;
    bool pinned_overflow = false;
    auto pin = [&](std::span<const record::Record> records) {
      for (const auto& r : records) {
        if (!r.key || pinned_overflow) continue;
        std::string key = r.key->to_string();
        auto latest = map.latest.find(key);
        if (latest != map.latest.end() && latest->second == r.offset) continue;  // the newest
        auto [it, inserted] = pinned.insert(std::move(key));
        if (inserted) pinned_bytes += entry_cost(it->size());
        if (pinned_bytes > options.dedupe_buffer_bytes) pinned_overflow = true;
      }
    };
    const int64_t horizon = saturating_add(now_ms, config.delete_retention_ms);

    // ---- Pass 2: rewrite segment by segment, oldest first, those holding mapped offsets.
    for (const auto& s : range->segments) {
      if (s->base_offset >= map.map_end) break;
      if (log.closed()) break;
      auto opened = log.create_cleaned_file(s);
      if (!opened) {
        if (opened.code() == Errc::closed) break;
        if (opened.code() == Errc::not_found) continue;  // deleted by retention/DeleteRecords
        return opened.error();
      }
      std::unique_ptr<io::File> out = std::move(*opened);
      bool changed = false;
      int64_t removed = 0;
      uint64_t position = 0;
      while (position < s->size) {
        auto h = s->read_header(position, s->size);
        if (!h) return h.error();
        auto bytes = read_batch(*s, position, *h);
        if (!bytes) return bytes.error();
        const bool last_in_segment = position + h->size_in_bytes() == s->size;
        const uint64_t at = position;
        position += h->size_in_bytes();
        std::vector<uint8_t> rebuilt;
        std::span<const uint8_t> write = *bytes;
        if (h->is_control()) {
          // kept as it is
        } else if (last_in_segment || h->base_offset >= map.map_end) {
          // Kept whole: the segment's last batch, or past this round's map.
          if (last_in_segment) {
            auto records = record::decode_records(*bytes);
            if (!records) return corrupt(*s, at, records.error().message);
            pin(*records);
          }
        } else {
          auto records = record::decode_records(*bytes);
          if (!records) return corrupt(*s, at, records.error().message);
          const bool has_horizon = (h->attributes & record::kDeleteHorizonBit) != 0;
          const bool horizon_passed = has_horizon && now_ms >= h->base_timestamp;
          bool keeps_tombstone = false;
          std::vector<record::Record> kept;
          for (auto& r : *records) {
            bool keep = true;  // null keys are invalid in compacted topics: keep them
            if (r.key) {
              const std::string key = r.key->to_string();
              auto it = map.latest.find(key);
              if (it != map.latest.end() && it->second > r.offset) {
                keep = false;  // superseded
              } else if (!r.value) {
                keep = !horizon_passed || pinned_overflow || pinned.count(key);
                keeps_tombstone |= keep;
              }
            }
            if (keep) kept.push_back(r);
          }
          const bool producer_batch = h->producer_id >= 0;
          const bool producer_last_batch =
              producer_batch && producer_last[h->producer_id] == h->base_offset;
          // A kept tombstone starts its delete.retention.ms now (KIP-534).
          const bool stamp = keeps_tombstone && !has_horizon;
          const int64_t base_timestamp = stamp ? horizon : h->base_timestamp;
          const int16_t attributes =
              int16_t(stamp ? h->attributes | record::kDeleteHorizonBit : h->attributes);
          if (producer_batch && (!kept.empty() || producer_last_batch)) {
            // Never split an idempotent batch: its sequence range must stay
            // true. Kept whole (with its horizon stamped if it needs one).
            pin(*records);
            if (stamp) {
              rebuilt = rebuild_batch(*h, *records, base_timestamp, attributes);
              write = rebuilt;
              changed = true;
            }
          } else if (kept.size() == records->size() && !stamp) {
            // whole
          } else if (kept.empty()) {
            changed = true;
            removed += int64_t(records->size());
            continue;
          } else {
            changed = true;
            removed += int64_t(records->size() - kept.size());
            for (size_t i = 0; i < kept.size();) {
              size_t j = i + 1;
              while (j < kept.size() && kept[j].offset == kept[j - 1].offset + 1) ++j;
              auto part = rebuild_batch(*h, std::span<const record::Record>(kept).subspan(i, j - i),
                                        base_timestamp, attributes);
              rebuilt.insert(rebuilt.end(), part.begin(), part.end());
              i = j;
            }
            write = rebuilt;
          }
        }
        if (int64_t(out->size() + write.size()) > format::kMaxSegmentBytes) {
          // Decompressed past the segment limit: leave it as is. Its records
          // all stay, superseded or not, so no tombstone may go this round.
          changed = false;
          pinned_overflow = true;
          break;
        }
        if (auto r = out->append(write); !r) return io_failure(r.error());
      }
      if (!changed) {
        out.reset();
        if (auto r = log.discard_cleaned_file(s->base_offset); !r) return r.error();
        continue;
      }
      const uint64_t new_size = out->size();
      step("cleaned_written");
      if (auto r = out->sync(); !r) return io_failure(r.error());
      out.reset();
      step("cleaned_synced");
      auto swapped = log.swap_segments(s, new_size, now_ms, options.hook);
      if (!swapped) return swapped.error();
      if (*swapped == PartitionLog::SwapOutcome::segment_gone) continue;
      ++stats.segments_rewritten;
      stats.bytes_before += int64_t(s->size);
      stats.bytes_after += int64_t(new_size);
      stats.records_removed += removed;
    }
    log.set_first_dirty_offset(map.map_end);
    if (log.closed() || map.map_end <= range->first_dirty_offset ||
        map.map_end >= range->segments.back()->next_offset) {
      break;
    }
  }
  if (stats.segments_rewritten > 0) {
    HF_INFO("{}: cleaned {} segments in {} rounds, {} -> {} bytes, {} records removed", dir,
            stats.segments_rewritten, stats.rounds, stats.bytes_before, stats.bytes_after,
            stats.records_removed);
  }
  return stats;
}

}  // namespace holdfast::storage
