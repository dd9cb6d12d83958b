// `holdfast cluster status`: the cluster as a client sees it through
// Metadata (librdkafka): cluster id, controller, brokers, and the partitions
// that need attention: under-replicated (ISR smaller than the replicas),
// under min ISR (ISR smaller than the topic's min.insync.replicas: acks=all
// produce is refused) and offline (no leader). Then, through
// net::KafkaClient (cluster_quorum.h): each broker's rack (DescribeCluster)
// and the metadata quorum from the active controller (DescribeQuorum): each
// broker's Raft role, the metadata record index it has applied and its lag
// behind the commit index, and the term. Either may be unavailable (a single
// node has no quorum; a TLS/SASL client): the rest is shown with the reason.
// Exit codes: 0 when no partition is offline, 3 when one is (kExitOffline),
// 1 when the cluster cannot be asked; the racks and the quorum never change
// them.
#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/client/client.h"
#include "cli/client/cluster_quorum.h"
#include "cli/commands.h"

namespace holdfast::cli {
namespace {

constexpr int kExitOffline = 3;  // at least one partition has no leader

struct ClusterOptions {
  ClientOptions client;
  std::string format = "text";
};

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* metadata) const { rd_kafka_metadata_destroy(metadata); }
};

struct BrokerRow {
  int32_t id = -1;
  std::string host;
  int port = 0;
  bool alive = true;  // listed in Metadata (registered and not fenced)
  std::optional<std::string> rack;
  std::optional<QuorumMember> raft;  // its place in the metadata quorum, if known
};

struct ProblemPartition {
  std::string topic;
  int32_t partition = 0;
  int32_t leader = -1;
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
  int min_insync = -1;  // -1: unknown
  bool under_replicated = false;
  bool under_min_isr = false;
  bool offline = false;
};

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

// min.insync.replicas of each of `topics` (DescribeConfigs); a topic whose
// answer failed is left out.
std::map<std::string, int> min_insync_of(rd_kafka_t* rk, const std::set<std::string>& topics,
                                         int timeout_ms) {
  std::map<std::string, int> out;
  if (topics.empty()) return out;
  std::vector<rd_kafka_ConfigResource_t*> resources;
  for (const auto& topic : topics) {
    resources.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  }
  QueuePtr queue(rd_kafka_queue_new(rk));
  auto admin_options = make_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms);
  rd_kafka_DescribeConfigs(rk, resources.data(), resources.size(), admin_options.get(),
                           queue.get());
  for (auto* r : resources) rd_kafka_ConfigResource_destroy(r);
  auto event = wait_admin_result(queue.get(), timeout_ms, "cluster status: DescribeConfigs");
  size_t count = 0;
  const rd_kafka_ConfigResource_t** results = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(event.get()), &count);
  for (size_t r = 0; r < count; ++r) {
    if (rd_kafka_ConfigResource_error(results[r]) != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    size_t entries_count = 0;
    const rd_kafka_ConfigEntry_t** entries =
        rd_kafka_ConfigResource_configs(results[r], &entries_count);
    for (size_t e = 0; e < entries_count; ++e) {
      if (std::string(rd_kafka_ConfigEntry_name(entries[e])) != "min.insync.replicas") continue;
      const char* value = rd_kafka_ConfigEntry_value(entries[e]);
      if (value == nullptr) continue;
      try {
        out[rd_kafka_ConfigResource_name(results[r])] = std::stoi(value);
      } catch (const std::exception&) {
      }
    }
  }
  return out;
}

void run_status(const ClusterOptions& opts) {
  auto rk = make_admin_client(opts.client);
  const int timeout_ms = opts.client.timeout_ms;
  const rd_kafka_metadata_t* raw = nullptr;
  if (rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), 1, nullptr, &raw, timeout_ms);
      err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fail(std::string("cluster status: cannot get metadata from the brokers (") +
         rd_kafka_err2str(err) + "); are they reachable?");
  }
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> metadata(raw);
  std::string cluster_id;
  if (char* id = rd_kafka_clusterid(rk.get(), timeout_ms)) {
    cluster_id = id;
    rd_kafka_mem_free(rk.get(), id);
  }
  const int32_t controller = rd_kafka_controllerid(rk.get(), timeout_ms);

  std::map<int32_t, BrokerRow> brokers;
  for (int i = 0; i < metadata->broker_cnt; ++i) {
    const auto& b = metadata->brokers[i];
    brokers[b.id] = BrokerRow{b.id, b.host ? b.host : "", b.port, true};
  }
  size_t total = 0;
  std::vector<ProblemPartition> problems;
  std::set<std::string> degraded_topics;
  for (int t = 0; t < metadata->topic_cnt; ++t) {
    const auto& topic = metadata->topics[t];
    for (int p = 0; p < topic.partition_cnt; ++p) {
      const auto& part = topic.partitions[p];
      ++total;
      ProblemPartition row;
      row.topic = topic.topic;
      row.partition = part.id;
      row.leader = part.leader;
      row.replicas.assign(part.replicas, part.replicas + part.replica_cnt);
      row.isr.assign(part.isrs, part.isrs + part.isr_cnt);
      // A replica on a broker Metadata does not list: fenced or not
      // registered (down, or cut off from the controller).
      for (int32_t id : row.replicas) {
        if (!brokers.count(id)) brokers[id] = BrokerRow{id, "", 0, false};
      }
      row.offline = part.leader < 0;
      row.under_replicated = row.isr.size() < row.replicas.size();
      if (row.offline || row.under_replicated) {
        degraded_topics.insert(row.topic);
        problems.push_back(std::move(row));
      }
    }
  }
  std::sort(problems.begin(), problems.end(), [](const auto& a, const auto& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  });
  // Under min ISR implies under-replicated: only those topics are asked.
  auto min_insync = min_insync_of(rk.get(), degraded_topics, timeout_ms);
  size_t under_replicated = 0, under_min_isr = 0, offline = 0;
  for (auto& row : problems) {
    if (auto found = min_insync.find(row.topic); found != min_insync.end()) {
      row.min_insync = found->second;
      row.under_min_isr = static_cast<int>(row.isr.size()) < row.min_insync;
    }
    under_replicated += row.under_replicated;
    under_min_isr += row.under_min_isr;
    offline += row.offline;
  }

  // Racks and the metadata quorum, asked of the brokers Metadata lists.
  std::vector<BrokerAddress> reachable;
  for (const auto& [id, b] : brokers) {
    if (b.alive) reachable.push_back({id, b.host, b.port});
  }
  RackInfo racks;
  QuorumInfo quorum;
  if (auto reason = plaintext_only_reason(opts.client)) {
    racks.reason = quorum.reason = *reason;
  } else {
    racks = describe_racks(reachable, timeout_ms);
    quorum = describe_quorum(reachable, controller, timeout_ms);
  }
  for (const auto& [id, member] : quorum.members) {
    // A member Metadata does not list (and no replica names): fenced or down.
    if (!brokers.count(id)) brokers[id] = BrokerRow{id, "", 0, false};
    brokers[id].raft = member;
  }
  for (auto& [id, b] : brokers) {
    if (auto it = racks.racks.find(id); it != racks.racks.end()) b.rack = it->second;
  }
  auto lag_of = [&quorum](const BrokerRow& b) -> std::optional<int64_t> {
    if (!quorum.available || !b.raft || !b.raft->applied_index) return std::nullopt;
    return std::max<int64_t>(0, quorum.commit_index - *b.raft->applied_index);
  };

  if (opts.format == "json") {
    nlohmann::ordered_json out;
    out["cluster_id"] = cluster_id.empty() ? nlohmann::ordered_json(nullptr)
                                           : nlohmann::ordered_json(cluster_id);
    out["controller"] = controller;
    out["brokers"] = nlohmann::ordered_json::array();
    auto or_null = [](const auto& value) {
      return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
    };
    for (const auto& [id, b] : brokers) {
      const auto lag = lag_of(b);
      out["brokers"].push_back(
          {{"id", id},
           {"host", b.alive ? nlohmann::ordered_json(b.host) : nlohmann::ordered_json(nullptr)},
           {"port", b.alive ? nlohmann::ordered_json(b.port) : nlohmann::ordered_json(nullptr)},
           {"rack", or_null(b.rack)},
           {"status", b.alive ? "alive" : "fenced-or-down"},
           {"raft_role", b.raft ? nlohmann::ordered_json(raft_role_name(b.raft->role))
                                : nlohmann::ordered_json(nullptr)},
           {"applied_index", b.raft ? or_null(b.raft->applied_index) : nullptr},
           {"lag", or_null(lag)},
           {"last_heartbeat_ms", b.raft ? or_null(b.raft->last_heartbeat_ms) : nullptr},
           {"last_caught_up_ms", b.raft ? or_null(b.raft->last_caught_up_ms) : nullptr}});
    }
    if (quorum.available) {
      out["raft"] = {{"available", true},
                     {"leader", quorum.leader_id},
                     {"term", quorum.term},
                     {"commit_index", quorum.commit_index}};
    } else {
      out["raft"] = {{"available", false}, {"reason", quorum.reason}};
    }
    out["racks_available"] = racks.available;
    if (!racks.available) out["racks_reason"] = racks.reason;
    out["partitions"] = {{"total", total},
                         {"under_replicated", under_replicated},
                         {"under_min_isr", under_min_isr},
                         {"offline", offline}};
    out["problems"] = nlohmann::ordered_json::array();
    for (const auto& row : problems) {
      out["problems"].push_back({{"topic", row.topic},
                                 {"partition", row.partition},
                                 {"leader", row.leader},
                                 {"replicas", row.replicas},
                                 {"isr", row.isr},
                                 {"min_insync_replicas", row.min_insync},
                                 {"under_replicated", row.under_replicated},
                                 {"under_min_isr", row.under_min_isr},
                                 {"offline", row.offline}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "cluster id: " << (cluster_id.empty() ? "(unknown)" : cluster_id) << "\n"
              << "controller: " << (controller >= 0 ? std::to_string(controller) : "(none)")
              << "\n\n";
    std::vector<std::vector<std::string>> rows{
        {"BROKER", "ENDPOINT", "RACK", "STATUS", "RAFT", "APPLIED", "LAG"}};
    for (const auto& [id, b] : brokers) {
      const auto lag = lag_of(b);
      const bool applied = b.raft && b.raft->applied_index;
      rows.push_back({std::to_string(id) + (id == controller ? " (controller)" : ""),
                      b.alive ? b.host + ":" + std::to_string(b.port) : "-",
                      b.rack.value_or("-"), b.alive ? "alive" : "fenced or down",
                      b.raft ? raft_role_name(b.raft->role) : "-",
                      applied ? std::to_string(*b.raft->applied_index) : "-",
                      lag ? std::to_string(*lag) : "-"});
    }
    print_table(rows);
    if (quorum.available) {
      std::cout << "\nmetadata quorum: leader " << quorum.leader_id << ", term " << quorum.term
                << ", commit index " << quorum.commit_index
                << " (metadata records; APPLIED as each broker last reported it to the "
                   "controller)\n";
    } else {
      std::cout << "\nmetadata quorum: unavailable, so the RAFT, APPLIED and LAG columns are "
                   "empty: "
                << quorum.reason << "\n";
    }
    if (!racks.available) std::cout << "racks: unavailable: " << racks.reason << "\n";
    std::cout << "\npartitions: " << total << ", under-replicated: " << under_replicated
              << ", under min ISR: " << under_min_isr << ", offline: " << offline << "\n";
    if (!problems.empty()) {
      std::cout << "\n";
      std::vector<std::vector<std::string>> table{
          {"TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "MIN-ISR", "STATE"}};
      for (const auto& row : problems) {
        std::string state = row.offline ? "offline"
                            : row.under_min_isr ? "under-min-isr"
                                                : "under-replicated";
        table.push_back({row.topic, std::to_string(row.partition), std::to_string(row.leader),
                         join_ids(row.replicas), join_ids(row.isr),
                         row.min_insync < 0 ? "?" : std::to_string(row.min_insync), state});
      }
      print_table(table);
    }
  }
  std::cout.flush();
  if (offline > 0) {
    throw CLI::RuntimeError(kExitOffline);
  }
}

}  // namespace

void add_cluster_command(CLI::App& app) {
  auto* cluster = app.add_subcommand("cluster", "Show the state of a cluster");
  cluster->require_subcommand(1);
  auto opts = std::make_shared<ClusterOptions>();
  auto* status = cluster->add_subcommand(
      "status",
      "Cluster id, controller, brokers (rack, Raft role, applied metadata index and lag), "
      "and under-replicated / under-min-ISR / offline partitions; exit code 3 when a "
      "partition is offline");
  status->add_option("--format", opts->format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  add_client_options(status, opts->client);
  status->callback([opts] { run_status(*opts); });
}

}  // namespace holdfast::cli
