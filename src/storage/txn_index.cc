#include "storage/txn_index.h"

#include <fmt/format.h>

#include "base/bytes.h"

namespace holdfast::storage {
namespace {

constexpr size_t kAttributesOffset = 21;  // base offset, length, leader epoch, magic, CRC

}  // namespace

StorageResult<ControlMarker> parse_control_batch(std::span<const uint8_t> batch) {
  auto header = record::parse_batch_header(batch);
  if (!header || !header->is_control()) {
    return make_error(Errc::corrupt, std::string("not a control batch"));
  }
  auto records = record::decode_records(batch);
  if (!records || records->empty()) {
    return make_error(Errc::corrupt, std::string("control batch without a record"));
  }
  const auto& r = records->front();
  if (!r.key || r.key->size() < 4) {
    return make_error(Errc::corrupt, std::string("control record key shorter than 4 bytes"));
  }
  const int16_t type = int16_t(load_be16(r.key->data() + 2));
  if (type != 0 && type != 1) {
    return make_error(Errc::corrupt, fmt::format("unknown control record type {}", type));
  }
  ControlMarker marker;
  marker.type = ControlType(type);
  if (r.value && r.value->size() >= 6) marker.coordinator_epoch = int32_t(load_be32(r.value->data() + 2));
  return marker;
}

Bytes make_control_batch(int64_t producer_id, int16_t producer_epoch, ControlMarker marker,
                         int64_t timestamp_ms) {
  uint8_t key[4];
  store_be16(key, 0);
  store_be16(key + 2, uint16_t(marker.type));
  uint8_t value[6];
  store_be16(value, 0);
  store_be32(value + 2, uint32_t(marker.coordinator_epoch));
  record::BatchBuilder builder;
  builder.set_producer(producer_id, producer_epoch, -1).set_transactional(true);
  builder.add(std::string_view(reinterpret_cast<const char*>(key), sizeof key),
              std::string_view(reinterpret_cast<const char*>(value), sizeof value), timestamp_ms);
  Bytes built = builder.build();
  std::vector<uint8_t> bytes(built.span().begin(), built.span().end());
  uint16_t attributes = load_be16(bytes.data() + kAttributesOffset);
  store_be16(bytes.data() + kAttributesOffset, uint16_t(attributes | record::kControlBit));
  store_be32(bytes.data() + 17, record::compute_batch_crc(bytes));
  return Bytes(std::move(bytes));
}

void encode_aborted_txn(const AbortedTxn& txn, std::vector<uint8_t>& out) {
  const size_t at = out.size();
  out.resize(at + kTxnIndexEntrySize);
  uint8_t* p = out.data() + at;
  store_be16(p, uint16_t(kTxnIndexVersion));
  store_be64(p + 2, uint64_t(txn.producer_id));
  store_be64(p + 10, uint64_t(txn.first_offset));
  store_be64(p + 18, uint64_t(txn.last_offset));
  store_be64(p + 26, uint64_t(txn.last_stable_offset));
}

StorageResult<std::vector<AbortedTxn>> decode_txn_index(std::span<const uint8_t> data) {
  std::vector<AbortedTxn> out;
  for (size_t at = 0; at + kTxnIndexEntrySize <= data.size(); at += kTxnIndexEntrySize) {
    const uint8_t* p = data.data() + at;
    const int16_t version = int16_t(load_be16(p));
    if (version != kTxnIndexVersion) {
      return make_error(Errc::corrupt,
                        fmt::format("aborted-transaction index entry of unknown version {}", version));
    }
    AbortedTxn t;
    t.producer_id = int64_t(load_be64(p + 2));
    t.first_offset = int64_t(load_be64(p + 10));
    t.last_offset = int64_t(load_be64(p + 18));
    t.last_stable_offset = int64_t(load_be64(p + 26));
    out.push_back(t);
  }
  return out;
}

}  // namespace holdfast::storage
