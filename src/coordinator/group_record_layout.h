// TEMPORARY (merged into group_records.h before the final commit).
#pragma once

#include "coordinator/group_records.h"

namespace holdfast::coordinator {

constexpr int16_t kOffsetValueVersionWritten = 3;
constexpr int16_t kOffsetValueVersionExpiring = 1;
constexpr int16_t kGroupValueVersionWritten = 3;
constexpr size_t kMaxOffsetMetadataBytes = 32767;

enum class RecordLayout { kafka, holdfast_legacy };

Result<OffsetValue, RecordErrc> decode_offset_value(std::span<const uint8_t> data,
                                                    RecordLayout* layout);
Result<GroupValue, RecordErrc> decode_group_value(std::span<const uint8_t> data,
                                                  RecordLayout* layout);

}  // namespace holdfast::coordinator
