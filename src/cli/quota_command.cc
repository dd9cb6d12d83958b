// `holdfast quota set|delete|list`: client byte-rate quotas (KIP-546;
// docs/security.md), as Kafka's kafka-configs --entity-type users/clients
// sets them:
//
//   holdfast quota set --client-id app --producer-byte-rate 1048576
//   holdfast quota set --user alice --default client-id --consumer-byte-rate 2097152
//   holdfast quota delete --client-id app [--key producer_byte_rate]
//   holdfast quota list [--user alice] [--client-id app] [--default user] [--format json]
//
// An entity is --user and/or --client-id, or --default user / --default
// client-id for the type's default entity (a null name on the wire). The
// requests (DescribeClientQuotas, AlterClientQuotas), which librdkafka's
// admin API lacks, go to the first bootstrap broker through
// net::KafkaClient; a broker that is not the controller forwards the change.
#include <cctype>
#include <iostream>
#include <map>
#include <optional>
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

using json = nlohmann::ordered_json;
using protocol::AlterClientQuotasRequest;
using protocol::AlterClientQuotasResponse;
using protocol::DescribeClientQuotasRequest;
using protocol::DescribeClientQuotasResponse;

struct QuotaOptions {
  ClientOptions client;
  std::string format = "text";
  std::optional<std::string> user;
  std::optional<std::string> client_id;
  std::vector<std::string> defaults;  // "user", "client-id"
  std::optional<double> producer_byte_rate;
  std::optional<double> consumer_byte_rate;
  std::vector<std::string> keys;  // delete: the keys to remove (default: both)
};

// Kafka error codes this command names (protocol facts).
std::string error_name(int16_t code) {
  switch (code) {
    case 31: return "CLUSTER_AUTHORIZATION_FAILED";
    case 41: return "NOT_CONTROLLER";
    case 42: return "INVALID_REQUEST";
    case 7: return "REQUEST_TIMED_OUT";
    default: return "error " + std::to_string(code);
  }
}

// The first bootstrap address ("host:port").
net::Endpoint bootstrap(const ClientOptions& client) {
  std::string first = client.brokers.substr(0, client.brokers.find(','));
  const auto colon = first.rfind(':');
  if (colon == std::string::npos) fail("--brokers: expected host:port, got '" + first + "'", kExitUsage);
  int port = 0;
  try {
    port = std::stoi(first.substr(colon + 1));
  } catch (const std::exception&) {
    port = 0;
  }
  if (port <= 0 || port > 65535) fail("--brokers: bad port in '" + first + "'", kExitUsage);
  return {first.substr(0, colon), static_cast<uint16_t>(port)};
}

// net::KafkaClient speaks PLAINTEXT only.
void require_plaintext(const ClientOptions& client) {
  for (const auto& property : client.properties) {
    auto assignment = parse_assignment(property);
    if (!assignment || assignment->first != "security.protocol") continue;
    std::string protocol = assignment->second;
    for (char& c : protocol) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (protocol != "plaintext") {
      fail("holdfast quota: security.protocol=" + assignment->second +
               " is not supported yet (quota speaks PLAINTEXT only; use a PLAINTEXT listener)",
           kExitUsage);
    }
  }
}

// The entity the options name: (type, name or null for the default).
std::vector<std::pair<std::string, std::optional<std::string>>> entity_of(const QuotaOptions& o,
                                                                          bool required) {
  std::vector<std::pair<std::string, std::optional<std::string>>> entity;
  bool default_user = false, default_client = false;
  for (const auto& d : o.defaults) {
    if (d == "user") default_user = true;
    if (d == "client-id") default_client = true;
  }
  if (o.user && default_user) fail("give --user or --default user, not both", kExitUsage);
  if (o.client_id && default_client) fail("give --client-id or --default client-id, not both", kExitUsage);
  if (o.user || default_user) entity.emplace_back("user", o.user);
  if (o.client_id || default_client) entity.emplace_back("client-id", o.client_id);
  if (required && entity.empty()) {
    fail("name an entity: --user, --client-id, or --default user|client-id", kExitUsage);
  }
  return entity;
}

std::string entity_text(const json& entity) {
  std::string out;
  for (const char* type : {"user", "client-id"}) {
    if (!entity.contains(type)) continue;
    const json& name = entity[type];
    if (!out.empty()) out += ",";
    out += std::string(type) + "=" + (name.is_null() ? std::string("<default>") : name.get<std::string>());
  }
  return out;
}

template <typename Response, typename Request>
Response call(const QuotaOptions& o, const Request& request, int16_t version) {
  require_plaintext(o.client);
  const net::Endpoint to = bootstrap(o.client);
  net::KafkaClient kafka;
  auto answer = kafka.call<Response>(to, request, version, std::chrono::milliseconds(o.client.timeout_ms));
  if (!answer) {
    fail(std::string(Request::kName) + " to " + to.to_string() + " failed: " + answer.error().message);
  }
  return std::move(*answer);
}

void alter(const QuotaOptions& o, const std::map<std::string, std::optional<double>>& ops,
           const std::string& verb) {
  AlterClientQuotasRequest request;
  auto& entry = request.entries.emplace_back();
  for (const auto& [type, name] : entity_of(o, true)) {
    auto& c = entry.entity.emplace_back();
    c.entity_type = type;
    c.entity_name = name;
  }
  json done = json::object();
  for (const auto& [key, value] : ops) {
    auto& op = entry.ops.emplace_back();
    op.key = key;
    op.value = value.value_or(0);
    op.remove = !value;
    done[key] = value ? json(*value) : json(nullptr);
  }
  auto response = call<AlterClientQuotasResponse>(o, request, 1);
  for (const auto& e : response.entries) {
    if (e.error_code != 0) {
      fail("quota " + verb + ": " + error_name(e.error_code) +
           (e.error_message ? ": " + *e.error_message : std::string()));
    }
  }
  json entity = json::object();
  for (const auto& [type, name] : entity_of(o, true)) entity[type] = name ? json(*name) : json(nullptr);
  if (o.format == "json") {
    std::cout << json{{"entity", entity}, {verb == "set" ? "set" : "removed", done}}.dump() << "\n";
    return;
  }
  std::cout << (verb == "set" ? "set " : "removed ") << done.dump() << " for " << entity_text(entity)
            << "\n";
}

int run_set(const QuotaOptions& o) {
  std::map<std::string, std::optional<double>> ops;
  if (o.producer_byte_rate) ops["producer_byte_rate"] = *o.producer_byte_rate;
  if (o.consumer_byte_rate) ops["consumer_byte_rate"] = *o.consumer_byte_rate;
  if (ops.empty()) fail("give --producer-byte-rate and/or --consumer-byte-rate", kExitUsage);
  alter(o, ops, "set");
  return 0;
}

int run_delete(const QuotaOptions& o) {
  std::map<std::string, std::optional<double>> ops;
  for (const auto& key : o.keys) ops[key] = std::nullopt;
  if (ops.empty()) ops = {{"producer_byte_rate", std::nullopt}, {"consumer_byte_rate", std::nullopt}};
  alter(o, ops, "delete");
  return 0;
}

int run_list(const QuotaOptions& o) {
  DescribeClientQuotasRequest request;
  for (const auto& [type, name] : entity_of(o, false)) {
    auto& c = request.components.emplace_back();
    c.entity_type = type;
    c.match_type = name ? 0 : 1;  // exact, default
    c.match = name;
  }
  auto response = call<DescribeClientQuotasResponse>(o, request, 1);
  if (response.error_code != 0) {
    fail("quota list: " + error_name(response.error_code) +
         (response.error_message ? ": " + *response.error_message : std::string()));
  }
  json out = json::array();
  if (response.entries) {
    for (const auto& e : *response.entries) {
      json entity = json::object();
      for (const auto& c : e.entity) entity[c.entity_type] = c.entity_name ? json(*c.entity_name) : json(nullptr);
      json values = json::object();
      for (const auto& v : e.values) values[v.key] = v.value;
      out.push_back({{"entity", entity}, {"quotas", values}});
    }
  }
  if (o.format == "json") {
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"ENTITY", "PRODUCER_BYTE_RATE", "CONSUMER_BYTE_RATE"}};
  auto value = [](const json& values, const char* key) {
    return values.contains(key) ? std::to_string(values[key].get<double>()).substr(
                                      0, std::to_string(values[key].get<double>()).find('.'))
                                : std::string("-");
  };
  for (const auto& e : out) {
    rows.push_back({entity_text(e["entity"]), value(e["quotas"], "producer_byte_rate"),
                    value(e["quotas"], "consumer_byte_rate")});
  }
  print_table(rows);
  return 0;
}

void add_entity_options(CLI::App* command, QuotaOptions& o) {
  command->add_option("--user", o.user, "the user (principal name, e.g. alice for User:alice)");
  command->add_option("--client-id", o.client_id, "the client.id");
  command->add_option("--default", o.defaults, "the default entity of a type: user or client-id")
      ->check(CLI::IsMember({"user", "client-id"}));
  command->add_option("--format", o.format, "text or json")->check(CLI::IsMember({"text", "json"}));
}

}  // namespace

void add_quota_command(CLI::App& app) {
  auto* quota = app.add_subcommand("quota", "Set, delete and list client byte-rate quotas");
  quota->require_subcommand(1);
  auto options = std::make_shared<QuotaOptions>();

  auto* set = quota->add_subcommand("set", "Set producer/consumer byte rates of an entity");
  add_client_options(set, options->client);
  add_entity_options(set, *options);
  set->add_option("--producer-byte-rate", options->producer_byte_rate,
                  "bytes per second the entity may produce");
  set->add_option("--consumer-byte-rate", options->consumer_byte_rate,
                  "bytes per second the entity may fetch");
  set->callback([options] { run_set(*options); });

  auto* del = quota->add_subcommand("delete", "Remove an entity's quotas");
  add_client_options(del, options->client);
  add_entity_options(del, *options);
  del->add_option("--key", options->keys,
                  "the quota to remove: producer_byte_rate or consumer_byte_rate (default: both)");
  del->callback([options] { run_delete(*options); });

  auto* list = quota->add_subcommand("list", "List the quotas set (filtered by the entity options)");
  add_client_options(list, options->client);
  add_entity_options(list, *options);
  list->callback([options] { run_list(*options); });
}

}  // namespace holdfast::cli
