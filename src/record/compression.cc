#include "record/compression.h"

#include <fmt/format.h>
#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "base/bytes.h"

namespace holdfast::record {
namespace {

// xerial snappy-java framing, what the Java client writes: a 16-byte header
// (magic, version, compatible version) then blocks of [int32 BE length][raw snappy].
constexpr uint8_t kXerialMagic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
constexpr size_t kXerialHeaderSize = 16;
constexpr size_t kXerialBlockSize = 32 * 1024;

Error<Errc> too_large(size_t max_output) {
  return make_error(Errc::message_too_large,
                    fmt::format("decompressed records exceed the bound of {} bytes", max_output));
}

Error<Errc> corrupt(std::string_view codec, std::string_view detail) {
  return make_error(Errc::corrupt_message, fmt::format("{} data is corrupt: {}", codec, detail));
}

// The next output buffer size when growing towards max_output.
size_t grow(size_t current, size_t max_output) {
  return std::min(max_output, std::max<size_t>(current * 2, 64 * 1024));
}

Result<std::vector<uint8_t>, Errc> gzip_compress(std::span<const uint8_t> input) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return make_error(Errc::unsupported_compression, "gzip: deflateInit2 failed");
  }
  std::vector<uint8_t> out(deflateBound(&zs, uLong(input.size())) + 32);
  zs.next_in = const_cast<Bytef*>(input.data());
  zs.avail_in = uInt(input.size());
  zs.next_out = out.data();
  zs.avail_out = uInt(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return make_error(Errc::corrupt_message, "gzip: deflate did not finish");
  return out;
}

Result<std::vector<uint8_t>, Errc> gzip_decompress(std::span<const uint8_t> input,
                                                   size_t max_output) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return corrupt("gzip", "inflateInit2 failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  std::vector<uint8_t> out(std::min(max_output, std::max<size_t>(input.size() * 4, 4096)));
  size_t produced = 0;
  zs.next_in = const_cast<Bytef*>(input.data());
  zs.avail_in = uInt(input.size());
  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= max_output) return too_large(max_output);
      out.resize(grow(out.size(), max_output));
    }
    zs.next_out = out.data() + produced;
    zs.avail_out = uInt(out.size() - produced);
    int rc = inflate(&zs, Z_NO_FLUSH);
    produced = out.size() - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Concatenated gzip members.
      if (inflateReset(&zs) != Z_OK) return corrupt("gzip", "inflateReset failed");
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_out != 0) return corrupt("gzip", "stream is truncated");
    if (rc != Z_OK && rc != Z_BUF_ERROR) return corrupt("gzip", zs.msg ? zs.msg : "inflate failed");
  }
  out.resize(produced);
  return out;
}

// Appends the decompression of one raw snappy block to `out`.
Result<void, Errc> snappy_raw_decompress(std::span<const uint8_t> input, size_t max_output,
                                         std::vector<uint8_t>& out) {
  size_t length = 0;
  auto* data = reinterpret_cast<const char*>(input.data());
  if (!snappy::GetUncompressedLength(data, input.size(), &length)) {
    return corrupt("snappy", "bad length preamble");
  }
  if (length > max_output - std::min(max_output, out.size())) return too_large(max_output);
  size_t at = out.size();
  out.resize(at + length);
  if (!snappy::RawUncompress(data, input.size(), reinterpret_cast<char*>(out.data() + at))) {
    return corrupt("snappy", "RawUncompress failed");
  }
  return {};
}

Result<std::vector<uint8_t>, Errc> snappy_decompress(std::span<const uint8_t> input,
                                                     size_t max_output) {
  std::vector<uint8_t> out;
  if (input.size() >= kXerialHeaderSize &&
      std::memcmp(input.data(), kXerialMagic, sizeof(kXerialMagic)) == 0) {
    size_t pos = kXerialHeaderSize;
    while (pos < input.size()) {
      if (input.size() - pos < 4) return corrupt("snappy", "xerial block length is truncated");
      uint32_t block = load_be32(input.data() + pos);
      pos += 4;
      if (block > input.size() - pos) return corrupt("snappy", "xerial block is truncated");
      auto r = snappy_raw_decompress(input.subspan(pos, block), max_output, out);
      if (!r) return r.error();
      pos += block;
    }
    return out;
  }
  auto r = snappy_raw_decompress(input, max_output, out);
  if (!r) return r.error();
  return out;
}

Result<std::vector<uint8_t>, Errc> snappy_compress(std::span<const uint8_t> input) {
  std::vector<uint8_t> out(kXerialHeaderSize);
  std::memcpy(out.data(), kXerialMagic, sizeof(kXerialMagic));
  store_be32(out.data() + 8, 1);   // version
  store_be32(out.data() + 12, 1);  // minimum compatible version
  std::string block;
  for (size_t pos = 0; pos < input.size(); pos += kXerialBlockSize) {
    size_t n = std::min(kXerialBlockSize, input.size() - pos);
    block.clear();
    snappy::Compress(reinterpret_cast<const char*>(input.data() + pos), n, &block);
    size_t at = out.size();
    out.resize(at + 4 + block.size());
    store_be32(out.data() + at, uint32_t(block.size()));
    std::memcpy(out.data() + at + 4, block.data(), block.size());
  }
  return out;
}

Result<std::vector<uint8_t>, Errc> lz4_compress(std::span<const uint8_t> input) {
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  std::vector<uint8_t> out(LZ4F_compressFrameBound(input.size(), &prefs));
  size_t n = LZ4F_compressFrame(out.data(), out.size(), input.data(), input.size(), &prefs);
  if (LZ4F_isError(n)) return make_error(Errc::corrupt_message, LZ4F_getErrorName(n));
  out.resize(n);
  return out;
}

Result<std::vector<uint8_t>, Errc> lz4_decompress(std::span<const uint8_t> input,
                                                  size_t max_output) {
  LZ4F_dctx* raw = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&raw, LZ4F_VERSION))) {
    return corrupt("lz4", "cannot create a context");
  }
  std::unique_ptr<LZ4F_dctx, decltype(&LZ4F_freeDecompressionContext)> ctx(
      raw, LZ4F_freeDecompressionContext);
  std::vector<uint8_t> out(std::min(max_output, std::max<size_t>(input.size() * 4, 4096)));
  size_t produced = 0;
  size_t consumed = 0;
  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= max_output) return too_large(max_output);
      out.resize(grow(out.size(), max_output));
    }
    size_t dst_size = out.size() - produced;
    size_t src_size = input.size() - consumed;
    size_t hint = LZ4F_decompress(ctx.get(), out.data() + produced, &dst_size,
                                  input.data() + consumed, &src_size, nullptr);
    if (LZ4F_isError(hint)) return corrupt("lz4", LZ4F_getErrorName(hint));
    produced += dst_size;
    consumed += src_size;
    if (hint == 0) {
      if (consumed == input.size()) break;
      LZ4F_resetDecompressionContext(ctx.get());  // another frame follows
      continue;
    }
    if (consumed == input.size() && dst_size == 0 && produced < out.size()) {
      return corrupt("lz4", "frame is truncated");
    }
  }
  out.resize(produced);
  return out;
}

Result<std::vector<uint8_t>, Errc> zstd_compress(std::span<const uint8_t> input) {
  std::vector<uint8_t> out(ZSTD_compressBound(input.size()));
  size_t n = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), 3);
  if (ZSTD_isError(n)) return make_error(Errc::corrupt_message, ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

Result<std::vector<uint8_t>, Errc> zstd_decompress(std::span<const uint8_t> input,
                                                   size_t max_output) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) return corrupt("zstd", "cannot create a context");
  std::vector<uint8_t> out(std::min(max_output, std::max<size_t>(input.size() * 4, 4096)));
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  size_t produced = 0;
  size_t last = 1;
  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= max_output) return too_large(max_output);
      out.resize(grow(out.size(), max_output));
    }
    ZSTD_outBuffer dst{out.data() + produced, out.size() - produced, 0};
    last = ZSTD_decompressStream(ctx.get(), &dst, &in);
    if (ZSTD_isError(last)) return corrupt("zstd", ZSTD_getErrorName(last));
    produced += dst.pos;
    if (in.pos == in.size && dst.pos < dst.size) break;  // all input used, output drained
  }
  if (last != 0) return corrupt("zstd", "frame is truncated");
  out.resize(produced);
  return out;
}

}  // namespace

Result<std::vector<uint8_t>, Errc> compress(Compression codec, std::span<const uint8_t> input) {
  switch (codec) {
    case Compression::none:
      return std::vector<uint8_t>(input.begin(), input.end());
    case Compression::gzip:
      return gzip_compress(input);
    case Compression::snappy:
      return snappy_compress(input);
    case Compression::lz4:
      return lz4_compress(input);
    case Compression::zstd:
      return zstd_compress(input);
  }
  return make_error(Errc::unsupported_compression,
                    fmt::format("unknown compression codec {}", int(codec)));
}

Result<std::vector<uint8_t>, Errc> decompress(Compression codec, std::span<const uint8_t> input,
                                              size_t max_output) {
  switch (codec) {
    case Compression::none:
      if (input.size() > max_output) return too_large(max_output);
      return std::vector<uint8_t>(input.begin(), input.end());
    case Compression::gzip:
      return gzip_decompress(input, max_output);
    case Compression::snappy:
      return snappy_decompress(input, max_output);
    case Compression::lz4:
      return lz4_decompress(input, max_output);
    case Compression::zstd:
      return zstd_decompress(input, max_output);
  }
  return make_error(Errc::unsupported_compression,
                    fmt::format("unknown compression codec {}", int(codec)));
}

}  // namespace holdfast::record
