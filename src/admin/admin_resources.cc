#include "admin/admin_resources.h"

#include <charconv>
#include <chrono>
#include <future>

#include "admin/message_search.h"
#include "coordinator/group_coordinator.h"
#include "replication/replica_manager.h"
#include "server/handlers/group_errors.h"
#include "server/topic_config.h"

namespace holdfast::admin {
namespace {

using server::Broker;
using server::KafkaError;

// Replies must not wait for ever on the coordinator (a commit waits for its fsync).
constexpr auto kCoordinatorWait = std::chrono::seconds(30);

std::optional<std::string> param(const Params& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) return std::nullopt;
  return it->second;
}

// An integer query parameter in [min, max]; nullopt when absent, an error
// naming the parameter when malformed.
std::optional<Reply> int_param(const Params& params, const std::string& name, int64_t min,
                               int64_t max, std::optional<int64_t>& out) {
  auto text = param(params, name);
  if (!text) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size()) {
    return error_reply(400, "INVALID_REQUEST",
                       "parameter '" + name + "': expected an integer, got '" + *text + "'", name);
  }
  if (v < min || v > max) {
    return error_reply(400, "INVALID_REQUEST",
                       "parameter '" + name + "': must be between " + std::to_string(min) +
                           " and " + std::to_string(max),
                       name);
  }
  out = v;
  return std::nullopt;
}

std::string upper(std::string s) {
  for (auto& c : s) c = char(std::toupper(uint8_t(c)));
  return s;
}

// into[field] = the bytes as text when valid UTF-8, else base64, with
// field_encoding saying which; null when absent.
void encoded(const std::optional<Bytes>& bytes, const char* field, Json& into) {
  if (!bytes) {
    into[field] = nullptr;
    return;
  }
  if (is_valid_utf8(bytes->view())) {
    into[field] = std::string(bytes->view());
    into[std::string(field) + "_encoding"] = "text";
  } else {
    into[field] = base64_encode(bytes->span());
    into[std::string(field) + "_encoding"] = "base64";
  }
}

Json partition_json(Broker& broker, replication::Partition& log) {
  Json p;
  p["partition"] = log.index();
  p["leader"] = broker.node_id();
  p["replicas"] = Json::array({broker.node_id()});
  p["isr"] = Json::array({broker.node_id()});
  p["log_start_offset"] = log.log_start_offset();
  p["high_watermark"] = log.high_watermark();
  p["log_end_offset"] = log.log_end_offset();
  p["size_bytes"] = log.size_bytes();
  p["segments"] = log.log().segment_count();
  p["offline"] = log.log().offline();
  return p;
}

// ConsumerProtocolAssignment (version, [topic, [partition]], user data):
// the partitions of a consumer's assignment; empty if it is not one.
Json decode_consumer_assignment(const Bytes& bytes) {
  Json out = Json::array();
  auto d = bytes.span();
  size_t pos = 0;
  auto need = [&](size_t n) { return d.size() - pos >= n; };
  if (!need(6)) return out;
  pos += 2;  // version
  int32_t topics = int32_t(load_be32(d.data() + pos));
  pos += 4;
  for (int32_t t = 0; t < topics && need(2); ++t) {
    int16_t len = int16_t(load_be16(d.data() + pos));
    pos += 2;
    if (len < 0 || !need(size_t(len) + 4)) break;
    std::string topic(reinterpret_cast<const char*>(d.data() + pos), size_t(len));
    pos += size_t(len);
    int32_t count = int32_t(load_be32(d.data() + pos));
    pos += 4;
    Json partitions = Json::array();
    for (int32_t i = 0; i < count && need(4); ++i) {
      partitions.push_back(int32_t(load_be32(d.data() + pos)));
      pos += 4;
    }
    out.push_back(Json{{"topic", topic}, {"partitions", partitions}});
  }
  return out;
}

Reply group_error_reply(coordinator::GroupErrc e, const std::string& group) {
  return kafka_error_reply(server::to_kafka_error(e),
                           "group '" + group + "': " + upper(coordinator::to_string(e)));
}

std::optional<Json> parse_body(const std::string& body, Reply& error) {
  try {
    Json j = Json::parse(body);
    if (!j.is_object()) {
      error = error_reply(400, "INVALID_REQUEST", "the request body must be a JSON object");
      return std::nullopt;
    }
    return j;
  } catch (const Json::parse_error& e) {
    error = error_reply(400, "INVALID_REQUEST",
                        std::string("the request body is not JSON: ") + e.what());
    return std::nullopt;
  }
}

bool looks_secret(const std::string& key) {
  for (const char* word : {"password", "secret", "token", "ssl.key", "sasl.jaas", "credential"}) {
    if (key.find(word) != std::string::npos) return true;
  }
  return false;
}

// max.connections.per.ip.overrides as it is written: "ip:count,...".
std::string connection_overrides(const server::BrokerConfig& c) {
  std::string out;
  for (const auto& [ip, count] : c.max_connections_per_ip_overrides) {
    out += (out.empty() ? "" : ",") + ip + ":" + std::to_string(count);
  }
  return out;
}

}  // namespace

Reply error_reply(int status, const std::string& error, const std::string& message,
                  const std::optional<std::string>& parameter) {
  Reply r;
  r.status = status;
  r.body = Json{{"error", error}, {"message", message}};
  if (parameter) r.body["parameter"] = *parameter;
  return r;
}

const char* kafka_error_name(KafkaError error) {
  switch (error) {
    case KafkaError::none:
      return "NONE";
    case KafkaError::offset_out_of_range:
      return "OFFSET_OUT_OF_RANGE";
    case KafkaError::unknown_topic_or_partition:
      return "UNKNOWN_TOPIC_OR_PARTITION";
    case KafkaError::coordinator_load_in_progress:
      return "COORDINATOR_LOAD_IN_PROGRESS";
    case KafkaError::coordinator_not_available:
      return "COORDINATOR_NOT_AVAILABLE";
    case KafkaError::not_coordinator:
      return "NOT_COORDINATOR";
    case KafkaError::invalid_topic_exception:
      return "INVALID_TOPIC_EXCEPTION";
    case KafkaError::invalid_group_id:
      return "INVALID_GROUP_ID";
    case KafkaError::unknown_member_id:
      return "UNKNOWN_MEMBER_ID";
    case KafkaError::illegal_generation:
      return "ILLEGAL_GENERATION";
    case KafkaError::rebalance_in_progress:
      return "REBALANCE_IN_PROGRESS";
    case KafkaError::topic_already_exists:
      return "TOPIC_ALREADY_EXISTS";
    case KafkaError::invalid_partitions:
      return "INVALID_PARTITIONS";
    case KafkaError::invalid_replication_factor:
      return "INVALID_REPLICATION_FACTOR";
    case KafkaError::invalid_config:
      return "INVALID_CONFIG";
    case KafkaError::invalid_request:
      return "INVALID_REQUEST";
    case KafkaError::policy_violation:
      return "POLICY_VIOLATION";
    case KafkaError::kafka_storage_error:
      return "KAFKA_STORAGE_ERROR";
    case KafkaError::non_empty_group:
      return "NON_EMPTY_GROUP";
    case KafkaError::group_id_not_found:
      return "GROUP_ID_NOT_FOUND";
    case KafkaError::fenced_instance_id:
      return "FENCED_INSTANCE_ID";
    case KafkaError::offset_metadata_too_large:
      return "OFFSET_METADATA_TOO_LARGE";
    case KafkaError::unstable_offset_commit:
      return "UNSTABLE_OFFSET_COMMIT";
    case KafkaError::group_subscribed_to_topic:
      return "GROUP_SUBSCRIBED_TO_TOPIC";
    default:
      return "UNKNOWN_SERVER_ERROR";
  }
}

Reply kafka_error_reply(KafkaError error, const std::string& message) {
  int status = 500;
  switch (error) {
    case KafkaError::unknown_topic_or_partition:
    case KafkaError::group_id_not_found:
      status = 404;
      break;
    case KafkaError::topic_already_exists:
    case KafkaError::non_empty_group:
    case KafkaError::rebalance_in_progress:
    case KafkaError::unknown_member_id:
    case KafkaError::illegal_generation:
    case KafkaError::fenced_instance_id:
    case KafkaError::group_subscribed_to_topic:
      status = 409;
      break;
    case KafkaError::invalid_topic_exception:
    case KafkaError::invalid_partitions:
    case KafkaError::invalid_replication_factor:
    case KafkaError::invalid_config:
    case KafkaError::invalid_request:
    case KafkaError::invalid_group_id:
    case KafkaError::offset_out_of_range:
    case KafkaError::offset_metadata_too_large:
    case KafkaError::policy_violation:
      status = 400;
      break;
    case KafkaError::coordinator_load_in_progress:
    case KafkaError::coordinator_not_available:
    case KafkaError::not_coordinator:
    case KafkaError::unstable_offset_commit:
      status = 503;
      break;
    default:
      break;
  }
  return error_reply(status, kafka_error_name(error), message);
}

Reply get_broker(Broker& broker, const AdminSettings& settings) {
  const auto& c = broker.config();
  auto image = broker.topics().image();
  int64_t partitions = 0;
  for (const auto& [name, info] : image->topics) partitions += info.partition_count;
  Json j;
  j["node_id"] = broker.node_id();
  j["cluster_id"] = broker.cluster_id();
  j["state"] = broker.stopping() ? "stopping" : "running";
  j["kafka_listener"] = c.listen_host + ":" + std::to_string(broker.bound_port());
  j["advertised_listener"] =
      broker.advertised_host() + ":" + std::to_string(broker.advertised_port());
  j["admin_listener"] = settings.admin_address;
  j["data_dir"] = c.data_dir;
  j["flush_policy"] = c.effective_flush_policy().to_string();
  j["topics"] = image->topics.size();
  j["partitions"] = partitions;
  j["brokers"] =
      Json::array({Json{{"node_id", broker.node_id()},
                        {"host", broker.advertised_host()},
                        {"port", broker.advertised_port()}}});
  j["under_replicated_partitions"] = 0;  // single node: every ISR is this node
  auto coordinator = broker.groups().load_counts();
  j["coordinator"] = Json{{"loading_partitions", coordinator.loading},
                          {"active_partitions", coordinator.active},
                          {"failed_partitions", coordinator.failed}};
  return Reply{200, j};
}

Reply get_config(Broker& broker) {
  const auto& c = broker.config();
  std::vector<std::pair<std::string, std::string>> settings{
      {"admin.listener", c.admin_listener},
      {"admin.search.max.scan.bytes", std::to_string(c.admin_search_max_scan_bytes)},
      {"admin.search.max.scan.ms", std::to_string(c.admin_search_max_scan_ms)},
      {"advertised.listeners",
       c.effective_advertise_host() + ":" + std::to_string(c.effective_advertise_port())},
      {"auto.create.topics.enable", c.auto_create_topics ? "true" : "false"},
      {"default.replication.factor", std::to_string(c.effective_default_replication_factor())},
      {"fetch.max.bytes", std::to_string(c.fetch_max_bytes)},
      {"fetch.max.wait.ms.cap", std::to_string(c.fetch_max_wait_ms_cap)},
      {"flush.policy", c.effective_flush_policy().to_string()},
      {"group.initial.rebalance.delay.ms", std::to_string(c.group_initial_rebalance_delay_ms)},
      {"group.max.session.timeout.ms", std::to_string(c.group_max_session_timeout_ms)},
      {"group.min.session.timeout.ms", std::to_string(c.group_min_session_timeout_ms)},
      {"listeners", c.listen_host + ":" + std::to_string(c.listen_port)},
      {"connections.max.idle.ms", std::to_string(c.connections_max_idle_ms)},
      {"log.cleaner.dedupe.buffer.size", std::to_string(c.log_cleaner_dedupe_buffer_size)},
      {"log.dirs", c.data_dir},
      {"log.index.interval.bytes", std::to_string(c.log_index_interval_bytes)},
      {"log.level", c.log_level},
      {"log.message.timestamp.type", c.log_message_timestamp_type},
      {"log.retention.bytes", std::to_string(c.log_retention_bytes)},
      {"log.retention.check.interval.ms", std::to_string(c.log_retention_check_interval_ms)},
      {"log.retention.ms", std::to_string(c.log_retention_ms)},
      {"log.roll.ms", std::to_string(c.log_roll_ms)},
      {"log.segment.bytes", std::to_string(c.log_segment_bytes)},
      {"max.connections", std::to_string(c.max_connections)},
      {"max.connections.per.ip", std::to_string(c.max_connections_per_ip)},
      {"max.connections.per.ip.overrides", connection_overrides(c)},
      {"message.max.bytes", std::to_string(c.message_max_bytes)},
      {"node.id", std::to_string(c.node_id)},
      {"num.network.threads", std::to_string(c.num_network_threads)},
      {"num.partitions", std::to_string(c.num_partitions)},
      {"offset.metadata.max.bytes", std::to_string(c.offset_metadata_max_bytes)},
      {"offsets.retention.check.interval.ms",
       std::to_string(c.offsets_retention_check_interval_ms)},
      {"offsets.retention.ms", std::to_string(c.offsets_retention_ms)},
      {"offsets.topic.num.partitions", std::to_string(c.offsets_topic_num_partitions)},
      {"offsets.topic.segment.bytes", std::to_string(c.offsets_topic_segment_bytes)},
      {"producer.id.expiration.check.interval.ms",
       std::to_string(c.producer_id_expiration_check_interval_ms)},
      {"producer.id.expiration.ms", std::to_string(c.producer_id_expiration_ms)},
      {"queued.max.request.bytes", std::to_string(c.queued_max_request_bytes)},
      {"queued.max.requests", std::to_string(c.queued_max_requests_per_connection)},
      {"socket.request.max.bytes", std::to_string(c.socket_request_max_bytes)},
  };
  Json out = Json::object();
  for (const auto& [key, value] : settings) {
    // Secrets (passwords, keys, tokens) are never shown, only that they are set.
    out[key] = looks_secret(key) ? (value.empty() ? "" : "[redacted]") : value;
  }
  return Reply{200, Json{{"settings", out}}};
}

Reply list_topics(Broker& broker) {
  auto image = broker.topics().image();
  Json topics = Json::array();
  for (const auto& [name, info] : image->topics) {
    int64_t size = 0;
    int64_t messages = 0;
    for (int32_t p = 0; p < info.partition_count; ++p) {
      if (auto log = broker.replicas().get(name, p)) {
        size += log->size_bytes();
        messages += log->high_watermark() - log->log_start_offset();
      }
    }
    topics.push_back(Json{{"name", name},
                          {"internal", server::is_internal_topic(name)},
                          {"partitions", info.partition_count},
                          {"replication_factor", 1},
                          {"size_bytes", size},
                          {"messages", messages}});
  }
  return Reply{200, Json{{"topics", topics}}};
}

Reply get_topic(Broker& broker, const std::string& topic) {
  auto image = broker.topics().image();
  const auto* info = image->find_topic(topic);
  if (!info) {
    return kafka_error_reply(KafkaError::unknown_topic_or_partition,
                             "topic '" + topic + "' does not exist");
  }
  Json partitions = Json::array();
  for (int32_t p = 0; p < info->partition_count; ++p) {
    if (auto log = broker.replicas().get(topic, p))
      partitions.push_back(partition_json(broker, *log));
  }
  Json configs = Json::object();
  for (const auto& e : server::describe_topic_configs(broker.config(), info->configs)) {
    configs[e.name] =
        Json{{"value", e.sensitive ? "[redacted]" : e.value}, {"default", e.is_default}};
  }
  Json j;
  j["name"] = topic;
  j["internal"] = server::is_internal_topic(topic);
  j["replication_factor"] = 1;
  j["partitions"] = partitions;
  j["configs"] = configs;
  return Reply{200, j};
}

Reply create_topic(Broker& broker, const std::string& body) {
  Reply error;
  auto j = parse_body(body, error);
  if (!j) return error;
  if (!j->contains("name") || !(*j)["name"].is_string()) {
    return error_reply(400, "INVALID_REQUEST", "field 'name': a topic name (string) is required",
                       "name");
  }
  const std::string name = (*j)["name"];
  int32_t partitions = -1;
  int16_t replication = -1;
  metadata::ConfigMap configs;
  if (j->contains("partitions")) {
    if (!(*j)["partitions"].is_number_integer()) {
      return error_reply(400, "INVALID_REQUEST", "field 'partitions': expected an integer",
                         "partitions");
    }
    partitions = (*j)["partitions"].get<int32_t>();
  }
  if (j->contains("replication_factor")) {
    if (!(*j)["replication_factor"].is_number_integer()) {
      return error_reply(400, "INVALID_REQUEST", "field 'replication_factor': expected an integer",
                         "replication_factor");
    }
    replication = (*j)["replication_factor"].get<int16_t>();
  }
  if (j->contains("configs")) {
    const auto& c = (*j)["configs"];
    if (!c.is_object()) {
      return error_reply(400, "INVALID_REQUEST", "field 'configs': expected an object", "configs");
    }
    for (const auto& [key, value] : c.items()) {
      if (value.is_string()) {
        configs[key] = value.get<std::string>();
      } else if (value.is_number_integer() || value.is_boolean()) {
        configs[key] = value.dump();
      } else {
        return error_reply(400, "INVALID_REQUEST",
                           "field 'configs." + key + "': expected a string or number",
                           "configs." + key);
      }
    }
  }
  // The CreateTopics handler's path: same validation, same defaults.
  auto outcome = broker.topics().create_topic(name, partitions, replication, configs, false);
  if (!outcome.ok()) return kafka_error_reply(outcome.error, outcome.message);
  Reply r = get_topic(broker, name);
  if (r.status == 200) r.status = 201;
  return r;
}

Reply delete_topic(Broker& broker, const std::string& topic) {
  auto outcome = broker.topics().delete_topic(topic);
  if (!outcome.ok()) return kafka_error_reply(outcome.error, outcome.message);
  return Reply{200, Json{{"deleted", topic}}};
}

namespace {

// Committed offsets of `group` with the lag of each (high watermark minus
// committed); total_lag summed over them.
Json offsets_json(Broker& broker, const coordinator::OffsetFetchResult& fetched,
                  int64_t& total_lag) {
  Json offsets = Json::array();
  total_lag = 0;
  for (const auto& o : fetched.offsets) {
    if (o.error != coordinator::GroupErrc::none || o.offset < 0) continue;
    Json e;
    e["topic"] = o.tp.topic;
    e["partition"] = o.tp.partition;
    e["committed_offset"] = o.offset;
    e["metadata"] = o.metadata.value_or("");
    if (auto log = broker.replicas().get(o.tp.topic, o.tp.partition)) {
      const int64_t hw = log->high_watermark();
      const int64_t lag = std::max<int64_t>(0, hw - o.offset);
      e["high_watermark"] = hw;
      e["lag"] = lag;
      total_lag += lag;
    } else {
      e["high_watermark"] = nullptr;
      e["lag"] = nullptr;
    }
    offsets.push_back(e);
  }
  return offsets;
}

}  // namespace

Reply list_groups(Broker& broker) {
  auto groups = broker.groups().list_groups({});
  if (!groups) return group_error_reply(groups.code(), "*");
  Json out = Json::array();
  for (const auto& g : *groups) {
    auto description = broker.groups().describe(g.group_id);
    int64_t total_lag = 0;
    auto fetched = broker.groups().fetch_offsets(g.group_id, std::nullopt, false);
    offsets_json(broker, fetched, total_lag);
    out.push_back(Json{{"group_id", g.group_id},
                       {"state", g.state},
                       {"protocol_type", g.protocol_type},
                       {"members", description.members.size()},
                       {"total_lag", total_lag}});
  }
  return Reply{200, Json{{"groups", out}}};
}

Reply get_group(Broker& broker, const std::string& group) {
  auto d = broker.groups().describe(group);
  if (d.error != coordinator::GroupErrc::none) return group_error_reply(d.error, group);
  auto fetched = broker.groups().fetch_offsets(group, std::nullopt, false);
  if (fetched.error != coordinator::GroupErrc::none) return group_error_reply(fetched.error, group);
  if (d.state == "Dead" && fetched.offsets.empty()) {
    return kafka_error_reply(KafkaError::group_id_not_found,
                             "group '" + group + "' does not exist");
  }
  Json members = Json::array();
  for (const auto& m : d.members) {
    Json member;
    member["member_id"] = m.member_id;
    member["group_instance_id"] = m.group_instance_id ? Json(*m.group_instance_id) : Json(nullptr);
    member["client_id"] = m.client_id;
    member["client_host"] = m.client_host;
    member["assignment"] =
        d.protocol_type == "consumer" ? decode_consumer_assignment(m.assignment) : Json::array();
    members.push_back(member);
  }
  int64_t total_lag = 0;
  Json offsets = offsets_json(broker, fetched, total_lag);
  Json j;
  j["group_id"] = group;
  j["state"] = d.state;
  j["protocol_type"] = d.protocol_type;
  j["protocol"] = d.protocol_name;
  j["members"] = members;
  j["offsets"] = offsets;
  j["total_lag"] = total_lag;
  return Reply{200, j};
}

Reply reset_group_offsets(Broker& broker, const std::string& group, const std::string& body) {
  Reply error;
  auto j = parse_body(body, error);
  if (!j) return error;
  if (!j->contains("topic") || !(*j)["topic"].is_string()) {
    return error_reply(400, "INVALID_REQUEST", "field 'topic': a topic name (string) is required",
                       "topic");
  }
  const std::string topic = (*j)["topic"];
  const std::string to = j->value("to", std::string());
  if (to != "earliest" && to != "latest" && to != "offset" && to != "timestamp") {
    return error_reply(400, "INVALID_REQUEST",
                       "field 'to': expected earliest, latest, offset or timestamp", "to");
  }
  std::optional<int64_t> target;
  if (to == "offset" || to == "timestamp") {
    if (!j->contains(to) || !(*j)[to].is_number_integer()) {
      return error_reply(400, "INVALID_REQUEST", "field '" + to + "': expected an integer", to);
    }
    target = (*j)[to].get<int64_t>();
  }
  auto image = broker.topics().image();
  const auto* info = image->find_topic(topic);
  if (!info) {
    return kafka_error_reply(KafkaError::unknown_topic_or_partition,
                             "topic '" + topic + "' does not exist");
  }
  std::vector<int32_t> partitions;
  if (j->contains("partitions")) {
    const auto& list = (*j)["partitions"];
    if (!list.is_array()) {
      return error_reply(400, "INVALID_REQUEST", "field 'partitions': expected an array",
                         "partitions");
    }
    for (const auto& p : list) {
      if (!p.is_number_integer() || p.get<int64_t>() < 0 ||
          p.get<int64_t>() >= info->partition_count) {
        return kafka_error_reply(
            KafkaError::unknown_topic_or_partition,
            "field 'partitions': " + p.dump() + " is not a partition of '" + topic + "'");
      }
      partitions.push_back(p.get<int32_t>());
    }
  } else {
    for (int32_t p = 0; p < info->partition_count; ++p) partitions.push_back(p);
  }
  // Kafka's rule: offsets are reset only while the group has no members.
  auto d = broker.groups().describe(group);
  if (d.error != coordinator::GroupErrc::none) return group_error_reply(d.error, group);
  if (!d.members.empty()) {
    return kafka_error_reply(KafkaError::non_empty_group,
                             "group '" + group + "' has " + std::to_string(d.members.size()) +
                                 " active member(s); stop its consumers before resetting offsets");
  }
  coordinator::CommitParams commit;
  commit.group_id = group;
  commit.generation = -1;
  for (int32_t p : partitions) {
    auto log = broker.replicas().get(topic, p);
    if (!log) {
      return kafka_error_reply(
          KafkaError::unknown_topic_or_partition,
          "partition " + std::to_string(p) + " of '" + topic + "' is not here");
    }
    int64_t offset = 0;
    if (to == "earliest") {
      offset = log->log_start_offset();
    } else if (to == "latest") {
      offset = log->high_watermark();
    } else if (to == "timestamp") {
      auto found = log->offset_for_timestamp(*target);
      offset = found ? found->offset : log->high_watermark();
    } else {
      offset = *target;
      if (offset < log->log_start_offset() || offset > log->high_watermark()) {
        return kafka_error_reply(KafkaError::offset_out_of_range,
                                 "field 'offset': " + std::to_string(offset) +
                                     " is outside partition " + std::to_string(p) + "'s range [" +
                                     std::to_string(log->log_start_offset()) + ", " +
                                     std::to_string(log->high_watermark()) + "]");
      }
    }
    coordinator::OffsetCommitEntry entry;
    entry.tp = {topic, p};
    entry.offset = offset;
    commit.offsets.push_back(entry);
  }
  auto done = std::make_shared<std::promise<coordinator::CommitResult>>();
  auto future = done->get_future();
  broker.groups().commit(commit,
                         [done](coordinator::CommitResult r) { done->set_value(std::move(r)); });
  if (future.wait_for(kCoordinatorWait) != std::future_status::ready) {
    return error_reply(503, "REQUEST_TIMED_OUT", "the offset commit did not complete in time");
  }
  auto result = future.get();
  for (auto e : result.errors) {
    if (e != coordinator::GroupErrc::none) return group_error_reply(e, group);
  }
  Json offsets = Json::array();
  for (const auto& o : commit.offsets) {
    offsets.push_back(
        Json{{"topic", o.tp.topic}, {"partition", o.tp.partition}, {"committed_offset", o.offset}});
  }
  return Reply{200, Json{{"group_id", group}, {"offsets", offsets}}};
}

Reply search_topic_messages(Broker& broker, const std::string& topic, const Params& params) {
  auto image = broker.topics().image();
  const auto* info = image->find_topic(topic);
  if (!info) {
    return kafka_error_reply(KafkaError::unknown_topic_or_partition,
                             "topic '" + topic + "' does not exist");
  }
  const auto& config = broker.config();
  SearchQuery query;
  std::optional<int64_t> partition, offset, timestamp, limit, max_scan_bytes, max_scan_ms;
  if (auto e = int_param(params, "partition", 0, INT32_MAX, partition)) return *e;
  if (partition && *partition >= info->partition_count) {
    return error_reply(404, kafka_error_name(KafkaError::unknown_topic_or_partition),
                       "parameter 'partition': " + std::to_string(*partition) +
                           " is not a partition of '" + topic + "'",
                       "partition");
  }
  if (auto e = int_param(params, "offset", 0, INT64_MAX, offset)) return *e;
  if (auto e = int_param(params, "timestamp", 0, INT64_MAX, timestamp)) return *e;
  if (auto e = int_param(params, "limit", 1, 1000, limit)) return *e;
  if (auto e = int_param(params, "max_scan_bytes", 1, config.admin_search_max_scan_bytes,
                         max_scan_bytes)) {
    return *e;
  }
  if (auto e = int_param(params, "max_scan_ms", 1, config.admin_search_max_scan_ms, max_scan_ms)) {
    return *e;
  }
  query.offset = offset;
  query.timestamp = timestamp;
  query.limit = size_t(limit.value_or(20));
  query.key = param(params, "key");
  query.value = param(params, "value");
  query.header = param(params, "header");
  if (query.header && query.header->empty()) {
    return error_reply(400, "INVALID_REQUEST", "parameter 'header': expected name or name=value",
                       "header");
  }
  SearchBudget budget;
  budget.max_scan_bytes = uint64_t(max_scan_bytes.value_or(config.admin_search_max_scan_bytes));
  budget.max_scan_time =
      std::chrono::milliseconds(max_scan_ms.value_or(config.admin_search_max_scan_ms));

  std::vector<std::shared_ptr<replication::Partition>> replicas;  // keeps the logs alive
  std::vector<storage::PartitionLog*> logs;
  for (int32_t p = 0; p < info->partition_count; ++p) {
    if (partition && p != *partition) continue;
    if (auto replica = broker.replicas().get(topic, p)) {
      logs.push_back(&replica->log());
      replicas.push_back(std::move(replica));
    }
  }
  auto result = search_messages(logs, query, budget);
  Json messages = Json::array();
  for (const auto& found : result.records) {
    const auto& r = found.record;
    Json m;
    m["partition"] = found.partition;
    m["offset"] = r.offset;
    m["timestamp"] = r.timestamp;
    encoded(r.key, "key", m);
    Json headers = Json::array();
    for (const auto& h : r.headers) {
      Json header{{"key", h.key}};
      encoded(h.value, "value", header);
      headers.push_back(header);
    }
    m["headers"] = headers;
    encoded(r.value, "value", m);
    messages.push_back(m);
  }
  Json positions = Json::array();
  for (const auto& s : result.partitions) {
    positions.push_back(Json{{"partition", s.partition},
                             {"start_offset", s.start_offset},
                             {"next_offset", s.next_offset},
                             {"high_watermark", s.high_watermark},
                             {"reached_end", s.reached_end}});
  }
  Json j;
  j["topic"] = topic;
  j["messages"] = messages;
  j["scanned_bytes"] = result.scanned_bytes;
  j["budget_exhausted"] = result.budget_exhausted;
  // One partition: where to continue. Several: see each partition's next_offset.
  if (result.partitions.size() == 1) {
    j["next_offset"] = result.partitions[0].next_offset;
  } else {
    j["next_offset"] = nullptr;
  }
  j["partitions"] = positions;
  if (!result.error.empty()) j["error"] = result.error;
  return Reply{200, j};
}

}  // namespace holdfast::admin
