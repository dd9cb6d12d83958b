// The consumer side of `holdfast verify`: group members run as separate OS
// processes (so they can be SIGKILLed), each one `holdfast verify` re-executed
// in a hidden worker mode. A worker writes one line per processed message to
// its stdout (a pipe to the parent) *before* it commits that message's
// offset, so the parent knows everything the group processed, including what
// a killed worker processed but had not committed.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <charconv>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/client/client.h"
#include "cli/client/verify_checker.h"

namespace holdfast::cli::verify {

// ---- Worker (child process) ----

struct WorkerOptions {
  ClientOptions client;
  std::string topic;
  std::string group;
  uint64_t run_id = 0;
  int32_t worker_id = 0;
  bool verbose = false;
  int processing_ms = 0;  // time between recording a batch and committing it
  bool read_committed = false;  // --transactional: isolation.level=read_committed
};

// Joins `group`, and for every batch it polls: records each message on fd 1,
// then commits the batch's offsets synchronously. Returns on SIGTERM/SIGINT
// (after leaving the group) and exits with the parent (PR_SET_PDEATHSIG).
void run_consumer_worker(const WorkerOptions& options);

// One line of the worker protocol: "<partition> <offset> <o|f|c> <producer> <seq>\n".
std::string format_processed(const Read& read);
std::optional<Read> parse_processed(std::string_view line, int32_t consumer);

// Takes one number, after any spaces, from the front of `text` (the workers'
// line formats); false if none is there.
template <typename T>
bool parse_number(std::string_view& text, T& out) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc()) return false;
  text.remove_prefix(static_cast<size_t>(ptr - text.data()));
  return true;
}

// ---- Fleet (parent process) ----

// The same fleet runs the copier workers of --transactional (verify_copier.h),
// whose lines go to a handler instead of being parsed as reads.
class ConsumerFleet {
 public:
  // Receives every complete line a worker wrote (without the newline), with
  // the worker's id and its process instance (unique per start).
  using LineHandler = std::function<void(uint64_t instance, int32_t id, std::string_view line)>;

  // `worker_args`: the arguments after the executable that start one worker
  // (without --internal-worker-id, which the fleet appends). With
  // `stable_ids`, a replacement gets the id of the worker it replaces (a
  // copier's transactional.id and group.instance.id derive from it).
  ConsumerFleet(std::string executable, std::vector<std::string> worker_args,
                LineHandler handler = {}, bool stable_ids = false);
  ~ConsumerFleet();  // kills whatever still runs

  // Starts one more worker process. Throws std::runtime_error if it cannot.
  void start_one();
  // SIGKILLs a random running worker (among those whose process instance
  // `eligible` accepts, if given), reaps it, collects what it wrote, and
  // starts a replacement. Returns false if none was running (or eligible).
  bool kill_random_and_replace(std::mt19937_64& random,
                               const std::function<bool(uint64_t instance)>& eligible = {});
  // Restarts the workers that exited by themselves (counted in
  // unexpected_exits); returns how many.
  size_t replace_exited();
  // SIGTERM to every worker, waits up to `timeout_ms` for them to leave the
  // group and exit, then SIGKILLs the rest. Collects all their output.
  void stop_all(int timeout_ms);

  size_t running() const;
  uint64_t kills() const { return kills_; }
  uint64_t processed() const { return processed_.load(); }  // this run's messages, repeats included
  // Workers that exited by themselves (not killed, not stopped): a sign of trouble.
  uint64_t unexpected_exits() const { return unexpected_exits_; }
  // Copies the reads collected so far, from index `from` on.
  std::vector<Read> reads_since(size_t from) const;

 private:
  struct Worker {
    pid_t pid = -1;
    int32_t id = 0;
    uint64_t instance = 0;
    int fd = -1;
    std::thread reader;
  };
  void reap(Worker& worker);
  void collect(int fd, int32_t id, uint64_t instance);
  void start_with_id(int32_t id);

  std::string executable_;
  std::vector<std::string> worker_args_;
  LineHandler handler_;
  bool stable_ids_ = false;
  uint64_t next_instance_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  int32_t next_id_ = 0;
  uint64_t kills_ = 0;
  uint64_t unexpected_exits_ = 0;
  std::atomic<uint64_t> processed_{0};
  mutable std::mutex mu_;
  std::vector<Read> reads_;  // guarded by mu_
};

}  // namespace holdfast::cli::verify
