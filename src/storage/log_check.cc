#include "storage/log_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "storage/format.h"
#include "storage/segment.h"

namespace holdfast::storage {

uint64_t PartitionCheck::bytes_removed() const {
  if (!cut_segment) return 0;
  uint64_t removed = segments[*cut_segment].size - cut_position;
  for (size_t i = *cut_segment + 1; i < segments.size(); ++i) removed += segments[i].size;
  return removed;
}

StorageResult<PartitionCheck> check_partition(io::FileSystem& fs, const std::string& dir) {
  if (!fs.is_directory(dir)) {
    return make_error(Errc::not_found, fmt::format("{} is not a directory", dir));
  }
  auto names = fs.list_dir(dir);
  if (!names) return io_failure(names.error());
  std::vector<int64_t> bases;
  for (const auto& name : *names) {
    if (auto base = format::parse_segment_file_name(name, format::kLogSuffix)) {
      bases.push_back(*base);
    }
  }
  std::sort(bases.begin(), bases.end());

  PartitionCheck check;
  auto note_damage = [&](size_t segment, BatchDamage damage) {
    if (!check.cut_segment) {
      check.cut_segment = segment;
      check.cut_position = damage.position;
    }
    check.damage.push_back(std::move(damage));
  };
  int64_t expected = -1;  // the previous segment's end offset
  for (size_t i = 0; i < bases.size(); ++i) {
    std::string path = io::join_path(dir, format::segment_file_name(bases[i], format::kLogSuffix));
    auto file = fs.open(path, io::OpenMode::open_existing);
    if (!file) return io_failure(file.error());
    SegmentCheck segment{bases[i], path, (*file)->size(), 0, bases[i]};
    if (expected >= 0 && bases[i] != expected) {
      note_damage(i, BatchDamage{path, 0,
                                 fmt::format("the segment starts at offset {} but the one before "
                                             "ends at offset {} ({})",
                                             bases[i], expected,
                                             bases[i] < expected ? "overlap" : "missing offsets")});
    }
    uint64_t from = 0;
    int64_t next_offset = bases[i];
    while (from < segment.size) {
      BatchWalker walker(**file, path, from, segment.size, bases[i], next_offset, true);
      for (;;) {
        auto batch = walker.next();
        if (!batch) return batch.error();
        if (!*batch) break;
        ++segment.batches;
        if (check.cut_segment) ++check.good_batches_removed;
      }
      if (walker.next_offset() > segment.next_offset) segment.next_offset = walker.next_offset();
      if (!walker.damage()) break;
      BatchDamage damage = *walker.damage();
      // Go on at the next good batch (one byte on, so a good batch with bad
      // offsets is not found again).
      auto found = find_valid_batch(**file, damage.position + 1, segment.size);
      if (!found) return found.error();
      uint64_t resume = found->value_or(segment.size);
      damage.reason += fmt::format(" ({} bytes up to {})", resume - damage.position,
                                   *found ? fmt::format("the next good batch at byte {}", **found)
                                          : std::string("the end of the file"));
      note_damage(i, std::move(damage));
      from = resume;
      next_offset = std::numeric_limits<int64_t>::min();  // offsets are unknown after damage
    }
    check.batches += segment.batches;
    expected = segment.next_offset;
    check.segments.push_back(std::move(segment));
  }
  // The end offset once cut: the last good batch before the cut.
  if (check.cut_segment) {
    size_t k = *check.cut_segment;
    check.end_after_repair = bases[k];
    auto file = fs.open(check.segments[k].path, io::OpenMode::open_existing);
    if (!file) return io_failure(file.error());
    BatchWalker walker(**file, check.segments[k].path, 0, check.cut_position, bases[k], bases[k],
                       true);
    for (;;) {
      auto batch = walker.next();
      if (!batch) return batch.error();
      if (!*batch) break;
    }
    check.end_after_repair = walker.next_offset();
    if (check.cut_position == 0 && k > 0) check.end_after_repair = check.segments[k - 1].next_offset;
  } else if (!check.segments.empty()) {
    check.end_after_repair = check.segments.back().next_offset;
  }
  return check;
}

StorageResult<void> repair_partition(io::FileSystem& fs, const std::string& dir,
                                     const PartitionCheck& check) {
  if (!check.cut_segment) return {};
  const size_t k = *check.cut_segment;
  // Later segments first: a crash midway leaves a shorter log, never a gap.
  for (size_t i = check.segments.size(); i-- > k + 1;) {
    auto segment = Segment::open_existing(fs, dir, check.segments[i].base_offset, 0);
    if (!segment) return segment.error();
    if (auto r = (*segment)->remove_files(fs); !r) return r;
  }
  auto segment = Segment::open_existing(fs, dir, check.segments[k].base_offset, 0);
  if (!segment) return segment.error();
  if (check.cut_position == 0 && k > 0) {
    if (auto r = (*segment)->remove_files(fs); !r) return r;
  } else {
    if (auto r = (*segment)->truncate_to(check.cut_position); !r) return r;
    if (auto r = (*segment)->file().sync_data(); !r) return io_failure(r.error());
    // Its index files may point past the cut: rebuilt at the next start.
    for (auto suffix : {format::kIndexSuffix, format::kTimeIndexSuffix}) {
      auto r = fs.remove(
          io::join_path(dir, format::segment_file_name(check.segments[k].base_offset, suffix)));
      if (!r && r.code() != io::Errc::not_found) return io_failure(r.error());
    }
  }
  if (auto r = fs.sync_dir(dir); !r) return io_failure(r.error());
  return {};
}

}  // namespace holdfast::storage
