// Recompression of a stored batch for topics whose compression.type is not
// `producer` (implemented in batch.cc, next to the codec plumbing it shares).
#pragma once

#include <cstddef>
#include <span>

#include "base/bytes.h"
#include "base/result.h"
#include "record/batch.h"

namespace holdfast::record {

// compression.type other than `producer` (Kafka's LogValidator): the same
// batch with its records compressed by `target`. Every header field but the
// codec bits, Length and CRC is kept (base and max timestamp, producer id,
// epoch and base sequence, transactional bit), and so is every record's
// encoding, byte for byte; the CRC is recomputed. Requires a batch that
// check_batch accepts; decompression is bounded by max_decompressed_bytes.
// A batch already in `target` comes back unchanged.
Result<Bytes, Errc> recompress_batch(std::span<const uint8_t> batch, Compression target,
                                     size_t max_decompressed_bytes);

}  // namespace holdfast::record
