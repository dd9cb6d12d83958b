#include "storage/log_cleaner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

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
// timestamps. Consecutive, because record::decode_records (like produce
// validation) requires offset deltas 0..n-1: a batch with holes would be
// unreadable by our own decoders, so a partly kept batch becomes one batch per
// run of kept offsets.
std::vector<uint8_t> rebuild_batch(const BatchHeader& h,
                                   std::span<const record::Record> kept) {
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
    put_varint(r.timestamp - h.base_timestamp);
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
  store_be16(p + kAttributesOffset, uint16_t(h.attributes & ~kCompressionMask));
  store_be32(p + kLastOffsetDeltaOffset, uint32_t(kept.back().offset - base));
  store_be64(p + kBaseTimestampOffset, uint64_t(h.base_timestamp));
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

StorageResult<LogCleaner::Stats> LogCleaner::clean(PartitionLog& log, int64_t now_ms,
                                                   const StepHook& hook) {
  std::lock_guard cleaner_lock(log.cleaner_mu_);
  Stats stats;
  io::FileSystem& fs = log.services_.fs();
  const std::string& dir = log.dir_;
  auto step = [&](std::string_view name) {
    if (hook) hook(name);
  };

  // ---- The cleanable prefix and its dirty ratio.
  std::vector<std::shared_ptr<Segment>> range;
  LogConfig config;
  {
    // Holding flush_mu_ too: a segment that left rolled_unsynced_ has had its
    // index files written by the flush that removed it (the flusher writes
    // them under flush_mu_), so no flusher writes an index file we replace.
    std::lock_guard flush_lock(log.flush_mu_);
    std::lock_guard lock(log.mu_);
    config = log.config_;
    if (log.closed_ || log.failed_ || !config.compact) return stats;
    const int64_t safe = std::min(log.high_watermark_, log.durable_offset_);
    uint64_t total = 0, dirty = 0;
    for (const auto& [base, s] : log.segments_) {
      if (s == log.active_ || s->next_offset > safe) break;
      if (std::find(log.rolled_unsynced_.begin(), log.rolled_unsynced_.end(), s) !=
          log.rolled_unsynced_.end()) {
        break;
      }
      if (now_ms - s->retention_timestamp() < config.min_compaction_lag_ms) break;
      range.push_back(s);
      total += s->size;
      if (s->next_offset > log.first_dirty_offset_) dirty += s->size;
    }
    if (range.empty() || dirty == 0 ||
        double(dirty) / double(total) < config.min_cleanable_dirty_ratio) {
      return stats;
    }
  }

  // ---- Pass 1: key -> latest offset, producer id -> base offset of its last batch.
  // Segments in the prefix are immutable and synced; only the cleaner rewrites
  // them and only retention/DeleteRecords delete them (both wait for us).
  std::unordered_map<std::string, int64_t> latest;
  std::unordered_map<int64_t, int64_t> producer_last;
  for (const auto& s : range) {
    uint64_t position = 0;
    while (position < s->size) {
      auto h = s->read_header(position, s->size);
      if (!h) return h.error();
      if (!h->is_control()) {
        if (h->producer_id >= 0) producer_last[h->producer_id] = h->base_offset;
        auto bytes = read_batch(*s, position, *h);
        if (!bytes) return bytes.error();
        auto records = record::decode_records(*bytes);
        if (!records) return corrupt(*s, position, records.error().message);
        for (const auto& r : *records) {
          if (r.key) latest[r.key->to_string()] = r.offset;
        }
      }
      position += h->size_in_bytes();
    }
  }

  // ---- Pass 2: rewrite segment by segment, oldest first.
  for (const auto& s : range) {
    const std::string cleaned_path = path_of(dir, s->base_offset, format::kCleanedSuffix);
    const std::string swap_path = path_of(dir, s->base_offset, format::kSwapSuffix);
    (void)fs.remove(cleaned_path);  // a leftover of a failed pass
    auto opened = fs.open(cleaned_path, io::OpenMode::create_new);
    if (!opened) return io_failure(opened.error());
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
      position += h->size_in_bytes();
      std::vector<uint8_t> rebuilt;
      std::span<const uint8_t> write = *bytes;
      if (!last_in_segment && !h->is_control()) {
        auto records = record::decode_records(*bytes);
        if (!records) return corrupt(*s, position, records.error().message);
        const bool tombstone_young = now_ms - h->max_timestamp < config.delete_retention_ms;
        std::vector<record::Record> kept;
        for (auto& r : *records) {
          bool keep = !r.key;  // null keys are invalid in compacted topics: keep them
          if (!keep) {
            auto it = latest.find(r.key->to_string());
            keep = it != latest.end() && it->second == r.offset && (r.value || tombstone_young);
          }
          if (keep) kept.push_back(std::move(r));
        }
        const bool producer_last_batch =
            h->producer_id >= 0 && producer_last[h->producer_id] == h->base_offset;
        if (kept.size() == records->size() || producer_last_batch) {
          // whole
        } else if (kept.empty()) {
          changed = true;
          removed += int64_t(records->size());
          continue;
        } else if (h->producer_id >= 0) {
          // Never split an idempotent batch: its sequence range must stay true.
        } else {
          changed = true;
          removed += int64_t(records->size() - kept.size());
          for (size_t i = 0; i < kept.size();) {
            size_t j = i + 1;
            while (j < kept.size() && kept[j].offset == kept[j - 1].offset + 1) ++j;
            auto part = rebuild_batch(*h, std::span<const record::Record>(kept).subspan(i, j - i));
            rebuilt.insert(rebuilt.end(), part.begin(), part.end());
            i = j;
          }
          write = rebuilt;
        }
      }
      if (int64_t(out->size() + write.size()) > format::kMaxSegmentBytes) {
        changed = false;  // decompressed past the segment limit: leave it as is
        break;
      }
      if (auto r = out->append(write); !r) return io_failure(r.error());
    }
    if (!changed) {
      out.reset();
      if (auto r = fs.remove(cleaned_path); !r) return io_failure(r.error());
      continue;
    }
    const uint64_t new_size = out->size();
    step("cleaned_written");
    if (auto r = out->sync(); !r) return io_failure(r.error());
    out.reset();
    step("cleaned_synced");
    // The old index files must never describe the new file: removed in the
    // same directory sync that makes .swap durable (recover_swaps removes
    // them again should only the rename have reached the disk).
    for (auto suffix : {format::kIndexSuffix, format::kTimeIndexSuffix}) {
      auto r = fs.remove(path_of(dir, s->base_offset, suffix));
      if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
    }
    if (auto r = fs.rename(cleaned_path, swap_path); !r) return io_failure(r.error());
    step("swap_renamed");
    if (auto r = fs.sync_dir(dir); !r) return io_failure(r.error());
    step("swap_synced");
    if (auto r = fs.rename(swap_path, s->log_path()); !r) return io_failure(r.error());
    step("log_renamed");
    if (auto r = fs.sync_dir(dir); !r) return io_failure(r.error());
    step("log_synced");

    // Swap the segment in memory. Readers holding the old one keep reading
    // the old file through its open descriptor.
    auto fresh = Segment::open_existing(fs, dir, s->base_offset, now_ms);
    if (!fresh) return fresh.error();
    auto loaded = (*fresh)->load(fs, /*recover=*/true, config.index_interval_bytes);
    if (!loaded) return loaded.error();
    if (*loaded || (*fresh)->next_offset != s->next_offset || (*fresh)->size != new_size) {
      // Cannot happen (we wrote whole batches and kept the last one); the
      // file on disk is still a valid cleaning of the old one.
      return make_error(Errc::corrupt,
                        fmt::format("{}: cleaned segment reloads as {} bytes ending at {}, "
                                    "expected {} bytes ending at {}",
                                    s->log_path(), (*fresh)->size, (*fresh)->next_offset, new_size,
                                    s->next_offset));
    }
    (*fresh)->created_ms = s->created_ms;
    (*fresh)->synced_size = (*fresh)->size;
    {
      std::lock_guard lock(log.mu_);
      auto it = log.segments_.find(s->base_offset);
      if (it != log.segments_.end() && it->second == s) {
        it->second = *fresh;
        log.total_bytes_ += int64_t((*fresh)->size) - int64_t(s->size);
      }
    }
    if (auto r = (*fresh)->write_index_files(fs); !r) {
      HF_WARN("writing the indexes of cleaned {}: {}", s->log_path(), r.error().message);
    } else {
      std::lock_guard lock(log.mu_);
      (*fresh)->index_files_current = true;
    }
    step("indexes_written");
    ++stats.segments_rewritten;
    stats.bytes_before += int64_t(s->size);
    stats.bytes_after += int64_t(new_size);
    stats.records_removed += removed;
  }
  log.first_dirty_offset_ = range.back()->next_offset;
  if (stats.segments_rewritten > 0) {
    HF_INFO("{}: cleaned {} segments, {} -> {} bytes, {} records removed", dir,
            stats.segments_rewritten, stats.bytes_before, stats.bytes_after,
            stats.records_removed);
  }
  return stats;
}

}  // namespace holdfast::storage
