#include "cli/client/verify_checker.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace holdfast::cli::verify {
namespace {

struct Position {
  int32_t partition = 0;
  int64_t offset = 0;
  bool operator==(const Position&) const = default;
};

struct PositionHash {
  size_t operator()(const Position& p) const {
    return std::hash<uint64_t>()((uint64_t(uint32_t(p.partition)) << 44) ^ uint64_t(p.offset));
  }
};

struct IdHash {
  size_t operator()(const MessageId& id) const {
    return std::hash<uint64_t>()((uint64_t(id.producer) << 40) ^ id.seq);
  }
};

// Stands for "a message of another run" in the offset map.
constexpr MessageId kForeignId{std::numeric_limits<uint32_t>::max(), 0};

std::string describe(const MessageId& id) {
  if (id == kForeignId) return "a message of another run";
  return "producer " + std::to_string(id.producer) + " seq " + std::to_string(id.seq);
}

std::string describe(const Position& p) {
  return "partition " + std::to_string(p.partition) + " offset " + std::to_string(p.offset);
}

// Per id: where the drain found it and how often the group processed it.
struct Observed {
  std::vector<Position> drain_positions;  // distinct
  uint64_t group_count = 0;
};

using PositionMap = std::unordered_map<Position, std::vector<MessageId>, PositionHash>;
using ExampleFn = std::function<void(const std::string&, std::string)>;

// --transactional: the output topic against the sends and the copiers' reports.
void check_output(const History& history, PositionMap& out_at, Report& r,
                  const ExampleFn& example) {
  r.transactional = true;
  r.output_drain_complete = history.output_drain_complete;
  auto note = [&out_at](const Position& p, const MessageId& id) {
    auto& ids = out_at[p];
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  std::unordered_map<Position, CopyFate, PositionHash> fate;
  for (const auto& c : history.copies) {
    Position p{c.partition, c.offset};
    fate[p] = c.fate;
    note(p, c.id);
    switch (c.fate) {
      case CopyFate::kCommitted: ++r.copies_committed; break;
      case CopyFate::kAborted: ++r.copies_aborted; break;
      case CopyFate::kInDoubt: ++r.copies_in_doubt; break;
    }
  }
  std::unordered_set<Position, PositionHash> committed, uncommitted;
  std::unordered_map<MessageId, std::vector<Position>, IdHash> committed_at;  // id -> positions
  for (const auto& read : history.output_uncommitted_reads) {
    if (read.status == DecodedMessage::Status::kOk) {
      uncommitted.insert({read.partition, read.offset});
      note({read.partition, read.offset}, read.id);
    }
  }
  for (const auto& read : history.output_committed_reads) {
    if (read.status != DecodedMessage::Status::kOk) continue;
    Position p{read.partition, read.offset};
    note(p, read.id);
    if (!committed.insert(p).second) continue;
    ++r.output_read;
    committed_at[read.id].push_back(p);
  }
  // Aborted reads: a read_committed reader (the group, or the committed drain)
  // returned a copy whose transaction the copier saw abort, or (the group) a
  // copy that the broker's own committed view leaves out while its
  // uncommitted view has it.
  std::unordered_set<Position, PositionHash> aborted_read;
  auto check_read = [&](const Read& read, bool group) {
    if (read.status != DecodedMessage::Status::kOk) return;
    Position p{read.partition, read.offset};
    auto f = fate.find(p);
    bool aborted = f != fate.end() && f->second == CopyFate::kAborted;
    if (!aborted && group && history.output_drain_complete && !committed.contains(p) &&
        uncommitted.contains(p)) {
      aborted = true;
    }
    if (aborted && aborted_read.insert(p).second) {
      example("aborted_reads", describe(read.id) + " read under read_committed at output " +
                                   describe(p) + (group ? " by the group" : " by the drain") +
                                   ", a copy from an aborted transaction");
    }
  };
  for (const auto& read : history.group_reads) check_read(read, true);
  for (const auto& read : history.output_committed_reads) check_read(read, false);
  r.aborted_reads = aborted_read.size();
  if (history.output_drain_complete) {
    for (const auto& p : uncommitted) r.aborted_copies += committed.contains(p) ? 0 : 1;
  }
  for (const auto& [id, positions] : committed_at) {
    if (positions.size() < 2) continue;
    ++r.output_duplicates;
    r.output_duplicate_copies += positions.size() - 1;
    std::string text = describe(id) + " committed at output";
    for (size_t i = 0; i < positions.size(); ++i) text += (i ? ", " : " ") + describe(positions[i]);
    example("output_duplicates", text);
  }
  if (!history.interrupted) {
    for (const auto& s : history.sends) {
      if (s.outcome != SendOutcome::kAcked || committed_at.contains(s.id)) continue;
      ++r.output_lost;
      example("output_lost", describe(s.id) + " acknowledged, not in the committed output");
    }
  }
}

}  // namespace

Report check(const History& history) {
  Report r;
  r.group_used = history.group_used;
  r.drain_complete = history.drain_complete;
  r.interrupted = history.interrupted;
  auto example = [&r](const std::string& kind, std::string text) {
    auto& list = r.examples[kind];
    if (list.size() < kMaxExamples) list.push_back(std::move(text));
  };

  std::unordered_map<MessageId, size_t, IdHash> send_index;
  send_index.reserve(history.sends.size());
  for (size_t i = 0; i < history.sends.size(); ++i) {
    const auto& s = history.sends[i];
    send_index.emplace(s.id, i);
    ++r.attempted;
    switch (s.outcome) {
      case SendOutcome::kAcked: ++r.acknowledged; break;
      case SendOutcome::kFailed: ++r.failed; break;
      case SendOutcome::kUnknown: ++r.unknown; break;
    }
  }

  // Every position's contents, from reads (drain and group) and from acks.
  std::unordered_map<Position, std::vector<MessageId>, PositionHash> at;
  auto note = [&at](const Position& p, const MessageId& id) {
    auto& ids = at[p];
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  std::unordered_set<Position, PositionHash> corrupt;
  std::unordered_map<MessageId, Observed, IdHash> observed;
  std::unordered_set<MessageId, IdHash> unexpected;

  // --transactional: the output topic's positions, apart from the input's.
  std::unordered_map<Position, std::vector<MessageId>, PositionHash> out_at;
  auto take_read = [&](const Read& read, bool drain) {
    Position p{read.partition, read.offset};
    auto note_read = [&](const Position& pos, const MessageId& id) {
      auto& ids = (history.transactional && !drain ? out_at : at)[pos];
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    };
    switch (read.status) {
      case DecodedMessage::Status::kCorrupt:
        if (corrupt.insert(p).second) example("corrupted", describe(p));
        return;
      case DecodedMessage::Status::kForeign:
        if (drain) ++r.foreign;
        note_read(p, kForeignId);
        return;
      case DecodedMessage::Status::kOk:
        break;
    }
    note_read(p, read.id);
    if (!send_index.contains(read.id)) {
      if (unexpected.insert(read.id).second) {
        example("unexpected", describe(read.id) + " at " + describe(p));
      }
    }
    auto& o = observed[read.id];
    if (drain) {
      if (std::find(o.drain_positions.begin(), o.drain_positions.end(), p) ==
          o.drain_positions.end()) {
        o.drain_positions.push_back(p);
      }
    } else {
      ++o.group_count;
    }
  };
  for (const auto& read : history.drain_reads) {
    ++r.drain_read;
    take_read(read, true);
  }
  for (const auto& read : history.group_reads) {
    if (read.status != DecodedMessage::Status::kForeign) ++r.group_processed;
    take_read(read, false);
  }
  for (const auto& s : history.sends) {
    if (s.outcome == SendOutcome::kAcked && s.offset >= 0) note({s.partition, s.offset}, s.id);
  }
  r.corrupted = corrupt.size();
  r.unexpected = unexpected.size();

  if (history.transactional) check_output(history, out_at, r, example);

  for (const auto& [p, ids] : at) {
    if (ids.size() < 2) continue;
    ++r.inconsistent_offsets;
    std::string text = describe(p) + " holds";
    for (size_t i = 0; i < ids.size(); ++i) text += (i ? " and " : " ") + describe(ids[i]);
    example("inconsistent_offsets", text);
  }

  for (const auto& [p, ids] : out_at) {
    if (ids.size() < 2) continue;
    ++r.inconsistent_offsets;
    std::string text = "output " + describe(p) + " holds";
    for (size_t i = 0; i < ids.size(); ++i) text += (i ? " and " : " ") + describe(ids[i]);
    example("inconsistent_offsets", text);
  }

  for (const auto& [id, o] : observed) {
    if (o.group_count > 0) ++r.group_distinct;
    if (o.group_count > 1) {
      ++r.group_duplicated;
      ++r.group_duplicate_distribution[o.group_count];
      example("group_duplicated",
              describe(id) + " processed " + std::to_string(o.group_count) + " times");
    }
    if (o.drain_positions.size() > 1) {
      ++r.log_duplicated;
      r.log_duplicate_copies += o.drain_positions.size() - 1;
      std::string text = describe(id) + " at";
      for (size_t i = 0; i < o.drain_positions.size(); ++i) {
        text += (i ? ", " : " ") + describe(o.drain_positions[i]);
      }
      example("log_duplicated", text);
    }
  }

  // Per send: lost, unseen, misplaced, unacknowledged-but-present; and the
  // positions used for the order check.
  struct Placed {
    uint64_t seq;
    int64_t offset;
  };
  std::map<std::pair<uint32_t, int32_t>, std::vector<Placed>> order;
  for (const auto& s : history.sends) {
    auto it = observed.find(s.id);
    const Observed* o = it == observed.end() ? nullptr : &it->second;
    const bool in_log = o && !o->drain_positions.empty();
    const bool in_group = o && o->group_count > 0;
    if (s.outcome != SendOutcome::kAcked) {
      if (in_log || in_group) ++r.unacknowledged_present;
      continue;
    }
    std::string where =
        s.offset >= 0 ? " (acknowledged at " + describe(Position{s.partition, s.offset}) + ")" : "";
    if (!in_log && history.interrupted) {
      ++r.unconfirmed;  // the drain never got that far
    } else if (!in_log) {
      ++r.lost;
      example("lost", describe(s.id) + where);
    }
    if (history.group_used && !in_group && !history.interrupted) {
      ++r.unseen_by_group;
      example("unseen_by_group", describe(s.id) + where);
    }
    int64_t offset = -1;
    int32_t partition = s.partition;
    if (s.offset >= 0) {
      offset = s.offset;
      if (in_log && std::find(o->drain_positions.begin(), o->drain_positions.end(),
                              Position{s.partition, s.offset}) == o->drain_positions.end()) {
        ++r.misplaced;
        example("misplaced", describe(s.id) + where + " read at " + describe(o->drain_positions[0]));
      }
    } else if (in_log) {
      // acks=0: no acknowledged offset; use the first place the drain found it.
      partition = o->drain_positions[0].partition;
      offset = o->drain_positions[0].offset;
      for (const auto& p : o->drain_positions) {
        if (p.partition == partition) offset = std::min(offset, p.offset);
      }
    }
    if (offset >= 0) order[{s.id.producer, partition}].push_back({s.id.seq, offset});
  }
  for (auto& [key, placed] : order) {
    std::sort(placed.begin(), placed.end(),
              [](const Placed& a, const Placed& b) { return a.seq < b.seq; });
    int64_t highest = -1;
    uint64_t highest_seq = 0;
    for (const auto& p : placed) {
      if (p.offset < highest) {
        ++r.reordered;
        example("reordered", "producer " + std::to_string(key.first) + " seq " +
                                 std::to_string(p.seq) + " at partition " +
                                 std::to_string(key.second) + " offset " +
                                 std::to_string(p.offset) + ", below seq " +
                                 std::to_string(highest_seq) + " at offset " +
                                 std::to_string(highest));
      } else {
        highest = p.offset;
        highest_seq = p.seq;
      }
    }
  }
  return r;
}

nlohmann::ordered_json report_json(const Report& r) {
  nlohmann::ordered_json distribution = nlohmann::ordered_json::object();
  for (const auto& [times, ids] : r.group_duplicate_distribution) {
    distribution[std::to_string(times)] = ids;
  }
  nlohmann::ordered_json examples = nlohmann::ordered_json::object();
  for (const auto& [kind, list] : r.examples) examples[kind] = list;
  const auto verdict = r.verdict();
  nlohmann::ordered_json json{
      {"verdict", verdict == Report::Verdict::kOk     ? "ok"
                  : verdict == Report::Verdict::kFail ? "fail"
                                                      : "inconclusive"},
      {"valid", verdict == Report::Verdict::kInconclusive ? nlohmann::ordered_json(nullptr)
                                                          : nlohmann::ordered_json(r.valid())},
      {"interrupted", r.interrupted},
      {"attempted", r.attempted},
      {"acknowledged", r.acknowledged},
      {"failed", r.failed},
      {"unknown", r.unknown},
      {"lost", r.lost},
      {"unconfirmed", r.unconfirmed},
      {"corrupted", r.corrupted},
      {"inconsistent_offsets", r.inconsistent_offsets},
      {"unexpected", r.unexpected},
      {"unseen_by_group", r.group_used && !r.interrupted ? nlohmann::ordered_json(r.unseen_by_group) : nullptr},
      {"group_processed", r.group_processed},
      {"group_distinct", r.group_distinct},
      {"group_duplicated", r.group_duplicated},
      {"group_duplicate_distribution", distribution},
      {"log_duplicated", r.log_duplicated},
      {"log_duplicate_copies", r.log_duplicate_copies},
      {"reordered", r.reordered},
      {"misplaced", r.misplaced},
      {"unacknowledged_present", r.unacknowledged_present},
      {"drain_read", r.drain_read},
      {"foreign", r.foreign},
      {"drain_complete", r.drain_complete},
      {"examples", examples},
  };
  if (r.transactional) {
    json["transactional"] = {
        {"output_duplicates", r.output_duplicates},
        {"output_duplicate_copies", r.output_duplicate_copies},
        {"output_lost", r.interrupted ? nlohmann::ordered_json(nullptr)
                                      : nlohmann::ordered_json(r.output_lost)},
        {"aborted_reads", r.aborted_reads},
        {"aborted_copies", r.aborted_copies},
        {"output_read", r.output_read},
        {"copies_committed", r.copies_committed},
        {"copies_aborted", r.copies_aborted},
        {"copies_in_doubt", r.copies_in_doubt},
        {"output_drain_complete", r.output_drain_complete},
    };
    // Also at the top level, next to lost, for scripts that look there.
    json["output_duplicates"] = r.output_duplicates;
    json["output_lost"] = json["transactional"]["output_lost"];
    json["aborted_reads"] = r.aborted_reads;
  }
  return json;
}

std::string report_summary(const Report& r) {
  std::ostringstream out;
  auto line = [&out](const char* label, uint64_t value, const char* note) {
    out << "  " << label;
    for (size_t n = std::string_view(label).size(); n < 26; ++n) out << ' ';
    out << value;
    if (note && *note) out << "   " << note;
    out << '\n';
  };
  out << "delivery check:\n";
  line("attempted", r.attempted, "");
  line("acknowledged", r.acknowledged, "");
  line("failed (not acknowledged)", r.failed, "may or may not be in the log");
  if (r.unknown) line("no delivery report", r.unknown, "interrupted");
  line("lost", r.lost, r.lost ? "FAIL: acknowledged, not in the log" : "");
  if (r.interrupted) {
    line("not yet confirmed", r.unconfirmed,
         "acknowledged, not read back before the interruption (not counted as lost)");
  }
  line("corrupted", r.corrupted, r.corrupted ? "FAIL: checksum mismatch" : "");
  line("inconsistent offsets", r.inconsistent_offsets,
       r.inconsistent_offsets ? "FAIL: one offset, two messages" : "");
  if (r.unexpected) line("unexpected", r.unexpected, "FAIL: read but never sent");
  if (r.group_used && !r.interrupted) {
    line("unseen by the group", r.unseen_by_group,
         r.unseen_by_group ? "acknowledged, never processed by the group" : "");
    std::string dist;
    for (const auto& [times, ids] : r.group_duplicate_distribution) {
      dist += (dist.empty() ? "" : ", ") + std::to_string(ids) + " x" + std::to_string(times);
    }
    if (!dist.empty()) dist = "ids processed: " + dist;
    line("processed by the group", r.group_processed, "");
    line("duplicates in the group", r.group_duplicated, dist.c_str());
  }
  line("duplicates in the log", r.log_duplicated, r.log_duplicated ? "one id at several offsets" : "");
  line("reordered", r.reordered, r.reordered ? "a later send at a lower offset" : "");
  if (r.misplaced) line("misplaced", r.misplaced, "read, but not at its acknowledged offset");
  line("unacknowledged, present", r.unacknowledged_present, "fine: at-least-once");
  if (r.foreign) line("other runs' messages", r.foreign, "ignored");
  if (r.transactional) {
    out << "transactional copy (input -> output, read_committed):\n";
    line("copies committed", r.copies_committed, "as the copiers reported them");
    line("copies aborted", r.copies_aborted, r.copies_aborted ? "fine: retried" : "");
    line("copies in doubt", r.copies_in_doubt,
         r.copies_in_doubt ? "copier killed before commit/abort returned" : "");
    line("committed output read", r.output_read, "");
    if (!r.interrupted) {
      line("output lost", r.output_lost,
           r.output_lost ? "FAIL: acknowledged input, not in the committed output" : "");
    }
    line("output duplicates", r.output_duplicates,
         r.output_duplicates ? "FAIL: one input message committed more than once" : "");
    line("aborted reads", r.aborted_reads,
         r.aborted_reads ? "FAIL: read_committed returned an aborted copy" : "");
    line("aborted copies", r.aborted_copies, "fine: only read_uncommitted sees them");
    if (!r.output_drain_complete) {
      out << "  warning: the read_committed drain of the output did not reach the end of every "
             "partition before its timeout\n";
    }
  }
  if (!r.drain_complete) {
    out << "  warning: the final drain did not reach the end of every partition before its "
           "timeout\n";
  }
  for (const auto& [kind, list] : r.examples) {
    if (kind == "group_duplicated" || kind == "unseen_by_group") continue;  // expected under faults
    out << "  e.g. " << kind << ": " << list.front() << '\n';
  }
  switch (r.verdict()) {
    case Report::Verdict::kOk:
      out << "OK: every acknowledged message is in the log, intact, at one offset\n";
      if (r.transactional) {
        out << "OK: every acknowledged message was copied exactly once into the committed "
               "output, and read_committed never returned an aborted copy\n";
      }
      break;
    case Report::Verdict::kFail:
      out << "FAIL: the delivery guarantee was violated\n";
      break;
    case Report::Verdict::kInconclusive:
      out << "INCONCLUSIVE: interrupted before every acknowledged message was read back; "
             "nothing wrong seen in the "
          << (r.acknowledged - r.unconfirmed) << " checked so far. Run it again to the end.\n";
      break;
  }
  return out.str();
}

}  // namespace holdfast::cli::verify
