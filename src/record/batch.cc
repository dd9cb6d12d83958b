#include "record/batch.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "base/crc32c.h"
#include "base/varint.h"
#include "record/compression.h"
#include "record/recompress.h"

namespace holdfast::record {

const char* to_string(Errc code) {
  switch (code) {
    case Errc::truncated:
      return "truncated";
    case Errc::corrupt_message:
      return "corrupt_message";
    case Errc::invalid_record:
      return "invalid_record";
    case Errc::message_too_large:
      return "message_too_large";
    case Errc::unsupported_compression:
      return "unsupported_compression";
    case Errc::unsupported_magic:
      return "unsupported_magic";
    case Errc::invalid_timestamp:
      return "invalid_timestamp";
  }
  return "unknown";
}

const char* to_string(Compression compression) {
  switch (compression) {
    case Compression::none:
      return "none";
    case Compression::gzip:
      return "gzip";
    case Compression::snappy:
      return "snappy";
    case Compression::lz4:
      return "lz4";
    case Compression::zstd:
      return "zstd";
  }
  return "unknown";
}

Result<BatchHeader, Errc> parse_batch_header(std::span<const uint8_t> data) {
  if (data.size() < kBatchHeaderSize) {
    return make_error(Errc::truncated, fmt::format("record batch header needs {} bytes, have {}",
                                                   kBatchHeaderSize, data.size()));
  }
  const uint8_t* p = data.data();
  BatchHeader h;
  h.magic = int8_t(p[kMagicOffset]);
  if (h.magic != kMagicV2) {
    return make_error(Errc::unsupported_magic,
                      fmt::format("record batch magic is {}, only 2 is supported", int(h.magic)));
  }
  h.base_offset = int64_t(load_be64(p + kBaseOffsetOffset));
  h.length = int32_t(load_be32(p + kLengthOffset));
  h.partition_leader_epoch = int32_t(load_be32(p + kPartitionLeaderEpochOffset));
  h.crc = load_be32(p + kCrcOffset);
  h.attributes = int16_t(load_be16(p + kAttributesOffset));
  h.last_offset_delta = int32_t(load_be32(p + kLastOffsetDeltaOffset));
  h.base_timestamp = int64_t(load_be64(p + kBaseTimestampOffset));
  h.max_timestamp = int64_t(load_be64(p + kMaxTimestampOffset));
  h.producer_id = int64_t(load_be64(p + kProducerIdOffset));
  h.producer_epoch = int16_t(load_be16(p + kProducerEpochOffset));
  h.base_sequence = int32_t(load_be32(p + kBaseSequenceOffset));
  h.records_count = int32_t(load_be32(p + kRecordsCountOffset));
  return h;
}

uint32_t compute_batch_crc(std::span<const uint8_t> batch) {
  return crc32c(batch.data() + kAttributesOffset, batch.size() - kAttributesOffset);
}

Result<BatchHeader, Errc> check_batch(std::span<const uint8_t> data) {
  auto header = parse_batch_header(data);
  if (!header) return header;
  if (header->length < int32_t(kBatchHeaderSize - kLogOverhead)) {
    return make_error(
        Errc::corrupt_message,
        fmt::format("record batch length {} is smaller than the header", header->length));
  }
  if (header->size_in_bytes() > data.size()) {
    return make_error(Errc::truncated, fmt::format("record batch of {} bytes, only {} present",
                                                   header->size_in_bytes(), data.size()));
  }
  uint32_t crc = compute_batch_crc(data.first(header->size_in_bytes()));
  if (crc != header->crc) {
    return make_error(
        Errc::corrupt_message,
        fmt::format("record batch CRC mismatch: header says {:#010x}, computed {:#010x}",
                    header->crc, crc));
  }
  return header;
}

namespace {

// Walks the records of a batch body (uncompressed bytes after the header),
// checking the framing of each; calls `visit` for each record when given.
// Offsets deltas must run 0..count-1 and the body must end exactly after the
// last record.
struct RawRecord {
  int64_t timestamp_delta;
  int32_t offset_delta;
  const uint8_t* key;  // nullptr = null key
  int32_t key_length;
  const uint8_t* value;
  int32_t value_length;
  const uint8_t* headers;  // the header fields, already checked
  int32_t headers_count;
};

template <typename Visit>
Result<void, Errc> walk_records(std::span<const uint8_t> body, int32_t count, Visit&& visit) {
  const uint8_t* p = body.data();
  const uint8_t* end = body.data() + body.size();
  auto bad = [](int32_t i, std::string_view what) {
    return make_error(Errc::invalid_record, fmt::format("record {}: {}", i, what));
  };
  for (int32_t i = 0; i < count; ++i) {
    auto length = get_varint32(p, end);
    if (!length) return bad(i, "length varint is truncated or malformed");
    if (*length < 1 || size_t(*length) > size_t(end - p)) {
      return bad(i, fmt::format("length {} does not fit the {} bytes left", *length, end - p));
    }
    const uint8_t* rend = p + *length;
    RawRecord r{};
    p += 1;  // attributes, unused
    auto ts = get_varint64(p, rend);
    if (!ts) return bad(i, "timestamp delta is malformed");
    auto od = get_varint32(p, rend);
    if (!od) return bad(i, "offset delta is malformed");
    if (*od != i) return bad(i, fmt::format("offset delta is {}, expected {}", *od, i));
    r.timestamp_delta = *ts;
    r.offset_delta = *od;
    auto field = [&](std::string_view name, bool nullable, const uint8_t*& data,
                     int32_t& len) -> Result<void, Errc> {
      auto n = get_varint32(p, rend);
      if (!n) return bad(i, fmt::format("{} length is malformed", name));
      if (*n < 0) {
        if (!nullable || *n != -1) return bad(i, fmt::format("{} length is {}", name, *n));
        data = nullptr;
        len = -1;
        return {};
      }
      if (size_t(*n) > size_t(rend - p)) {
        return bad(i, fmt::format("{} of {} bytes overruns the record", name, *n));
      }
      data = p;
      len = *n;
      p += *n;
      return {};
    };
    if (auto f = field("key", true, r.key, r.key_length); !f) return f;
    if (auto f = field("value", true, r.value, r.value_length); !f) return f;
    auto headers = get_varint32(p, rend);
    if (!headers || *headers < 0) return bad(i, "headers count is malformed");
    r.headers = p;
    r.headers_count = *headers;
    for (int32_t h = 0; h < *headers; ++h) {
      const uint8_t* data;
      int32_t len;
      if (auto f = field("header key", false, data, len); !f) return f;
      if (auto f = field("header value", true, data, len); !f) return f;
    }
    if (p != rend) {
      return bad(i, fmt::format("{} bytes left over inside the record", rend - p));
    }
    visit(r);
  }
  if (p != end) {
    return make_error(Errc::invalid_record,
                      fmt::format("{} bytes after the last of {} records", end - p, count));
  }
  return {};
}

// The uncompressed records of a batch: a view into the batch, or `storage`.
Result<std::span<const uint8_t>, Errc> records_body(std::span<const uint8_t> batch,
                                                    const BatchHeader& header, size_t bound,
                                                    std::vector<uint8_t>& storage) {
  auto compressed = batch.subspan(kBatchHeaderSize);
  if (header.compression() == Compression::none) return compressed;
  if (uint8_t(header.compression()) > uint8_t(Compression::zstd)) {
    return make_error(Errc::unsupported_compression,
                      fmt::format("unknown compression codec {}", int(header.compression())));
  }
  auto out = decompress(header.compression(), compressed, bound);
  if (!out) {
    auto error = out.error();
    error.message = fmt::format("{} batch: {}", to_string(header.compression()), error.message);
    return error;
  }
  storage = std::move(*out);
  return std::span<const uint8_t>(storage);
}

}  // namespace

Result<BatchHeader, Errc> validate_produced_batch(std::span<const uint8_t> records,
                                                  const ProduceValidation& rules) {
  if (records.empty()) {
    return make_error(Errc::invalid_record, "the partition's records hold no record batch");
  }
  if (records.size() <= kMagicOffset) {
    return make_error(Errc::corrupt_message,
                      fmt::format("records of {} bytes are too short for a batch", records.size()));
  }
  if (records[kMagicOffset] != uint8_t(kMagicV2)) {
    return make_error(Errc::unsupported_magic,
                      fmt::format("record batch magic is {}; Produce v3+ needs magic 2",
                                  int(int8_t(records[kMagicOffset]))));
  }
  if (records.size() < kBatchHeaderSize) {
    return make_error(Errc::corrupt_message,
                      fmt::format("record batch of {} bytes is shorter than its {}-byte header",
                                  records.size(), kBatchHeaderSize));
  }
  auto parsed = parse_batch_header(records);
  if (!parsed) return parsed;
  const BatchHeader& h = *parsed;
  if (h.length < int32_t(kBatchHeaderSize - kLogOverhead)) {
    return make_error(Errc::corrupt_message,
                      fmt::format("record batch length {} is smaller than the header", h.length));
  }
  if (h.size_in_bytes() > records.size()) {
    return make_error(Errc::corrupt_message,
                      fmt::format("record batch length says {} bytes but only {} were sent",
                                  h.size_in_bytes(), records.size()));
  }
  if (h.size_in_bytes() < records.size()) {
    return make_error(Errc::invalid_record,
                      fmt::format("records hold more than one batch ({} bytes after the first)",
                                  records.size() - h.size_in_bytes()));
  }
  if (h.base_offset != 0) {
    return make_error(
        Errc::invalid_record,
        fmt::format("record batch base offset is {}, a producer must send 0", h.base_offset));
  }
  if (h.size_in_bytes() > rules.max_message_bytes) {
    return make_error(Errc::message_too_large,
                      fmt::format("record batch of {} bytes exceeds max.message.bytes {}",
                                  h.size_in_bytes(), rules.max_message_bytes));
  }
  uint32_t crc = compute_batch_crc(records);
  if (crc != h.crc) {
    return make_error(
        Errc::corrupt_message,
        fmt::format("record batch CRC mismatch: header says {:#010x}, computed {:#010x}", h.crc,
                    crc));
  }
  if (uint8_t(h.compression()) > uint8_t(Compression::zstd)) {
    return make_error(Errc::unsupported_compression,
                      fmt::format("unknown compression codec {}", int(h.compression())));
  }
  if (h.compression() == Compression::zstd && !rules.allow_zstd) {
    return make_error(Errc::unsupported_compression, "zstd compression needs Produce v7 or later");
  }
  if (h.has_log_append_time()) {
    return make_error(Errc::invalid_timestamp,
                      "a producer may not set the LogAppendTime timestamp type");
  }
  if (h.is_control()) {
    return make_error(Errc::invalid_record, "a producer may not send a control batch");
  }
  if (h.attributes & kDeleteHorizonBit) {
    // The log cleaner's mark (KIP-534): set by a client it would make its
    // tombstones expire at a time of its choosing.
    return make_error(Errc::invalid_record, "a producer may not set the delete horizon flag");
  }
  if (h.records_count <= 0) {
    return make_error(Errc::invalid_record,
                      fmt::format("record batch holds {} records", h.records_count));
  }
  if (int64_t(h.last_offset_delta) + 1 != h.records_count) {
    return make_error(Errc::invalid_record,
                      fmt::format("last offset delta {} does not match the record count {}",
                                  h.last_offset_delta, h.records_count));
  }
  if (h.producer_id >= 0 && h.base_sequence < 0) {
    return make_error(Errc::invalid_record,
                      fmt::format("idempotent batch (producer id {}) has base sequence {}",
                                  h.producer_id, h.base_sequence));
  }
  if (h.is_transactional() && h.producer_id < 0) {
    return make_error(Errc::invalid_record, "transactional batch without a producer id");
  }
  size_t bound = std::max(kMinDecompressedBound, rules.max_message_bytes * kDecompressionFactor);
  std::vector<uint8_t> storage;
  auto body = records_body(records, h, bound, storage);
  if (!body) return body.error();
  auto walked = walk_records(*body, h.records_count, [](const RawRecord&) {});
  if (!walked) return walked.error();
  return parsed;
}

void stamp_batch(uint8_t* batch, int64_t base_offset, int32_t leader_epoch) {
  store_be64(batch + kBaseOffsetOffset, uint64_t(base_offset));
  store_be32(batch + kPartitionLeaderEpochOffset, uint32_t(leader_epoch));
}

void set_log_append_time(uint8_t* batch, size_t size, int64_t now_ms) {
  uint16_t attributes = load_be16(batch + kAttributesOffset) | uint16_t(kTimestampTypeBit);
  store_be16(batch + kAttributesOffset, attributes);
  store_be64(batch + kMaxTimestampOffset, uint64_t(now_ms));
  store_be32(batch + kCrcOffset, compute_batch_crc({batch, size}));
}

Result<std::vector<Record>, Errc> decode_records(std::span<const uint8_t> batch) {
  return decode_records_bounded(
      batch, std::max(kMinDecompressedBound, batch.size() * kDecompressionFactor));
}

Result<std::vector<Record>, Errc> decode_records_bounded(std::span<const uint8_t> batch,
                                                         size_t max_decompressed_bytes) {
  auto header = check_batch(batch);
  if (!header) return header.error();
  batch = batch.first(header->size_in_bytes());
  if (header->records_count < 0) {
    return make_error(Errc::invalid_record,
                      fmt::format("record batch holds {} records", header->records_count));
  }
  std::vector<uint8_t> storage;
  auto body = records_body(batch, *header, max_decompressed_bytes, storage);
  if (!body) return body.error();
  // One owned buffer; keys, values and headers are slices of it.
  Bytes owned = storage.empty() ? Bytes::copy_of(*body) : Bytes(std::move(storage));
  const uint8_t* base = owned.data();
  auto span = owned.span();
  std::vector<Record> out;
  out.reserve(size_t(std::min<int32_t>(header->records_count, 1 << 16)));
  auto walked = walk_records(span, header->records_count, [&](const RawRecord& r) {
    Record rec;
    rec.offset = header->base_offset + r.offset_delta;
    rec.timestamp = header->has_log_append_time() ? header->max_timestamp
                                                  : header->base_timestamp + r.timestamp_delta;
    if (r.key) rec.key = owned.slice(size_t(r.key - base), size_t(r.key_length));
    if (r.value) rec.value = owned.slice(size_t(r.value - base), size_t(r.value_length));
    const uint8_t* p = r.headers;
    const uint8_t* end = span.data() + span.size();
    for (int32_t h = 0; h < r.headers_count; ++h) {
      Header hdr;
      int32_t klen = *get_varint32(p, end);
      hdr.key.assign(reinterpret_cast<const char*>(p), size_t(klen));
      p += klen;
      int32_t vlen = *get_varint32(p, end);
      if (vlen >= 0) {
        hdr.value = owned.slice(size_t(p - base), size_t(vlen));
        p += vlen;
      }
      rec.headers.push_back(std::move(hdr));
    }
    out.push_back(std::move(rec));
  });
  if (!walked) return walked.error();
  return out;
}

// ---- BatchBuilder ----

Result<Bytes, Errc> recompress_batch(std::span<const uint8_t> batch, Compression target,
                                     size_t max_decompressed_bytes) {
  auto header = check_batch(batch);
  if (!header) return header.error();
  batch = batch.subspan(0, header->size_in_bytes());
  if (header->compression() == target) return Bytes::copy_of(batch);
  std::vector<uint8_t> storage;
  auto body = records_body(batch, *header, max_decompressed_bytes, storage);
  if (!body) return body.error();
  auto compressed = compress(target, *body);
  if (!compressed) return compressed.error();
  std::vector<uint8_t> out(kBatchHeaderSize + compressed->size());
  std::memcpy(out.data(), batch.data(), kBatchHeaderSize);
  std::memcpy(out.data() + kBatchHeaderSize, compressed->data(), compressed->size());
  uint8_t* p = out.data();
  uint16_t attributes = uint16_t((load_be16(p + kAttributesOffset) & ~uint16_t(kCompressionMask)) |
                                 uint16_t(uint8_t(target)));
  store_be16(p + kAttributesOffset, attributes);
  store_be32(p + kLengthOffset, uint32_t(out.size() - kLogOverhead));
  store_be32(p + kCrcOffset, compute_batch_crc(out));
  return Bytes(std::move(out));
}

BatchBuilder::BatchBuilder(Compression compression) : compression_(compression) {}

BatchBuilder& BatchBuilder::set_producer(int64_t id, int16_t epoch, int32_t base_sequence) {
  producer_id_ = id;
  producer_epoch_ = epoch;
  base_sequence_ = base_sequence;
  return *this;
}

BatchBuilder& BatchBuilder::set_transactional(bool transactional) {
  transactional_ = transactional;
  return *this;
}

BatchBuilder& BatchBuilder::add(std::optional<std::string_view> key,
                                std::optional<std::string_view> value, int64_t timestamp_ms,
                                std::vector<Header> headers) {
  if (record_count_ == 0) base_timestamp_ = timestamp_ms;
  max_timestamp_ = record_count_ == 0 ? timestamp_ms : std::max(max_timestamp_, timestamp_ms);
  std::vector<uint8_t> body;
  uint8_t tmp[kMaxVarint64Bytes];
  auto put_varint = [&](int64_t v) {
    size_t n = put_varint64(tmp, v);
    body.insert(body.end(), tmp, tmp + n);
  };
  auto put_bytes = [&](std::optional<std::string_view> data) {
    if (!data) {
      put_varint(-1);
      return;
    }
    put_varint(int64_t(data->size()));
    body.insert(body.end(), data->begin(), data->end());
  };
  body.push_back(0);  // attributes
  put_varint(timestamp_ms - base_timestamp_);
  put_varint(record_count_);
  put_bytes(key);
  put_bytes(value);
  put_varint(int64_t(headers.size()));
  for (const auto& h : headers) {
    put_bytes(std::string_view(h.key));
    put_bytes(h.value ? std::optional<std::string_view>(h.value->view()) : std::nullopt);
  }
  size_t n = put_varint64(tmp, int64_t(body.size()));
  records_.insert(records_.end(), tmp, tmp + n);
  records_.insert(records_.end(), body.begin(), body.end());
  ++record_count_;
  return *this;
}

Bytes BatchBuilder::build() const {
  auto body = compress(compression_, records_);
  if (!body) throw std::runtime_error("BatchBuilder: compression failed: " + body.error().message);
  std::vector<uint8_t> batch(kBatchHeaderSize + body->size());
  uint8_t* p = batch.data();
  int16_t attributes = int16_t(uint8_t(compression_));
  if (transactional_) attributes |= kTransactionalBit;
  store_be64(p + kBaseOffsetOffset, 0);
  store_be32(p + kLengthOffset, uint32_t(batch.size() - kLogOverhead));
  store_be32(p + kPartitionLeaderEpochOffset, uint32_t(-1));
  p[kMagicOffset] = uint8_t(kMagicV2);
  store_be16(p + kAttributesOffset, uint16_t(attributes));
  store_be32(p + kLastOffsetDeltaOffset, uint32_t(record_count_ - 1));
  store_be64(p + kBaseTimestampOffset, uint64_t(base_timestamp_));
  store_be64(p + kMaxTimestampOffset, uint64_t(max_timestamp_));
  store_be64(p + kProducerIdOffset, uint64_t(producer_id_));
  store_be16(p + kProducerEpochOffset, uint16_t(producer_epoch_));
  store_be32(p + kBaseSequenceOffset, uint32_t(base_sequence_));
  store_be32(p + kRecordsCountOffset, uint32_t(record_count_));
  std::memcpy(p + kBatchHeaderSize, body->data(), body->size());
  store_be32(p + kCrcOffset, compute_batch_crc(batch));
  return Bytes(std::move(batch));
}

}  // namespace holdfast::record
