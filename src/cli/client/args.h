// Pure argument parsing for the client subcommands (topic, produce, consume).
// Kept free of librdkafka and CLI11 so that it is unit-tested in isolation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace holdfast::cli {

enum class ArgErrc { kInvalid };

template <typename T>
using ArgResult = Result<T, ArgErrc>;

// Where `consume --from` starts reading a partition.
struct StartPosition {
  enum class Kind { kBeginning, kEnd, kOffset, kFromEnd, kTimestamp };
  Kind kind = Kind::kBeginning;
  // the offset (kOffset), how many before the end (kFromEnd), or milliseconds
  // since the epoch (kTimestamp)
  int64_t value = 0;

  bool operator==(const StartPosition&) const = default;
};

// Parses `beginning|earliest|start`, `end|latest`, `<offset>` (a non-negative
// integer), `-<n>` (n messages before the end, as kcat's -o -n) or
// `@<timestamp-ms>` (a non-negative integer after '@').
ArgResult<StartPosition> parse_start_position(std::string_view spec);

// A piece of a kcat-style output format (`consume -f`): literal text, or one
// field of the message.
struct FormatPiece {
  enum class Kind {
    kLiteral,
    kTopic,       // %t
    kPartition,   // %p
    kOffset,      // %o
    kKey,         // %k
    kValue,       // %s
    kTimestamp,   // %T
    kHeaders,     // %h  (k=v,k=v)
    kKeySize,     // %K
    kValueSize,   // %S
  };
  Kind kind = Kind::kLiteral;
  std::string text;  // kLiteral

  bool operator==(const FormatPiece&) const = default;
};

// Parses a kcat-style format: %t %p %o %k %s %T %h %K %S, %% for '%', and the
// escapes \n \t \\. An unknown %x or a trailing '%' is an error.
ArgResult<std::vector<FormatPiece>> parse_format(std::string_view format);

// `--print key,partition,offset,timestamp,headers,topic,value`: those fields,
// tab-separated, in the order given, then the value if it is not listed; one
// message per line.
ArgResult<std::string> print_fields_to_format(std::string_view fields);

// A produced message's key and value. A missing key (nullopt) is sent as a
// null key, which is not the same as an empty key.
struct KeyAndValue {
  std::optional<std::string> key;
  std::string value;

  bool operator==(const KeyAndValue&) const = default;
};

// Splits `line` at the first occurrence of `separator`: the part before is the
// key, the rest is the value. With an empty separator, or when the separator
// does not occur, the whole line is the value and the key is null (as kcat -K).
KeyAndValue split_key_value(std::string_view line, std::string_view separator);

// Parses `key=value` (split at the first '='; the key must be non-empty, the
// value may be empty or contain further '=').
ArgResult<std::pair<std::string, std::string>> parse_assignment(std::string_view text);

// The text of a `--command-config` file (Kafka tools' client properties):
// `key=value` lines, `#` / `!` comments and blank lines skipped, as "key=value"
// librdkafka properties. The Java names librdkafka lacks are translated:
// `sasl.mechanism` becomes `sasl.mechanisms`, and a `sasl.jaas.config` of the
// PLAIN or SCRAM login module becomes `sasl.username` / `sasl.password`;
// TLS stores become librdkafka's files: a PEM `ssl.truststore.location`
// becomes `ssl.ca.location`, a PEM `ssl.keystore.location` (key and chain in
// one file) `ssl.certificate.location` + `ssl.key.location`, a PKCS12 one
// stays; JKS stores are an error (librdkafka cannot read them).
ArgResult<std::vector<std::string>> parse_command_config(std::string_view text);

// Maps `--acks 0|1|all|-1` to librdkafka's `acks` value ("0", "1", "all").
ArgResult<std::string> parse_acks(std::string_view acks);

// Accepts none|gzip|snappy|lz4|zstd and returns it unchanged.
ArgResult<std::string> parse_compression(std::string_view codec);

// Parses a whole string as a base-10 integer within [min, max].
ArgResult<int64_t> parse_integer(std::string_view text, int64_t min, int64_t max);

}  // namespace holdfast::cli
