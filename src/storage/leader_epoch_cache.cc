#include "storage/leader_epoch_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <charconv>

#include "storage/format.h"

namespace holdfast::storage {
namespace {

bool satisfies_invariant(const std::vector<EpochEntry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].epoch < 0 || entries[i].start_offset < 0) return false;
    if (i > 0 && (entries[i].epoch <= entries[i - 1].epoch ||
                  entries[i].start_offset <= entries[i - 1].start_offset)) {
      return false;
    }
  }
  return true;
}

template <typename Int>
bool parse_int(std::string_view s, Int& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

}  // namespace

LeaderEpochCache::LeaderEpochCache(std::vector<EpochEntry> entries) : entries_(std::move(entries)) {
  assert(satisfies_invariant(entries_));
}

bool LeaderEpochCache::assign(int32_t epoch, int64_t start_offset) {
  if (epoch < 0 || start_offset < 0) return false;
  if (!entries_.empty()) {
    const EpochEntry& latest = entries_.back();
    if (epoch < latest.epoch) return false;
    if (epoch == latest.epoch && start_offset >= latest.start_offset) return false;
  }
  // Entries (the latest epoch itself, when its start moves earlier) that
  // would start at or after the new entry cover no batch of their own.
  while (!entries_.empty() &&
         (entries_.back().epoch >= epoch || entries_.back().start_offset >= start_offset)) {
    entries_.pop_back();
  }
  entries_.push_back({epoch, start_offset});
  return true;
}

EpochEndOffset LeaderEpochCache::end_offset_for(int32_t requested_epoch,
                                                int64_t log_end_offset) const {
  if (requested_epoch < 0 || entries_.empty()) return {};
  if (requested_epoch == entries_.back().epoch) return {requested_epoch, log_end_offset};
  // The first entry with an epoch above the requested one.
  auto higher = std::upper_bound(
      entries_.begin(), entries_.end(), requested_epoch,
      [](int32_t epoch, const EpochEntry& e) { return epoch < e.epoch; });
  if (higher == entries_.end()) return {};  // above the latest epoch
  if (higher == entries_.begin()) return {requested_epoch, higher->start_offset};
  return {std::prev(higher)->epoch, higher->start_offset};
}

bool LeaderEpochCache::truncate_from_end(int64_t end_offset) {
  if (end_offset < 0) return false;
  bool changed = false;
  while (!entries_.empty() && entries_.back().start_offset >= end_offset) {
    entries_.pop_back();
    changed = true;
  }
  return changed;
}

bool LeaderEpochCache::truncate_from_start(int64_t start_offset) {
  // The last entry starting at or before start_offset holds it.
  auto holder = std::upper_bound(
      entries_.begin(), entries_.end(), start_offset,
      [](int64_t offset, const EpochEntry& e) { return offset < e.start_offset; });
  if (holder == entries_.begin()) return false;  // every epoch starts after it
  --holder;
  if (holder == entries_.begin() && holder->start_offset == start_offset) return false;
  holder->start_offset = start_offset;
  entries_.erase(entries_.begin(), holder);
  return true;
}

std::optional<int32_t> LeaderEpochCache::latest_epoch() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back().epoch;
}

std::optional<EpochEntry> LeaderEpochCache::latest_entry() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back();
}

std::string encode_leader_epoch_checkpoint(const std::vector<EpochEntry>& entries) {
  std::string out = fmt::format("{}\n{}\n", format::kCheckpointVersion, entries.size());
  for (const auto& e : entries) out += fmt::format("{} {}\n", e.epoch, e.start_offset);
  return out;
}

StorageResult<std::vector<EpochEntry>> decode_leader_epoch_checkpoint(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      return make_error(Errc::corrupt,
                        "leader-epoch-checkpoint: last line has no newline (torn write?)");
    }
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  int version = -1;
  size_t count = 0;
  if (lines.size() < 2 || !parse_int(lines[0], version) || version != format::kCheckpointVersion) {
    return make_error(Errc::corrupt, "leader-epoch-checkpoint: bad or missing version line");
  }
  if (!parse_int(lines[1], count) || count != lines.size() - 2) {
    return make_error(Errc::corrupt,
                      fmt::format("leader-epoch-checkpoint: count line says {} but {} entries "
                                  "follow",
                                  lines[1], lines.size() - 2));
  }
  std::vector<EpochEntry> entries;
  for (size_t i = 2; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t space = line.find(' ');
    EpochEntry e{};
    if (space == std::string_view::npos || !parse_int(line.substr(0, space), e.epoch) ||
        !parse_int(line.substr(space + 1), e.start_offset)) {
      return make_error(Errc::corrupt,
                        fmt::format("leader-epoch-checkpoint: bad entry line '{}'", line));
    }
    entries.push_back(e);
    if (!satisfies_invariant(entries)) {
      return make_error(Errc::corrupt,
                        fmt::format("leader-epoch-checkpoint: entry '{}' does not follow the one "
                                    "before it (epochs and start offsets must increase)",
                                    line));
    }
  }
  return entries;
}

StorageResult<void> write_leader_epoch_checkpoint(io::FileSystem& fs, const std::string& path,
                                                  const std::vector<EpochEntry>& entries) {
  std::string text = encode_leader_epoch_checkpoint(entries);
  auto r = io::write_file_atomically(fs, path,
                                     {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  if (!r) return make_error(Errc::io_error, r.error().message);
  return {};
}

StorageResult<std::vector<EpochEntry>> read_leader_epoch_checkpoint(io::FileSystem& fs,
                                                                    const std::string& path) {
  auto data = io::read_file(fs, path);
  if (!data) {
    return make_error(data.code() == io::Errc::not_found ? Errc::not_found : Errc::io_error,
                      data.error().message);
  }
  auto entries =
      decode_leader_epoch_checkpoint({reinterpret_cast<const char*>(data->data()), data->size()});
  if (!entries)
    return make_error(Errc::corrupt, fmt::format("{}: {}", path, entries.error().message));
  return entries;
}

}  // namespace holdfast::storage
