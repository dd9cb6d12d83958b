#include "record/batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "base/crc32c.h"
#include "record/compression.h"
#include "record/recompress.h"

namespace holdfast::record {
namespace {

const ProduceValidation kRules{1048588, true};

std::vector<uint8_t> to_vector(const Bytes& b) {
  return {b.data(), b.data() + b.size()};
}

Bytes simple_batch(Compression c = Compression::none, int n = 3) {
  BatchBuilder builder(c);
  for (int i = 0; i < n; ++i) {
    std::string key = "key-" + std::to_string(i);
    std::string value = "value-" + std::to_string(i);
    builder.add(key, value, 1700000000000 + i);
  }
  return builder.build();
}

void fix_crc(std::vector<uint8_t>& batch) {
  store_be32(batch.data() + kCrcOffset, compute_batch_crc(batch));
}

// Replaces the records part of an uncompressed batch by `body` compressed
// with `codec` (already compressed bytes when codec is none), fixing length
// and CRC.
std::vector<uint8_t> with_body(std::vector<uint8_t> batch, std::span<const uint8_t> body,
                               int16_t attributes) {
  batch.resize(kBatchHeaderSize);
  batch.insert(batch.end(), body.begin(), body.end());
  store_be32(batch.data() + kLengthOffset, uint32_t(batch.size() - kLogOverhead));
  store_be16(batch.data() + kAttributesOffset, uint16_t(attributes));
  fix_crc(batch);
  return batch;
}

Errc validate_error(std::span<const uint8_t> records, ProduceValidation rules = kRules) {
  auto r = validate_produced_batch(records, rules);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return Errc::truncated;
  EXPECT_FALSE(r.error().message.empty());
  return r.code();
}

TEST(BatchHeader, ParsesEveryFieldAndTheCrcCoversAttributesToEnd) {
  BatchBuilder builder;
  builder.set_producer(42, 7, 100);
  builder.add("k", "v", 1000).add(std::nullopt, "w", 1500).add("k2", std::nullopt, 900);
  auto batch = builder.build();
  auto h = parse_batch_header(batch.span());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->base_offset, 0);
  EXPECT_EQ(h->length, int32_t(batch.size() - 12));
  EXPECT_EQ(h->size_in_bytes(), batch.size());
  EXPECT_EQ(h->partition_leader_epoch, -1);
  EXPECT_EQ(h->magic, 2);
  EXPECT_EQ(h->crc, crc32c(batch.data() + 21, batch.size() - 21));
  EXPECT_EQ(h->compression(), Compression::none);
  EXPECT_FALSE(h->is_transactional());
  EXPECT_FALSE(h->is_control());
  EXPECT_FALSE(h->has_log_append_time());
  EXPECT_EQ(h->last_offset_delta, 2);
  EXPECT_EQ(h->last_offset(), 2);
  EXPECT_EQ(h->base_timestamp, 1000);
  EXPECT_EQ(h->max_timestamp, 1500);
  EXPECT_EQ(h->producer_id, 42);
  EXPECT_EQ(h->producer_epoch, 7);
  EXPECT_EQ(h->base_sequence, 100);
  EXPECT_EQ(h->records_count, 3);
  EXPECT_TRUE(check_batch(batch.span()).ok());
}

TEST(BatchHeader, ShortInputIsTruncatedAndOldMagicUnsupported) {
  auto batch = to_vector(simple_batch());
  for (size_t n = 0; n < kBatchHeaderSize; ++n) {
    auto h = parse_batch_header({batch.data(), n});
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.code(), Errc::truncated);
  }
  batch[kMagicOffset] = 1;
  EXPECT_EQ(parse_batch_header(batch).code(), Errc::unsupported_magic);
}

TEST(BatchHeader, CheckBatchDetectsTruncationAndBitFlips) {
  auto batch = to_vector(simple_batch());
  EXPECT_EQ(check_batch({batch.data(), batch.size() - 1}).code(), Errc::truncated);
  batch[batch.size() - 3] ^= 0x10;
  EXPECT_EQ(check_batch(batch).code(), Errc::corrupt_message);
}

TEST(Validate, AcceptsAWellFormedBatchOfEveryCodec) {
  for (auto c : {Compression::none, Compression::gzip, Compression::snappy, Compression::lz4,
                 Compression::zstd}) {
    auto batch = simple_batch(c, 50);
    auto h = validate_produced_batch(batch.span(), kRules);
    ASSERT_TRUE(h.ok()) << to_string(c) << ": " << h.error().message;
    EXPECT_EQ(h->records_count, 50);
    EXPECT_EQ(h->compression(), c);
  }
}

TEST(Validate, Rule1_ExactlyOneBatchWithMagic2) {
  EXPECT_EQ(validate_error({}), Errc::invalid_record);
  auto one = to_vector(simple_batch());
  auto two = one;
  two.insert(two.end(), one.begin(), one.end());
  EXPECT_EQ(validate_error(two), Errc::invalid_record);
  auto old = one;
  old[kMagicOffset] = 1;
  EXPECT_EQ(validate_error(old), Errc::unsupported_magic);
}

TEST(Validate, Rule2_BaseOffsetLengthAndSize) {
  auto batch = to_vector(simple_batch());
  auto offset = batch;
  store_be64(offset.data(), 5);
  EXPECT_EQ(validate_error(offset), Errc::invalid_record);

  EXPECT_EQ(validate_error({batch.data(), batch.size() - 1}), Errc::corrupt_message);
  EXPECT_EQ(validate_error({batch.data(), 40}), Errc::corrupt_message);
  auto small = batch;
  store_be32(small.data() + kLengthOffset, 10);
  EXPECT_EQ(validate_error(small), Errc::corrupt_message);
  auto negative = batch;
  store_be32(negative.data() + kLengthOffset, uint32_t(-1));
  EXPECT_EQ(validate_error(negative), Errc::corrupt_message);

  EXPECT_EQ(validate_error(batch, {batch.size() - 1, true}), Errc::message_too_large);
  EXPECT_TRUE(validate_produced_batch(batch, {batch.size(), true}).ok());
}

TEST(Validate, Rule3_CrcMismatchIsCorrupt) {
  auto batch = to_vector(simple_batch());
  batch.back() ^= 1;
  auto r = validate_produced_batch(batch, kRules);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::corrupt_message);
  EXPECT_NE(r.error().message.find("CRC"), std::string::npos);
  // Fields outside the CRC do not matter: the leader epoch may be anything.
  auto epoch = to_vector(simple_batch());
  store_be32(epoch.data() + kPartitionLeaderEpochOffset, 77);
  EXPECT_TRUE(validate_produced_batch(epoch, kRules).ok());
}

TEST(Validate, Rule4_CountsControlAndSequence) {
  auto batch = to_vector(simple_batch());
  auto delta = batch;
  store_be32(delta.data() + kLastOffsetDeltaOffset, 5);
  fix_crc(delta);
  EXPECT_EQ(validate_error(delta), Errc::invalid_record);

  auto zero = batch;
  store_be32(zero.data() + kLastOffsetDeltaOffset, uint32_t(-1));
  store_be32(zero.data() + kRecordsCountOffset, 0);
  fix_crc(zero);
  EXPECT_EQ(validate_error(zero), Errc::invalid_record);

  auto control = batch;
  store_be16(control.data() + kAttributesOffset, uint16_t(kControlBit | kTransactionalBit));
  store_be64(control.data() + kProducerIdOffset, 1);
  store_be32(control.data() + kBaseSequenceOffset, 0);
  fix_crc(control);
  EXPECT_EQ(validate_error(control), Errc::invalid_record);

  BatchBuilder idempotent;
  idempotent.set_producer(9, 0, -1).add("k", "v", 1);
  EXPECT_EQ(validate_error(idempotent.build().span()), Errc::invalid_record);
  BatchBuilder good;
  good.set_producer(9, 0, 0).add("k", "v", 1);
  EXPECT_TRUE(validate_produced_batch(good.build().span(), kRules).ok());
}

TEST(Validate, CompressionRules) {
  auto zstd = simple_batch(Compression::zstd);
  auto r = validate_produced_batch(zstd.span(), {1 << 20, false});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::unsupported_compression);
  EXPECT_NE(r.error().message.find("v7"), std::string::npos);

  auto unknown = to_vector(simple_batch());
  store_be16(unknown.data() + kAttributesOffset, 5);
  fix_crc(unknown);
  EXPECT_EQ(validate_error(unknown), Errc::unsupported_compression);
}

TEST(Validate, LogAppendTimeFromAClientIsInvalidTimestamp) {
  auto batch = to_vector(simple_batch());
  store_be16(batch.data() + kAttributesOffset, uint16_t(kTimestampTypeBit));
  fix_crc(batch);
  EXPECT_EQ(validate_error(batch), Errc::invalid_timestamp);
}

TEST(Validate, RecordFramingIsCheckedForUncompressedBatches) {
  auto batch = to_vector(simple_batch());
  // The first record's length varint: make it claim one byte more.
  auto longer = batch;
  longer[kBatchHeaderSize] += 2;  // zigzag: +1
  fix_crc(longer);
  EXPECT_EQ(validate_error(longer), Errc::invalid_record);
  // Wrong offset delta in the second record is caught too.
  BatchBuilder b;
  b.add("a", "b", 1);
  auto one = to_vector(b.build());
  auto bad_delta = one;
  // record: len, attr, ts delta(0), offset delta(0) at header+3.
  bad_delta[kBatchHeaderSize + 3] = 2;  // zigzag 1
  fix_crc(bad_delta);
  EXPECT_EQ(validate_error(bad_delta), Errc::invalid_record);
  // A trailing byte after the last record.
  auto trailing = batch;
  trailing.push_back(0);
  store_be32(trailing.data() + kLengthOffset, uint32_t(trailing.size() - kLogOverhead));
  fix_crc(trailing);
  EXPECT_EQ(validate_error(trailing), Errc::invalid_record);
}

TEST(Validate, CompressedRecordCountMustMatchTheHeader) {
  auto three = to_vector(simple_batch(Compression::none, 3));
  std::span<const uint8_t> body(three.data() + kBatchHeaderSize, three.size() - kBatchHeaderSize);
  auto packed = compress(Compression::lz4, body);
  ASSERT_TRUE(packed.ok());
  auto batch = with_body(three, *packed, int16_t(Compression::lz4));
  EXPECT_TRUE(validate_produced_batch(batch, kRules).ok());
  store_be32(batch.data() + kLastOffsetDeltaOffset, 3);
  store_be32(batch.data() + kRecordsCountOffset, 4);
  fix_crc(batch);
  auto r = validate_produced_batch(batch, kRules);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::invalid_record);
  // A compressed body that is not a valid stream.
  std::vector<uint8_t> junk(40, 0xab);
  auto broken = with_body(three, junk, int16_t(Compression::gzip));
  EXPECT_EQ(validate_error(broken), Errc::corrupt_message);
}

TEST(Validate, ZipBombIsAnErrorNotAnOutOfMemory) {
  std::string huge(24 << 20, 'z');  // 24 MiB of one letter: compresses to ~100 KiB
  for (auto c : {Compression::gzip, Compression::snappy, Compression::lz4, Compression::zstd}) {
    BatchBuilder b(c);
    b.add(std::nullopt, huge, 1);
    auto batch = b.build();
    ASSERT_LT(batch.size(), 2u << 20) << to_string(c);
    auto r = validate_produced_batch(batch.span(), {2u << 20, true});  // bound: 128 MiB
    EXPECT_TRUE(r.ok()) << to_string(c);
    r = validate_produced_batch(batch.span(), {100000, true});  // bound: 16 MiB
    ASSERT_FALSE(r.ok()) << to_string(c);
    EXPECT_EQ(r.code(), Errc::message_too_large) << to_string(c);
  }
}

TEST(Stamp, BaseOffsetAndEpochOutsideTheCrc) {
  auto batch = to_vector(simple_batch());
  stamp_batch(batch.data(), 1000, 5);
  auto h = check_batch(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->base_offset, 1000);
  EXPECT_EQ(h->partition_leader_epoch, 5);
  EXPECT_EQ(h->last_offset(), 1002);
  auto records = decode_records(batch);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ((*records)[0].offset, 1000);
  EXPECT_EQ((*records)[2].offset, 1002);
}

TEST(Stamp, LogAppendTimeRewritesMaxTimestampAndCrc) {
  auto batch = to_vector(simple_batch(Compression::zstd));
  set_log_append_time(batch.data(), batch.size(), 1234567);
  auto h = check_batch(batch);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->has_log_append_time());
  EXPECT_EQ(h->max_timestamp, 1234567);
  EXPECT_EQ(h->compression(), Compression::zstd);
  auto records = decode_records(batch);
  ASSERT_TRUE(records.ok());
  for (const auto& r : *records) EXPECT_EQ(r.timestamp, 1234567);
}

class RoundTrip : public ::testing::TestWithParam<Compression> {};

TEST_P(RoundTrip, BuilderThenDecodeGivesBackEveryField) {
  BatchBuilder builder(GetParam());
  std::vector<Header> headers = {{"trace", Bytes::copy_of(std::string_view("abc"))},
                                 {"empty", std::nullopt}};
  builder.set_producer(3, 1, 10);
  builder.add("k0", "v0", 5000, headers);
  builder.add(std::nullopt, "v1", 4000);  // timestamps may go backwards: negative delta
  builder.add("k2", std::nullopt, 6000);
  builder.add("", "", 6001);
  std::string big(100000, 'x');
  builder.add("big", big, 6002);
  auto batch = builder.build();
  ASSERT_TRUE(validate_produced_batch(batch.span(), kRules).ok());
  auto records = decode_records(batch.span());
  ASSERT_TRUE(records.ok()) << records.error().message;
  ASSERT_EQ(records->size(), 5u);
  const auto& r = *records;
  EXPECT_EQ(r[0].offset, 0);
  EXPECT_EQ(r[0].timestamp, 5000);
  EXPECT_EQ(r[0].key->view(), "k0");
  EXPECT_EQ(r[0].value->view(), "v0");
  EXPECT_EQ(r[0].headers, headers);
  EXPECT_FALSE(r[1].key.has_value());
  EXPECT_EQ(r[1].timestamp, 4000);
  EXPECT_FALSE(r[2].value.has_value());
  EXPECT_EQ(r[3].key->view(), "");
  EXPECT_TRUE(r[3].value.has_value());
  EXPECT_EQ(r[4].offset, 4);
  EXPECT_EQ(r[4].value->view(), big);
  auto h = parse_batch_header(batch.span());
  EXPECT_EQ(h->compression(), GetParam());
  EXPECT_EQ(h->max_timestamp, 6002);
  EXPECT_EQ(h->base_timestamp, 5000);
}

TEST_P(RoundTrip, EveryTruncatedInputIsRejectedWithTheRightError) {
  auto batch = to_vector(simple_batch(GetParam(), 20));
  for (size_t n = 0; n < batch.size(); ++n) {
    std::span<const uint8_t> prefix(batch.data(), n);
    // A producer's records cut short: nothing at all is an invalid request,
    // anything else is a corrupt message (Kafka's CORRUPT_MESSAGE).
    auto validated = validate_produced_batch(prefix, kRules);
    ASSERT_FALSE(validated.ok()) << "a " << n << "-byte prefix of " << batch.size()
                                 << " bytes passed produce validation";
    EXPECT_EQ(validated.code(), n == 0 ? Errc::invalid_record : Errc::corrupt_message)
        << n << " bytes: " << validated.error().message;
    // Stored bytes cut short (a torn tail): truncated, so recovery can tell a
    // torn write from a damaged batch.
    auto checked = check_batch(prefix);
    ASSERT_FALSE(checked.ok()) << "a " << n << "-byte prefix passed check_batch";
    EXPECT_EQ(checked.code(), Errc::truncated) << n << " bytes: " << checked.error().message;
    auto decoded = decode_records(prefix);
    ASSERT_FALSE(decoded.ok()) << "a " << n << "-byte prefix decoded to " << decoded->size()
                               << " records";
    EXPECT_EQ(decoded.code(), Errc::truncated) << n << " bytes: " << decoded.error().message;
  }
  // The whole batch is accepted by all three.
  EXPECT_TRUE(validate_produced_batch(batch, kRules).ok());
  EXPECT_TRUE(check_batch(batch).ok());
  auto decoded = decode_records(batch);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->size(), 20u);
}

TEST_P(RoundTrip, CorruptInputIsRejectedOrDecodedWithoutCrashing) {
  auto batch = to_vector(simple_batch(GetParam(), 20));
  std::mt19937 rng(uint32_t(GetParam()) + 1);
  auto same = [&](const std::vector<uint8_t>& damaged, size_t from, size_t to) {
    return std::equal(damaged.begin() + from, damaged.begin() + to, batch.begin() + from);
  };
  for (int i = 0; i < 2000; ++i) {
    auto damaged = batch;
    int flips = 1 + int(rng() % 3);
    for (int f = 0; f < flips; ++f) damaged[rng() % damaged.size()] ^= uint8_t(1 << (rng() % 8));
    bool crc_fixed = i % 2 == 1;
    if (crc_fixed) fix_crc(damaged);  // get past the CRC to exercise the record parser
    auto validated = validate_produced_batch(damaged, kRules);
    auto decoded = decode_records(damaged);
    // Damage under the CRC (with the base offset, length and magic intact and
    // the CRC not recomputed) is always caught, by both.
    if (!crc_fixed && same(damaged, 0, kCrcOffset) && !same(damaged, kCrcOffset, batch.size())) {
      ASSERT_FALSE(validated.ok()) << "flip " << i;
      EXPECT_EQ(validated.code(), Errc::corrupt_message) << validated.error().message;
      ASSERT_FALSE(decoded.ok()) << "flip " << i;
      EXPECT_EQ(decoded.code(), Errc::corrupt_message) << decoded.error().message;
    }
  }
  std::vector<uint8_t> noise(500);
  for (int i = 0; i < 500; ++i) {
    for (auto& b : noise) b = uint8_t(rng());
    noise[kMagicOffset] = 2;
    store_be32(noise.data() + kLengthOffset, uint32_t(noise.size() - kLogOverhead));
    store_be16(noise.data() + kAttributesOffset, uint16_t(rng() % 5));
    fix_crc(noise);
    (void)validate_produced_batch(noise, kRules);
    (void)decode_records(noise);
  }
}

// compression.type: every codec to every codec; the header fields that
// idempotence and timestamps depend on survive, and the records are the same.
TEST(Recompress, EveryCodecToEveryCodecKeepsHeaderAndRecords) {
  const Compression codecs[] = {Compression::none, Compression::gzip, Compression::snappy,
                                Compression::lz4, Compression::zstd};
  for (Compression from : codecs) {
    BatchBuilder builder(from);
    builder.set_producer(4711, 3, 100);
    for (int i = 0; i < 20; ++i) {
      builder.add("key-" + std::to_string(i % 4), std::string(50 + i, char('a' + i % 26)),
                  1700000000000 + i * 7, {{"h", Bytes::copy_of(std::string_view("v"))}});
    }
    Bytes original = builder.build();
    auto before = parse_batch_header(original.span());
    auto records_before = decode_records(original.span());
    ASSERT_TRUE(before && records_before);
    for (Compression to : codecs) {
      auto out = recompress_batch(original.span(), to, kMinDecompressedBound);
      ASSERT_TRUE(out) << to_string(from) << " -> " << to_string(to);
      auto checked = check_batch(out->span());  // length and CRC right
      ASSERT_TRUE(checked) << to_string(from) << " -> " << to_string(to);
      EXPECT_EQ(checked->compression(), to);
      EXPECT_EQ(checked->producer_id, 4711);
      EXPECT_EQ(checked->producer_epoch, 3);
      EXPECT_EQ(checked->base_sequence, 100);
      EXPECT_EQ(checked->records_count, 20);
      EXPECT_EQ(checked->last_offset_delta, before->last_offset_delta);
      EXPECT_EQ(checked->base_timestamp, before->base_timestamp);
      EXPECT_EQ(checked->max_timestamp, before->max_timestamp);
      EXPECT_EQ(checked->attributes & ~kCompressionMask, before->attributes & ~kCompressionMask);
      EXPECT_TRUE(validate_produced_batch(out->span(), kRules));
      auto records = decode_records(out->span());
      ASSERT_TRUE(records);
      ASSERT_EQ(records->size(), records_before->size());
      for (size_t i = 0; i < records->size(); ++i) {
        EXPECT_EQ((*records)[i].offset, (*records_before)[i].offset);
        EXPECT_EQ((*records)[i].timestamp, (*records_before)[i].timestamp);
        EXPECT_EQ((*records)[i].key->view(), (*records_before)[i].key->view());
        EXPECT_EQ((*records)[i].value->view(), (*records_before)[i].value->view());
        EXPECT_EQ((*records)[i].headers, (*records_before)[i].headers);
      }
      if (to == from) {
        EXPECT_EQ(to_vector(*out), to_vector(original));
      }
    }
  }
  auto damaged = to_vector(simple_batch(Compression::gzip));
  damaged.back() ^= 1;
  EXPECT_FALSE(recompress_batch(damaged, Compression::lz4, kMinDecompressedBound));
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, RoundTrip,
                         ::testing::Values(Compression::none, Compression::gzip,
                                           Compression::snappy, Compression::lz4,
                                           Compression::zstd),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace holdfast::record
