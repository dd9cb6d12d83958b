// `holdfast topic create|list|describe|delete`, through librdkafka's Admin API
// and Metadata.
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/client/args.h"
#include "cli/client/client.h"
#include "cli/commands.h"

namespace holdfast::cli {
namespace {

struct TopicOptions {
  ClientOptions client;
  std::string format = "text";
  // create
  std::string name;
  int partitions = -1;   // -1: the broker's default (num.partitions)
  int replication = -1;  // -1: the broker's default
  std::vector<std::string> configs;
  // delete
  std::vector<std::string> names;
};

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out;
}

void run_create(const TopicOptions& opts) {
  auto rk = make_admin_client(opts.client);
  char errstr[512];
  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(opts.name.c_str(), opts.partitions,
                                                     opts.replication, errstr, sizeof errstr);
  if (topic == nullptr) fail("topic create: " + std::string(errstr), kExitUsage);
  std::unique_ptr<rd_kafka_NewTopic_t, void (*)(rd_kafka_NewTopic_t*)> owned(
      topic, rd_kafka_NewTopic_destroy);
  for (const auto& config : opts.configs) {
    auto assignment = parse_assignment(config);
    if (!assignment) fail("topic create: -c " + assignment.error().message, kExitUsage);
    if (rd_kafka_NewTopic_set_config(topic, assignment->first.c_str(),
                                     assignment->second.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fail("topic create: invalid config " + config, kExitUsage);
    }
  }
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto admin_options =
      make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS, opts.client.timeout_ms);
  rd_kafka_CreateTopics(rk.get(), &topic, 1, admin_options.get(), queue.get());
  auto event = wait_admin_result(queue.get(), opts.client.timeout_ms, "topic create");
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      fail("topic create '" + opts.name +
           "': " + (message ? message : rd_kafka_err2str(rd_kafka_topic_result_error(results[i]))));
    }
  }
  std::cout << "created topic " << opts.name << '\n';
}

void run_list(const TopicOptions& opts) {
  auto rk = make_admin_client(opts.client);
  auto topics = fetch_all_topics(rk.get(), opts.client.timeout_ms);
  if (opts.format == "json") {
    auto out = nlohmann::ordered_json::array();
    for (const auto& topic : topics) {
      out.push_back({{"name", topic.name},
                     {"partitions", topic.partitions.size()},
                     {"replication_factor",
                      topic.partitions.empty() ? 0 : topic.partitions.front().replicas.size()}});
    }
    std::cout << out.dump() << '\n';
    return;
  }
  std::vector<std::vector<std::string>> rows{{"NAME", "PARTITIONS", "REPLICAS"}};
  for (const auto& topic : topics) {
    rows.push_back(
        {topic.name, std::to_string(topic.partitions.size()),
         std::to_string(topic.partitions.empty() ? 0 : topic.partitions.front().replicas.size())});
  }
  print_table(rows);
}

struct ConfigValue {
  std::string value;
  std::string source;
  bool sensitive = false;
};

// The topic's configs whose value is not the default (DescribeConfigs).
std::map<std::string, ConfigValue> describe_non_default_configs(rd_kafka_t* rk,
                                                                const std::string& name,
                                                                int timeout_ms) {
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name.c_str());
  QueuePtr queue(rd_kafka_queue_new(rk));
  auto admin_options = make_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms);
  rd_kafka_DescribeConfigs(rk, &resource, 1, admin_options.get(), queue.get());
  rd_kafka_ConfigResource_destroy(resource);
  auto event = wait_admin_result(queue.get(), timeout_ms, "topic describe: DescribeConfigs");
  size_t resource_count = 0;
  const rd_kafka_ConfigResource_t** resources = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(event.get()), &resource_count);
  std::map<std::string, ConfigValue> configs;
  for (size_t r = 0; r < resource_count; ++r) {
    if (rd_kafka_ConfigResource_error(resources[r]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* message = rd_kafka_ConfigResource_error_string(resources[r]);
      fail("topic describe '" + name + "': DescribeConfigs: " +
           (message ? message : rd_kafka_err2str(rd_kafka_ConfigResource_error(resources[r]))));
    }
    size_t entry_count = 0;
    const rd_kafka_ConfigEntry_t** entries =
        rd_kafka_ConfigResource_configs(resources[r], &entry_count);
    for (size_t e = 0; e < entry_count; ++e) {
      const rd_kafka_ConfigEntry_t* entry = entries[e];
      if (rd_kafka_ConfigEntry_is_default(entry)) continue;
      auto source = rd_kafka_ConfigEntry_source(entry);
      if (source == RD_KAFKA_CONFIG_SOURCE_DEFAULT_CONFIG) continue;
      const char* value = rd_kafka_ConfigEntry_value(entry);
      configs[rd_kafka_ConfigEntry_name(entry)] =
          ConfigValue{value ? value : "", rd_kafka_ConfigSource_name(source),
                      rd_kafka_ConfigEntry_is_sensitive(entry) != 0};
    }
  }
  return configs;
}

void run_describe(const TopicOptions& opts) {
  auto rk = make_admin_client(opts.client);
  TopicInfo topic = fetch_topic(rk.get(), opts.name, opts.client.timeout_ms);
  struct Offsets {
    int64_t log_start = -1;
    int64_t high_watermark = -1;
    std::string error;
  };
  std::vector<Offsets> offsets;
  for (const auto& partition : topic.partitions) {
    Offsets o;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk.get(), topic.name.c_str(), partition.id, &o.log_start,
                                         &o.high_watermark, opts.client.timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fail("topic describe '" + topic.name + "': cannot list offsets of partition " +
           std::to_string(partition.id) + ": " + rd_kafka_err2str(err));
    }
    offsets.push_back(o);
  }
  auto configs = describe_non_default_configs(rk.get(), topic.name, opts.client.timeout_ms);

  if (opts.format == "json") {
    nlohmann::ordered_json out{{"name", topic.name},
                               {"partitions", nlohmann::ordered_json::array()}};
    for (size_t i = 0; i < topic.partitions.size(); ++i) {
      const auto& p = topic.partitions[i];
      out["partitions"].push_back({{"partition", p.id},
                                   {"leader", p.leader},
                                   {"replicas", p.replicas},
                                   {"isr", p.isr},
                                   {"log_start_offset", offsets[i].log_start},
                                   {"high_watermark", offsets[i].high_watermark}});
    }
    out["configs"] = nlohmann::ordered_json::object();
    for (const auto& [key, config] : configs) {
      out["configs"][key] =
          config.sensitive ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(config.value);
    }
    std::cout << out.dump() << '\n';
    return;
  }
  std::cout << "topic: " << topic.name << "  partitions: " << topic.partitions.size()
            << "  replicas: "
            << (topic.partitions.empty() ? 0 : topic.partitions.front().replicas.size()) << "\n\n";
  std::vector<std::vector<std::string>> rows{
      {"PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "HIGH-WATERMARK"}};
  for (size_t i = 0; i < topic.partitions.size(); ++i) {
    const auto& p = topic.partitions[i];
    rows.push_back({std::to_string(p.id), std::to_string(p.leader), join_ids(p.replicas),
                    join_ids(p.isr), std::to_string(offsets[i].log_start),
                    std::to_string(offsets[i].high_watermark)});
  }
  print_table(rows);
  std::cout << "\nconfigs (non-default):\n";
  if (configs.empty()) std::cout << "  (none)\n";
  for (const auto& [key, config] : configs) {
    std::cout << "  " << key << "=" << (config.sensitive ? "(sensitive)" : config.value) << "  ("
              << config.source << ")\n";
  }
}

void run_delete(const TopicOptions& opts) {
  auto rk = make_admin_client(opts.client);
  std::vector<rd_kafka_DeleteTopic_t*> requests;
  for (const auto& name : opts.names) requests.push_back(rd_kafka_DeleteTopic_new(name.c_str()));
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto admin_options =
      make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_DELETETOPICS, opts.client.timeout_ms);
  rd_kafka_DeleteTopics(rk.get(), requests.data(), requests.size(), admin_options.get(),
                        queue.get());
  rd_kafka_DeleteTopic_destroy_array(requests.data(), requests.size());
  auto event = wait_admin_result(queue.get(), opts.client.timeout_ms, "topic delete");
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event.get()), &count);
  std::vector<std::string> failures;
  for (size_t i = 0; i < count; ++i) {
    std::string name = rd_kafka_topic_result_name(results[i]);
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::cout << "deleted topic " << name << '\n';
    } else {
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      failures.push_back(name + ": " + (message ? message : rd_kafka_err2str(err)));
    }
  }
  if (!failures.empty()) {
    std::string line = "topic delete: " + std::to_string(failures.size()) + " of " +
                       std::to_string(opts.names.size()) + " failed: ";
    for (size_t i = 0; i < failures.size(); ++i) line += (i ? "; " : "") + failures[i];
    fail(line);
  }
}

}  // namespace

void add_topic_command(CLI::App& app) {
  auto opts = std::make_shared<TopicOptions>();
  auto* topic = app.add_subcommand("topic", "Create, list, describe and delete topics");
  topic->require_subcommand(1);

  auto* create = topic->add_subcommand("create", "Create a topic");
  create->add_option("name", opts->name, "Topic name")->required();
  create->add_option("-p,--partitions", opts->partitions,
                     "Number of partitions (default: the broker's num.partitions)");
  create->add_option("-r,--replication", opts->replication,
                     "Replication factor (default: the broker's default)");
  create->add_option("-c,--config", opts->configs, "Topic config key=value (repeatable)");
  add_client_options(create, opts->client);
  create->callback([opts] { run_create(*opts); });

  auto* list = topic->add_subcommand("list", "List topics");
  list->add_option("--format", opts->format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  add_client_options(list, opts->client);
  list->callback([opts] { run_list(*opts); });

  auto* describe = topic->add_subcommand(
      "describe",
      "Show a topic's partitions (leader, replicas, ISR, offsets) and non-default configs");
  describe->add_option("name", opts->name, "Topic name")->required();
  describe->add_option("--format", opts->format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  add_client_options(describe, opts->client);
  describe->callback([opts] { run_describe(*opts); });

  auto* remove = topic->add_subcommand("delete", "Delete topics");
  remove->add_option("names", opts->names, "Topic names")->required();
  add_client_options(remove, opts->client);
  remove->callback([opts] { run_delete(*opts); });
}

}  // namespace holdfast::cli
