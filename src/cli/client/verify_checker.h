// The delivery checker of `holdfast verify`, in the spirit of Jepsen's queue
// and Kafka checkers: given what the producers sent (with each delivery
// report), what the consumer group processed and what a final drain of every
// partition read, it finds lost, unseen, duplicated, corrupted, inconsistent
// and reordered messages. Pure (no I/O, no librdkafka), fed synthetic histories
// by its unit tests.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/client/verify_message.h"

namespace holdfast::cli::verify {

enum class SendOutcome {
  kAcked,    // a delivery report without error
  kFailed,   // a delivery report with an error (may or may not be in the log)
  kUnknown,  // no delivery report (verify was interrupted)
};

struct Send {
  MessageId id;
  SendOutcome outcome = SendOutcome::kUnknown;
  int32_t partition = -1;  // the partition it was sent to
  int64_t offset = -1;     // acknowledged offset; -1 if unknown (acks=0)
  std::string error;       // kFailed: the delivery error
};

// One message read from the topic, by a group member or by the drain.
struct Read {
  int32_t partition = 0;
  int64_t offset = 0;
  DecodedMessage::Status status = DecodedMessage::Status::kOk;
  MessageId id;  // meaningful for kOk
  int32_t consumer = -1;  // which group member process (-1: the drain)
};

// --transactional: one copy the copier stage produced to the output topic, at
// its output position, with the fate of the transaction that held it as the
// copier worker reported it (commit/abort returned, or nothing: it was killed).
enum class CopyFate { kCommitted, kAborted, kInDoubt };

struct Copy {
  int32_t partition = 0;  // output partition (the input's partition)
  int64_t offset = 0;     // output offset from the delivery report
  MessageId id;
  CopyFate fate = CopyFate::kInDoubt;
  int32_t copier = 0;
};

struct History {
  std::vector<Send> sends;  // every attempted message; ids unique
  // Everything the group processed, duplicates included. With `transactional`
  // these are reads of the OUTPUT topic (read_committed): their positions are
  // output positions.
  std::vector<Read> group_reads;
  std::vector<Read> drain_reads;  // everything the final drain read
  bool group_used = true;         // false: no consumers ran, "unseen by group" is not computed
  bool drain_complete = true;     // the drain reached every partition's end
  // The run was interrupted (SIGINT/SIGTERM) before it drained: an acknowledged
  // message the drain has not read yet is "unconfirmed", not lost.
  bool interrupted = false;

  // --transactional: the copier stage between the input (sends, drain_reads)
  // and the output topic.
  bool transactional = false;
  std::vector<Copy> copies;                     // what the copier workers reported
  std::vector<Read> output_committed_reads;     // final drain of the output, read_committed
  std::vector<Read> output_uncommitted_reads;   // final drain of the output, read_uncommitted
  bool output_drain_complete = true;            // the read_committed drain reached every end
};

struct Report {
  uint64_t attempted = 0;
  uint64_t acknowledged = 0;
  uint64_t failed = 0;   // delivery reported an error
  uint64_t unknown = 0;  // no delivery report

  uint64_t drain_read = 0;           // messages the drain read (all runs)
  uint64_t foreign = 0;              // of which from other runs (ignored)
  uint64_t group_processed = 0;      // this run's messages the group processed, counting repeats
  uint64_t group_distinct = 0;       // distinct ids the group processed

  uint64_t lost = 0;                 // acknowledged, never read by the drain
  uint64_t unconfirmed = 0;          // interrupted run: acknowledged, not read (yet) by the drain
  uint64_t unseen_by_group = 0;      // acknowledged, never processed by the group
  uint64_t group_duplicated = 0;     // ids the group processed more than once
  std::map<uint64_t, uint64_t> group_duplicate_distribution;  // times processed -> ids
  uint64_t log_duplicated = 0;       // ids stored at more than one offset
  uint64_t log_duplicate_copies = 0; // extra copies in the log
  uint64_t corrupted = 0;            // distinct positions whose payload failed its checksum
  uint64_t inconsistent_offsets = 0; // positions that held two different messages
  uint64_t reordered = 0;            // sends at a lower offset than an earlier send (same producer, partition)
  uint64_t misplaced = 0;            // acknowledged at an offset, read only elsewhere
  uint64_t unacknowledged_present = 0;  // failed/unknown sends found in the log (allowed)
  uint64_t unexpected = 0;           // messages of this run that were never sent
  bool drain_complete = true;
  bool group_used = true;
  bool interrupted = false;

  // --transactional (see docs/verifying-delivery.md for the exact definitions):
  bool transactional = false;
  uint64_t output_read = 0;           // this run's messages the read_committed output drain read
  uint64_t output_duplicates = 0;     // ids at more than one position of the committed output
  uint64_t output_duplicate_copies = 0;  // extra copies in the committed output
  uint64_t output_lost = 0;           // acknowledged ids absent from the committed output
  uint64_t aborted_reads = 0;         // read_committed reads of copies from aborted transactions
  uint64_t aborted_copies = 0;        // copies only read_uncommitted sees (aborted; fine)
  uint64_t copies_committed = 0;      // copies the copiers reported committed
  uint64_t copies_aborted = 0;        // ... reported aborted
  uint64_t copies_in_doubt = 0;       // ... whose copier died before commit/abort returned
  bool output_drain_complete = true;

  // Up to kMaxExamples descriptions per anomaly kind.
  std::map<std::string, std::vector<std::string>> examples;

  // The guarantee held: nothing acknowledged was lost, nothing corrupted,
  // no offset held two messages, nothing appeared that was never sent.
  bool valid() const {
    return lost == 0 && corrupted == 0 && inconsistent_offsets == 0 && unexpected == 0 &&
           output_duplicates == 0 && output_lost == 0 && aborted_reads == 0;
  }

  // kFail when a violation was seen (even in an interrupted run: corruption
  // seen is corruption); else kInconclusive when interrupted; else kOk.
  enum class Verdict { kOk, kFail, kInconclusive };
  Verdict verdict() const {
    if (!valid()) return Verdict::kFail;
    return interrupted ? Verdict::kInconclusive : Verdict::kOk;
  }
};

constexpr size_t kMaxExamples = 10;

Report check(const History& history);

// The report as JSON (counts, distribution, examples, "verdict", and "valid":
// true, false, or null when inconclusive).
nlohmann::ordered_json report_json(const Report& report);

// A human summary, several lines, ending with a verdict line.
std::string report_summary(const Report& report);

}  // namespace holdfast::cli::verify
