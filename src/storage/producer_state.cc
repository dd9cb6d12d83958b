#include "storage/producer_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "base/bytes.h"
#include "base/crc32c.h"
#include "storage/format.h"

namespace holdfast::storage {
namespace {

constexpr int32_t kMaxSequence = std::numeric_limits<int32_t>::max();

bool in_sequence(int32_t last_sequence, int32_t next_sequence) {
  return int64_t(next_sequence) == int64_t(last_sequence) + 1 ||
         (next_sequence == 0 && last_sequence == kMaxSequence);
}

int32_t last_sequence_of(const record::BatchHeader& batch) {
  return increment_sequence(batch.base_sequence, batch.last_offset_delta);
}

class SnapshotReader {
 public:
  explicit SnapshotReader(std::span<const uint8_t> data) : data_(data) {}
  bool has(size_t n) const { return data_.size() - pos_ >= n; }
  uint8_t u8() { return data_[pos_++]; }
  uint16_t u16() {
    uint16_t v = load_be16(data_.data() + pos_);
    pos_ += 2;
    return v;
  }
  uint32_t u32() {
    uint32_t v = load_be32(data_.data() + pos_);
    pos_ += 4;
    return v;
  }
  uint64_t u64() {
    uint64_t v = load_be64(data_.data() + pos_);
    pos_ += 8;
    return v;
  }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.resize(out.size() + 2);
  store_be16(out.data() + out.size() - 2, v);
}
void put32(std::vector<uint8_t>& out, uint32_t v) {
  out.resize(out.size() + 4);
  store_be32(out.data() + out.size() - 4, v);
}
void put64(std::vector<uint8_t>& out, uint64_t v) {
  out.resize(out.size() + 8);
  store_be64(out.data() + out.size() - 8, v);
}

}  // namespace

int32_t increment_sequence(int32_t sequence, int32_t increment) {
  if (sequence > kMaxSequence - increment) return increment - (kMaxSequence - sequence) - 1;
  return sequence + increment;
}

StorageResult<std::optional<ProducerBatch>> ProducerStateTable::check(
    const record::BatchHeader& batch) const {
  auto it = entries_.find(batch.producer_id);
  // Rule 5 (KIP-360): nothing known about this producer, accept whatever it sends.
  if (it == entries_.end()) return std::optional<ProducerBatch>();
  const ProducerEntry& entry = it->second;
  const int32_t first = batch.base_sequence;
  // Rule 1: a retry of one of the last five batches, matched on the exact range.
  if (batch.producer_epoch == entry.epoch) {
    const int32_t last = last_sequence_of(batch);
    for (const auto& b : entry.batches) {
      if (b.first_sequence == first && b.last_sequence == last) return std::optional(b);
    }
  }
  // Rule 2.
  if (batch.producer_epoch < entry.epoch) {
    return make_error(Errc::invalid_producer_epoch,
                      fmt::format("producer {} epoch {} is older than the partition's epoch {}",
                                  batch.producer_id, batch.producer_epoch, entry.epoch));
  }
  // Rule 3.
  if (batch.producer_epoch != entry.epoch) {
    if (first != 0) {
      return make_error(
          Errc::out_of_order_sequence,
          fmt::format("producer {} new epoch {} must start at sequence 0, not {} (previous epoch {})",
                      batch.producer_id, batch.producer_epoch, first, entry.epoch));
    }
    return std::optional<ProducerBatch>();
  }
  // Rule 4.
  if (!in_sequence(entry.last_sequence(), first)) {
    return make_error(Errc::out_of_order_sequence,
                      fmt::format("producer {} epoch {}: sequence {} does not follow {}",
                                  batch.producer_id, batch.producer_epoch, first,
                                  entry.last_sequence()));
  }
  return std::optional<ProducerBatch>();
}

void ProducerStateTable::record(const record::BatchHeader& stamped, int64_t now_ms) {
  ProducerEntry& entry = entries_[stamped.producer_id];
  entry.producer_id = stamped.producer_id;
  if (entry.epoch != stamped.producer_epoch) {
    entry.batches.clear();
    entry.epoch = stamped.producer_epoch;
  }
  if (entry.batches.size() == kProducerBatchesToRetain) entry.batches.pop_front();
  entry.batches.push_back(ProducerBatch{stamped.base_sequence, last_sequence_of(stamped),
                                        stamped.base_offset, stamped.last_offset(),
                                        stamped.max_timestamp});
  entry.last_update_ms = now_ms;
  if (stamped.is_transactional() && entry.current_txn_first_offset < 0) {
    entry.current_txn_first_offset = stamped.base_offset;
    ongoing_.emplace(stamped.base_offset, stamped.producer_id);
  }
}

StorageResult<void> ProducerStateTable::check_marker(const record::BatchHeader& batch,
                                                     const ControlMarker& marker) const {
  auto it = entries_.find(batch.producer_id);
  if (it == entries_.end()) return {};
  const ProducerEntry& entry = it->second;
  if (batch.producer_epoch < entry.epoch) {
    return make_error(Errc::invalid_producer_epoch,
                      fmt::format("marker for producer {} has epoch {}, older than the "
                                  "partition's epoch {}",
                                  batch.producer_id, batch.producer_epoch, entry.epoch));
  }
  if (marker.coordinator_epoch < entry.coordinator_epoch) {
    return make_error(Errc::coordinator_fenced,
                      fmt::format("marker for producer {} has coordinator epoch {}, older than "
                                  "the last marker's {}",
                                  batch.producer_id, marker.coordinator_epoch,
                                  entry.coordinator_epoch));
  }
  return {};
}

std::optional<AbortedTxn> ProducerStateTable::record_marker(const record::BatchHeader& stamped,
                                                            const ControlMarker& marker,
                                                            int64_t now_ms) {
  ProducerEntry& entry = entries_[stamped.producer_id];
  entry.producer_id = stamped.producer_id;
  if (entry.epoch != stamped.producer_epoch) {
    entry.batches.clear();
    entry.epoch = stamped.producer_epoch;
  }
  entry.coordinator_epoch = marker.coordinator_epoch;
  entry.last_update_ms = now_ms;
  const int64_t marker_offset = stamped.base_offset;
  int64_t first = marker_offset;
  if (entry.current_txn_first_offset >= 0) {
    first = entry.current_txn_first_offset;
    ongoing_.erase(first);
    entry.current_txn_first_offset = -1;
  }
  completed_.emplace_back(first, marker_offset);
  if (marker.type != ControlType::abort) return std::nullopt;
  // Kafka's lastStableOffset(completedTxn): the next transaction still open.
  const int64_t lso = ongoing_.empty() ? marker_offset + 1 : ongoing_.begin()->first;
  return AbortedTxn{stamped.producer_id, first, marker_offset, lso};
}

std::optional<int64_t> ProducerStateTable::first_unstable_offset(int64_t high_watermark) {
  std::erase_if(completed_, [&](const auto& c) { return c.second < high_watermark; });
  std::optional<int64_t> first;
  if (!ongoing_.empty()) first = ongoing_.begin()->first;
  for (const auto& c : completed_) {
    if (!first || c.first < *first) first = c.first;
  }
  return first;
}

size_t ProducerStateTable::expire(int64_t now_ms, int64_t expiration_ms, int64_t keep_producer_id) {
  return std::erase_if(entries_, [&](const auto& item) {
    const ProducerEntry& e = item.second;
    return e.producer_id != keep_producer_id && e.current_txn_first_offset < 0 &&
           now_ms - e.last_update_ms >= expiration_ms;
  });
}

const ProducerEntry* ProducerStateTable::find(int64_t producer_id) const {
  auto it = entries_.find(producer_id);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<uint8_t> ProducerStateTable::encode_snapshot(int64_t offset) const {
  std::vector<const ProducerEntry*> sorted;
  sorted.reserve(entries_.size());
  for (const auto& [id, e] : entries_) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const ProducerEntry* a, const ProducerEntry* b) { return a->producer_id < b->producer_id; });
  std::vector<uint8_t> out;
  out.reserve(format::kSnapshotHeaderSize +
              sorted.size() * (format::kSnapshotEntryHeaderSize +
                               kProducerBatchesToRetain * format::kSnapshotBatchSize));
  put16(out, format::kSnapshotVersion);
  put32(out, 0);  // CRC, patched below
  put64(out, uint64_t(offset));
  put32(out, uint32_t(sorted.size()));
  for (const ProducerEntry* e : sorted) {
    put64(out, uint64_t(e->producer_id));
    put16(out, uint16_t(e->epoch));
    put64(out, uint64_t(e->last_update_ms));
    put64(out, uint64_t(e->current_txn_first_offset));
    put32(out, uint32_t(e->coordinator_epoch));
    out.push_back(uint8_t(e->batches.size()));
    for (const auto& b : e->batches) {
      put32(out, uint32_t(b.first_sequence));
      put32(out, uint32_t(b.last_sequence));
      put64(out, uint64_t(b.base_offset));
      put64(out, uint64_t(b.last_offset));
      put64(out, uint64_t(b.max_timestamp));
    }
  }
  store_be32(out.data() + 2, crc32c(out.data() + 6, out.size() - 6));
  return out;
}

StorageResult<ProducerStateTable::Decoded> ProducerStateTable::decode_snapshot(
    std::span<const uint8_t> data) {
  auto corrupt = [](const std::string& why) {
    return make_error(Errc::corrupt, "producer state snapshot: " + why);
  };
  if (data.size() < format::kSnapshotHeaderSize) return corrupt("shorter than its header");
  SnapshotReader r(data);
  uint16_t version = r.u16();
  if (version != format::kSnapshotVersion && version != format::kSnapshotVersionV1) {
    return corrupt(fmt::format("unknown version {}", version));
  }
  const size_t entry_header = version == format::kSnapshotVersionV1
                                  ? format::kSnapshotEntryHeaderSizeV1
                                  : format::kSnapshotEntryHeaderSize;
  uint32_t crc = r.u32();
  if (crc != crc32c(data.data() + 6, data.size() - 6)) return corrupt("CRC mismatch");
  Decoded decoded;
  decoded.version = version;
  decoded.offset = int64_t(r.u64());
  uint32_t count = r.u32();
  if (decoded.offset < 0) return corrupt("negative offset");
  if (count > r.remaining() / entry_header) return corrupt("bad entry count");
  for (uint32_t i = 0; i < count; ++i) {
    if (!r.has(entry_header)) return corrupt("truncated entry");
    ProducerEntry e;
    e.producer_id = int64_t(r.u64());
    e.epoch = int16_t(r.u16());
    e.last_update_ms = int64_t(r.u64());
    if (version != format::kSnapshotVersionV1) {
      e.current_txn_first_offset = int64_t(r.u64());
      e.coordinator_epoch = int32_t(r.u32());
      if (e.current_txn_first_offset < -1 || e.current_txn_first_offset >= decoded.offset) {
        return corrupt("ongoing transaction outside the snapshot");
      }
    }
    uint8_t batches = r.u8();
    if (batches > kProducerBatchesToRetain || !r.has(batches * format::kSnapshotBatchSize)) {
      return corrupt("bad batch count");
    }
    for (uint8_t j = 0; j < batches; ++j) {
      ProducerBatch b;
      b.first_sequence = int32_t(r.u32());
      b.last_sequence = int32_t(r.u32());
      b.base_offset = int64_t(r.u64());
      b.last_offset = int64_t(r.u64());
      b.max_timestamp = int64_t(r.u64());
      if (b.last_offset < b.base_offset || b.last_offset >= decoded.offset) {
        return corrupt("batch offsets outside the snapshot");
      }
      e.batches.push_back(b);
    }
    const int64_t txn_first = e.current_txn_first_offset;
    const int64_t id = e.producer_id;
    if (e.producer_id < 0 || !decoded.table.entries_.emplace(e.producer_id, std::move(e)).second) {
      return corrupt("bad or repeated producer id");
    }
    if (txn_first >= 0 && !decoded.table.ongoing_.emplace(txn_first, id).second) {
      return corrupt("two ongoing transactions start at one offset");
    }
  }
  if (r.remaining() != 0) return corrupt("trailing bytes");
  return decoded;
}

}  // namespace holdfast::storage
