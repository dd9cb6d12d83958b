// The messages `holdfast verify` produces: each carries a unique id (run,
// producer, sequence) and a CRC-32C over everything but the checksum field, so
// a reader can tell whose message it is, whether it belongs to this run, and
// whether its bytes are intact. Pure (no librdkafka), unit-tested.
//
// Layout (ASCII header, then filler):
//   "hfv1 " <run: 16 hex> " " <producer: decimal> " " <seq: decimal> " "
//   <crc: 8 hex> " " <body>
// The CRC-32C covers the header without the crc field ("hfv1 <run> <producer>
// <seq> ") followed by the body, so damage anywhere is detected (a damaged
// header that no longer parses is also "corrupt").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace holdfast::cli::verify {

struct MessageId {
  uint32_t producer = 0;
  uint64_t seq = 0;

  bool operator==(const MessageId&) const = default;
  auto operator<=>(const MessageId&) const = default;
};

// Builds the value of message `id` of run `run_id`, padded with deterministic
// filler so that the whole value is at least `size` bytes.
std::string encode_message(uint64_t run_id, MessageId id, size_t size);

struct DecodedMessage {
  enum class Status {
    kOk,       // a message of this run, checksum matches
    kForeign,  // a well-formed verify message of another run (ignored)
    kCorrupt,  // not a well-formed message, or checksum mismatch
  };
  Status status = Status::kCorrupt;
  MessageId id;  // valid for kOk; for kCorrupt only if the header parsed
  bool id_parsed = false;
};

// Classifies a value read from the topic for run `run_id`.
DecodedMessage decode_message(uint64_t run_id, std::string_view value);

}  // namespace holdfast::cli::verify
