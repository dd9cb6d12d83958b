#include "cli/client/verify_consumers.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace holdfast::cli::verify {
namespace {

volatile std::sig_atomic_t g_worker_stop = 0;
void worker_stop(int) { g_worker_stop = 1; }

void quiet_log(const rd_kafka_t*, int, const char*, const char*) {}
void loud_log(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  std::cerr << "holdfast verify worker: " << level << " " << fac << " " << buf << std::endl;
}
void quiet_error(rd_kafka_t*, int, const char*, void*) {}

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}


char status_char(DecodedMessage::Status status) {
  switch (status) {
    case DecodedMessage::Status::kOk: return 'o';
    case DecodedMessage::Status::kForeign: return 'f';
    case DecodedMessage::Status::kCorrupt: return 'c';
  }
  return 'c';
}

}  // namespace

std::string format_processed(const Read& read) {
  return std::to_string(read.partition) + " " + std::to_string(read.offset) + " " +
         status_char(read.status) + " " + std::to_string(read.id.producer) + " " +
         std::to_string(read.id.seq) + "\n";
}

std::optional<Read> parse_processed(std::string_view line, int32_t consumer) {
  Read read;
  read.consumer = consumer;
  if (!parse_number(line, read.partition) || !parse_number(line, read.offset)) return std::nullopt;
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  if (line.empty()) return std::nullopt;
  switch (line.front()) {
    case 'o': read.status = DecodedMessage::Status::kOk; break;
    case 'f': read.status = DecodedMessage::Status::kForeign; break;
    case 'c': read.status = DecodedMessage::Status::kCorrupt; break;
    default: return std::nullopt;
  }
  line.remove_prefix(1);
  if (!parse_number(line, read.id.producer) || !parse_number(line, read.id.seq)) return std::nullopt;
  return read;
}

// ---- Worker ----

void run_consumer_worker(const WorkerOptions& opts) {
  // Die with the parent: a verify run never leaves consumers behind.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::signal(SIGTERM, worker_stop);
  std::signal(SIGINT, worker_stop);
  std::signal(SIGPIPE, SIG_IGN);

  auto conf = make_conf(opts.client, {
                                         {"group.id", opts.group},
                                         {"client.id", "holdfast-verify-consumer"},
                                         {"enable.auto.commit", "false"},
                                         {"auto.offset.reset", "earliest"},
                                         {"session.timeout.ms", "6000"},
                                         {"heartbeat.interval.ms", "1000"},
                                         {"max.poll.interval.ms", "30000"},
                                         {"isolation.level", opts.read_committed
                                                                 ? "read_committed"
                                                                 : "read_uncommitted"},
                                     });
  rd_kafka_conf_set_log_cb(conf.get(), opts.verbose ? loud_log : quiet_log);
  if (!opts.verbose) rd_kafka_conf_set_error_cb(conf.get(), quiet_error);
  auto rk = make_handle(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(rk.get());
  std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter> topics(
      rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), opts.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk.get(), topics.get()); err) {
    fail("verify worker: cannot subscribe: " + std::string(rd_kafka_err2str(err)));
  }

  constexpr int kMaxBatch = 500;
  while (!g_worker_stop) {
    std::string lines;
    std::map<int32_t, int64_t> next_offsets;  // partition -> offset to commit
    for (int i = 0; i < kMaxBatch && !g_worker_stop; ++i) {
      rd_kafka_message_t* message = rd_kafka_consumer_poll(rk.get(), i == 0 ? 200 : 0);
      if (message == nullptr) break;
      std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> owned(
          message, rd_kafka_message_destroy);
      if (message->err) {
        if (opts.verbose && message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          std::cerr << "holdfast verify worker " << opts.worker_id << ": "
                    << rd_kafka_message_errstr(message) << std::endl;
        }
        continue;
      }
      auto decoded = decode_message(
          opts.run_id,
          std::string_view(static_cast<const char*>(message->payload), message->len));
      Read read;
      read.partition = message->partition;
      read.offset = message->offset;
      read.status = decoded.status;
      read.id = decoded.id;
      lines += format_processed(read);
      next_offsets[message->partition] = message->offset + 1;
    }
    if (lines.empty()) continue;
    // "Processing" is recording: it reaches the pipe before the commit.
    if (!write_all(STDOUT_FILENO, lines)) break;  // the parent is gone
    // --processing-ms: the work a real consumer does before it commits; a kill
    // landing here means the batch is processed again by the next owner.
    if (opts.processing_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(opts.processing_ms));
    }
    std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter> offsets(
        rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size())));
    for (const auto& [partition, offset] : next_offsets) {
      rd_kafka_topic_partition_list_add(offsets.get(), opts.topic.c_str(), partition)->offset =
          offset;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit(rk.get(), offsets.get(), 0);
    if (err && opts.verbose) {
      // Typically a rebalance: the messages will be processed again (duplicates).
      std::cerr << "holdfast verify worker " << opts.worker_id
                << ": commit failed: " << rd_kafka_err2str(err) << std::endl;
    }
  }
  rd_kafka_consumer_close(rk.get());
}

// ---- Fleet ----

ConsumerFleet::ConsumerFleet(std::string executable, std::vector<std::string> worker_args,
                             LineHandler handler, bool stable_ids)
    : executable_(std::move(executable)),
      worker_args_(std::move(worker_args)),
      handler_(std::move(handler)),
      stable_ids_(stable_ids) {}

ConsumerFleet::~ConsumerFleet() {
  for (auto& worker : workers_) {
    if (worker->pid > 0) ::kill(worker->pid, SIGKILL);
    reap(*worker);
  }
}

void ConsumerFleet::start_one() { start_with_id(next_id_++); }

void ConsumerFleet::start_with_id(int32_t id) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  auto worker = std::make_unique<Worker>();
  worker->id = id;
  std::vector<std::string> args{executable_};
  args.insert(args.end(), worker_args_.begin(), worker_args_.end());
  args.push_back("--internal-worker-id");
  args.push_back(std::to_string(worker->id));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // clears CLOEXEC
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // The parent blocks no signals the worker needs; reset the mask anyway.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, executable_.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw std::runtime_error("cannot start a consumer process (" + executable_ +
                             "): " + std::strerror(rc));
  }
  worker->pid = pid;
  worker->fd = fds[0];
  int fd = worker->fd;
  uint64_t instance = next_instance_++;
  worker->instance = instance;
  worker->reader = std::thread([this, fd, id, instance] { collect(fd, id, instance); });
  workers_.push_back(std::move(worker));
}

void ConsumerFleet::collect(int fd, int32_t id, uint64_t instance) {
  std::string pending;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the worker exited (or was killed)
    pending.append(buffer, static_cast<size_t>(n));
    size_t start = 0;
    uint64_t ours = 0;  // messages of this run (the progress count)
    std::vector<Read> parsed;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (handler_) {
        handler_(instance, id, std::string_view(pending).substr(start, nl - start));
        continue;
      }
      if (auto read = parse_processed(std::string_view(pending).substr(start, nl - start), id)) {
        parsed.push_back(*read);
        if (read->status != DecodedMessage::Status::kForeign) ++ours;
      }
    }
    pending.erase(0, start);
    if (!parsed.empty()) {
      std::lock_guard lock(mu_);
      reads_.insert(reads_.end(), parsed.begin(), parsed.end());
      processed_ += ours;
    }
  }
  ::close(fd);
}

void ConsumerFleet::reap(Worker& worker) {
  if (worker.pid > 0) {
    int status = 0;
    while (::waitpid(worker.pid, &status, 0) < 0 && errno == EINTR) {
    }
    worker.pid = -1;
  }
  if (worker.reader.joinable()) worker.reader.join();  // its pipe is at EOF now
}

size_t ConsumerFleet::running() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->pid > 0 ? 1 : 0;
  return n;
}

bool ConsumerFleet::kill_random_and_replace(std::mt19937_64& random,
                                            const std::function<bool(uint64_t)>& eligible) {
  std::vector<Worker*> alive;
  for (auto& w : workers_) {
    if (w->pid <= 0) continue;
    int status = 0;
    if (::waitpid(w->pid, &status, WNOHANG) == w->pid) {  // it had exited by itself
      w->pid = -1;
      ++unexpected_exits_;
      reap(*w);
      continue;
    }
    if (eligible && !eligible(w->instance)) continue;
    alive.push_back(w.get());
  }
  if (alive.empty()) return false;
  Worker* victim = alive[std::uniform_int_distribution<size_t>(0, alive.size() - 1)(random)];
  ::kill(victim->pid, SIGKILL);
  reap(*victim);
  ++kills_;
  if (stable_ids_) {
    start_with_id(victim->id);
  } else {
    start_one();
  }
  return true;
}

size_t ConsumerFleet::replace_exited() {
  std::vector<int32_t> gone;
  for (auto& w : workers_) {
    if (w->pid <= 0) continue;
    int status = 0;
    if (::waitpid(w->pid, &status, WNOHANG) == w->pid) {
      w->pid = -1;
      ++unexpected_exits_;
      reap(*w);
      gone.push_back(w->id);
    }
  }
  for (int32_t id : gone) {
    if (stable_ids_) {
      start_with_id(id);
    } else {
      start_one();
    }
  }
  return gone.size();
}

void ConsumerFleet::stop_all(int timeout_ms) {
  for (auto& w : workers_) {
    if (w->pid > 0) ::kill(w->pid, SIGTERM);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (auto& w : workers_) {
    while (w->pid > 0) {
      int status = 0;
      pid_t r = ::waitpid(w->pid, &status, WNOHANG);
      if (r == w->pid || (r < 0 && errno != EINTR)) {
        w->pid = -1;
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(w->pid, SIGKILL);
        reap(*w);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    reap(*w);
  }
}

std::vector<Read> ConsumerFleet::reads_since(size_t from) const {
  std::lock_guard lock(mu_);
  if (from >= reads_.size()) return {};
  return std::vector<Read>(reads_.begin() + static_cast<ptrdiff_t>(from), reads_.end());
}

}  // namespace holdfast::cli::verify
