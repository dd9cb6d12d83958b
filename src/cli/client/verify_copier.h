// The copier stage of `holdfast verify --transactional`: worker processes
// (run by a ConsumerFleet with stable ids, so they can be SIGKILLed and
// replaced) that consume the input topic in their own group with
// read_committed and copy each message, unchanged, to the same partition of
// the output topic, one transaction per batch with the consumer's offsets
// sent to the transaction (consume-transform-produce exactly once).
//
// A worker reports on its stdout (a pipe to the parent), per transaction:
//   "m <txn> <partition> <offset> <producer> <seq>"  one line per copy, with
//        its output position from the delivery report, written before the commit
//   "c <txn>"   after rd_kafka_commit_transaction returned success
//   "a <txn>"   after rd_kafka_abort_transaction returned
// A transaction with "m" lines and neither "c" nor "a" is in doubt (the worker
// was killed before it could say): the broker aborts it when the replacement
// (same transactional.id) calls init_transactions, unless its commit had
// already been decided.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/client/client.h"
#include "cli/client/verify_checker.h"

namespace holdfast::cli::verify {

struct CopierOptions {
  ClientOptions client;
  std::string input_topic;
  std::string output_topic;
  std::string group;  // the copiers' consumer group
  uint64_t run_id = 0;
  int32_t worker_id = 0;  // stable across restarts: transactional.id, group.instance.id
  bool verbose = false;
  // Time between producing a batch's copies (flushed) and committing it, as a
  // real transform would spend: copier kills then land inside transactions.
  int processing_ms = 0;
  // Test-only (--copier-non-transactional): produce, flush, then commit the
  // offsets with the consumer, no transaction (at-least-once: duplicates).
  bool non_transactional = false;
};

// Runs until SIGTERM/SIGINT (finishing the transaction in progress) and exits
// with the parent (PR_SET_PDEATHSIG). Exits with status 2 on a fatal
// transaction error (fenced), which the parent counts and replaces.
void run_copier_worker(const CopierOptions& options);

// transactional.id of copier `worker_id` of run `run_id`.
std::string copier_transactional_id(uint64_t run_id, int32_t worker_id);

// The parent's record of what the copier workers reported (thread-safe: each
// worker's pipe is read by its own thread).
class CopyLog {
 public:
  // One line of worker `copier`'s process `instance`. Malformed lines are ignored.
  void feed(uint64_t instance, int32_t copier, std::string_view line);
  // Every copy reported so far; those of unfinished transactions as in doubt.
  std::vector<Copy> copies() const;
  uint64_t committed() const;  // copies in transactions reported committed
  uint64_t transactions_committed() const;
  uint64_t transactions_aborted() const;
  // Transactions process `instance` reported committed.
  uint64_t transactions_committed_by(uint64_t instance) const;

 private:
  mutable std::mutex mu_;
  // (instance, txn) -> copies of a transaction not finished yet
  std::map<std::pair<uint64_t, uint64_t>, std::vector<Copy>> open_;
  std::vector<Copy> done_;
  uint64_t committed_ = 0;
  uint64_t txns_committed_ = 0;
  uint64_t txns_aborted_ = 0;
  std::map<uint64_t, uint64_t> committed_by_;  // instance -> transactions committed
};

}  // namespace holdfast::cli::verify
