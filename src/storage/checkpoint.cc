#include "storage/checkpoint.h"

#include <fmt/format.h>

#include <charconv>

#include "storage/format.h"

namespace holdfast::storage {

const char* to_string(Errc code) {
  switch (code) {
    case Errc::io_error:
      return "io_error";
    case Errc::offset_out_of_range:
      return "offset_out_of_range";
    case Errc::corrupt:
      return "corrupt";
    case Errc::not_found:
      return "not_found";
    case Errc::already_exists:
      return "already_exists";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::closed:
      return "closed";
    case Errc::out_of_order_sequence:
      return "out_of_order_sequence";
    case Errc::invalid_producer_epoch:
      return "invalid_producer_epoch";
    case Errc::truncated:
      return "truncated";
    case Errc::coordinator_fenced:
      return "coordinator_fenced";
  }
  return "unknown";
}

std::string encode_checkpoint(const CheckpointEntries& entries) {
  std::string out = fmt::format("{}\n{}\n", format::kCheckpointVersion, entries.size());
  for (const auto& [tp, offset] : entries)
    out += fmt::format("{} {} {}\n", tp.first, tp.second, offset);
  return out;
}

namespace {

template <typename Int>
bool parse_int(std::string_view s, Int& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

}  // namespace

StorageResult<CheckpointEntries> decode_checkpoint(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      return make_error(Errc::corrupt, "checkpoint: last line has no newline (torn write?)");
    }
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  int version = -1;
  size_t count = 0;
  if (lines.size() < 2 || !parse_int(lines[0], version) || version != format::kCheckpointVersion) {
    return make_error(Errc::corrupt, "checkpoint: bad or missing version line");
  }
  if (!parse_int(lines[1], count) || count != lines.size() - 2) {
    return make_error(Errc::corrupt,
                      fmt::format("checkpoint: count line says {} but {} entries follow", lines[1],
                                  lines.size() - 2));
  }
  CheckpointEntries entries;
  for (size_t i = 2; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t a = line.find(' ');
    size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    int32_t partition;
    int64_t offset;
    if (b == std::string_view::npos || !parse_int(line.substr(a + 1, b - a - 1), partition) ||
        !parse_int(line.substr(b + 1), offset) || a == 0) {
      return make_error(Errc::corrupt, fmt::format("checkpoint: bad entry line '{}'", line));
    }
    entries[{std::string(line.substr(0, a)), partition}] = offset;
  }
  return entries;
}

StorageResult<void> write_checkpoint(io::FileSystem& fs, const std::string& path,
                                     const CheckpointEntries& entries) {
  std::string text = encode_checkpoint(entries);
  auto r = io::write_file_atomically(fs, path,
                                     {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  if (!r) return make_error(Errc::io_error, r.error().message);
  return {};
}

StorageResult<CheckpointEntries> read_checkpoint(io::FileSystem& fs, const std::string& path) {
  auto data = io::read_file(fs, path);
  if (!data) {
    return make_error(data.code() == io::Errc::not_found ? Errc::not_found : Errc::io_error,
                      data.error().message);
  }
  auto entries = decode_checkpoint({reinterpret_cast<const char*>(data->data()), data->size()});
  if (!entries)
    return make_error(Errc::corrupt, fmt::format("{}: {}", path, entries.error().message));
  return entries;
}

}  // namespace holdfast::storage
