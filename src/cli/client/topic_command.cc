// `holdfast topic create|list|describe|delete|alter-config|add-partitions|
// delete-records`, through librdkafka's Admin API and Metadata.
#include <algorithm>
#include <cstdint>
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
#include "cli/client/usage.h"
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
  // alter-config
  std::vector<std::string> set_configs;
  std::vector<std::string> delete_configs;
  // delete-records
  std::vector<int> record_partitions;  // empty: every partition
  std::string before = "end";
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

// alter-config: AlterConfigs replaces a topic's whole set of dynamic configs,
// so the current dynamic ones are read first and sent back with the changes.
void run_alter_config(const TopicOptions& opts) {
  if (opts.set_configs.empty() && opts.delete_configs.empty()) {
    fail("topic alter-config: nothing to change; give --set key=value or --delete key", kExitUsage);
  }
  std::vector<std::pair<std::string, std::string>> sets;
  for (const auto& config : opts.set_configs) {
    auto assignment = parse_assignment(config);
    if (!assignment) fail("topic alter-config: --set " + assignment.error().message, kExitUsage);
    sets.push_back(*assignment);
  }
  auto rk = make_admin_client(opts.client);
  fetch_topic(rk.get(), opts.name, opts.client.timeout_ms);  // "does not exist" first
  std::map<std::string, std::string> configs;
  for (const auto& [key, config] :
       describe_non_default_configs(rk.get(), opts.name, opts.client.timeout_ms)) {
    if (config.source == "DYNAMIC_TOPIC_CONFIG") configs[key] = config.value;
  }
  for (const auto& key : opts.delete_configs) configs.erase(key);
  for (const auto& [key, value] : sets) configs[key] = value;

  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, opts.name.c_str());
  std::unique_ptr<rd_kafka_ConfigResource_t, void (*)(rd_kafka_ConfigResource_t*)> owned(
      resource, rd_kafka_ConfigResource_destroy);
  for (const auto& [key, value] : configs) {
    rd_kafka_ConfigResource_set_config(resource, key.c_str(), value.c_str());
  }
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto admin_options =
      make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_ALTERCONFIGS, opts.client.timeout_ms);
  rd_kafka_AlterConfigs(rk.get(), &resource, 1, admin_options.get(), queue.get());
  auto event = wait_admin_result(queue.get(), opts.client.timeout_ms, "topic alter-config");
  size_t count = 0;
  const rd_kafka_ConfigResource_t** results = rd_kafka_AlterConfigs_result_resources(
      rd_kafka_event_AlterConfigs_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(results[i]); err) {
      const char* message = rd_kafka_ConfigResource_error_string(results[i]);
      fail("topic alter-config '" + opts.name + "': " + (message ? message : rd_kafka_err2str(err)));
    }
  }
  std::string changes;
  for (const auto& [key, value] : sets) changes += (changes.empty() ? "" : ", ") + key + "=" + value;
  for (const auto& key : opts.delete_configs) {
    changes += (changes.empty() ? "" : ", ") + key + " (back to the default)";
  }
  std::cout << "altered topic " << opts.name << ": " << changes << '\n';
}

void run_add_partitions(const TopicOptions& opts) {
  auto rk = make_admin_client(opts.client);
  TopicInfo topic = fetch_topic(rk.get(), opts.name, opts.client.timeout_ms);
  const int current = static_cast<int>(topic.partitions.size());
  if (opts.partitions <= current) {
    fail("topic add-partitions '" + opts.name + "': it has " + std::to_string(current) +
             " partitions; --partitions is the new total and must be larger",
         kExitUsage);
  }
  char errstr[512];
  rd_kafka_NewPartitions_t* request =
      rd_kafka_NewPartitions_new(opts.name.c_str(), opts.partitions, errstr, sizeof errstr);
  if (request == nullptr) fail("topic add-partitions: " + std::string(errstr), kExitUsage);
  std::unique_ptr<rd_kafka_NewPartitions_t, void (*)(rd_kafka_NewPartitions_t*)> owned(
      request, rd_kafka_NewPartitions_destroy);
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto admin_options =
      make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, opts.client.timeout_ms);
  rd_kafka_CreatePartitions(rk.get(), &request, 1, admin_options.get(), queue.get());
  auto event = wait_admin_result(queue.get(), opts.client.timeout_ms, "topic add-partitions");
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreatePartitions_result_topics(
      rd_kafka_event_CreatePartitions_result(event.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]); err) {
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      fail("topic add-partitions '" + opts.name + "': " + (message ? message : rd_kafka_err2str(err)));
    }
  }
  std::cout << "topic " << opts.name << ": " << current << " -> " << opts.partitions
            << " partitions\n";
}

void run_delete_records(const TopicOptions& opts) {
  int64_t before = RD_KAFKA_OFFSET_END;  // -1: up to the high watermark
  if (opts.before != "end") {
    auto parsed = parse_integer(opts.before, 0, INT64_MAX);
    if (!parsed) {
      fail("topic delete-records: --before '" + opts.before + "': expected an offset or end",
           kExitUsage);
    }
    before = *parsed;
  }
  auto rk = make_admin_client(opts.client);
  TopicInfo topic = fetch_topic(rk.get(), opts.name, opts.client.timeout_ms);
  PartitionListPtr offsets(rd_kafka_topic_partition_list_new(1));
  for (const auto& partition : topic.partitions) {
    if (!opts.record_partitions.empty() &&
        std::find(opts.record_partitions.begin(), opts.record_partitions.end(), partition.id) ==
            opts.record_partitions.end()) {
      continue;
    }
    rd_kafka_topic_partition_list_add(offsets.get(), opts.name.c_str(), partition.id)->offset =
        before;
  }
  for (int p : opts.record_partitions) {
    if (p >= static_cast<int>(topic.partitions.size())) {
      fail("topic delete-records: topic '" + opts.name + "' has no partition " + std::to_string(p) +
               " (it has " + std::to_string(topic.partitions.size()) + ")",
           kExitUsage);
    }
  }
  rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(offsets.get());
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto admin_options =
      make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_DELETERECORDS, opts.client.timeout_ms);
  rd_kafka_DeleteRecords(rk.get(), &request, 1, admin_options.get(), queue.get());
  rd_kafka_DeleteRecords_destroy(request);
  auto event = wait_admin_result(queue.get(), opts.client.timeout_ms, "topic delete-records");
  const rd_kafka_topic_partition_list_t* result =
      rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(event.get()));
  std::vector<std::vector<std::string>> rows{{"PARTITION", "LOG-START"}};
  std::vector<std::string> failures;
  for (int i = 0; result != nullptr && i < result->cnt; ++i) {
    const auto& tp = result->elems[i];
    if (tp.err) {
      failures.push_back("partition " + std::to_string(tp.partition) + ": " +
                         rd_kafka_err2str(tp.err));
    } else {
      rows.push_back({std::to_string(tp.partition), std::to_string(tp.offset)});
    }
  }
  print_table(rows);
  if (!failures.empty()) {
    std::string line = "topic delete-records '" + opts.name + "': ";
    for (size_t i = 0; i < failures.size(); ++i) line += (i ? "; " : "") + failures[i];
    fail(line);
  }
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
  auto* topic = app.add_subcommand(
      "topic", "Create, list, describe, alter and delete topics; add partitions; delete records");
  topic->require_subcommand(1);

  auto* create = topic->add_subcommand("create", "Create a topic");
  create->add_option("name", opts->name, "Topic name")->required();
  create->add_option("--partitions", opts->partitions,
                     "Number of partitions (default: the broker's num.partitions)")
      ->check(between(1, 100000));
  reject_option(create, "-p",
                "-p is a partition index in produce and consume; give the count as --partitions N");
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

  auto* alter = topic->add_subcommand(
      "alter-config", "Set or remove (back to the default) a topic's configs; the others stay");
  alter->add_option("name", opts->name, "Topic name")->required();
  alter->add_option("-s,--set", opts->set_configs, "key=value (repeatable)");
  alter->add_option("-d,--delete", opts->delete_configs, "key (repeatable)");
  add_client_options(alter, opts->client);
  alter->callback([opts] { run_alter_config(*opts); });

  auto* add_partitions =
      topic->add_subcommand("add-partitions", "Grow a topic to --partitions N in total");
  add_partitions->add_option("name", opts->name, "Topic name")->required();
  add_partitions->add_option("--partitions", opts->partitions, "The new total partition count")
      ->required()
      ->check(between(1, 100000));
  reject_option(add_partitions, "-p", "give the new total partition count as --partitions N");
  add_client_options(add_partitions, opts->client);
  add_partitions->callback([opts] { run_add_partitions(*opts); });

  auto* delete_records = topic->add_subcommand(
      "delete-records", "Delete the records below an offset (moves the log start offset)");
  delete_records->add_option("name", opts->name, "Topic name")->required();
  delete_records
      ->add_option("-p,--partition", opts->record_partitions,
                   "Partition index (repeatable; default: every partition)")
      ->check(at_least(0));
  delete_records
      ->add_option("--before", opts->before, "Delete records below this offset, or `end` (all)")
      ->required();
  add_client_options(delete_records, opts->client);
  delete_records->callback([opts] { run_delete_records(*opts); });
}

}  // namespace holdfast::cli
