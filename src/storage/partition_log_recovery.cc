// Loading a partition directory at start-up (PartitionLog::load) and the
// producer state that goes with it.
//
// Contract (docs/operations.md, "Corrupt segments"):
//  - Segments wholly below the recovery point (or every segment after a clean
//    shutdown) are trusted: their index files are used and only the batches
//    after the last index entry are walked, framing only. The others are
//    walked from their start with framing, CRC and offset checks.
//  - Only a torn tail is ever cut: bad bytes (or, at a segment boundary, a
//    missing stretch of offsets) past the recovery point with no good batch
//    after them in the same file. Such bytes were never covered by an fsync.
//    Later segment files go with them: they hold nothing acknowledged, since
//    flush() checkpoints the recovery point past a rolled segment (synced
//    whole) before acknowledging or serving any offset after it.
//  - Any other damage (a bad batch below the recovery point, in a trusted
//    segment, or followed by a good batch in its file; overlapping segments;
//    a log that ends before the recovery point) is a disk fault: the
//    partition comes up offline, every operation on it fails with io_error
//    (KAFKA_STORAGE_ERROR), the error is logged with file, position and
//    reason, and NOTHING in the directory is changed. `holdfast log check`
//    reports the damage and `holdfast log repair` cuts it on request.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "base/log.h"
#include "storage/batch_walker.h"
#include "storage/format.h"
#include "storage/log_cleaner.h"
#include "storage/partition_log.h"
#include "storage/truncation_marker.h"
#include "storage/txn_index.h"

namespace holdfast::storage {

std::shared_ptr<PartitionLog> PartitionLog::make_offline(LogServices& services, std::string dir,
                                                         std::string topic, int32_t partition,
                                                         const LogConfig& config,
                                                         std::string reason,
                                                         std::optional<int64_t> recovery_point,
                                                         std::optional<int64_t> log_start) {
  auto log = std::make_shared<PartitionLog>(services, std::move(dir), std::move(topic), partition,
                                            config);
  log->offline_ = true;
  log->failed_ = true;
  log->failure_ = fmt::format("partition {}-{} is offline (disk fault): {}", log->topic_,
                              log->partition_, reason);
  // The checkpoints keep what they said about this partition.
  log->log_start_offset_ = std::max<int64_t>(0, log_start.value_or(0));
  log->durable_offset_ = std::max(log->log_start_offset_, recovery_point.value_or(0));
  log->log_end_offset_ = log->durable_offset_;
  log->high_watermark_ = log->durable_offset_;
  HF_ERROR("{}. Nothing was changed on disk; `holdfast log check {}` lists the damage and "
           "`holdfast log repair` (broker stopped) cuts the log before it.",
           log->failure_, log->dir_);
  return log;
}

StorageResult<std::shared_ptr<PartitionLog>> PartitionLog::load(
    LogServices& services, std::string dir, std::string topic, int32_t partition,
    const LogConfig& config, std::optional<int64_t> recovery_point,
    std::optional<int64_t> log_start, bool clean) {
  io::FileSystem& fs = services.fs();
  int64_t now = services.now_ms();
  bool dir_changed = false;
  // Finish (or roll back) a cleaned-segment swap a crash interrupted, before
  // the segments are listed (log_cleaner.h).
  if (auto r = LogCleaner::recover_swaps(fs, dir, dir_changed); !r) return r.error();
  // A replica's truncation a crash interrupted (partition_log_replica.cc) is
  // finished here: an emptied log is emptied again, a cut log is cut again
  // below, with the recovery point capped at the cut (the checkpoint may
  // still name an offset past it).
  auto truncation = read_truncation_marker(fs, dir);
  if (!truncation) {
    return make_offline(services, dir, topic, partition, config,
                        fmt::format("{} (a truncation was in progress; its target is unknown)",
                                    truncation.error().message),
                        recovery_point, log_start);
  }
  if (*truncation) {
    const TruncationMarker& t = **truncation;
    HF_WARN("{}: finishing a truncation a crash interrupted ({} {})", dir,
            t.kind == TruncationMarker::Kind::end ? "log end" : "empty log starting at", t.offset);
    clean = false;
    if (t.kind == TruncationMarker::Kind::start) {
      if (auto r = remove_partition_data_files(fs, dir); !r) return r.error();
      log_start = t.offset;
      recovery_point = t.offset;
    } else if (recovery_point) {
      recovery_point = std::min(*recovery_point, t.offset);
    }
  }
  auto names = fs.list_dir(dir);
  if (!names) return io_failure(names.error());
  std::vector<int64_t> bases;
  std::vector<std::string> index_files;
  for (const auto& name : *names) {
    if (name.ends_with(format::kTempSuffix)) {  // an interrupted atomic replace
      (void)fs.remove(io::join_path(dir, name));
      dir_changed = true;
    } else if (auto base = format::parse_segment_file_name(name, format::kLogSuffix)) {
      bases.push_back(*base);
    } else if (format::parse_segment_file_name(name, format::kIndexSuffix) ||
               format::parse_segment_file_name(name, format::kTimeIndexSuffix) ||
               format::parse_segment_file_name(name, format::kTxnIndexSuffix)) {
      index_files.push_back(name);
    }
  }
  std::sort(bases.begin(), bases.end());
  // Index files without their log are leftovers of a deletion.
  for (const auto& name : index_files) {
    auto base = format::parse_segment_file_name(name, format::kIndexSuffix);
    if (!base) base = format::parse_segment_file_name(name, format::kTimeIndexSuffix);
    if (!base) base = format::parse_segment_file_name(name, format::kTxnIndexSuffix);
    if (!std::binary_search(bases.begin(), bases.end(), *base)) {
      (void)fs.remove(io::join_path(dir, name));
      dir_changed = true;
    }
  }

  auto log = std::make_shared<PartitionLog>(services, dir, topic, partition, config);
  log->last_sync_ms_ = now;
  // Offsets at or past this may hold bytes no fsync covered (a torn tail).
  const int64_t recover_from =
      clean ? std::numeric_limits<int64_t>::max() : recovery_point.value_or(0);
  auto offline = [&](std::string reason) {
    return make_offline(services, dir, topic, partition, config, std::move(reason),
                        recovery_point, log_start);
  };
  // Cuts the log at `damage` (in segment bases[i], or at the end of it when
  // the damage is a missing stretch before bases[i + 1]) if it is a torn
  // tail; otherwise says why it is not. Later segment files go too.
  std::vector<std::shared_ptr<Segment>> recovered;
  auto cut_torn_tail = [&](size_t i, const std::shared_ptr<Segment>& segment,
                           const BatchDamage& damage,
                           bool in_segment) -> StorageResult<std::optional<std::string>> {
    if (segment->next_offset < recover_from) {
      return std::optional<std::string>(
          clean ? fmt::format("{} (the broker shut down cleanly, so every byte was flushed)",
                              damage.describe())
                : fmt::format("{} (below the recovery point {}: these bytes were flushed)",
                              damage.describe(), recover_from));
    }
    if (in_segment) {
      // From the bad batch itself: a CRC-valid batch with wrong offsets is
      // no torn write either.
      auto found = find_valid_batch(segment->file(), damage.position, segment->file().size());
      if (!found) return found.error();
      if (*found) {
        return std::optional<std::string>(fmt::format(
            "{} (a good batch follows at byte {})", damage.describe(), **found));
      }
    }
    uint64_t file_size = segment->file().size();
    if (in_segment) {
      HF_WARN("{}: cutting a torn tail of {} bytes past the recovery point {} (never flushed): {}",
              dir, file_size - damage.position, recovery_point.value_or(0), damage.describe());
      if (auto r = segment->truncate_to(damage.position); !r) return r.error();
    } else {
      HF_WARN("{}: the log ends at offset {} past the recovery point {}: {}", dir,
              segment->next_offset, recovery_point.value_or(0), damage.describe());
    }
    for (size_t j = i + 1; j < bases.size(); ++j) {
      auto dead = Segment::open_existing(fs, dir, bases[j], now);
      if (!dead) return dead.error();
      auto good = find_valid_batch((*dead)->file(), 0, (*dead)->file().size());
      if (!good) return good.error();
      HF_WARN("{}: removing segment {} ({} bytes{}) after the torn tail: written after it and "
              "never acknowledged",
              dir, bases[j], (*dead)->file().size(),
              *good ? ", holding complete batches" : "");
      if (auto r = (*dead)->remove_files(fs); !r) return r.error();
    }
    dir_changed = true;
    return std::optional<std::string>();
  };

  for (size_t i = 0; i < bases.size(); ++i) {
    int64_t next_base = i + 1 < bases.size() ? bases[i + 1] : std::numeric_limits<int64_t>::max();
    bool recover = next_base > recover_from;
    if (!log->segments_.empty() && bases[i] != log->active_->next_offset) {
      // Segments continue exactly where the previous one ends. An overlap is
      // corruption. A gap means the previous segment lost its end: a torn
      // tail if it is past the recovery point and nothing good follows.
      const auto& previous = log->active_;
      BatchDamage missing{previous->log_path(), previous->size,
                          fmt::format("the segment ends at offset {} but the next one, {}, "
                                      "starts at {}",
                                      previous->next_offset, bases[i], bases[i])};
      if (bases[i] < previous->next_offset) return offline(missing.describe() + " (overlap)");
      auto cut = cut_torn_tail(i - 1, previous, missing, /*in_segment=*/false);
      if (!cut) return cut.error();
      if (*cut) return offline(**cut);
      break;
    }
    auto opened = Segment::open_existing(fs, dir, bases[i], now);
    if (!opened) return opened.error();
    auto segment = *opened;
    auto damage = segment->load_batches(fs, recover, config.index_interval_bytes,
                                        recover ? recover_from : 0);
    if (!damage) return damage.error();
    (recover ? log->load_stats_.crc_checked_bytes : log->load_stats_.header_walked_bytes) +=
        segment->scanned_at_load;
    if (recover) recovered.push_back(segment);
    log->segments_[segment->base_offset] = segment;
    log->active_ = segment;
    if (*damage) {
      if (!recover) return offline((*damage)->describe() + " (in a segment below the recovery point)");
      auto cut = cut_torn_tail(i, segment, **damage, /*in_segment=*/true);
      if (!cut) return cut.error();
      if (*cut) return offline(**cut);
      break;
    }
  }
  if (!clean && !log->segments_.empty() && log->active_->next_offset < recovery_point.value_or(0)) {
    return offline(fmt::format("the log ends at offset {} ({} at byte {}), but offsets below the "
                               "recovery point {} were flushed: data is missing",
                               log->active_->next_offset, log->active_->log_path(),
                               log->active_->size, *recovery_point));
  }
  for (const auto& [base, segment] : log->segments_) log->total_bytes_ += int64_t(segment->size);
  if (log->segments_.empty()) {
    // The directory lost its only segment (created but never synced).
    int64_t base = std::max<int64_t>(0, log_start.value_or(0));
    auto segment = Segment::create(fs, dir, base, now);
    if (!segment) return segment.error();
    log->segments_[base] = *segment;
    log->active_ = *segment;
    dir_changed = true;
  }
  log->log_end_offset_ = log->active_->next_offset;
  log->log_start_offset_ =
      std::clamp(log_start.value_or(0), log->segments_.begin()->first, log->log_end_offset_);
  // Segments wholly below the log start (DeleteRecords whose deletions a crash undid).
  while (log->segments_.size() > 1 &&
         std::next(log->segments_.begin())->first <= log->log_start_offset_) {
    auto dead = log->segments_.begin()->second;
    log->total_bytes_ -= int64_t(dead->size);
    log->segments_.erase(log->segments_.begin());
    std::erase(recovered, dead);
    if (auto r = dead->remove_files(fs); !r) return r.error();
    dir_changed = true;
  }
  if (*truncation && (*truncation)->kind == TruncationMarker::Kind::end &&
      (*truncation)->offset < log->log_end_offset_) {
    std::shared_ptr<Segment> cut;
    Segment::TruncationPoint point;
    std::vector<std::shared_ptr<Segment>> dead;
    const int64_t target = std::max((*truncation)->offset, log->log_start_offset_);
    if (auto r = log->plan_cut_locked(target, cut, point, dead); !r) return r.error();
    if (auto r = log->cut_segments(cut, point, dead); !r) return r.error();
    for (const auto& s : dead) std::erase(recovered, s);
  }
  if (auto r = log->load_producer_state(*names, dir_changed); !r) return r.error();
  log->load_leader_epochs(recover_from);
  if (*truncation) {
    // An entry starting exactly at the new end belongs to the removed records.
    if (log->epochs_.truncate_from_end(log->log_end_offset_)) {
      ++log->epochs_version_;
      if (auto r = log->persist_leader_epochs({log->epochs_version_, log->epochs_.entries()}); !r)
        HF_WARN("{}: writing leader-epoch-checkpoint: {}", dir, r.error().message);
    }
    log->loaded_truncation_ = true;
  }
  // Recovered bytes may sit only in the page cache (a process crash): sync
  // them before they count as durable.
  for (const auto& segment : recovered) {
    if (auto r = segment->file().sync_data(); !r) return io_failure(r.error());
  }
  if (dir_changed) {
    if (auto r = fs.sync_dir(dir); !r) return io_failure(r.error());
  }
  for (auto& [base, segment] : log->segments_) segment->synced_size = segment->size;
  log->durable_offset_ = log->log_end_offset_;
  log->high_watermark_ = log->log_end_offset_;
  log->last_mark_offset_ = log->log_end_offset_;
  log->last_mark_ms_ = now;
  return log;
}

// The leader epoch cache. Every epoch starting below the durable offset was
// written to leader-epoch-checkpoint before that offset became durable
// (flush()), so the file is complete below the recovery point and only the
// batches from `replay_from` on can add epochs. Without a usable file the
// cache is rebuilt from every batch: the batches carry their epochs, so a
// missing (an upgrade, a lost file) or damaged file never takes the
// partition offline. Entries past the log end (a torn tail cut) and before
// the log start are trimmed; an entry starting exactly at the log end (an
// epoch with no batch yet) stays.
void PartitionLog::load_leader_epochs(int64_t replay_from) {
  const std::string path = io::join_path(dir_, format::kLeaderEpochCheckpointFile);
  auto read = read_leader_epoch_checkpoint(services_.fs(), path);
  bool changed = false;
  if (read) {
    epochs_ = LeaderEpochCache(std::move(*read));
  } else {
    if (read.code() != Errc::not_found) {
      HF_WARN("{}: rebuilding the leader epoch cache from the log's batches: {}", dir_,
              read.error().message);
    }
    replay_from = segments_.begin()->first;
    changed = true;
  }
  if (epochs_.truncate_from_end(log_end_offset_ + 1)) changed = true;
  if (replay_from < log_end_offset_) {
    auto before = epochs_.entries();
    if (auto r = replay_leader_epochs(replay_from); !r) {
      // Only a read error can get here (the segments were just walked); the
      // cache may then lack the newest epochs, as Kafka's would.
      HF_WARN("{}: replaying batch epochs from offset {}: {}", dir_, replay_from,
              r.error().message);
    }
    if (epochs_.entries() != before) changed = true;
  }
  if (epochs_.truncate_from_start(log_start_offset_)) changed = true;
  leader_epoch_ = std::max(0, epochs_.latest_epoch().value_or(0));
  if (!changed) return;
  ++epochs_version_;
  if (auto r = persist_leader_epochs({epochs_version_, epochs_.entries()}); !r) {
    // The flusher retries (the cache stays marked as changed).
    HF_WARN("{}: writing leader-epoch-checkpoint: {}", dir_, r.error().message);
  }
}

StorageResult<void> PartitionLog::replay_leader_epochs(int64_t from) {
  auto it = segments_.upper_bound(from);
  if (it != segments_.begin()) --it;
  bool first = true;
  for (; it != segments_.end(); ++it) {
    const auto& segment = it->second;
    uint64_t position = first ? segment->index_lookup(from) : 0;
    first = false;
    while (position < segment->size) {
      auto header = segment->read_header(position, segment->size);
      if (!header) return header.error();
      if (header->last_offset() >= from) {
        epochs_.assign(header->partition_leader_epoch, header->base_offset);
      }
      position += header->size_in_bytes();
    }
  }
  return {};
}

StorageResult<void> PartitionLog::load_producer_state(const std::vector<std::string>& names,
                                                      bool& dir_changed) {
  io::FileSystem& fs = services_.fs();
  const int64_t first_base = segments_.begin()->first;
  std::vector<int64_t> offsets;
  for (const auto& name : names) {
    auto offset = format::parse_segment_file_name(name, format::kSnapshotSuffix);
    if (!offset) continue;
    // Past the (possibly truncated) end, or before the oldest batch we hold
    // (the batches between it and the log would be missing): unusable.
    if (*offset > log_end_offset_ || *offset < first_base) {
      (void)fs.remove(io::join_path(dir_, name));
      dir_changed = true;
      continue;
    }
    offsets.push_back(*offset);
  }
  std::sort(offsets.rbegin(), offsets.rend());
  int64_t replay_from = first_base;
  for (int64_t offset : offsets) {
    std::string path = io::join_path(dir_, format::segment_file_name(offset, format::kSnapshotSuffix));
    auto data = io::read_file(fs, path);
    if (data) {
      auto decoded = ProducerStateTable::decode_snapshot(*data);
      if (decoded && decoded->offset == offset) {
        producers_ = std::move(decoded->table);
        replay_from = offset;
        break;
      }
      HF_WARN("{}: ignoring producer snapshot: {}", path,
              decoded ? "offset does not match its name" : decoded.error().message);
    } else {
      HF_WARN("{}: cannot read producer snapshot: {}", path, data.error().message);
    }
    (void)fs.remove(path);
    dir_changed = true;
  }
  // The aborted-transaction indexes: entries of markers below the snapshot
  // come from the .txnindex files (an entry is synced with its marker, and a
  // snapshot is only written once its offset is durable), the others from
  // the replay below. A file that does not read back makes the whole producer
  // state and every index be rebuilt from the log.
  std::map<int64_t, std::vector<AbortedTxn>> on_disk;
  std::set<int64_t> torn;
  for (const auto& [base, segment] : segments_) {
    auto entries = segment->read_txn_index_file(fs);
    if (!entries) {
      HF_WARN("{}: rebuilding the aborted-transaction indexes from the log: {}", dir_,
              entries.error().message);
      producers_.clear();
      replay_from = first_base;
      on_disk.clear();
      break;
    }
    auto size = fs.file_size(
        io::join_path(dir_, format::segment_file_name(base, format::kTxnIndexSuffix)));
    if (size && *size % kTxnIndexEntrySize != 0) torn.insert(base);
    on_disk[base] = std::move(*entries);
  }
  for (const auto& [base, segment] : segments_) {
    segment->aborted_txns.clear();
    for (const auto& t : on_disk[base]) {
      if (t.last_offset < replay_from) segment->aborted_txns.push_back(t);
    }
  }
  // Replay the batch headers after the snapshot (Kafka's replication origin:
  // no validation, the log is the truth).
  const int64_t now = services_.now_ms();
  size_t replayed = 0;
  auto it = segments_.upper_bound(replay_from);
  if (it != segments_.begin()) --it;
  bool first = true;
  std::vector<uint8_t> control;
  for (; it != segments_.end(); ++it) {
    const auto& segment = it->second;
    uint64_t position = first ? segment->index_lookup(replay_from) : 0;
    first = false;
    while (position < segment->size) {
      auto header = segment->read_header(position, segment->size);
      if (!header) return header.error();
      load_stats_.header_walked_bytes += header->size_in_bytes();
      if (header->base_offset >= replay_from && header->producer_id >= 0 && !header->is_control()) {
        producers_.record(*header, now);
        ++replayed;
      } else if (header->base_offset >= replay_from && header->producer_id >= 0) {
        control.resize(header->size_in_bytes());
        if (auto r = segment->read_exact(position, control); !r) return r.error();
        if (auto marker = parse_control_batch(control)) {
          if (auto aborted = producers_.record_marker(*header, *marker, now)) {
            segment->aborted_txns.push_back(*aborted);
          }
          ++replayed;
        } else {
          HF_WARN("{}: control batch at offset {} has no marker: {}", dir_, header->base_offset,
                  marker.error().message);
        }
      }
      position += header->size_in_bytes();
    }
  }
  for (const auto& [base, segment] : segments_) {
    if (segment->aborted_txns == on_disk[base] && !torn.contains(base)) continue;
    if (auto r = segment->rewrite_txn_index(fs); !r) return r.error();
    dir_changed = true;
  }
  // The producer of the latest batch is never expired: find it (a short scan
  // from the last index entry of the last non-empty segment).
  for (auto r = segments_.rbegin(); r != segments_.rend(); ++r) {
    const auto& segment = r->second;
    if (segment->size == 0) continue;
    uint64_t position = segment->index_lookup(segment->next_offset - 1);
    while (position < segment->size) {
      auto header = segment->read_header(position, segment->size);
      if (!header) return header.error();
      last_batch_producer_id_ = header->producer_id;
      position += header->size_in_bytes();
    }
    break;
  }
  if (replayed > 0 || producers_.size() > 0) {
    HF_DEBUG("{}: producer state of {} producers, {} batches replayed from offset {}", dir_,
             producers_.size(), replayed, replay_from);
  }
  return {};
}

}  // namespace holdfast::storage
