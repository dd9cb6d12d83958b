// `holdfast consume <topic>`: print messages from a topic, either from
// explicitly assigned partitions (default) or as a member of a consumer group.
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli/client/args.h"
#include "cli/client/client.h"
#include "cli/client/usage.h"
#include "cli/commands.h"

namespace holdfast::cli {
namespace {

volatile std::sig_atomic_t g_stop_requested = 0;
void request_stop(int) {
  g_stop_requested = 1;
}

struct ConsumeOptions {
  ClientOptions client;
  std::string topic;
  std::string from = "beginning";
  int64_t count = -1;  // -1: no limit
  int partition = -1;  // -1: every partition
  std::string group;
  bool exit_at_end = false;
  std::string format = "text";
  std::string print_format;  // -f: kcat-style format
  std::string print_fields;  // --print key,partition,...
};


// State shared by the poll loop and the rebalance callback.
struct ConsumeState {
  const ConsumeOptions* options = nullptr;
  StartPosition start;
  // Partitions still to be read up to the end they had when reading started
  // (only with --exit-at-end). Exit once it is empty after an assignment.
  std::map<int32_t, int64_t> end_at_start;
  bool assigned = false;
  std::string fatal_error;  // set by the rebalance callback
  std::vector<FormatPiece> format;  // empty: --format text|json
};

// An --from offset outside a partition's log: read from its log start (as
// librdkafka's auto.offset.reset=earliest would), said on stderr, the same
// with and without --exit-at-end.
int64_t clamp_offset(const rd_kafka_topic_partition_t& tp, int64_t offset, int64_t low,
                     int64_t high) {
  if (offset >= low && offset <= high) return offset;
  std::cerr << "holdfast: consume: partition " << tp.partition << ": offset " << offset
            << " is outside the log [" << low << ", " << high << "]; reading from " << low
            << std::endl;
  return low;
}

// Resolves --from for every partition in `list` to an offset (or a logical
// offset librdkafka understands), in place.
void resolve_start_offsets(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* list,
                           const StartPosition& start, int timeout_ms) {
  switch (start.kind) {
    case StartPosition::Kind::kBeginning:
    case StartPosition::Kind::kEnd:
      for (int i = 0; i < list->cnt; ++i) {
        list->elems[i].offset = start.kind == StartPosition::Kind::kBeginning
                                    ? RD_KAFKA_OFFSET_BEGINNING
                                    : RD_KAFKA_OFFSET_END;
      }
      return;
    case StartPosition::Kind::kOffset:
    case StartPosition::Kind::kFromEnd: {
      std::vector<std::pair<int64_t, int64_t>> bounds;
      int64_t highest = -1;
      for (int i = 0; i < list->cnt; ++i) {
        int64_t low = 0, high = 0;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            rk, list->elems[i].topic, list->elems[i].partition, &low, &high, timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          fail("consume: cannot list offsets of partition " +
               std::to_string(list->elems[i].partition) + ": " + rd_kafka_err2str(err));
        }
        bounds.push_back({low, high});
        highest = std::max(highest, high);
      }
      // A millisecond timestamp is no offset: say so instead of reading from the start.
      constexpr int64_t kLooksLikeTimestamp = 1'000'000'000'000;  // 2001-09-09 in ms
      if (start.kind == StartPosition::Kind::kOffset && start.value > highest &&
          start.value >= kLooksLikeTimestamp) {
        fail("consume: --from " + std::to_string(start.value) +
                 " is beyond the end of every partition (the highest is " +
                 std::to_string(highest) + "); for a timestamp write --from @" +
                 std::to_string(start.value),
             kExitUsage);
      }
      for (int i = 0; i < list->cnt; ++i) {
        auto [low, high] = bounds[i];
        list->elems[i].offset = start.kind == StartPosition::Kind::kFromEnd
                                    ? std::max(low, high - start.value)
                                    : clamp_offset(list->elems[i], start.value, low, high);
      }
      return;
    }
    case StartPosition::Kind::kTimestamp: {
      for (int i = 0; i < list->cnt; ++i) list->elems[i].offset = start.value;
      rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list, timeout_ms);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fail("consume: cannot look up offsets for timestamp " + std::to_string(start.value) + ": " +
             rd_kafka_err2str(err));
      }
      for (int i = 0; i < list->cnt; ++i) {
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          fail("consume: cannot look up offsets for timestamp in partition " +
               std::to_string(list->elems[i].partition) + ": " +
               rd_kafka_err2str(list->elems[i].err));
        }
        // -1: no message at or after the timestamp, so start at the end.
        if (list->elems[i].offset < 0) list->elems[i].offset = RD_KAFKA_OFFSET_END;
      }
      return;
    }
  }
}

// With --exit-at-end: records each partition's high watermark now, dropping the
// partitions that are already read to the end given their start offset.
void record_end_offsets(rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* list,
                        ConsumeState& state) {
  state.end_at_start.clear();
  for (int i = 0; i < list->cnt; ++i) {
    const auto& tp = list->elems[i];
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        rk, tp.topic, tp.partition, &low, &high, state.options->client.timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fail("consume: cannot list offsets of partition " + std::to_string(tp.partition) + ": " +
           rd_kafka_err2str(err));
    }
    int64_t start = tp.offset == RD_KAFKA_OFFSET_BEGINNING ? low
                    : tp.offset == RD_KAFKA_OFFSET_END     ? high
                    : tp.offset >= 0                       ? std::max(tp.offset, low)
                                                           : -1;  // stored offset: unknown here
    if (start >= 0 && start >= high) continue;
    state.end_at_start[tp.partition] = high;
  }
}

void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                  rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* state = static_cast<ConsumeState*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    try {
      // In a group, beginning/end only choose where to start without a
      // committed offset (auto.offset.reset); an offset or a timestamp is applied.
      if (state->start.kind == StartPosition::Kind::kOffset ||
          state->start.kind == StartPosition::Kind::kFromEnd ||
          state->start.kind == StartPosition::Kind::kTimestamp) {
        resolve_start_offsets(rk, partitions, state->start, state->options->client.timeout_ms);
      }
      if (state->options->exit_at_end) record_end_offsets(rk, partitions, *state);
    } catch (const CLI::RuntimeError&) {
      state->fatal_error = "rebalance failed";  // fail() already printed the reason
    }
    rd_kafka_assign(rk, partitions);
    state->assigned = partitions->cnt > 0;
  } else {
    rd_kafka_assign(rk, nullptr);
    state->assigned = false;
    state->end_at_start.clear();
  }
}

void print_formatted(const rd_kafka_message_t* message, const std::vector<FormatPiece>& format) {
  using Kind = FormatPiece::Kind;
  std::string out;
  for (const auto& piece : format) {
    switch (piece.kind) {
      case Kind::kLiteral: out += piece.text; break;
      case Kind::kTopic: out += rd_kafka_topic_name(message->rkt); break;
      case Kind::kPartition: out += std::to_string(message->partition); break;
      case Kind::kOffset: out += std::to_string(message->offset); break;
      case Kind::kKey:
        if (message->key != nullptr) out.append(static_cast<const char*>(message->key), message->key_len);
        break;
      case Kind::kValue:
        if (message->payload != nullptr) {
          out.append(static_cast<const char*>(message->payload), message->len);
        }
        break;
      case Kind::kTimestamp: out += std::to_string(rd_kafka_message_timestamp(message, nullptr)); break;
      case Kind::kKeySize: out += message->key ? std::to_string(message->key_len) : "-1"; break;
      case Kind::kValueSize: out += message->payload ? std::to_string(message->len) : "-1"; break;
      case Kind::kHeaders: {
        rd_kafka_headers_t* headers = nullptr;
        if (rd_kafka_message_headers(message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) break;
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          out += (i ? "," : "") + std::string(name) + "=";
          if (value != nullptr) out.append(static_cast<const char*>(value), size);
        }
        break;
      }
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

void print_message(const rd_kafka_message_t* message, const ConsumeState& state) {
  const std::string& format = state.options->format;
  if (!state.format.empty()) {
    print_formatted(message, state.format);
    return;
  }
  if (format != "json") {
    if (message->payload != nullptr) std::fwrite(message->payload, 1, message->len, stdout);
    std::fputc('\n', stdout);
    return;
  }
  auto bytes = [](const void* data, size_t size) -> nlohmann::ordered_json {
    if (data == nullptr) return nullptr;
    return std::string(static_cast<const char*>(data), size);
  };
  rd_kafka_timestamp_type_t timestamp_type;
  int64_t timestamp = rd_kafka_message_timestamp(message, &timestamp_type);
  nlohmann::ordered_json out{
      {"topic", rd_kafka_topic_name(message->rkt)},
      {"partition", message->partition},
      {"offset", message->offset},
      {"timestamp", timestamp},
      {"timestamp_type",
       timestamp_type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "log_append" : "create"},
      {"key", bytes(message->key, message->key_len)},
      {"value", bytes(message->payload, message->len)},
      {"headers", nlohmann::ordered_json::array()},
  };
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      out["headers"].push_back({{"key", name}, {"value", bytes(value, size)}});
    }
  }
  std::string line = out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
}

// Errors after which waiting longer cannot help.
bool is_fatal_consume_error(rd_kafka_t* rk, rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__FATAL:
      return true;
    default:
      return rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
  }
}

void run_consume(const ConsumeOptions& opts) {
  auto start = parse_start_position(opts.from);
  if (!start) fail("consume: " + start.error().message, kExitUsage);
  const bool in_group = !opts.group.empty();
  if (in_group && opts.partition >= 0) {
    fail("consume: --partition cannot be combined with --group", kExitUsage);
  }

  ConsumeState state;
  state.options = &opts;
  state.start = *start;
  if (!opts.print_format.empty() || !opts.print_fields.empty()) {
    if (!opts.print_format.empty() && !opts.print_fields.empty()) {
      fail("consume: give -f or --print, not both", kExitUsage);
    }
    if (opts.format != "text") fail("consume: -f/--print replace --format json", kExitUsage);
    std::string format = opts.print_format;
    if (!opts.print_fields.empty()) {
      auto fields = print_fields_to_format(opts.print_fields);
      if (!fields) fail("consume: " + fields.error().message, kExitUsage);
      format = *fields;
    }
    auto pieces = parse_format(format);
    if (!pieces) fail("consume: " + pieces.error().message, kExitUsage);
    state.format = std::move(*pieces);
  }

  std::vector<std::pair<std::string, std::string>> defaults{
      {"enable.partition.eof", "true"},
      {"auto.offset.reset", start->kind == StartPosition::Kind::kEnd ? "latest" : "earliest"},
  };
  if (in_group) {
    defaults.push_back({"group.id", opts.group});
  } else {
    // librdkafka's consumer API needs a group.id even for assign(); this one
    // never joins a group and never commits, so no coordinator is involved.
    defaults.push_back({"group.id", "holdfast-cli-consume"});
    defaults.push_back({"enable.auto.commit", "false"});
    defaults.push_back({"enable.auto.offset.store", "false"});
  }
  auto conf = make_conf(opts.client, defaults);
  rd_kafka_conf_set_opaque(conf.get(), &state);
  if (in_group) rd_kafka_conf_set_rebalance_cb(conf.get(), on_rebalance);
  auto rk = make_handle(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(rk.get());

  if (in_group) {
    PartitionListPtr topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), opts.topic.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk.get(), topics.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fail("consume: cannot subscribe to '" + opts.topic + "': " + rd_kafka_err2str(err));
    }
  } else {
    TopicInfo topic = fetch_topic(rk.get(), opts.topic, opts.client.timeout_ms);
    PartitionListPtr assignment(rd_kafka_topic_partition_list_new(topic.partitions.size()));
    for (const auto& partition : topic.partitions) {
      if (opts.partition >= 0 && partition.id != opts.partition) continue;
      rd_kafka_topic_partition_list_add(assignment.get(), opts.topic.c_str(), partition.id);
    }
    if (assignment->cnt == 0) {
      fail("consume: topic '" + opts.topic + "' has no partition " +
           std::to_string(opts.partition));
    }
    resolve_start_offsets(rk.get(), assignment.get(), state.start, opts.client.timeout_ms);
    if (opts.exit_at_end) record_end_offsets(rk.get(), assignment.get(), state);
    rd_kafka_resp_err_t err = rd_kafka_assign(rk.get(), assignment.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      fail(std::string("consume: assign: ") + rd_kafka_err2str(err));
    state.assigned = true;
  }

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  int64_t consumed = 0;
  std::string failure;
  auto reached_end = [&] {
    return opts.exit_at_end && state.assigned && state.end_at_start.empty();
  };
  while (!g_stop_requested && (opts.count < 0 || consumed < opts.count) && !reached_end()) {
    if (!state.fatal_error.empty()) {
      failure = "consume: " + state.fatal_error;
      break;
    }
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk.get(), 200);
    if (message == nullptr) {
      std::fflush(stdout);
      continue;
    }
    std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> owned(
        message, rd_kafka_message_destroy);
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      auto it = state.end_at_start.find(message->partition);
      if (it != state.end_at_start.end() && message->offset >= it->second)
        state.end_at_start.erase(it);
      continue;
    }
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::string reason = rd_kafka_message_errstr(message);
      if (is_fatal_consume_error(rk.get(), message->err)) {
        failure = "consume '" + opts.topic + "': " + reason;
        break;
      }
      std::cerr << "holdfast: consume: " << reason << " (retrying)" << std::endl;
      continue;
    }
    print_message(message, state);
    ++consumed;
    auto it = state.end_at_start.find(message->partition);
    if (it != state.end_at_start.end() && message->offset + 1 >= it->second)
      state.end_at_start.erase(it);
  }
  std::fflush(stdout);
  rd_kafka_consumer_close(rk.get());
  if (!failure.empty()) fail(failure);
}

}  // namespace

void add_consume_command(CLI::App& app) {
  auto opts = std::make_shared<ConsumeOptions>();
  auto* consume = app.add_subcommand("consume", "Print messages from a topic");
  consume->add_option("topic", opts->topic, "Topic")->required();
  consume
      ->add_option("-o,--from", opts->from,
                   "beginning|earliest|start, end|latest, <offset>, -<n> (n before the end) or "
                   "@<timestamp-ms>")
      ->capture_default_str();
  consume->add_option("-n,--count", opts->count, "Stop after N messages")
      ->check(at_least(0));
  consume->add_option("-p,--partition", opts->partition, "Read only this partition")
      ->check(at_least(0));
  consume->add_option("-g,--group", opts->group,
                      "Join consumer group G (subscribe) instead of reading assigned partitions");
  consume->add_flag("-e,--exit-at-end", opts->exit_at_end,
                    "Exit once every partition is read up to the end it had at start");
  consume
      ->add_option("--format", opts->format,
                   "text (values, one per line) or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  consume->add_option("-f", opts->print_format,
                      "kcat-style format, e.g. '%k\\t%s\\n' (%t topic, %p partition, %o offset, "
                      "%k key, %s value, %T timestamp, %h headers, %K/%S key/value size)");
  consume->add_option("--print", opts->print_fields,
                      "Fields to print, tab-separated: key,partition,offset,timestamp,headers,"
                      "topic,value (value last unless listed)");
  add_client_options(consume, opts->client);
  consume->callback([opts] { run_consume(*opts); });
}

}  // namespace holdfast::cli
