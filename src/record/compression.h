// Compression codecs for record batches, through the Debian libraries: zlib
// (gzip), snappy (raw and the xerial framing Java clients send), lz4 (frame
// format) and zstd. Decompression output is always bounded, so a zip bomb is
// an error, not an out-of-memory kill.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "record/batch.h"

namespace holdfast::record {

// Compresses `input` with `codec` (none returns a copy).
Result<std::vector<uint8_t>, Errc> compress(Compression codec, std::span<const uint8_t> input);

// Decompresses `input`; output larger than max_output bytes is
// message_too_large, damaged input is corrupt_message, an unknown codec is
// unsupported_compression.
Result<std::vector<uint8_t>, Errc> decompress(Compression codec, std::span<const uint8_t> input,
                                              size_t max_output);

}  // namespace holdfast::record
