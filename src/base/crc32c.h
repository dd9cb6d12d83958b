// CRC-32C (Castagnoli), as used by Kafka record batches v2.
#pragma once

#include <cstddef>
#include <cstdint>

namespace holdfast {

// Continues a CRC-32C over [data, data+size). Start with crc = 0.
// Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t size);
inline uint32_t crc32c(const uint8_t* data, size_t size) { return crc32c_extend(0, data, size); }

// The portable implementation, exposed so tests can compare both paths.
uint32_t crc32c_extend_portable(uint32_t crc, const uint8_t* data, size_t size);
bool crc32c_hardware_available();

}  // namespace holdfast
