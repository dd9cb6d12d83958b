// Record batch v2 (magic 2): header parsing, produce-side validation, in-place
// stamping, decoding and building. Byte layout: kafka-protocol.md §2.1/§2.2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace holdfast::record {

// Header field offsets (DefaultRecordBatch.java).
constexpr size_t kBaseOffsetOffset = 0;
constexpr size_t kLengthOffset = 8;
constexpr size_t kPartitionLeaderEpochOffset = 12;
constexpr size_t kMagicOffset = 16;
constexpr size_t kCrcOffset = 17;
constexpr size_t kAttributesOffset = 21;
constexpr size_t kLastOffsetDeltaOffset = 23;
constexpr size_t kBaseTimestampOffset = 27;
constexpr size_t kMaxTimestampOffset = 35;
constexpr size_t kProducerIdOffset = 43;
constexpr size_t kProducerEpochOffset = 51;
constexpr size_t kBaseSequenceOffset = 53;
constexpr size_t kRecordsCountOffset = 57;
constexpr size_t kBatchHeaderSize = 61;
// Bytes before the Length field's coverage starts: BaseOffset + Length.
constexpr size_t kLogOverhead = 12;
constexpr int8_t kMagicV2 = 2;

constexpr int16_t kCompressionMask = 0x07;
constexpr int16_t kTimestampTypeBit = 0x08;  // 1 = LogAppendTime
constexpr int16_t kTransactionalBit = 0x10;
constexpr int16_t kControlBit = 0x20;
constexpr int16_t kDeleteHorizonBit = 0x40;

// Output bound for decompressing a batch: max_message_bytes times this factor
// (and never less than kMinDecompressedBound). Records compress well, but a
// ratio beyond this is a zip bomb, not data.
constexpr size_t kDecompressionFactor = 64;
constexpr size_t kMinDecompressedBound = 16u << 20;

enum class Compression : uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };

enum class Errc {
  truncated,
  corrupt_message,  // CRC or framing
  invalid_record,
  message_too_large,
  unsupported_compression,
  unsupported_magic,
  invalid_timestamp,
};

const char* to_string(Errc code);
const char* to_string(Compression compression);

struct BatchHeader {
  int64_t base_offset = 0;
  int32_t length = 0;
  int32_t partition_leader_epoch = 0;
  int8_t magic = kMagicV2;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t records_count = 0;

  Compression compression() const { return Compression(attributes & kCompressionMask); }
  bool is_transactional() const { return (attributes & kTransactionalBit) != 0; }
  bool is_control() const { return (attributes & kControlBit) != 0; }
  bool has_log_append_time() const { return (attributes & kTimestampTypeBit) != 0; }
  int64_t last_offset() const { return base_offset + last_offset_delta; }
  // The whole batch: BaseOffset and Length plus the Length bytes after them.
  size_t size_in_bytes() const { return kLogOverhead + size_t(uint32_t(length)); }
};

// Parses the 61-byte header. Needs data.size() >= kBatchHeaderSize (truncated
// otherwise) and magic 2 (unsupported_magic); checks neither length nor CRC.
Result<BatchHeader, Errc> parse_batch_header(std::span<const uint8_t> data);

// The CRC-32C the header should carry: over Attributes .. end of batch.
// Requires batch.size() >= kBatchHeaderSize.
uint32_t compute_batch_crc(std::span<const uint8_t> batch);

// Checks one stored batch's framing (length fits `data`, length >= header) and
// CRC. Used by recovery and by consumers of raw bytes. On success returns the
// header; the batch is data[0, header.size_in_bytes()).
Result<BatchHeader, Errc> check_batch(std::span<const uint8_t> data);

// Produce-side validation of one partition's records field (append rules 1–4
// of kafka-protocol.md §2.4): exactly one batch, magic 2, base offset 0,
// length fits, size <= max_message_bytes, CRC-32C, last_offset_delta + 1 ==
// records_count > 0, control bit not set, producer id >= 0 ⇒ base sequence >=
// 0, zstd only when allow_zstd (Produce v7+), LogAppendTime from a client →
// invalid_timestamp. Compressed batches are decompressed (output bounded by
// max_message_bytes × kDecompressionFactor) and every record's framing and the
// record count are checked; so are uncompressed ones. Error messages say
// exactly what was wrong.
struct ProduceValidation {
  size_t max_message_bytes;
  bool allow_zstd;
};
Result<BatchHeader, Errc> validate_produced_batch(std::span<const uint8_t> records,
                                                  const ProduceValidation& rules);

// Stamps BaseOffset and PartitionLeaderEpoch in place. Both are outside the
// CRC, so the batch stays valid. Requires kBatchHeaderSize bytes at `batch`.
void stamp_batch(uint8_t* batch, int64_t base_offset, int32_t leader_epoch);

// Sets LogAppendTime: attribute bit 3, MaxTimestamp := now_ms, and recomputes
// the CRC over the `size` bytes of the batch.
void set_log_append_time(uint8_t* batch, size_t size, int64_t now_ms);

// ---- Decoding ----

struct Header {
  std::string key;
  std::optional<Bytes> value;
  friend bool operator==(const Header&, const Header&) = default;
};

struct Record {
  int64_t offset = 0;
  int64_t timestamp = 0;
  std::optional<Bytes> key;
  std::optional<Bytes> value;
  std::vector<Header> headers;
};

// Decodes every record of one batch, decompressing as needed (output bounded
// by max(kMinDecompressedBound, batch size × kDecompressionFactor)). Checks
// framing and CRC. For LogAppendTime batches every record's timestamp
// is the batch's MaxTimestamp, as consumers see it.
Result<std::vector<Record>, Errc> decode_records(std::span<const uint8_t> batch);
// As decode_records with an explicit bound on the decompressed size.
Result<std::vector<Record>, Errc> decode_records_bounded(std::span<const uint8_t> batch,
                                                         size_t max_decompressed_bytes);

// ---- Building ----

class BatchBuilder {
 public:
  explicit BatchBuilder(Compression compression = Compression::none);

  BatchBuilder& set_producer(int64_t id, int16_t epoch, int32_t base_sequence);
  BatchBuilder& set_transactional(bool transactional);
  BatchBuilder& add(std::optional<std::string_view> key, std::optional<std::string_view> value,
                    int64_t timestamp_ms, std::vector<Header> headers = {});
  // A finished batch with BaseOffset 0, PartitionLeaderEpoch -1 and a valid CRC,
  // ready to be sent in a Produce request.
  Bytes build() const;
  size_t record_count() const { return record_count_; }

 private:
  Compression compression_;
  int64_t producer_id_ = -1;
  int16_t producer_epoch_ = -1;
  int32_t base_sequence_ = -1;
  bool transactional_ = false;
  int64_t base_timestamp_ = 0;
  int64_t max_timestamp_ = -1;
  int32_t record_count_ = 0;
  std::vector<uint8_t> records_;  // encoded, uncompressed
};

}  // namespace holdfast::record
