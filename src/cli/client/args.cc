#include "cli/client/args.h"

#include <charconv>
#include <limits>

namespace holdfast::cli {

ArgResult<int64_t> parse_integer(std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return make_error(ArgErrc::kInvalid, "'" + std::string(text) + "' is not an integer");
  }
  if (value < min || value > max) {
    return make_error(ArgErrc::kInvalid, "'" + std::string(text) + "' is out of range [" +
                                             std::to_string(min) + ", " + std::to_string(max) +
                                             "]");
  }
  return value;
}

ArgResult<StartPosition> parse_start_position(std::string_view spec) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (spec == "beginning") return StartPosition{StartPosition::Kind::kBeginning, 0};
  if (spec == "end") return StartPosition{StartPosition::Kind::kEnd, 0};
  if (!spec.empty() && spec.front() == '@') {
    auto ts = parse_integer(spec.substr(1), 0, kMax);
    if (!ts) {
      return make_error(ArgErrc::kInvalid,
                        "--from '" + std::string(spec) + "': expected @<timestamp in ms>");
    }
    return StartPosition{StartPosition::Kind::kTimestamp, *ts};
  }
  auto offset = parse_integer(spec, 0, kMax);
  if (!offset) {
    return make_error(ArgErrc::kInvalid, "--from '" + std::string(spec) +
                                             "': expected beginning, end, <offset> or "
                                             "@<timestamp-ms>");
  }
  return StartPosition{StartPosition::Kind::kOffset, *offset};
}

KeyAndValue split_key_value(std::string_view line, std::string_view separator) {
  if (separator.empty()) return {std::nullopt, std::string(line)};
  auto at = line.find(separator);
  if (at == std::string_view::npos) return {std::nullopt, std::string(line)};
  return {std::string(line.substr(0, at)), std::string(line.substr(at + separator.size()))};
}

ArgResult<std::pair<std::string, std::string>> parse_assignment(std::string_view text) {
  auto at = text.find('=');
  if (at == std::string_view::npos || at == 0) {
    return make_error(ArgErrc::kInvalid, "'" + std::string(text) + "': expected key=value");
  }
  return std::pair<std::string, std::string>{std::string(text.substr(0, at)),
                                             std::string(text.substr(at + 1))};
}

ArgResult<std::string> parse_acks(std::string_view acks) {
  if (acks == "0" || acks == "1" || acks == "all") return std::string(acks);
  if (acks == "-1") return std::string("all");
  return make_error(ArgErrc::kInvalid, "--acks '" + std::string(acks) + "': expected 0, 1 or all");
}

ArgResult<std::string> parse_compression(std::string_view codec) {
  for (std::string_view known : {"none", "gzip", "snappy", "lz4", "zstd"}) {
    if (codec == known) return std::string(codec);
  }
  return make_error(ArgErrc::kInvalid, "--compression '" + std::string(codec) +
                                           "': expected none, gzip, snappy, lz4 or zstd");
}

}  // namespace holdfast::cli
