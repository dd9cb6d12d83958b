#include "cli/client/group_offsets.h"

#include <algorithm>
#include <string>

namespace holdfast::cli {

ArgResult<StartPosition> parse_seek_target(std::string_view spec) {
  if (spec == "start" || spec == "beginning" || spec == "earliest") {
    return StartPosition{StartPosition::Kind::kBeginning, 0};
  }
  if (spec == "end" || spec == "latest") return StartPosition{StartPosition::Kind::kEnd, 0};
  auto parsed = parse_start_position(spec);
  if (!parsed || parsed->kind == StartPosition::Kind::kFromEnd) {
    return make_error(ArgErrc::kInvalid, "--to '" + std::string(spec) +
                                             "': expected start, end, <offset> or "
                                             "@<timestamp-ms>");
  }
  return parsed;
}

std::optional<int64_t> partition_lag(int64_t committed, int64_t log_start, int64_t log_end) {
  if (committed < 0) return std::nullopt;
  return std::max<int64_t>(0, log_end - std::max(committed, log_start));
}

int64_t seek_offset(const StartPosition& target, int64_t log_start, int64_t log_end,
                    int64_t offset_for_time) {
  switch (target.kind) {
    case StartPosition::Kind::kBeginning:
      return log_start;
    case StartPosition::Kind::kEnd:
      return log_end;
    case StartPosition::Kind::kOffset:
      return std::clamp(target.value, log_start, log_end);
    case StartPosition::Kind::kFromEnd:  // not accepted by parse_seek_target
      return std::max(log_start, log_end - target.value);
    case StartPosition::Kind::kTimestamp:
      return offset_for_time < 0 ? log_end : std::clamp(offset_for_time, log_start, log_end);
  }
  return log_end;
}

}  // namespace holdfast::cli
