#include "cli/client/client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/client/args.h"
#include "cli/client/usage.h"

namespace holdfast::cli {

void add_client_options(CLI::App* command, ClientOptions& options) {
  command->add_option("--brokers,--bootstrap-server,-b", options.brokers,
                      "Bootstrap brokers, host:port[,host:port]")
      ->capture_default_str();
  command->add_option("-X", options.properties,
                      "librdkafka property key=value (repeatable), e.g. -X debug=broker");
  // Applied before any -X (which is stored first, the file's lines are put in
  // front), so -X overrides the file.
  command
      ->add_option_function<std::string>(
          "--command-config",
          [&options](const std::string& path) {
            std::ifstream in(path);
            if (!in) fail("--command-config " + path + ": cannot read it", kExitUsage);
            std::stringstream text;
            text << in.rdbuf();
            auto parsed = parse_command_config(text.str());
            if (!parsed) fail("--command-config " + path + ": " + parsed.error().message, kExitUsage);
            options.properties.insert(options.properties.begin(), parsed->begin(), parsed->end());
          },
          "Client properties file (key=value lines, as Kafka tools' --command-config): "
          "security.protocol, sasl.mechanism(s), sasl.username/password or sasl.jaas.config")
      ->check(CLI::ExistingFile);
  command->add_option("--timeout-ms", options.timeout_ms, "Timeout for metadata and admin requests")
      ->capture_default_str()
      ->check(between(1, 3600 * 1000));
  command->add_flag("-v,--verbose", options.verbose, "Show the client library's own log lines");
}

namespace {

void quiet_log(const rd_kafka_t*, int, const char*, const char*) {}
void quiet_error(rd_kafka_t*, int, const char*, void*) {}

// Splits "host:port" (or "[v6]:port", optionally after "proto://").
bool split_address(std::string address, std::string& host, std::string& port) {
  if (auto scheme = address.find("://"); scheme != std::string::npos) {
    address = address.substr(scheme + 3);
  }
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string::npos || close + 2 > address.size() || address[close + 1] != ':')
      return false;
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    host = colon == std::string::npos ? address : address.substr(0, colon);
    port = colon == std::string::npos ? "9092" : address.substr(colon + 1);
  }
  return !host.empty() && !port.empty();
}

// "" if a TCP connection to `address` succeeds within timeout_ms, else why not.
std::string probe_one(const std::string& address, int timeout_ms) {
  std::string host, port;
  if (!split_address(address, host, port)) return "not host:port";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return std::string("cannot resolve: ") + ::gai_strerror(rc);
  }
  std::string error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, timeout_ms);
      if (rc == 0) {
        error = "no answer within " + std::to_string(timeout_ms) + " ms";
        rc = -1;
      } else if (rc > 0) {
        int so_error = 0;
        socklen_t len = sizeof so_error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        rc = so_error == 0 ? 0 : -1;
        if (so_error != 0) error = std::strerror(so_error);
      } else {
        error = std::strerror(errno);
      }
    } else if (rc != 0) {
      error = std::strerror(errno);
    }
    ::close(fd);
    if (rc == 0) {
      ::freeaddrinfo(found);
      return "";
    }
  }
  ::freeaddrinfo(found);
  return error;
}

}  // namespace

std::string probe_brokers(const std::string& brokers, int timeout_ms) {
  std::vector<std::string> failures;
  std::stringstream list(brokers);
  std::string address;
  while (std::getline(list, address, ',')) {
    address.erase(0, address.find_first_not_of(' '));
    address.erase(address.find_last_not_of(' ') + 1);
    if (address.empty()) continue;
    std::string error = probe_one(address, timeout_ms);
    if (error.empty()) return "";
    failures.push_back(address + " (" + error + ")");
  }
  if (failures.empty()) return "no broker address given (--brokers)";
  std::string line = "cannot connect to ";
  for (size_t i = 0; i < failures.size(); ++i) line += (i ? ", " : "") + failures[i];
  return line + "; is the broker running and is --brokers right?";
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
  bool debug = false;
  for (const auto& property : options.properties) {
    auto assignment = parse_assignment(property);
    if (!assignment) fail("-X " + assignment.error().message, kExitUsage);
    set_property(conf.get(), assignment->first, assignment->second);
    if (assignment->first == "debug") debug = true;
  }
  if (!options.verbose && !debug) {
    // The command reports failures itself, in one line; the library's own
    // "%3|...|FAIL|..." lines are for -v.
    rd_kafka_conf_set_log_cb(conf.get(), quiet_log);
    rd_kafka_conf_set_error_cb(conf.get(), quiet_error);
  }
  static bool probed = false;
  if (options.preflight && !probed) {
    std::string error = probe_brokers(options.brokers, std::min(options.timeout_ms, 5000));
    if (!error.empty()) fail(error);
    probed = true;
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
    fail(std::string("cannot get metadata from the brokers (") + rd_kafka_err2str(err) +
         "); are they reachable?");
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

std::string delete_topic(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  rd_kafka_DeleteTopic_t* request = rd_kafka_DeleteTopic_new(topic.c_str());
  QueuePtr queue(rd_kafka_queue_new(rk));
  auto admin_options = make_admin_options(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms);
  rd_kafka_DeleteTopics(rk, &request, 1, admin_options.get(), queue.get());
  rd_kafka_DeleteTopic_destroy(request);
  EventPtr event(rd_kafka_queue_poll(queue.get(), timeout_ms + 2000));
  if (!event) return "no answer within " + std::to_string(timeout_ms) + " ms";
  if (rd_kafka_event_error(event.get())) return rd_kafka_event_error_string(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]); err) {
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      return message ? message : rd_kafka_err2str(err);
    }
  }
  return "";
}

std::string delete_group(rd_kafka_t* rk, const std::string& group, int timeout_ms) {
  rd_kafka_DeleteGroup_t* request = rd_kafka_DeleteGroup_new(group.c_str());
  QueuePtr queue(rd_kafka_queue_new(rk));
  auto admin_options = make_admin_options(rk, RD_KAFKA_ADMIN_OP_DELETEGROUPS, timeout_ms);
  rd_kafka_DeleteGroups(rk, &request, 1, admin_options.get(), queue.get());
  rd_kafka_DeleteGroup_destroy(request);
  EventPtr event(rd_kafka_queue_poll(queue.get(), timeout_ms + 2000));
  if (!event) return "no answer within " + std::to_string(timeout_ms) + " ms";
  if (rd_kafka_event_error(event.get())) return rd_kafka_event_error_string(event.get());
  size_t count = 0;
  const rd_kafka_group_result_t** results =
      rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (const rd_kafka_error_t* error = rd_kafka_group_result_error(results[i])) {
      return rd_kafka_error_string(error);
    }
  }
  return "";
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = above;
      }
    }
    return row[b.size()];
  };
  std::string best;
  size_t best_distance = 3;
  for (const auto& candidate : candidates) {
    size_t d = distance(word, candidate);
    bool prefix = word.size() >= 2 && candidate.rfind(word, 0) == 0;
    if (prefix) d = std::min<size_t>(d, 1);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best.empty() ? "" : "did you mean '" + best + "'?";
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
