// `holdfast txn list|describe|abort`: transactions as Kafka's
// kafka-transactions.sh shows and repairs them (docs/transactions.md).
//
//   list      every broker's ListTransactions, each listed id described
//             (DescribeTransactions) for its age and partitions;
//   describe  one transactional id, from whichever broker coordinates it;
//   abort     a hanging transaction in one partition (a producer whose open
//             transaction no coordinator will end): DescribeProducers on the
//             partition's leader gives the producer's epoch, coordinator
//             epoch and the transaction's first offset; WriteTxnMarkers then
//             writes an ABORT marker there, which releases read_committed
//             consumers. Only for a transaction its coordinator lost: one the
//             coordinator still tracks is aborted with the producer's own
//             abort, or by its transaction.timeout.ms.
//
// Broker addresses come from Metadata (librdkafka); the transaction APIs,
// which librdkafka's admin API lacks, go through net::KafkaClient.
#include <cctype>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/client/args.h"
#include "cli/client/client.h"
#include "cli/commands.h"
#include "net/kafka_client.h"
#include "protocol/messages.h"

namespace holdfast::cli {
namespace {

using protocol::DescribeProducersRequest;
using protocol::DescribeProducersResponse;
using protocol::DescribeTransactionsRequest;
using protocol::DescribeTransactionsResponse;
using protocol::ListTransactionsRequest;
using protocol::ListTransactionsResponse;
using protocol::WriteTxnMarkersRequest;
using protocol::WriteTxnMarkersResponse;

// Kafka error codes this command names (protocol facts).
std::string error_name(int16_t code) {
  switch (code) {
    case 0: return "NONE";
    case 3: return "UNKNOWN_TOPIC_OR_PARTITION";
    case 6: return "NOT_LEADER_OR_FOLLOWER";
    case 14: return "COORDINATOR_LOAD_IN_PROGRESS";
    case 15: return "COORDINATOR_NOT_AVAILABLE";
    case 16: return "NOT_COORDINATOR";
    case 47: return "INVALID_PRODUCER_EPOCH";
    case 48: return "INVALID_TXN_STATE";
    case 52: return "TRANSACTION_COORDINATOR_FENCED";
    case 105: return "TRANSACTIONAL_ID_NOT_FOUND";
    default: return "error " + std::to_string(code);
  }
}

struct TxnOptions {
  ClientOptions client;
  std::string format = "text";
  std::string transactional_id;
  std::string topic;
  int32_t partition = -1;
  int64_t producer_id = -1;
};

struct BrokerAddress {
  int32_t id = -1;
  net::Endpoint endpoint;
};

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};

// The brokers, and the leader of each partition of `topic` (when given).
struct ClusterView {
  std::vector<BrokerAddress> brokers;
  std::map<int32_t, int32_t> leaders;  // partition -> leader id
};

ClusterView cluster_view(const ClientOptions& client, const std::string& topic) {
  HandlePtr rk = make_admin_client(client);
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk.get(), 1, nullptr, &raw, client.timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fail("cannot read the cluster's metadata from " + client.brokers + ": " + rd_kafka_err2str(err));
  }
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> metadata(raw);
  ClusterView view;
  for (int i = 0; i < metadata->broker_cnt; ++i) {
    const auto& b = metadata->brokers[i];
    view.brokers.push_back({b.id, {b.host, static_cast<uint16_t>(b.port)}});
  }
  if (!topic.empty()) {
    bool found = false;
    for (int t = 0; t < metadata->topic_cnt; ++t) {
      const auto& info = metadata->topics[t];
      if (topic != info.topic) continue;
      found = info.err == RD_KAFKA_RESP_ERR_NO_ERROR;
      for (int p = 0; p < info.partition_cnt; ++p) {
        view.leaders[info.partitions[p].id] = info.partitions[p].leader;
      }
    }
    if (!found) fail("topic '" + topic + "' does not exist");
  }
  return view;
}

template <typename Response, typename Request>
Response call(net::KafkaClient& kafka, const BrokerAddress& to, const Request& request,
              int16_t version, int timeout_ms) {
  auto answer =
      kafka.call<Response>(to.endpoint, request, version, std::chrono::milliseconds(timeout_ms));
  if (!answer) {
    fail(std::string(Request::kName) + " to broker " + std::to_string(to.id) + " (" +
         to.endpoint.to_string() + ") failed: " + answer.error().message);
  }
  return std::move(*answer);
}

std::string age(int64_t start_ms) {
  if (start_ms < 0) return "-";
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return std::to_string(std::max<int64_t>(0, now_ms - start_ms) / 1000) + "s";
}

nlohmann::json describe_json(const DescribeTransactionsResponse::TransactionState& s,
                             int32_t coordinator) {
  nlohmann::json partitions = nlohmann::json::array();
  for (const auto& t : s.topics) {
    for (int32_t p : t.partitions) partitions.push_back(t.topic + "-" + std::to_string(p));
  }
  return {{"transactional_id", s.transactional_id},
          {"coordinator", coordinator},
          {"state", s.transaction_state},
          {"producer_id", s.producer_id},
          {"producer_epoch", s.producer_epoch},
          {"timeout_ms", s.transaction_timeout_ms},
          {"start_time_ms", s.transaction_start_time_ms},
          {"partitions", partitions}};
}

std::string partitions_text(const nlohmann::json& partitions) {
  std::string out;
  for (const auto& p : partitions) out += (out.empty() ? "" : ",") + p.get<std::string>();
  return out.empty() ? "-" : out;
}

// The transaction APIs go through net::KafkaClient, which speaks PLAINTEXT
// only: refuse a SASL or TLS configuration up front instead of failing
// later with a closed connection.
void require_plaintext(const ClientOptions& client) {
  for (const auto& property : client.properties) {
    auto assignment = parse_assignment(property);
    if (!assignment || assignment->first != "security.protocol") continue;
    std::string protocol = assignment->second;
    for (char& c : protocol) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (protocol != "plaintext") {
      fail("holdfast txn: security.protocol=" + assignment->second +
               " is not supported yet (txn speaks PLAINTEXT only; use a PLAINTEXT listener)",
           kExitUsage);
    }
  }
}

int run_list(const TxnOptions& o) {
  require_plaintext(o.client);
  ClusterView view = cluster_view(o.client, "");
  net::KafkaClient kafka;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& broker : view.brokers) {
    auto listed = call<ListTransactionsResponse>(kafka, broker, ListTransactionsRequest{}, 0,
                                                 o.client.timeout_ms);
    if (listed.error_code != 0) {
      fail("ListTransactions on broker " + std::to_string(broker.id) + ": " +
           error_name(listed.error_code));
    }
    if (listed.transaction_states.empty()) continue;
    DescribeTransactionsRequest describe;
    for (const auto& t : listed.transaction_states) describe.transactional_ids.push_back(t.transactional_id);
    auto described = call<DescribeTransactionsResponse>(kafka, broker, describe, 0, o.client.timeout_ms);
    for (const auto& s : described.transaction_states) {
      if (s.error_code != 0) continue;  // gone (or moved) since it was listed
      out.push_back(describe_json(s, broker.id));
    }
  }
  if (o.format == "json") {
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TRANSACTIONAL ID", "COORDINATOR", "STATE", "PRODUCER", "EPOCH", "AGE", "PARTITIONS"}};
  for (const auto& t : out) {
    rows.push_back({t["transactional_id"], std::to_string(t["coordinator"].get<int>()),
                    t["state"], std::to_string(t["producer_id"].get<int64_t>()),
                    std::to_string(t["producer_epoch"].get<int>()),
                    t["state"] == "Ongoing" || t["state"].get<std::string>().rfind("Prepare", 0) == 0
                        ? age(t["start_time_ms"].get<int64_t>())
                        : "-",
                    partitions_text(t["partitions"])});
  }
  print_table(rows);
  return 0;
}

int run_describe(const TxnOptions& o) {
  require_plaintext(o.client);
  ClusterView view = cluster_view(o.client, "");
  net::KafkaClient kafka;
  DescribeTransactionsRequest request;
  request.transactional_ids.push_back(o.transactional_id);
  for (const auto& broker : view.brokers) {
    auto described = call<DescribeTransactionsResponse>(kafka, broker, request, 0, o.client.timeout_ms);
    if (described.transaction_states.size() != 1) continue;
    const auto& s = described.transaction_states[0];
    if (s.error_code == 16 /* NOT_COORDINATOR */) continue;
    if (s.error_code != 0) {
      fail("transactional id '" + o.transactional_id + "': " + error_name(s.error_code));
    }
    nlohmann::json j = describe_json(s, broker.id);
    if (o.format == "json") {
      std::cout << j.dump() << "\n";
      return 0;
    }
    print_table({{"transactional id", s.transactional_id},
                 {"coordinator", std::to_string(broker.id)},
                 {"state", s.transaction_state},
                 {"producer", std::to_string(s.producer_id) + " epoch " +
                                  std::to_string(s.producer_epoch)},
                 {"timeout", std::to_string(s.transaction_timeout_ms) + " ms"},
                 {"age", s.transaction_start_time_ms >= 0 ? age(s.transaction_start_time_ms) : "-"},
                 {"partitions", partitions_text(j["partitions"])}});
    return 0;
  }
  fail("no broker coordinates transactional id '" + o.transactional_id +
       "' (its coordinator may be loading; try again)");
}

int run_abort(const TxnOptions& o) {
  require_plaintext(o.client);
  ClusterView view = cluster_view(o.client, o.topic);
  auto leader_it = view.leaders.find(o.partition);
  if (leader_it == view.leaders.end()) {
    fail("topic '" + o.topic + "' has no partition " + std::to_string(o.partition), kExitUsage);
  }
  const BrokerAddress* leader = nullptr;
  for (const auto& b : view.brokers) {
    if (b.id == leader_it->second) leader = &b;
  }
  if (!leader) fail(o.topic + "-" + std::to_string(o.partition) + " has no leader now");
  net::KafkaClient kafka;

  DescribeProducersRequest describe;
  describe.topics.push_back({o.topic, {o.partition}});
  auto producers = call<DescribeProducersResponse>(kafka, *leader, describe, 0, o.client.timeout_ms);
  const DescribeProducersResponse::ProducerState* found = nullptr;
  for (const auto& t : producers.topics) {
    for (const auto& p : t.partitions) {
      if (p.error_code != 0) {
        fail("DescribeProducers " + o.topic + "-" + std::to_string(o.partition) + ": " +
             error_name(p.error_code));
      }
      for (const auto& s : p.active_producers) {
        if (s.producer_id == o.producer_id) found = &s;
      }
    }
  }
  if (!found) {
    fail("producer " + std::to_string(o.producer_id) + " is not known in " + o.topic + "-" +
         std::to_string(o.partition));
  }
  if (found->current_txn_start_offset < 0) {
    fail("producer " + std::to_string(o.producer_id) + " has no open transaction in " + o.topic +
         "-" + std::to_string(o.partition) + ": nothing to abort");
  }
  WriteTxnMarkersRequest markers;
  auto& marker = markers.markers.emplace_back();
  marker.producer_id = o.producer_id;
  marker.producer_epoch = static_cast<int16_t>(found->producer_epoch);
  marker.transaction_result = false;  // ABORT
  marker.coordinator_epoch = std::max(found->coordinator_epoch, 0);
  marker.topics.push_back({o.topic, {o.partition}});
  auto written = call<WriteTxnMarkersResponse>(kafka, *leader, markers, 1, o.client.timeout_ms);
  for (const auto& m : written.markers) {
    for (const auto& t : m.topics) {
      for (const auto& p : t.partitions) {
        if (p.error_code != 0) {
          fail("WriteTxnMarkers " + o.topic + "-" + std::to_string(o.partition) + ": " +
               error_name(p.error_code));
        }
      }
    }
  }
  std::cout << "aborted the transaction of producer " << o.producer_id << " (epoch "
            << found->producer_epoch << ") in " << o.topic << "-" << o.partition
            << " that began at offset " << found->current_txn_start_offset << "\n";
  return 0;
}

}  // namespace

void add_txn_command(CLI::App& app) {
  auto* txn = app.add_subcommand("txn", "List, describe and abort transactions");
  txn->require_subcommand(1);
  auto options = std::make_shared<TxnOptions>();

  auto* list = txn->add_subcommand("list", "Open and recent transactions on every broker");
  add_client_options(list, options->client);
  list->add_option("--format", options->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  list->callback([options] { run_list(*options); });

  auto* describe = txn->add_subcommand("describe", "One transactional id's state");
  add_client_options(describe, options->client);
  describe->add_option("transactional_id", options->transactional_id, "the transactional.id")->required();
  describe->add_option("--format", options->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  describe->callback([options] { run_describe(*options); });

  auto* abort = txn->add_subcommand(
      "abort", "Write an ABORT marker for a hanging transaction in one partition");
  add_client_options(abort, options->client);
  abort->add_option("--topic", options->topic, "the partition's topic")->required();
  abort->add_option("--partition", options->partition, "the partition")->required();
  abort->add_option("--producer-id", options->producer_id,
                    "the producer whose open transaction to abort (see DescribeProducers)")
      ->required();
  abort->callback([options] { run_abort(*options); });
}

}  // namespace holdfast::cli
