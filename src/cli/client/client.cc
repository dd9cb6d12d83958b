#include "cli/client/client.h"

#include <algorithm>
#include <iostream>

#include "cli/client/args.h"

namespace holdfast::cli {

void add_client_options(CLI::App* command, ClientOptions& options) {
  command->add_option("--brokers,-b", options.brokers, "Bootstrap brokers, host:port[,host:port]")
      ->capture_default_str();
  command->add_option("-X", options.properties,
                      "librdkafka property key=value (repeatable), e.g. -X debug=broker");
  command->add_option("--timeout-ms", options.timeout_ms, "Timeout for metadata and admin requests")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

void fail(const std::string& message, int exit_code) {
  std::cerr << "holdfast: " << message << std::endl;
  throw CLI::RuntimeError(exit_code);
}

void set_property(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    fail("invalid client property " + key + "=" + value + ": " + errstr, kExitUsage);
  }
}

ConfPtr make_conf(const ClientOptions& options,
                  const std::vector<std::pair<std::string, std::string>>& defaults) {
  ConfPtr conf(rd_kafka_conf_new());
  set_property(conf.get(), "bootstrap.servers", options.brokers);
  set_property(conf.get(), "client.id", "holdfast-cli");
  for (const auto& [key, value] : defaults) set_property(conf.get(), key, value);
  for (const auto& property : options.properties) {
    auto assignment = parse_assignment(property);
    if (!assignment) fail("-X " + assignment.error().message, kExitUsage);
    set_property(conf.get(), assignment->first, assignment->second);
  }
  return conf;
}

HandlePtr make_handle(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) fail(std::string("cannot create client: ") + errstr);
  conf.release();  // rd_kafka_new took ownership
  return HandlePtr(rk);
}

namespace {

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* metadata) const {
    rd_kafka_metadata_destroy(metadata);
  }
};

TopicInfo to_topic_info(const rd_kafka_metadata_topic_t& topic) {
  TopicInfo info;
  info.name = topic.topic;
  info.error = topic.err;
  for (int i = 0; i < topic.partition_cnt; ++i) {
    const auto& p = topic.partitions[i];
    PartitionInfo partition;
    partition.id = p.id;
    partition.leader = p.leader;
    partition.replicas.assign(p.replicas, p.replicas + p.replica_cnt);
    partition.isr.assign(p.isrs, p.isrs + p.isr_cnt);
    partition.error = p.err;
    info.partitions.push_back(std::move(partition));
  }
  std::sort(info.partitions.begin(), info.partitions.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  return info;
}

}  // namespace

std::vector<TopicInfo> fetch_all_topics(rd_kafka_t* rk, int timeout_ms) {
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &raw, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fail(std::string("cannot get metadata from ") + rd_kafka_name(rk) + " (" +
         rd_kafka_err2str(err) + "); are the brokers reachable?");
  }
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> metadata(raw);
  std::vector<TopicInfo> topics;
  for (int i = 0; i < metadata->topic_cnt; ++i)
    topics.push_back(to_topic_info(metadata->topics[i]));
  std::sort(topics.begin(), topics.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return topics;
}

TopicInfo fetch_topic(rd_kafka_t* rk, const std::string& name, int timeout_ms) {
  for (auto& topic : fetch_all_topics(rk, timeout_ms)) {
    if (topic.name != name) continue;
    if (topic.error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fail("topic '" + name + "': " + rd_kafka_err2str(topic.error));
    }
    return std::move(topic);
  }
  fail("topic '" + name + "' does not exist");
}

EventPtr wait_admin_result(rd_kafka_queue_t* queue, int timeout_ms, const std::string& what) {
  // The request carries its own timeout; allow a little more for the result.
  EventPtr event(rd_kafka_queue_poll(queue, timeout_ms + 2000));
  if (!event) fail(what + ": no answer within " + std::to_string(timeout_ms) + " ms");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fail(what + ": " + rd_kafka_event_error_string(event.get()));
  }
  return event;
}

HandlePtr make_admin_client(const ClientOptions& options) {
  return make_handle(RD_KAFKA_PRODUCER, make_conf(options, {}));
}

AdminOptionsPtr make_admin_options(rd_kafka_t* rk, rd_kafka_admin_op_t op, int timeout_ms) {
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk, op));
  char errstr[512];
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr, sizeof errstr);
  if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS) {
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, errstr, sizeof errstr);
  }
  return options;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  }
}

}  // namespace holdfast::cli
