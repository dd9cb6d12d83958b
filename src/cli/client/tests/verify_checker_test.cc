#include "cli/client/verify_checker.h"

#include <gtest/gtest.h>

#include "cli/client/verify_consumers.h"
#include "cli/client/verify_copier.h"
#include "cli/client/verify_message.h"

namespace holdfast::cli::verify {
namespace {

using Status = DecodedMessage::Status;

// ---- Messages ----

TEST(VerifyMessage, RoundTrips) {
  std::string value = encode_message(0xabcdef0123456789ULL, {3, 123456}, 100);
  EXPECT_EQ(value.size(), 100u);
  auto decoded = decode_message(0xabcdef0123456789ULL, value);
  EXPECT_EQ(decoded.status, Status::kOk);
  EXPECT_EQ(decoded.id, (MessageId{3, 123456}));
}

TEST(VerifyMessage, ShortSizeStillHasTheHeader) {
  std::string value = encode_message(7, {0, 0}, 0);
  EXPECT_EQ(decode_message(7, value).status, Status::kOk);
}

TEST(VerifyMessage, OtherRunsAreForeign) {
  std::string value = encode_message(7, {1, 2}, 64);
  EXPECT_EQ(decode_message(8, value).status, Status::kForeign);
}

TEST(VerifyMessage, AnyFlippedByteIsCorrupt) {
  std::string value = encode_message(7, {1, 2}, 80);
  for (size_t i = 0; i < value.size(); ++i) {
    std::string damaged = value;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    EXPECT_EQ(decode_message(7, damaged).status, Status::kCorrupt) << "byte " << i;
  }
  EXPECT_EQ(decode_message(7, value.substr(0, value.size() - 1)).status, Status::kCorrupt);
  EXPECT_EQ(decode_message(7, "").status, Status::kCorrupt);
  EXPECT_EQ(decode_message(7, "hello world").status, Status::kCorrupt);
}

TEST(VerifyWorkerProtocol, RoundTrips) {
  Read read{4, 9876543210, Status::kOk, {2, 77}, -1};
  auto parsed = parse_processed(format_processed(read), 5);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->partition, 4);
  EXPECT_EQ(parsed->offset, 9876543210);
  EXPECT_EQ(parsed->status, Status::kOk);
  EXPECT_EQ(parsed->id, (MessageId{2, 77}));
  EXPECT_EQ(parsed->consumer, 5);
  EXPECT_FALSE(parse_processed("garbage", 0).has_value());
  EXPECT_FALSE(parse_processed("1 2 x 3 4", 0).has_value());
}

// ---- Checker ----

// A clean history: `n` messages from one producer, round-robin over
// `partitions`, each acknowledged at consecutive offsets, read once by the
// group and once by the drain.
History clean_history(uint64_t n, int32_t partitions = 2) {
  History h;
  std::vector<int64_t> next(partitions, 0);
  for (uint64_t seq = 0; seq < n; ++seq) {
    int32_t p = static_cast<int32_t>(seq % partitions);
    Send s;
    s.id = {0, seq};
    s.outcome = SendOutcome::kAcked;
    s.partition = p;
    s.offset = next[p]++;
    h.sends.push_back(s);
    Read r{p, s.offset, Status::kOk, s.id, 0};
    h.group_reads.push_back(r);
    r.consumer = -1;
    h.drain_reads.push_back(r);
  }
  return h;
}

TEST(VerifyChecker, CleanHistoryPasses) {
  Report r = check(clean_history(100));
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.attempted, 100u);
  EXPECT_EQ(r.acknowledged, 100u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.unseen_by_group, 0u);
  EXPECT_EQ(r.group_duplicated, 0u);
  EXPECT_EQ(r.log_duplicated, 0u);
  EXPECT_EQ(r.corrupted, 0u);
  EXPECT_EQ(r.inconsistent_offsets, 0u);
  EXPECT_EQ(r.reordered, 0u);
  EXPECT_EQ(r.misplaced, 0u);
  EXPECT_EQ(r.unacknowledged_present, 0u);
  EXPECT_EQ(r.group_distinct, 100u);
  EXPECT_EQ(r.drain_read, 100u);
  EXPECT_TRUE(r.examples.empty());
  EXPECT_NE(report_summary(r).find("OK:"), std::string::npos);
  EXPECT_EQ(report_json(r)["valid"], true);
}

TEST(VerifyChecker, DetectsLost) {
  History h = clean_history(10);
  h.drain_reads.erase(h.drain_reads.begin() + 3);  // producer 0 seq 3
  Report r = check(h);
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.lost, 1u);
  ASSERT_EQ(r.examples["lost"].size(), 1u);
  EXPECT_NE(r.examples["lost"][0].find("seq 3"), std::string::npos);
  EXPECT_NE(report_summary(r).find("FAIL"), std::string::npos);
  EXPECT_EQ(report_json(r)["lost"], 1);
}

TEST(VerifyChecker, InterruptedRunIsInconclusiveNotLost) {
  History h = clean_history(10);
  h.drain_reads.resize(4);  // interrupted: the drain read 4 of 10
  h.group_reads.resize(2);
  h.interrupted = true;
  Report r = check(h);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.unconfirmed, 6u);
  EXPECT_EQ(r.verdict(), Report::Verdict::kInconclusive);
  std::string summary = report_summary(r);
  EXPECT_EQ(summary.find("FAIL"), std::string::npos) << summary;
  EXPECT_NE(summary.find("INCONCLUSIVE"), std::string::npos) << summary;
  auto json = report_json(r);
  EXPECT_EQ(json["lost"], 0);
  EXPECT_TRUE(json["valid"].is_null());
  EXPECT_EQ(json["verdict"], "inconclusive");
}

TEST(VerifyChecker, InterruptedRunStillFailsOnCorruptionSeen) {
  History h = clean_history(10);
  h.drain_reads[1].status = Status::kCorrupt;
  h.interrupted = true;
  Report r = check(h);
  EXPECT_EQ(r.verdict(), Report::Verdict::kFail);
  EXPECT_EQ(report_json(r)["valid"], false);
}

TEST(VerifyChecker, DetectsUnseenByGroupWithoutFailing) {
  History h = clean_history(10);
  h.group_reads.erase(h.group_reads.begin() + 5);
  Report r = check(h);
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.unseen_by_group, 1u);
  EXPECT_EQ(r.lost, 0u);
}

TEST(VerifyChecker, NoGroupMeansNoUnseen) {
  History h = clean_history(10);
  h.group_reads.clear();
  h.group_used = false;
  Report r = check(h);
  EXPECT_EQ(r.unseen_by_group, 0u);
  EXPECT_TRUE(report_json(r)["unseen_by_group"].is_null());
}

TEST(VerifyChecker, GroupDuplicatesAndTheirDistribution) {
  History h = clean_history(10);
  h.group_reads.push_back(h.group_reads[1]);  // seq 1 twice
  h.group_reads.push_back(h.group_reads[2]);  // seq 2 three times
  h.group_reads.push_back(h.group_reads[2]);
  Report r = check(h);
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.group_duplicated, 2u);
  EXPECT_EQ(r.group_processed, 13u);
  EXPECT_EQ(r.group_distinct, 10u);
  EXPECT_EQ(r.group_duplicate_distribution, (std::map<uint64_t, uint64_t>{{2, 1}, {3, 1}}));
  EXPECT_EQ(report_json(r)["group_duplicate_distribution"]["3"], 1);
}

TEST(VerifyChecker, DuplicateInTheLog) {
  History h = clean_history(4, 1);  // offsets 0..3 in partition 0
  // seq 1 written again at offset 4 (a non-idempotent retry).
  h.drain_reads.push_back({0, 4, Status::kOk, {0, 1}, -1});
  Report r = check(h);
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.log_duplicated, 1u);
  EXPECT_EQ(r.log_duplicate_copies, 1u);
  EXPECT_EQ(r.inconsistent_offsets, 0u);
}

TEST(VerifyChecker, DetectsCorruption) {
  History h = clean_history(10);
  h.drain_reads[4].status = Status::kCorrupt;
  h.group_reads[4].status = Status::kCorrupt;  // same position: counted once
  Report r = check(h);
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.corrupted, 1u);
  EXPECT_EQ(r.lost, 1u);  // its id was never read intact
}

TEST(VerifyChecker, DetectsInconsistentOffsetsBetweenReads) {
  History h = clean_history(4, 1);
  // The group saw seq 2 at offset 2, the drain finds seq 3 there (a rewritten log).
  h.drain_reads[2].id = {0, 3};
  Report r = check(h);
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.inconsistent_offsets, 1u);
}

TEST(VerifyChecker, DetectsInconsistencyWithTheAcknowledgedOffset) {
  History h = clean_history(4, 1);
  h.group_reads.clear();
  h.group_used = false;
  // seq 3 acknowledged at offset 1, where seq 1 is.
  h.sends[3].offset = 1;
  Report r = check(h);
  EXPECT_EQ(r.inconsistent_offsets, 1u);
  EXPECT_EQ(r.misplaced, 1u);
  EXPECT_FALSE(r.valid());
}

TEST(VerifyChecker, DetectsReordering) {
  History h;
  h.group_used = false;
  // Producer 0 sends seq 0,1,2 to partition 0; seq 1 lands after seq 2.
  int64_t offsets[] = {0, 2, 1};
  for (uint64_t seq = 0; seq < 3; ++seq) {
    h.sends.push_back({{0, seq}, SendOutcome::kAcked, 0, offsets[seq], ""});
    h.drain_reads.push_back({0, offsets[seq], Status::kOk, {0, seq}, -1});
  }
  Report r = check(h);
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.reordered, 1u);
  ASSERT_FALSE(r.examples["reordered"].empty());
  EXPECT_NE(r.examples["reordered"][0].find("seq 2"), std::string::npos);
}

TEST(VerifyChecker, OrderIsPerProducerAndPartition) {
  History h;
  h.group_used = false;
  // Two producers interleave in one partition: not a reordering.
  h.sends.push_back({{0, 0}, SendOutcome::kAcked, 0, 1, ""});
  h.sends.push_back({{1, 0}, SendOutcome::kAcked, 0, 0, ""});
  h.sends.push_back({{1, 1}, SendOutcome::kAcked, 0, 2, ""});
  for (const auto& s : h.sends) h.drain_reads.push_back({0, s.offset, Status::kOk, s.id, -1});
  EXPECT_EQ(check(h).reordered, 0u);
}

TEST(VerifyChecker, ReorderingWithoutOffsetsUsesTheLog) {
  History h;
  h.group_used = false;
  h.sends.push_back({{0, 0}, SendOutcome::kAcked, 0, -1, ""});  // acks=0: no offset
  h.sends.push_back({{0, 1}, SendOutcome::kAcked, 0, -1, ""});
  h.drain_reads.push_back({0, 0, Status::kOk, {0, 1}, -1});
  h.drain_reads.push_back({0, 1, Status::kOk, {0, 0}, -1});
  Report r = check(h);
  EXPECT_EQ(r.reordered, 1u);
  EXPECT_EQ(r.lost, 0u);
}

TEST(VerifyChecker, UnacknowledgedButPresentIsFine) {
  History h = clean_history(5);
  h.sends[2].outcome = SendOutcome::kFailed;
  h.sends[2].error = "Local: Message timed out";
  h.sends[3].outcome = SendOutcome::kUnknown;
  Report r = check(h);
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.unknown, 1u);
  EXPECT_EQ(r.acknowledged, 3u);
  EXPECT_EQ(r.unacknowledged_present, 2u);
  EXPECT_EQ(r.lost, 0u);
}

TEST(VerifyChecker, FailedAndAbsentIsNotLost) {
  History h = clean_history(5);
  h.sends[2].outcome = SendOutcome::kFailed;
  h.drain_reads.erase(h.drain_reads.begin() + 2);
  h.group_reads.erase(h.group_reads.begin() + 2);
  Report r = check(h);
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.unseen_by_group, 0u);
}

TEST(VerifyChecker, UnexpectedMessagesFail) {
  History h = clean_history(3, 1);
  h.drain_reads.push_back({0, 3, Status::kOk, {9, 9}, -1});
  Report r = check(h);
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.unexpected, 1u);
}

TEST(VerifyChecker, ForeignMessagesAreIgnoredButCounted) {
  History h = clean_history(3, 1);
  h.drain_reads.push_back({0, 3, Status::kForeign, {}, -1});
  Report r = check(h);
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.foreign, 1u);
}

TEST(VerifyChecker, ExamplesAreBounded) {
  History h = clean_history(100);
  h.drain_reads.clear();
  Report r = check(h);
  EXPECT_EQ(r.lost, 100u);
  EXPECT_EQ(r.examples["lost"].size(), kMaxExamples);
}

TEST(VerifyChecker, IncompleteDrainIsReported) {
  History h = clean_history(3);
  h.drain_complete = false;
  Report r = check(h);
  EXPECT_FALSE(report_json(r)["drain_complete"].get<bool>());
  EXPECT_NE(report_summary(r).find("warning"), std::string::npos);
}

// ---- --transactional ----

// A clean transactional history: the input as in clean_history, each message
// copied once, committed, to the same partition of the output at an offset
// that differs from its input offset (a copier's transaction markers take
// offsets too); the group and both output drains read the copies.
History transactional_history(uint64_t n, int32_t partitions = 2) {
  History h = clean_history(n, partitions);
  h.transactional = true;
  h.group_reads.clear();
  std::vector<int64_t> next(partitions, 0);
  for (const auto& s : h.sends) {
    int64_t offset = next[s.partition];
    next[s.partition] += 2;  // one copy, one commit marker
    h.copies.push_back({s.partition, offset, s.id, CopyFate::kCommitted, 0});
    Read r{s.partition, offset, Status::kOk, s.id, 0};
    h.group_reads.push_back(r);
    r.consumer = -1;
    h.output_committed_reads.push_back(r);
    h.output_uncommitted_reads.push_back(r);
  }
  return h;
}

// Adds an aborted transaction holding a copy of `id` at output `offset` of
// partition 0, seen only by read_uncommitted.
void add_aborted_copy(History& h, MessageId id, int64_t offset) {
  h.copies.push_back({0, offset, id, CopyFate::kAborted, 1});
  h.output_uncommitted_reads.push_back({0, offset, Status::kOk, id, -1});
}

TEST(VerifyTransactional, CleanHistoryPasses) {
  History h = transactional_history(50);
  add_aborted_copy(h, {0, 4}, 1001);  // aborted and retried: fine
  Report r = check(h);
  EXPECT_TRUE(r.valid()) << report_summary(r);
  EXPECT_TRUE(r.transactional);
  EXPECT_EQ(r.output_duplicates, 0u);
  EXPECT_EQ(r.output_lost, 0u);
  EXPECT_EQ(r.aborted_reads, 0u);
  EXPECT_EQ(r.aborted_copies, 1u);
  EXPECT_EQ(r.copies_committed, 50u);
  EXPECT_EQ(r.copies_aborted, 1u);
  EXPECT_EQ(r.output_read, 50u);
  EXPECT_EQ(r.inconsistent_offsets, 0u);  // output offsets are not input offsets
  EXPECT_EQ(r.unseen_by_group, 0u);
  auto json = report_json(r);
  EXPECT_EQ(json["output_duplicates"], 0);
  EXPECT_EQ(json["output_lost"], 0);
  EXPECT_EQ(json["aborted_reads"], 0);
  EXPECT_EQ(json["transactional"]["aborted_copies"], 1);
  EXPECT_NE(report_summary(r).find("exactly once"), std::string::npos);
}

TEST(VerifyTransactional, DetectsADuplicateInTheOutput) {
  History h = transactional_history(20);
  // Producer 0 seq 3 copied again by a second (committed) transaction.
  h.copies.push_back({1, 500, {0, 3}, CopyFate::kCommitted, 1});
  h.output_committed_reads.push_back({1, 500, Status::kOk, {0, 3}, -1});
  h.output_uncommitted_reads.push_back({1, 500, Status::kOk, {0, 3}, -1});
  Report r = check(h);
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.output_duplicates, 1u);
  EXPECT_EQ(r.output_duplicate_copies, 1u);
  ASSERT_EQ(r.examples["output_duplicates"].size(), 1u);
  EXPECT_NE(r.examples["output_duplicates"][0].find("seq 3"), std::string::npos);
  EXPECT_NE(report_summary(r).find("FAIL"), std::string::npos);
  EXPECT_EQ(report_json(r)["output_duplicates"], 1);
}

TEST(VerifyTransactional, DetectsAnAbortedReadByTheGroup) {
  History h = transactional_history(20);
  add_aborted_copy(h, {0, 5}, 1001);
  h.group_reads.push_back({0, 1001, Status::kOk, {0, 5}, 0});  // read_committed saw it
  Report r = check(h);
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.aborted_reads, 1u);
  EXPECT_EQ(r.output_duplicates, 0u);  // the committed drain is right
  ASSERT_EQ(r.examples["aborted_reads"].size(), 1u);
  EXPECT_NE(r.examples["aborted_reads"][0].find("by the group"), std::string::npos);
}

TEST(VerifyTransactional, DetectsAnAbortedReadByTheCommittedDrain) {
  History h = transactional_history(20);
  add_aborted_copy(h, {0, 5}, 1001);
  h.output_committed_reads.push_back({0, 1001, Status::kOk, {0, 5}, -1});
  Report r = check(h);
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.aborted_reads, 1u);
  EXPECT_EQ(r.output_duplicates, 1u);  // and it doubles seq 5 in the committed output
  EXPECT_EQ(r.aborted_copies, 0u);
}

TEST(VerifyTransactional, AnInDoubtCopyTheBrokerLeftOutButTheGroupReadIsAnAbortedRead) {
  History h = transactional_history(20);
  // A copier killed before commit returned: no fate reported; the broker's
  // read_committed drain leaves it out (aborted), yet a group member saw it.
  h.copies.push_back({0, 1001, {0, 5}, CopyFate::kInDoubt, 1});
  h.output_uncommitted_reads.push_back({0, 1001, Status::kOk, {0, 5}, -1});
  h.group_reads.push_back({0, 1001, Status::kOk, {0, 5}, 0});
  Report r = check(h);
  EXPECT_EQ(r.aborted_reads, 1u);
  EXPECT_EQ(r.copies_in_doubt, 1u);
  EXPECT_FALSE(r.valid());
}

TEST(VerifyTransactional, DetectsAMissingCopy) {
  History h = transactional_history(20);
  h.output_committed_reads.erase(h.output_committed_reads.begin() + 7);  // producer 0 seq 7
  Report r = check(h);
  EXPECT_FALSE(r.valid());
  EXPECT_EQ(r.output_lost, 1u);
  EXPECT_EQ(r.lost, 0u);  // the input still has it
  ASSERT_EQ(r.examples["output_lost"].size(), 1u);
  EXPECT_NE(r.examples["output_lost"][0].find("seq 7"), std::string::npos);
  EXPECT_EQ(report_json(r)["output_lost"], 1);
}

TEST(VerifyTransactional, InterruptedRunDoesNotCountOutputLost) {
  History h = transactional_history(20);
  h.output_committed_reads.resize(5);
  h.interrupted = true;
  Report r = check(h);
  EXPECT_EQ(r.output_lost, 0u);
  EXPECT_TRUE(report_json(r)["output_lost"].is_null());
}

TEST(VerifyTransactional, NonTransactionalRunHasNoTransactionalFields) {
  Report r = check(clean_history(5));
  EXPECT_FALSE(report_json(r).contains("output_duplicates"));
  EXPECT_EQ(report_summary(r).find("transactional"), std::string::npos);
}

TEST(VerifyCopyLog, TransactionsGetTheirFate) {
  CopyLog log;
  log.feed(0, 3, "m 0 1 10 2 100");
  log.feed(0, 3, "m 0 1 11 2 101");
  log.feed(0, 3, "c 0");
  log.feed(0, 3, "m 1 2 20 2 102");
  log.feed(0, 3, "a 1");
  log.feed(0, 3, "m 2 2 22 2 102");  // killed before it said
  log.feed(1, 3, "m 2 0 5 2 103");   // the replacement: its own numbering
  log.feed(1, 3, "c 2");
  log.feed(1, 3, "garbage");
  log.feed(1, 3, "m x");
  auto copies = log.copies();
  ASSERT_EQ(copies.size(), 5u);
  std::map<int64_t, CopyFate> fate;
  for (const auto& c : copies) {
    fate[c.offset] = c.fate;
    EXPECT_EQ(c.copier, 3);
  }
  EXPECT_EQ(fate[10], CopyFate::kCommitted);
  EXPECT_EQ(fate[11], CopyFate::kCommitted);
  EXPECT_EQ(fate[20], CopyFate::kAborted);
  EXPECT_EQ(fate[22], CopyFate::kInDoubt);
  EXPECT_EQ(fate[5], CopyFate::kCommitted);
  EXPECT_EQ(log.committed(), 3u);
  EXPECT_EQ(log.transactions_committed(), 2u);
  EXPECT_EQ(log.transactions_aborted(), 1u);
}

TEST(VerifyCopyLog, TransactionalIdIsStablePerWorker) {
  EXPECT_EQ(copier_transactional_id(0xab, 2), copier_transactional_id(0xab, 2));
  EXPECT_NE(copier_transactional_id(0xab, 2), copier_transactional_id(0xab, 3));
  EXPECT_NE(copier_transactional_id(0xab, 2), copier_transactional_id(0xac, 2));
}

}  // namespace
}  // namespace holdfast::cli::verify
