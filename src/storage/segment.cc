#include "storage/segment.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "base/log.h"
#include "storage/batch_walker.h"
#include "storage/format.h"

namespace holdfast::storage {

using record::BatchHeader;
using record::kBatchHeaderSize;

Error<Errc> io_failure(const Error<io::Errc>& error) {
  return make_error(Errc::io_error, error.message);
}

Segment::Segment(std::string dir, int64_t base, std::unique_ptr<io::File> log, int64_t now_ms)
    : base_offset(base),
      next_offset(base),
      created_ms(now_ms),
      dir_(std::move(dir)),
      log_path_(io::join_path(dir_, format::segment_file_name(base, format::kLogSuffix))),
      log_(std::move(log)) {}

StorageResult<std::shared_ptr<Segment>> Segment::create(io::FileSystem& fs, const std::string& dir,
                                                        int64_t base_offset, int64_t now_ms) {
  std::string path = io::join_path(dir, format::segment_file_name(base_offset, format::kLogSuffix));
  auto file = fs.open(path, io::OpenMode::create_new);
  if (!file) {
    return make_error(
        file.code() == io::Errc::already_exists ? Errc::already_exists : Errc::io_error,
        file.error().message);
  }
  auto segment = std::shared_ptr<Segment>(new Segment(dir, base_offset, std::move(*file), now_ms));
  segment->index_files_current = false;
  segment->bytes_since_index_ = UINT64_MAX / 2;  // index the first batch
  return segment;
}

StorageResult<std::shared_ptr<Segment>> Segment::open_existing(io::FileSystem& fs,
                                                               const std::string& dir,
                                                               int64_t base_offset,
                                                               int64_t now_ms) {
  std::string path = io::join_path(dir, format::segment_file_name(base_offset, format::kLogSuffix));
  auto file = fs.open(path, io::OpenMode::open_existing);
  if (!file) return io_failure(file.error());
  return std::shared_ptr<Segment>(new Segment(dir, base_offset, std::move(*file), now_ms));
}

void Segment::note_batch(uint64_t position, uint64_t batch_size, int64_t base,
                         int64_t max_timestamp, int64_t last, int32_t index_interval_bytes) {
  if (bytes_since_index_ >= uint64_t(index_interval_bytes)) {
    if (largest_timestamp >= 0 &&
        (time_index_.empty() || largest_timestamp > time_index_.back().timestamp)) {
      time_index_.push_back(
          {largest_timestamp, uint32_t(offset_of_largest_timestamp - base_offset)});
    }
    index_.push_back({uint32_t(base - base_offset), uint32_t(position)});
    bytes_since_index_ = 0;
  }
  bytes_since_index_ += batch_size;
  if (max_timestamp > largest_timestamp) {
    largest_timestamp = max_timestamp;
    offset_of_largest_timestamp = base;
  }
  next_offset = last + 1;
  size = position + batch_size;
  ++batch_count;
  index_files_current = false;
}

StorageResult<void> Segment::append(std::span<const uint8_t> batch, const BatchHeader& stamped,
                                    int32_t index_interval_bytes) {
  uint64_t position = size;
  if (auto r = log_->append(batch); !r) {
    // Never leave half a batch behind the bookkeeping's back.
    if (auto t = log_->truncate(position); !t) {
      HF_ERROR("cannot cut {} back to {} after a failed write: {}", log_path_, position,
               t.error().message);
    }
    return io_failure(r.error());
  }
  note_batch(position, batch.size(), stamped.base_offset, stamped.max_timestamp,
             stamped.last_offset(), index_interval_bytes);
  return {};
}

StorageResult<void> Segment::read_exact(uint64_t position, std::span<uint8_t> out) const {
  auto n = log_->read_at(position, out);
  if (!n) return io_failure(n.error());
  if (*n != out.size()) {
    return make_error(Errc::corrupt, fmt::format("{}: short read of {} bytes at {} (got {})",
                                                 log_path_, out.size(), position, *n));
  }
  return {};
}

StorageResult<BatchHeader> Segment::read_header(uint64_t position, uint64_t end) const {
  if (end < position + kBatchHeaderSize) {
    return make_error(Errc::corrupt,
                      fmt::format("{}: {} bytes at {} are too few for a batch header", log_path_,
                                  end - std::min(end, position), position));
  }
  uint8_t buf[kBatchHeaderSize];
  if (auto r = read_exact(position, buf); !r) return r.error();
  auto header = record::parse_batch_header(buf);
  if (!header) {
    return make_error(Errc::corrupt,
                      fmt::format("{} at {}: {}", log_path_, position, header.error().message));
  }
  if (header->length < int32_t(kBatchHeaderSize - record::kLogOverhead) ||
      position + header->size_in_bytes() > end) {
    return make_error(Errc::corrupt, fmt::format("{} at {}: batch length {} does not fit",
                                                 log_path_, position, header->length));
  }
  return *header;
}

StorageResult<uint64_t> Segment::scan_to_offset(int64_t offset, uint64_t from, uint64_t end) const {
  uint64_t position = from;
  while (position < end) {
    auto header = read_header(position, end);
    if (!header) return header.error();
    if (header->last_offset() >= offset) return position;
    position += header->size_in_bytes();
  }
  return end;
}

uint64_t Segment::index_lookup(int64_t offset) const {
  if (offset < base_offset) return 0;
  auto relative = uint64_t(offset - base_offset);
  auto it =
      std::upper_bound(index_.begin(), index_.end(), relative,
                       [](uint64_t rel, const IndexEntry& e) { return rel < e.relative_offset; });
  if (it == index_.begin()) return 0;
  return std::prev(it)->position;
}

uint64_t Segment::time_index_lookup(int64_t ts) const {
  // Entries with timestamp < ts: every batch up to that entry's offset has a
  // max timestamp below ts, so the answer is at or after it.
  auto it = std::lower_bound(time_index_.begin(), time_index_.end(), ts,
                             [](const TimeIndexEntry& e, int64_t t) { return e.timestamp < t; });
  if (it == time_index_.begin()) return 0;
  return index_lookup(base_offset + std::prev(it)->relative_offset);
}

StorageResult<std::optional<BatchDamage>> Segment::scan(uint64_t from, bool check_crc,
                                                        int32_t index_interval_bytes) {
  BatchWalker walker(*log_, log_path_, from, log_->size(), base_offset, next_offset, check_crc);
  for (;;) {
    auto batch = walker.next();
    if (!batch) return batch.error();
    if (!*batch) break;
    const auto& [position, header] = **batch;
    note_batch(position, header.size_in_bytes(), header.base_offset, header.max_timestamp,
               header.last_offset(), index_interval_bytes);
  }
  size = walker.position();
  return walker.damage();
}

bool Segment::load_index_files(io::FileSystem& fs, int64_t below_offset) {
  std::string index_path =
      io::join_path(dir_, format::segment_file_name(base_offset, format::kIndexSuffix));
  std::string time_path =
      io::join_path(dir_, format::segment_file_name(base_offset, format::kTimeIndexSuffix));
  auto index_bytes = io::read_file(fs, index_path);
  auto time_bytes = io::read_file(fs, time_path);
  if (!index_bytes || !time_bytes) return false;
  if (index_bytes->empty() || index_bytes->size() % format::kOffsetIndexEntrySize != 0 ||
      time_bytes->size() % format::kTimeIndexEntrySize != 0) {
    return false;
  }
  uint64_t file_size = log_->size();
  std::vector<IndexEntry> index;
  for (size_t i = 0; i < index_bytes->size(); i += format::kOffsetIndexEntrySize) {
    IndexEntry e{load_be32(index_bytes->data() + i), load_be32(index_bytes->data() + i + 4)};
    if (base_offset + int64_t(e.relative_offset) >= below_offset) break;
    if (e.position >= file_size) return false;
    if (!index.empty() && (e.relative_offset <= index.back().relative_offset ||
                           e.position <= index.back().position)) {
      return false;
    }
    index.push_back(e);
  }
  std::vector<TimeIndexEntry> time_index;
  for (size_t i = 0; i < time_bytes->size(); i += format::kTimeIndexEntrySize) {
    TimeIndexEntry e{int64_t(load_be64(time_bytes->data() + i)),
                     load_be32(time_bytes->data() + i + 8)};
    if (base_offset + int64_t(e.relative_offset) >= below_offset) break;
    if (!time_index.empty() && (e.timestamp <= time_index.back().timestamp ||
                                e.relative_offset < time_index.back().relative_offset)) {
      return false;
    }
    time_index.push_back(e);
  }
  if (index.empty()) return false;
  // The last entry must point at a batch with the offset it claims.
  IndexEntry last = index.back();
  auto header = read_header(last.position, file_size);
  if (!header || header->base_offset != base_offset + int64_t(last.relative_offset)) return false;
  // Rescan from the last entry: it recomputes the tail's bookkeeping.
  index.pop_back();
  while (!time_index.empty() && time_index.back().relative_offset >= last.relative_offset) {
    time_index.pop_back();
  }
  index_ = std::move(index);
  time_index_ = std::move(time_index);
  if (!time_index_.empty()) {
    largest_timestamp = time_index_.back().timestamp;
    offset_of_largest_timestamp = base_offset + time_index_.back().relative_offset;
  }
  size = last.position;
  next_offset = base_offset + last.relative_offset;
  bytes_since_index_ = UINT64_MAX / 2;
  return true;
}

StorageResult<std::optional<BatchDamage>> Segment::load_batches(io::FileSystem& fs,
                                                                bool check_crc,
                                                                int32_t index_interval_bytes,
                                                                int64_t trusted_below) {
  index_.clear();
  time_index_.clear();
  largest_timestamp = -1;
  offset_of_largest_timestamp = -1;
  size = 0;
  next_offset = base_offset;
  batch_count = 0;
  bytes_since_index_ = UINT64_MAX / 2;
  bool from_index = check_crc ? trusted_below > base_offset && load_index_files(fs, trusted_below)
                              : load_index_files(fs, std::numeric_limits<int64_t>::max());
  const uint64_t scan_from = size;
  auto damage = scan(scan_from, check_crc, index_interval_bytes);
  if (!damage) return damage;
  scanned_at_load = size - scan_from;
  synced_size = size;
  // Trusted index files still describe the segment unless the walk stopped
  // early (a recovery mark's describe only a prefix).
  index_files_current = from_index && !check_crc && !*damage;
  return damage;
}

StorageResult<bool> Segment::load(io::FileSystem& fs, bool recover, int32_t index_interval_bytes) {
  auto damage = load_batches(fs, recover, index_interval_bytes);
  if (!damage) return damage.error();
  if (*damage) HF_WARN("{}", (*damage)->describe());
  return damage->has_value();
}

StorageResult<void> Segment::truncate_to(uint64_t position) {
  if (auto r = log_->truncate(position); !r) return io_failure(r.error());
  size = std::min(size, position);
  synced_size = std::min(synced_size, position);
  index_files_current = false;
  return {};
}

StorageResult<Segment::TruncationPoint> Segment::truncation_point(int64_t offset) const {
  TruncationPoint point;
  auto cut = scan_to_offset(offset, index_lookup(offset), size);
  if (!cut) return cut.error();
  point.position = *cut;
  // The last indexed batch strictly before the cut (or the file start): the
  // batches from there to the cut give the end offset of what remains.
  auto it = std::lower_bound(index_.begin(), index_.end(), point.position,
                             [](const IndexEntry& e, uint64_t p) { return e.position < p; });
  point.rescan_from = it == index_.begin() ? 0 : std::prev(it)->position;
  point.end_offset = base_offset;
  uint64_t position = point.rescan_from;
  while (position < point.position) {
    auto header = read_header(position, point.position);
    if (!header) return header.error();
    point.end_offset = header->last_offset() + 1;
    position += header->size_in_bytes();
  }
  return point;
}

StorageResult<void> Segment::truncate_at(const TruncationPoint& point,
                                         int32_t index_interval_bytes) {
  if (auto r = log_->truncate(point.position); !r) return io_failure(r.error());
  // Back to the state just before the batch at rescan_from (as
  // load_index_files does for its last entry), then walk to the cut.
  auto first_dropped =
      std::lower_bound(index_.begin(), index_.end(), point.rescan_from,
                       [](const IndexEntry& e, uint64_t p) { return e.position < p; });
  uint32_t from_relative = first_dropped == index_.end() || point.rescan_from == 0
                               ? 0
                               : first_dropped->relative_offset;
  index_.erase(first_dropped, index_.end());
  if (point.rescan_from == 0) {
    index_.clear();
    time_index_.clear();
  } else {
    while (!time_index_.empty() && time_index_.back().relative_offset >= from_relative) {
      time_index_.pop_back();
    }
  }
  largest_timestamp = time_index_.empty() ? -1 : time_index_.back().timestamp;
  offset_of_largest_timestamp =
      time_index_.empty() ? -1 : base_offset + time_index_.back().relative_offset;
  size = point.rescan_from;
  next_offset = base_offset + from_relative;
  synced_size = std::min(synced_size, point.position);
  bytes_since_index_ = UINT64_MAX / 2;
  index_files_current = false;
  auto damage = scan(point.rescan_from, /*check_crc=*/false, index_interval_bytes);
  if (!damage) return damage.error();
  if (*damage) return make_error(Errc::corrupt, (*damage)->describe());
  if (size != point.position || next_offset != point.end_offset) {
    return make_error(Errc::corrupt,
                      fmt::format("{}: after cutting at byte {} the segment ends at byte {}, "
                                  "offset {} (expected offset {})",
                                  log_path_, point.position, size, next_offset,
                                  point.end_offset));
  }
  return {};
}

StorageResult<void> Segment::remove_index_files(io::FileSystem& fs) const {
  for (auto suffix : {format::kIndexSuffix, format::kTimeIndexSuffix}) {
    std::string path = io::join_path(dir_, format::segment_file_name(base_offset, suffix));
    auto r = fs.remove(path);
    if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
  }
  return {};
}

namespace {

Segment::EncodedIndexes encode_entries(const std::vector<IndexEntry>& index,
                                       const std::vector<TimeIndexEntry>& time_index) {
  Segment::EncodedIndexes out;
  out.index.resize(index.size() * format::kOffsetIndexEntrySize);
  for (size_t i = 0; i < index.size(); ++i) {
    store_be32(out.index.data() + i * 8, index[i].relative_offset);
    store_be32(out.index.data() + i * 8 + 4, index[i].position);
  }
  out.time_index.resize(time_index.size() * format::kTimeIndexEntrySize);
  for (size_t i = 0; i < time_index.size(); ++i) {
    store_be64(out.time_index.data() + i * 12, uint64_t(time_index[i].timestamp));
    store_be32(out.time_index.data() + i * 12 + 8, time_index[i].relative_offset);
  }
  return out;
}

}  // namespace

StorageResult<void> Segment::write_index_files(io::FileSystem& fs) const {
  auto time_entries = time_index_;
  // A final entry with the segment's largest timestamp (Kafka does the same at roll).
  if (largest_timestamp >= 0 &&
      (time_entries.empty() || largest_timestamp > time_entries.back().timestamp)) {
    time_entries.push_back(
        {largest_timestamp, uint32_t(offset_of_largest_timestamp - base_offset)});
  }
  return write_index_bytes(fs, encode_entries(index_, time_entries));
}

Segment::EncodedIndexes Segment::encode_index_prefix(uint64_t below_size,
                                                     int64_t below_offset) const {
  auto index_end = std::partition_point(index_.begin(), index_.end(), [&](const IndexEntry& e) {
    return e.position < below_size;
  });
  auto time_end = std::partition_point(
      time_index_.begin(), time_index_.end(),
      [&](const TimeIndexEntry& e) { return base_offset + int64_t(e.relative_offset) < below_offset; });
  return encode_entries({index_.begin(), index_end}, {time_index_.begin(), time_end});
}

StorageResult<void> Segment::write_index_bytes(io::FileSystem& fs,
                                               const EncodedIndexes& bytes) const {
  std::string index_path =
      io::join_path(dir_, format::segment_file_name(base_offset, format::kIndexSuffix));
  std::string time_path =
      io::join_path(dir_, format::segment_file_name(base_offset, format::kTimeIndexSuffix));
  if (auto r = io::write_file_atomically(fs, index_path, bytes.index); !r)
    return io_failure(r.error());
  if (auto r = io::write_file_atomically(fs, time_path, bytes.time_index); !r)
    return io_failure(r.error());
  return {};
}

static std::string txn_index_path(const std::string& dir, int64_t base) {
  return io::join_path(dir, format::segment_file_name(base, format::kTxnIndexSuffix));
}

StorageResult<void> Segment::append_aborted_txn(io::FileSystem& fs, const AbortedTxn& txn,
                                                bool& created) {
  aborted_txns.push_back(txn);
  const std::string path = txn_index_path(dir_, base_offset);
  if (!txn_file_) {
    created = !fs.exists(path);
    auto file = fs.open(path, io::OpenMode::create);
    if (!file) return io_failure(file.error());
    txn_file_ = std::shared_ptr<io::File>(std::move(*file));
  }
  std::vector<uint8_t> bytes;
  encode_aborted_txn(txn, bytes);
  if (auto r = txn_file_->append(bytes); !r) return io_failure(r.error());
  txn_unsynced_ = true;
  return {};
}

std::shared_ptr<io::File> Segment::txn_index_to_sync() {
  if (!txn_unsynced_) return nullptr;
  txn_unsynced_ = false;
  return txn_file_;
}

StorageResult<std::vector<AbortedTxn>> Segment::read_txn_index_file(io::FileSystem& fs) const {
  const std::string path = txn_index_path(dir_, base_offset);
  if (!fs.exists(path)) return std::vector<AbortedTxn>();
  auto data = io::read_file(fs, path);
  if (!data) return io_failure(data.error());
  return decode_txn_index(*data);
}

StorageResult<void> Segment::rewrite_txn_index(io::FileSystem& fs) {
  const std::string path = txn_index_path(dir_, base_offset);
  txn_file_.reset();
  txn_unsynced_ = false;
  if (aborted_txns.empty()) {
    auto r = fs.remove(path);
    if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
    return {};
  }
  std::vector<uint8_t> bytes;
  for (const auto& t : aborted_txns) encode_aborted_txn(t, bytes);
  if (auto r = io::write_file_atomically(fs, path, bytes); !r) return io_failure(r.error());
  auto file = fs.open(path, io::OpenMode::open_existing);
  if (!file) return io_failure(file.error());
  txn_file_ = std::shared_ptr<io::File>(std::move(*file));
  return {};
}

StorageResult<void> Segment::remove_files(io::FileSystem& fs) const {
  for (auto suffix : {format::kLogSuffix, format::kIndexSuffix, format::kTimeIndexSuffix,
                      format::kTxnIndexSuffix}) {
    std::string path = io::join_path(dir_, format::segment_file_name(base_offset, suffix));
    auto r = fs.remove(path);
    if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
  }
  return {};
}

}  // namespace holdfast::storage
