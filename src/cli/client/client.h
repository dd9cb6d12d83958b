// Shared plumbing for the librdkafka-based subcommands: common options
// (--brokers, -X, --timeout-ms), configuration, handles, metadata and errors.
#pragma once

#include <librdkafka/rdkafka.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace holdfast::cli {

// Exit codes of the client subcommands (CLI11's own parse errors use others).
constexpr int kExitFailure = 1;  // the operation failed (broker error, delivery failure, ...)
constexpr int kExitUsage = 2;    // an argument was invalid
constexpr int kExitInterrupted = 130;  // SIGINT/SIGTERM (128 + SIGINT, as shells report it)

struct ClientOptions {
  std::string brokers = "127.0.0.1:9092";
  std::vector<std::string> properties;  // -X key=value, passed to librdkafka as is
  int timeout_ms = 10000;               // for metadata and admin requests
  bool verbose = false;                 // -v: show librdkafka's own log lines
  // Before the first handle, check that a bootstrap broker accepts a TCP
  // connection, so an unreachable broker fails at once, naming the address.
  bool preflight = true;
};

// Registers --brokers, -X, --timeout-ms and -v/--verbose on `command`, storing
// into `options` (which must outlive parsing and the callback).
void add_client_options(CLI::App* command, ClientOptions& options);

// Connects (TCP only) to each bootstrap address in turn, within `timeout_ms`
// each; returns "" once one accepts, else one line naming every address and
// why it failed ("127.0.0.1:1: Connection refused").
std::string probe_brokers(const std::string& brokers, int timeout_ms);

// Prints `message` as one line to stderr, prefixed with "holdfast: ", and
// throws CLI::RuntimeError(exit_code); main() turns that into the exit code.
[[noreturn]] void fail(const std::string& message, int exit_code = kExitFailure);

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* event) const { rd_kafka_event_destroy(event); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

// Sets one librdkafka property; fails (kExitUsage) on an unknown key or bad value.
void set_property(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);

// A configuration with bootstrap.servers = options.brokers, then `defaults`,
// then every -X property (so -X overrides both). librdkafka's log and error
// lines are silenced unless options.verbose (or -X debug=...). The first call
// in a process fails (exit 1) at once if no bootstrap broker is reachable.
ConfPtr make_conf(const ClientOptions& options,
                  const std::vector<std::pair<std::string, std::string>>& defaults);

// Creates a client handle of `type`, taking ownership of `conf`.
HandlePtr make_handle(rd_kafka_type_t type, ConfPtr conf);

struct PartitionInfo {
  int32_t id = 0;
  int32_t leader = -1;
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
};

struct TopicInfo {
  std::string name;
  std::vector<PartitionInfo> partitions;  // sorted by id
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
};

// All topics in the cluster (a Metadata request for all topics, which never
// auto-creates). Fails with a clear message if the brokers cannot be reached.
std::vector<TopicInfo> fetch_all_topics(rd_kafka_t* rk, int timeout_ms);

// One topic's metadata; fails with "topic '<name>' does not exist" if absent.
TopicInfo fetch_topic(rd_kafka_t* rk, const std::string& name, int timeout_ms);

// Waits up to `timeout_ms` for the result event of an admin request that was
// sent with reply queue `queue`; fails if none arrives or the request failed.
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* options) const {
    rd_kafka_AdminOptions_destroy(options);
  }
};
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;

// A client handle for Admin API calls.
HandlePtr make_admin_client(const ClientOptions& options);

// Admin options for `op` with the request timeout (and, for topic creation and
// deletion, the operation timeout) set to timeout_ms.
AdminOptionsPtr make_admin_options(rd_kafka_t* rk, rd_kafka_admin_op_t op, int timeout_ms);

// Prints rows as left-aligned columns separated by two spaces.
void print_table(const std::vector<std::vector<std::string>>& rows);

EventPtr wait_admin_result(rd_kafka_queue_t* queue, int timeout_ms, const std::string& what);

// Deletes one topic / one consumer group; returns "" on success, else the
// broker's (or the client's) error text.
std::string delete_topic(rd_kafka_t* rk, const std::string& topic, int timeout_ms);
std::string delete_group(rd_kafka_t* rk, const std::string& group, int timeout_ms);

// "did you mean 'x'?" for the closest of `candidates` to `word` (by edit
// distance, at most 2 edits), or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace holdfast::cli
