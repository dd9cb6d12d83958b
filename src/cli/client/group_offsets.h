// Pure offset arithmetic for `holdfast group describe|seek`: lag and the
// offset a seek commits. Free of librdkafka so that it is unit-tested alone
// (src/cli/client/tests/group_offsets_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "cli/client/args.h"

namespace holdfast::cli {

// Parses `group seek --to`: start (also beginning, earliest), end (also
// latest), <offset> (a non-negative integer) or @<timestamp-ms>.
ArgResult<StartPosition> parse_seek_target(std::string_view spec);

// A partition's lag as rpk computes it: nullopt when nothing is committed
// (committed < 0); otherwise the messages from the committed offset, or from
// the log start offset if the commit lies before it (those records are gone
// and will never be consumed), to the log end offset. Never negative.
std::optional<int64_t> partition_lag(int64_t committed, int64_t log_start, int64_t log_end);

// The offset `group seek` commits for one partition whose log spans
// [log_start, log_end). `offset_for_time` is ListOffsets' answer for a
// kTimestamp target (the first offset whose timestamp is >= the target, or -1
// when there is none: then the log end, as Kafka's --to-datetime). An
// explicit offset is clamped into [log_start, log_end], as Kafka's
// `--reset-offsets --to-offset` does.
int64_t seek_offset(const StartPosition& target, int64_t log_start, int64_t log_end,
                    int64_t offset_for_time = -1);

}  // namespace holdfast::cli
