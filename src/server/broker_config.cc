#include "server/broker_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

namespace holdfast::server {
namespace {

Error<ConfigErrc> invalid(const std::string& key, const std::string& value, const std::string& why) {
  return make_error(ConfigErrc::invalid_value,
                    "invalid value '" + value + "' for setting '" + key + "': " + why);
}

template <typename Int>
Result<Int, ConfigErrc> parse_int(const std::string& key, const std::string& value, Int min,
                                  Int max) {
  Int parsed{};
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (ec != std::errc() || end != value.data() + value.size() || value.empty()) {
    return invalid(key, value, "expected an integer");
  }
  if (parsed < min || parsed > max) {
    return invalid(key, value,
                   "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return parsed;
}

Result<bool, ConfigErrc> parse_bool(const std::string& key, const std::string& value) {
  if (value == "true") return true;
  if (value == "false") return false;
  return invalid(key, value, "expected true or false");
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

using Setter = std::function<Result<void, ConfigErrc>(BrokerConfig&, const std::string& key,
                                                      const std::string& value)>;

Setter string_setter(std::string BrokerConfig::*field) {
  return [=](BrokerConfig& c, const std::string&, const std::string& value)
             -> Result<void, ConfigErrc> {
    c.*field = value;
    return {};
  };
}

template <typename Int, typename Field>
Setter int_setter(Field BrokerConfig::*field, Int min, Int max, int64_t scale = 1) {
  return [=](BrokerConfig& c, const std::string& key, const std::string& value)
             -> Result<void, ConfigErrc> {
    auto parsed = parse_int<Int>(key, value, min, max);
    if (!parsed) return parsed.error();
    c.*field = static_cast<Field>(*parsed * scale);
    return {};
  };
}

// A setting that only matters in a cluster: remembered as given, so a single
// node can say it has no effect.
Setter cluster_setting(Setter setter) {
  return [setter](BrokerConfig& c, const std::string& key,
                  const std::string& value) -> Result<void, ConfigErrc> {
    auto applied = setter(c, key, value);
    if (applied) c.cluster_settings_given.push_back(key);
    return applied;
  };
}

Setter optional_int16(std::optional<int16_t> BrokerConfig::*field) {
  return [field](BrokerConfig& c, const std::string& key,
                 const std::string& value) -> Result<void, ConfigErrc> {
    auto parsed = parse_int<int16_t>(key, value, 1, INT16_MAX);
    if (!parsed) return parsed.error();
    c.*field = *parsed;
    return {};
  };
}

struct Listeners {
  std::optional<std::pair<std::string, uint16_t>> client;      // the first client listener
  std::string client_name = "PLAINTEXT";
  bool client_named = false;  // the first client entry had NAME://
  std::vector<ListenerAddress> extra_clients;                  // the other client listeners
  std::optional<std::pair<std::string, uint16_t>> controller;  // CONTROLLER
};

// A comma-separated list of [NAME://]host:port. An empty host is the
// wildcard 0.0.0.0 where that makes sense (listeners), an error otherwise.
Result<Listeners, ConfigErrc> parse_listeners(const std::string& key, const std::string& value,
                                              bool wildcard_host) {
  Listeners out;
  std::stringstream list(value);
  std::string item;
  while (std::getline(list, item, ',')) {
    item = trim(item);
    std::string name = "PLAINTEXT";
    bool named = false;
    if (auto p = item.find("://"); p != std::string::npos) {
      name = item.substr(0, p);
      item = item.substr(p + 3);
      named = true;
    }
    if (name.empty()) return invalid(key, value, "a listener name is empty");
    auto hp = parse_host_port(item);
    if (!hp || (hp->first.empty() && !wildcard_host)) return invalid(key, value, "expected host:port");
    if (hp->first.empty()) hp->first = "0.0.0.0";
    const bool repeated =
        (name == "CONTROLLER" && out.controller) || (out.client && out.client_name == name) ||
        std::any_of(out.extra_clients.begin(), out.extra_clients.end(),
                    [&](const ListenerAddress& l) { return l.name == name; });
    if (repeated) return invalid(key, value, "the " + name + " listener is given twice");
    if (name == "CONTROLLER") {
      out.controller = *hp;
    } else if (!out.client) {
      out.client = *hp;
      out.client_name = name;
      out.client_named = named;
    } else {
      out.extra_clients.push_back(ListenerAddress{name, hp->first, hp->second});
    }
  }
  if (!out.client && !out.controller) return invalid(key, value, "expected host:port");
  return out;
}

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> table = [] {
    std::map<std::string, Setter> t;
    constexpr int64_t kMax = INT64_MAX / 3600000;
    t["node.id"] = int_setter<int32_t>(&BrokerConfig::node_id, 0, INT32_MAX);
    t["broker.id"] = t["node.id"];
    t["log.dirs"] = [](BrokerConfig& c, const std::string& key,
                       const std::string& value) -> Result<void, ConfigErrc> {
      if (value.empty()) return invalid(key, value, "must not be empty");
      if (value.find(',') != std::string::npos) {
        return invalid(key, value, "only one log directory is supported");
      }
      c.data_dir = value;
      return {};
    };
    t["log.dir"] = t["log.dirs"];
    t["listeners"] = [](BrokerConfig& c, const std::string& key,
                        const std::string& value) -> Result<void, ConfigErrc> {
      // "host:port", or Kafka's list "PLAINTEXT://host:port,CONTROLLER://host:port":
      // one client listener (PLAINTEXT, or unnamed) and optionally the
      // CONTROLLER listener for Raft traffic. The setting replaces both.
      auto parsed = parse_listeners(key, value, /*wildcard_host=*/true);
      if (!parsed) return parsed.error();
      if (!parsed->client) return invalid(key, value, "needs a client listener (PLAINTEXT, SASL_PLAINTEXT, ...)");
      c.listen_host = parsed->client->first;
      c.listen_port = parsed->client->second;
      c.listen_name = parsed->client_name;
      c.extra_client_listeners = parsed->extra_clients;
      c.controller_listen_host = parsed->controller ? parsed->controller->first : "";
      c.controller_listen_port = parsed->controller ? parsed->controller->second : 0;
      return {};
    };
    t["advertised.listeners"] = [](BrokerConfig& c, const std::string& key,
                                   const std::string& value) -> Result<void, ConfigErrc> {
      auto parsed = parse_listeners(key, value, /*wildcard_host=*/false);
      if (!parsed) return parsed.error();
      // Every client entry, matched to its listener by name (Kafka's rule);
      // an unnamed first entry (--advertise HOST:PORT) is the first listener's.
      c.advertised_client_listeners.clear();
      if (parsed->client) {
        c.advertised_client_listeners.push_back(
            ListenerAddress{parsed->client_named ? parsed->client_name : "",
                            parsed->client->first, parsed->client->second});
      }
      c.advertised_client_listeners.insert(c.advertised_client_listeners.end(),
                                           parsed->extra_clients.begin(),
                                           parsed->extra_clients.end());
      c.controller_advertise_host = parsed->controller ? parsed->controller->first : "";
      c.controller_advertise_port = parsed->controller ? parsed->controller->second : 0;
      return {};
    };
    t["listener.security.protocol.map"] = [](BrokerConfig& c, const std::string& key,
                                            const std::string& value) -> Result<void, ConfigErrc> {
      std::map<std::string, std::string> map;
      std::stringstream list(value);
      std::string item;
      while (std::getline(list, item, ',')) {
        item = trim(item);
        if (item.empty()) continue;
        auto colon = item.find(':');
        if (colon == std::string::npos || colon == 0) {
          return invalid(key, value, "expected NAME:PROTOCOL,...");
        }
        std::string protocol = trim(item.substr(colon + 1));
        if (!parse_security_protocol(protocol)) {
          return invalid(key, value, "unknown security protocol '" + protocol +
                                         "' (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)");
        }
        map[trim(item.substr(0, colon))] = protocol;
      }
      c.listener_security_protocol_map = std::move(map);
      return {};
    };
    t["sasl.enabled.mechanisms"] = [](BrokerConfig& c, const std::string& key,
                                      const std::string& value) -> Result<void, ConfigErrc> {
      std::vector<std::string> mechanisms;
      std::stringstream list(value);
      std::string item;
      while (std::getline(list, item, ',')) {
        item = trim(item);
        if (item.empty()) continue;
        if (item != "PLAIN" && item != "SCRAM-SHA-256" && item != "SCRAM-SHA-512") {
          return invalid(key, value, "mechanism '" + item +
                                         "' is not built (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)");
        }
        if (std::find(mechanisms.begin(), mechanisms.end(), item) == mechanisms.end()) {
          mechanisms.push_back(item);
        }
      }
      if (mechanisms.empty()) return invalid(key, value, "needs at least one mechanism");
      c.sasl_enabled_mechanisms = std::move(mechanisms);
      return {};
    };
    t["ssl.certificate.location"] = string_setter(&BrokerConfig::ssl_certificate_location);
    t["ssl.key.location"] = string_setter(&BrokerConfig::ssl_key_location);
    t["ssl.key.password"] = string_setter(&BrokerConfig::ssl_key_password);
    t["ssl.ca.location"] = string_setter(&BrokerConfig::ssl_ca_location);
    t["sasl.scram.bootstrap.file"] = string_setter(&BrokerConfig::sasl_scram_bootstrap_file);
    t["ssl.client.auth"] = [](BrokerConfig& c, const std::string& key,
                              const std::string& value) -> Result<void, ConfigErrc> {
      if (value != "none" && value != "requested" && value != "required") {
        return invalid(key, value, "expected none, requested or required");
      }
      c.ssl_client_auth = value;
      return {};
    };
    t["inter.broker.listener.name"] = cluster_setting(string_setter(&BrokerConfig::inter_broker_listener_name));
    t["security.inter.broker.protocol"] = cluster_setting(
        [](BrokerConfig& c, const std::string& key, const std::string& value)
            -> Result<void, ConfigErrc> {
          if (!parse_security_protocol(value)) {
            return invalid(key, value, "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL");
          }
          c.security_inter_broker_protocol = value;
          return {};
        });
    t["sasl.mechanism.inter.broker.protocol"] = cluster_setting(
        [](BrokerConfig& c, const std::string& key, const std::string& value)
            -> Result<void, ConfigErrc> {
          if (value != "PLAIN" && value != "SCRAM-SHA-256" && value != "SCRAM-SHA-512") {
            return invalid(key, value, "mechanism is not built (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)");
          }
          c.sasl_mechanism_inter_broker_protocol = value;
          return {};
        });
    t["process.roles"] = [](BrokerConfig& c, const std::string& key,
                            const std::string& value) -> Result<void, ConfigErrc> {
      bool broker = false, controller = false;
      std::stringstream list(value);
      std::string role;
      while (std::getline(list, role, ',')) {
        role = trim(role);
        bool& seen = role == "broker" ? broker : controller;
        if ((role != "broker" && role != "controller") || seen) {
          return invalid(key, value, "expected broker,controller or broker");
        }
        seen = true;
      }
      if (!broker) {
        return invalid(key, value,
                       "every Holdfast node is a broker: expected broker,controller or broker");
      }
      c.controller_role = controller;
      c.process_roles_explicit = true;
      c.cluster_settings_given.push_back(key);
      return {};
    };
    t["controller.quorum.voters"] = [](BrokerConfig& c, const std::string& key,
                                       const std::string& value) -> Result<void, ConfigErrc> {
      auto voters = metadata::parse_quorum_voters(value);
      if (!voters) return make_error(ConfigErrc::invalid_value, voters.error().message);
      c.controller_quorum_voters = std::move(*voters);
      c.cluster_settings_given.push_back(key);
      return {};
    };
    t["broker.rack"] = [](BrokerConfig& c, const std::string& key,
                          const std::string& value) -> Result<void, ConfigErrc> {
      c.broker_rack = value;
      c.cluster_settings_given.push_back(key);
      return {};
    };
    t["cluster.id"] = [](BrokerConfig& c, const std::string& key,
                         const std::string& value) -> Result<void, ConfigErrc> {
      if (value.empty()) return invalid(key, value, "expected a non-empty cluster id");
      c.cluster_id = value;
      return {};
    };
    t["holdfast.cluster.experimental"] = [](BrokerConfig& c, const std::string& key,
                                            const std::string& value) -> Result<void, ConfigErrc> {
      auto b = parse_bool(key, value);
      if (!b) return b.error();
      c.cluster_experimental = *b;
      return {};
    };
    // Holdfast-specific (KRaft's metadata.log.max.record.bytes.between.snapshots
    // counts bytes, not records, and its snapshots are not Raft's): a Raft
    // snapshot of the metadata image every N applied records, keeping M
    // records of log after it.
    t["holdfast.metadata.snapshot.threshold.records"] = cluster_setting(
        int_setter<int64_t>(&BrokerConfig::metadata_snapshot_threshold_records, 1, UINT32_MAX));
    t["holdfast.metadata.snapshot.trailing.records"] = cluster_setting(
        int_setter<int64_t>(&BrokerConfig::metadata_snapshot_trailing_records, 1, UINT32_MAX));
    // Holdfast-specific: client listener addresses of brokers already in the
    // cluster, where a broker-only node registers before it has joined the
    // metadata quorum (in Kafka a broker reaches the controllers on their
    // CONTROLLER listener, which in Holdfast speaks Raft, not Kafka).
    t["holdfast.broker.bootstrap.servers"] = cluster_setting(
        [](BrokerConfig& c, const std::string& key, const std::string& value)
            -> Result<void, ConfigErrc> {
          std::vector<std::pair<std::string, uint16_t>> servers;
          std::stringstream list(value);
          std::string item;
          while (std::getline(list, item, ',')) {
            item = trim(item);
            auto parsed = parse_host_port(item);
            if (!parsed || parsed->second == 0) {
              return invalid(key, value, "expected host:port[,host:port...], got '" + item + "'");
            }
            servers.push_back(*parsed);
          }
          if (servers.empty()) return invalid(key, value, "expected host:port[,host:port...]");
          c.broker_bootstrap_servers = std::move(servers);
          return {};
        });
    t["broker.session.timeout.ms"] =
        cluster_setting(int_setter<int32_t>(&BrokerConfig::broker_session_timeout_ms, 1, INT32_MAX));
    t["broker.heartbeat.interval.ms"] = cluster_setting(
        int_setter<int32_t>(&BrokerConfig::broker_heartbeat_interval_ms, 1, INT32_MAX));
    t["replica.lag.time.max.ms"] =
        cluster_setting(int_setter<int64_t>(&BrokerConfig::replica_lag_time_max_ms, 1, INT64_MAX));
    t["unclean.leader.election.enable"] = cluster_setting(
        [](BrokerConfig& c, const std::string& key, const std::string& value)
            -> Result<void, ConfigErrc> {
          auto b = parse_bool(key, value);
          if (!b) return b.error();
          c.unclean_leader_election_enable = *b;
          return {};
        });
    t["default.replication.factor"] = optional_int16(&BrokerConfig::default_replication_factor);
    t["min.insync.replicas"] = cluster_setting(optional_int16(&BrokerConfig::min_insync_replicas));
    t["offsets.topic.replication.factor"] =
        cluster_setting(optional_int16(&BrokerConfig::offsets_topic_replication_factor));
    t["transaction.state.log.replication.factor"] =
        cluster_setting(optional_int16(&BrokerConfig::transaction_state_log_replication_factor));
    t["transaction.state.log.min.isr"] =
        cluster_setting(optional_int16(&BrokerConfig::transaction_state_log_min_isr));
    t["authorizer.enabled"] = [](BrokerConfig& c, const std::string& key,
                                 const std::string& value) -> Result<void, ConfigErrc> {
      auto b = parse_bool(key, value);
      if (!b) return b.error();
      c.authorizer.enabled = *b;
      return {};
    };
    // Kafka's spelling: any ACL authoriser class turns ours on; empty turns it off.
    t["authorizer.class.name"] = [](BrokerConfig& c, const std::string& key,
                                    const std::string& value) -> Result<void, ConfigErrc> {
      static const std::set<std::string> known{
          "", "kafka.security.authorizer.AclAuthorizer",
          "org.apache.kafka.metadata.authorizer.StandardAuthorizer"};
      if (!known.contains(value)) {
        return invalid(key, value,
                       "Holdfast has its own ACL authoriser; give "
                       "org.apache.kafka.metadata.authorizer.StandardAuthorizer, "
                       "kafka.security.authorizer.AclAuthorizer or nothing (or use authorizer.enabled)");
      }
      c.authorizer.enabled = !value.empty();
      return {};
    };
    t["allow.everyone.if.no.acl.found"] = [](BrokerConfig& c, const std::string& key,
                                             const std::string& value) -> Result<void, ConfigErrc> {
      auto b = parse_bool(key, value);
      if (!b) return b.error();
      c.authorizer.allow_everyone_if_no_acl_found = *b;
      return {};
    };
    t["super.users"] = [](BrokerConfig& c, const std::string& key,
                          const std::string& value) -> Result<void, ConfigErrc> {
      auto users = security::parse_super_users(value);
      if (!users) {
        return invalid(key, value, "expected principals separated by ';' (User:admin;User:ops)");
      }
      c.authorizer.super_users = std::move(*users);
      return {};
    };
    t["num.partitions"] = int_setter<int32_t>(&BrokerConfig::num_partitions, 1, 100000);
    t["auto.create.topics.enable"] = [](BrokerConfig& c, const std::string& key,
                                        const std::string& value) -> Result<void, ConfigErrc> {
      auto b = parse_bool(key, value);
      if (!b) return b.error();
      c.auto_create_topics = *b;
      return {};
    };
    t["log.retention.ms"] = int_setter<int64_t>(&BrokerConfig::log_retention_ms, -1, INT64_MAX);
    t["log.retention.minutes"] =
        int_setter<int64_t>(&BrokerConfig::log_retention_ms, -1, kMax, 60 * 1000);
    t["log.retention.hours"] =
        int_setter<int64_t>(&BrokerConfig::log_retention_ms, -1, kMax, 3600 * 1000);
    t["log.retention.bytes"] =
        int_setter<int64_t>(&BrokerConfig::log_retention_bytes, -1, INT64_MAX);
    t["log.segment.bytes"] =
        int_setter<int64_t>(&BrokerConfig::log_segment_bytes, 1024, INT32_MAX);
    t["log.roll.ms"] = int_setter<int64_t>(&BrokerConfig::log_roll_ms, 1, INT64_MAX);
    t["log.roll.hours"] = int_setter<int64_t>(&BrokerConfig::log_roll_ms, 1, kMax, 3600 * 1000);
    t["log.index.interval.bytes"] =
        int_setter<int32_t>(&BrokerConfig::log_index_interval_bytes, 0, INT32_MAX);
    t["log.retention.check.interval.ms"] =
        int_setter<int64_t>(&BrokerConfig::log_retention_check_interval_ms, 1, INT64_MAX);
    t["log.flush.threads"] = int_setter<int32_t>(&BrokerConfig::log_flush_threads, 1, 64);
    t["log.cleaner.dedupe.buffer.size"] =
        int_setter<int64_t>(&BrokerConfig::log_cleaner_dedupe_buffer_size, 1024, INT64_MAX);
    t["socket.request.max.bytes"] =
        int_setter<int32_t>(&BrokerConfig::socket_request_max_bytes, 1024, INT32_MAX);
    t["fetch.max.bytes"] = int_setter<int32_t>(&BrokerConfig::fetch_max_bytes, 1024, INT32_MAX);
    t["fetch.max.wait.ms.cap"] =
        int_setter<int32_t>(&BrokerConfig::fetch_max_wait_ms_cap, 0, INT32_MAX);
    t["message.max.bytes"] =
        int_setter<int32_t>(&BrokerConfig::message_max_bytes, 0, INT32_MAX);
    t["log.flush.interval.messages"] =
        int_setter<int64_t>(&BrokerConfig::log_flush_interval_messages, 1, INT64_MAX);
    t["log.flush.interval.ms"] =
        int_setter<int64_t>(&BrokerConfig::log_flush_interval_ms, 0, INT64_MAX);
    // Kafka's scheduler knob; accepted for compatibility, the flusher is event driven.
    t["log.flush.scheduler.interval.ms"] = [](BrokerConfig&, const std::string& key,
                                              const std::string& value)
        -> Result<void, ConfigErrc> {
      auto parsed = parse_int<int64_t>(key, value, 0, INT64_MAX);
      if (!parsed) return parsed.error();
      return {};
    };
    t["flush.policy"] = [](BrokerConfig& c, const std::string& key,
                           const std::string& value) -> Result<void, ConfigErrc> {
      auto p = parse_flush_policy(value);
      if (!p) return invalid(key, value, "expected always, never or interval:<ms>");
      c.flush_policy = *p;
      c.flush_policy_explicit = true;
      return {};
    };
    t["producer.id.expiration.ms"] =
        int_setter<int64_t>(&BrokerConfig::producer_id_expiration_ms, 1, INT64_MAX);
    t["producer.id.expiration.check.interval.ms"] =
        int_setter<int64_t>(&BrokerConfig::producer_id_expiration_check_interval_ms, 1, INT64_MAX);
    t["num.network.threads"] =
        int_setter<int32_t>(&BrokerConfig::num_network_threads, 0, 256);
    t["queued.max.requests"] =
        int_setter<int32_t>(&BrokerConfig::queued_max_requests_per_connection, 1, 100000);
    t["queued.max.request.bytes"] =
        int_setter<int64_t>(&BrokerConfig::queued_max_request_bytes, 1024, INT64_MAX);
    t["max.connections"] = int_setter<int32_t>(&BrokerConfig::max_connections, 1, INT32_MAX);
    t["max.connections.per.ip"] =
        int_setter<int32_t>(&BrokerConfig::max_connections_per_ip, 0, INT32_MAX);
    t["max.connections.per.ip.overrides"] = [](BrokerConfig& c, const std::string& key,
                                               const std::string& value)
        -> Result<void, ConfigErrc> {
      auto overrides = parse_connection_overrides(value);
      if (!overrides) {
        return invalid(key, value,
                       "expected ip:count pairs separated by commas (127.0.0.1:200,::1:50), "
                       "IP addresses only");
      }
      c.max_connections_per_ip_overrides = std::move(*overrides);
      return {};
    };
    t["connections.max.idle.ms"] =
        int_setter<int64_t>(&BrokerConfig::connections_max_idle_ms, 1, INT64_MAX / 2);
    t["connections.max.reauth.ms"] =
        int_setter<int64_t>(&BrokerConfig::connections_max_reauth_ms, 0, INT64_MAX / 2);
    t["quota.window.num"] = int_setter<int32_t>(&BrokerConfig::quota_window_num, 1, 1000);
    t["quota.window.size.seconds"] =
        int_setter<int32_t>(&BrokerConfig::quota_window_size_seconds, 1, 3600);
    t["log.level"] = [](BrokerConfig& c, const std::string& key,
                        const std::string& value) -> Result<void, ConfigErrc> {
      static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
      for (const char* l : kLevels) {
        if (value == l) {
          c.log_level = value;
          return {};
        }
      }
      return invalid(key, value, "expected trace, debug, info, warn, error or off");
    };
    t["transaction.state.log.num.partitions"] =
        int_setter<int32_t>(&BrokerConfig::transaction_state_log_num_partitions, 1, 10000);
    t["transaction.state.log.segment.bytes"] =
        int_setter<int64_t>(&BrokerConfig::transaction_state_log_segment_bytes, 1024, INT32_MAX);
    t["transaction.max.timeout.ms"] =
        int_setter<int32_t>(&BrokerConfig::transaction_max_timeout_ms, 1, INT32_MAX);
    t["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = int_setter<int32_t>(
        &BrokerConfig::transaction_abort_timed_out_check_interval_ms, 1, INT32_MAX);
    t["transactional.id.expiration.ms"] =
        int_setter<int64_t>(&BrokerConfig::transactional_id_expiration_ms, 1, INT64_MAX);
    t["transaction.remove.expired.transaction.cleanup.interval.ms"] = int_setter<int64_t>(
        &BrokerConfig::transaction_expired_id_check_interval_ms, 1, INT64_MAX);
    t["offsets.topic.num.partitions"] =
        int_setter<int32_t>(&BrokerConfig::offsets_topic_num_partitions, 1, 10000);
    t["offsets.topic.segment.bytes"] =
        int_setter<int64_t>(&BrokerConfig::offsets_topic_segment_bytes, 1024, INT32_MAX);
    t["offsets.retention.minutes"] =
        int_setter<int64_t>(&BrokerConfig::offsets_retention_ms, 1, kMax, 60 * 1000);
    t["offsets.retention.check.interval.ms"] =
        int_setter<int64_t>(&BrokerConfig::offsets_retention_check_interval_ms, 1, INT64_MAX);
    t["offset.metadata.max.bytes"] =
        int_setter<int32_t>(&BrokerConfig::offset_metadata_max_bytes, 0, INT32_MAX);
    t["group.initial.rebalance.delay.ms"] =
        int_setter<int32_t>(&BrokerConfig::group_initial_rebalance_delay_ms, 0, INT32_MAX);
    t["group.min.session.timeout.ms"] =
        int_setter<int32_t>(&BrokerConfig::group_min_session_timeout_ms, 0, INT32_MAX);
    t["group.max.session.timeout.ms"] =
        int_setter<int32_t>(&BrokerConfig::group_max_session_timeout_ms, 0, INT32_MAX);
    t["offsets.commit.timeout.ms"] =
        int_setter<int32_t>(&BrokerConfig::offsets_commit_timeout_ms, 1, INT32_MAX);
    t["admin.listener"] = [](BrokerConfig& c, const std::string& key,
                             const std::string& value) -> Result<void, ConfigErrc> {
      if (!value.empty()) {
        auto parsed = parse_host_port(value);
        if (!parsed || parsed->first.empty()) {
          return invalid(key, value, "expected host:port (e.g. 127.0.0.1:9644), or empty for off");
        }
      }
      c.admin_listener = value;
      return {};
    };
    t["admin.search.max.scan.bytes"] =
        int_setter<int64_t>(&BrokerConfig::admin_search_max_scan_bytes, 1, INT64_MAX);
    t["admin.search.max.scan.ms"] =
        int_setter<int64_t>(&BrokerConfig::admin_search_max_scan_ms, 1, 3600000);
    t["log.message.timestamp.type"] = [](BrokerConfig& c, const std::string& key,
                                         const std::string& value) -> Result<void, ConfigErrc> {
      if (value != "CreateTime" && value != "LogAppendTime") {
        return invalid(key, value, "expected CreateTime or LogAppendTime");
      }
      c.log_message_timestamp_type = value;
      return {};
    };
    return t;
  }();
  return table;
}

}  // namespace

std::string FlushPolicy::to_string() const {
  switch (kind) {
    case FlushPolicyKind::always:
      return "always";
    case FlushPolicyKind::never:
      return "never";
    case FlushPolicyKind::interval:
      return "interval:" + std::to_string(interval_ms);
  }
  return "always";
}

std::optional<FlushPolicy> parse_flush_policy(const std::string& text) {
  if (text == "always") return FlushPolicy{FlushPolicyKind::always, 0};
  if (text == "never") return FlushPolicy{FlushPolicyKind::never, 0};
  const std::string prefix = "interval:";
  if (text.rfind(prefix, 0) == 0) {
    std::string ms = text.substr(prefix.size());
    int64_t v = 0;
    auto [end, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), v);
    if (ec != std::errc() || end != ms.data() + ms.size() || ms.empty() || v < 1) {
      return std::nullopt;
    }
    return FlushPolicy{FlushPolicyKind::interval, v};
  }
  return std::nullopt;
}

std::optional<std::pair<std::string, uint16_t>> parse_host_port(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  uint32_t p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || port.empty() || p > 65535) {
    return std::nullopt;
  }
  return std::make_pair(host, static_cast<uint16_t>(p));
}

std::optional<std::map<std::string, int32_t>> parse_connection_overrides(const std::string& text) {
  std::map<std::string, int32_t> out;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    auto colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    const std::string ip = item.substr(0, colon);
    const std::string count = item.substr(colon + 1);
    int32_t n = 0;
    auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
    if (ec != std::errc() || end != count.data() + count.size() || count.empty() || n < 0) {
      return std::nullopt;
    }
    // Normalised as the network server prints a peer's address.
    char printed[INET6_ADDRSTRLEN] = {};
    unsigned char raw[sizeof(in6_addr)] = {};
    if (::inet_pton(AF_INET, ip.c_str(), raw) == 1) {
      ::inet_ntop(AF_INET, raw, printed, sizeof(printed));
    } else if (::inet_pton(AF_INET6, ip.c_str(), raw) == 1) {
      ::inet_ntop(AF_INET6, raw, printed, sizeof(printed));
    } else {
      return std::nullopt;
    }
    out[printed] = n;
  }
  return out;
}

std::optional<SecurityProtocol> parse_security_protocol(const std::string& name) {
  if (name == "PLAINTEXT") return SecurityProtocol::plaintext;
  if (name == "SSL") return SecurityProtocol::ssl;
  if (name == "SASL_PLAINTEXT") return SecurityProtocol::sasl_plaintext;
  if (name == "SASL_SSL") return SecurityProtocol::sasl_ssl;
  return std::nullopt;
}

std::string to_string(SecurityProtocol protocol) {
  switch (protocol) {
    case SecurityProtocol::plaintext: return "PLAINTEXT";
    case SecurityProtocol::ssl: return "SSL";
    case SecurityProtocol::sasl_plaintext: return "SASL_PLAINTEXT";
    case SecurityProtocol::sasl_ssl: return "SASL_SSL";
  }
  return "PLAINTEXT";
}

Result<std::vector<ClientListener>, ConfigErrc> client_listeners(const BrokerConfig& config) {
  std::vector<ListenerAddress> addresses{
      ListenerAddress{config.listen_name, config.listen_host, config.listen_port}};
  addresses.insert(addresses.end(), config.extra_client_listeners.begin(),
                   config.extra_client_listeners.end());
  std::vector<ClientListener> out;
  for (const auto& address : addresses) {
    // Kafka's default map: each protocol name is a listener name of that protocol.
    auto mapped = config.listener_security_protocol_map.find(address.name);
    const std::string protocol_name =
        mapped != config.listener_security_protocol_map.end() ? mapped->second : address.name;
    auto protocol = parse_security_protocol(protocol_name);
    if (!protocol) {
      return make_error(ConfigErrc::invalid_value,
                        "listeners: listener " + address.name +
                            " has no security protocol; map it in listener.security.protocol.map "
                            "(e.g. " + address.name + ":SASL_PLAINTEXT)");
    }
    out.push_back(ClientListener{address, *protocol});
  }
  // Kafka's rule: advertised.listeners names only listeners of `listeners`.
  for (const auto& advertised : config.advertised_client_listeners) {
    if (advertised.name.empty()) continue;
    const bool known = std::any_of(out.begin(), out.end(), [&](const ClientListener& l) {
      return l.address.name == advertised.name;
    });
    if (!known) {
      return make_error(ConfigErrc::invalid_value,
                        "advertised.listeners: " + advertised.name + "://" + advertised.host +
                            ":" + std::to_string(advertised.port) +
                            " names no listener of listeners (every advertised listener must "
                            "be one of them, by name)");
    }
  }
  return out;
}

Result<SecurityProtocol, ConfigErrc> controller_security_protocol(const BrokerConfig& config) {
  auto mapped = config.listener_security_protocol_map.find("CONTROLLER");
  if (mapped == config.listener_security_protocol_map.end()) return SecurityProtocol::plaintext;
  auto protocol = parse_security_protocol(mapped->second);
  if (protocol == SecurityProtocol::plaintext || protocol == SecurityProtocol::ssl) return *protocol;
  return make_error(ConfigErrc::invalid_value,
                    "listener.security.protocol.map: CONTROLLER:" + mapped->second +
                        " is not supported; the Raft traffic between controllers is PLAINTEXT or "
                        "SSL (mutual TLS: both ends present a certificate from ssl.ca.location)");
}

namespace {

// listener.name.<listener>.<mechanism>.sasl.jaas.config (Kafka's
// listener-scoped JAAS line): the credentials this broker authenticates with
// to the other brokers. Errors never repeat the value (it holds a password).
std::optional<Result<void, ConfigErrc>> apply_listener_jaas(BrokerConfig& config,
                                                            const std::string& key,
                                                            const std::string& value) {
  static const std::string prefix = "listener.name.", suffix = ".sasl.jaas.config";
  if (key.size() <= prefix.size() + suffix.size() || key.compare(0, prefix.size(), prefix) != 0 ||
      key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string middle = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
  const size_t dot = middle.find('.');
  std::string listener = dot == std::string::npos ? "" : middle.substr(0, dot);
  std::string mechanism = dot == std::string::npos ? "" : middle.substr(dot + 1);
  auto lower = [](std::string text) {
    for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return text;
  };
  listener = lower(listener);
  mechanism = lower(mechanism);
  if (listener.empty() ||
      (mechanism != "plain" && mechanism != "scram-sha-256" && mechanism != "scram-sha-512")) {
    return make_error(ConfigErrc::invalid_value,
                      "invalid setting '" + key +
                          "': expected listener.name.<listener>.<mechanism>.sasl.jaas.config with "
                          "mechanism plain, scram-sha-256 or scram-sha-512");
  }
  config.listener_sasl_jaas_configs[listener + "." + mechanism] = value;
  config.cluster_settings_given.push_back(key);
  return Result<void, ConfigErrc>{};
}

}  // namespace

Result<void, ConfigErrc> apply_setting(BrokerConfig& config, const std::string& key,
                                       const std::string& value) {
  const auto& table = setters();
  auto it = table.find(key);
  if (it == table.end()) {
    if (auto applied = apply_listener_jaas(config, key, value)) return *applied;
    return make_error(ConfigErrc::unknown_key, "unknown setting '" + key + "'");
  }
  return it->second(config, key, value);
}

Result<std::vector<std::pair<std::string, std::string>>, ConfigErrc> parse_properties(
    const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == '!') continue;
    size_t sep = t.find_first_of("=:");
    if (sep == std::string::npos) {
      return make_error(ConfigErrc::invalid_value,
                        "line " + std::to_string(line_no) + ": expected key=value, got '" + t + "'");
    }
    out.emplace_back(trim(t.substr(0, sep)), trim(t.substr(sep + 1)));
  }
  return out;
}

Result<void, ConfigErrc> validate_cluster_settings(const BrokerConfig& c) {
  auto refuse = [](const std::string& message) {
    return make_error(ConfigErrc::invalid_value, message);
  };
  if (c.process_roles_explicit && !c.controller_role && c.controller_quorum_voters.empty()) {
    return refuse("process.roles=broker needs controller.quorum.voters: the controllers this "
                  "broker follows");
  }
  if (c.broker_heartbeat_interval_ms >= c.broker_session_timeout_ms) {
    return refuse("broker.heartbeat.interval.ms (" + std::to_string(c.broker_heartbeat_interval_ms) +
                  ") must be below broker.session.timeout.ms (" +
                  std::to_string(c.broker_session_timeout_ms) + ")");
  }
  if (c.metadata_snapshot_trailing_records > c.metadata_snapshot_threshold_records) {
    return refuse("holdfast.metadata.snapshot.trailing.records (" +
                  std::to_string(c.metadata_snapshot_trailing_records) +
                  ") must not exceed holdfast.metadata.snapshot.threshold.records (" +
                  std::to_string(c.metadata_snapshot_threshold_records) +
                  "): the log kept after a snapshot is part of what the snapshot covers");
  }
  if (c.controller_listen_port != 0 && c.controller_listen_port == c.listen_port) {
    return refuse("listeners: the CONTROLLER listener needs a port of its own, not the client port " +
                  std::to_string(c.listen_port));
  }
  if (c.controller_listen_port != 0 && c.controller_quorum_voters.empty()) {
    // A Raft listener with no quorum to serve: a half-written cluster config.
    return refuse("listeners names a CONTROLLER listener, but controller.quorum.voters is empty "
                  "(set the voters for a cluster, or remove the CONTROLLER listener for a single "
                  "node)");
  }
  if (auto protocol = controller_security_protocol(c); !protocol) return protocol.error();
  if (!c.cluster_mode()) {
    if (c.effective_default_replication_factor() > 1) {
      return refuse("default.replication.factor=" +
                    std::to_string(c.effective_default_replication_factor()) +
                    ": a single node holds one replica (set controller.quorum.voters for a cluster)");
    }
    return {};
  }
  if (!c.controller_role) {
    // A broker-only node: a standby member of the metadata quorum.
    for (const auto& voter : c.controller_quorum_voters) {
      if (voter.id == c.node_id) {
        return refuse("node.id " + std::to_string(c.node_id) +
                      " is among controller.quorum.voters, but process.roles=broker: a voter "
                      "holds the controller role (set process.roles=broker,controller, or give "
                      "this broker a node.id that is not a voter)");
      }
    }
    if (c.controller_listen_port == 0) {
      return refuse("process.roles=broker in a cluster: listeners needs a CONTROLLER listener "
                    "(CONTROLLER://host:port), where this broker receives the metadata log as a "
                    "non-voting member of the quorum");
    }
    const std::string& raft_host = c.controller_advertise_host.empty()
                                       ? c.controller_listen_host
                                       : c.controller_advertise_host;
    if (raft_host == "0.0.0.0") {
      return refuse("listeners: the CONTROLLER listener binds every address; a broker-only node "
                    "announces it to the controller as its Raft address, so set "
                    "advertised.listeners=...,CONTROLLER://host:port with a reachable host");
    }
    const std::string raft_address =
        raft_host +
        ":" +
        std::to_string(c.controller_advertise_port != 0 ? c.controller_advertise_port
                                                        : c.controller_listen_port);
    for (const auto& voter : c.controller_quorum_voters) {
      if (voter.address == raft_address) {
        return refuse("listeners: the CONTROLLER listener " + raft_address + " is node " +
                      std::to_string(voter.id) + "'s address in controller.quorum.voters");
      }
    }
    if (c.broker_bootstrap_servers.empty()) {
      return refuse("process.roles=broker in a cluster needs holdfast.broker.bootstrap.servers: "
                    "the client listeners (host:port,...) of brokers already in the cluster, "
                    "where this broker registers before it has joined the metadata quorum");
    }
  }
  if (c.controller_role) {
    const metadata::QuorumVoter* self = nullptr;
    for (const auto& voter : c.controller_quorum_voters) {
      if (voter.id == c.node_id) self = &voter;
    }
    if (self == nullptr) {
      return refuse("node.id " + std::to_string(c.node_id) +
                    " is not among controller.quorum.voters, but process.roles claims the "
                    "controller role (use process.roles=broker for a broker that is not a voter)");
    }
    if (c.controller_listen_port == 0) {
      return refuse("listeners has no CONTROLLER listener, but process.roles claims the controller "
                    "role (add CONTROLLER://host:port matching this node's entry " +
                    self->address + " in controller.quorum.voters)");
    }
    auto voter_address = parse_host_port(self->address);
    if (voter_address && voter_address->second != c.controller_listen_port) {
      return refuse("listeners: the CONTROLLER listener port " +
                    std::to_string(c.controller_listen_port) + " is not the port of node " +
                    std::to_string(c.node_id) + "'s entry " + self->address +
                    " in controller.quorum.voters");
    }
  }
  return {};
}

std::vector<std::string> settings_without_effect(const BrokerConfig& c) {
  if (c.cluster_mode()) return {};
  std::vector<std::string> keys;
  for (const auto& key : c.cluster_settings_given) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  return keys;
}

bool is_inapplicable_kafka_key(const std::string& key) {
  static const std::set<std::string> keys{
      // KRaft and ZooKeeper quorum (process.roles and controller.quorum.voters are ours)
      "controller.quorum.bootstrap.servers",
      "controller.listener.names", "metadata.log.dir", "zookeeper.connect",
      "zookeeper.connection.timeout.ms", "zookeeper.session.timeout.ms",
      // thread pools and socket buffers
      "num.io.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir",
      "background.threads", "log.cleaner.threads", "socket.send.buffer.bytes",
      "socket.receive.buffer.bytes", "socket.listen.backlog.size",
      // replication settings Holdfast has no counterpart for
      "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
      "transaction.state.log.num.partitions", "auto.leader.rebalance.enable",
      "controlled.shutdown.enable", "delete.topic.enable",
  };
  return keys.contains(key);
}

Result<void, ConfigErrc> load_properties_file(BrokerConfig& config, const std::string& path,
                                              std::vector<std::string>& skipped) {
  std::ifstream file(path);
  if (!file) return make_error(ConfigErrc::io_error, "cannot read config file '" + path + "'");
  std::stringstream buffer;
  buffer << file.rdbuf();
  auto pairs = parse_properties(buffer.str());
  if (!pairs) {
    return make_error(pairs.code(), path + ": " + pairs.error().message);
  }
  std::vector<std::string> unknown;
  for (const auto& [key, value] : *pairs) {
    auto applied = apply_setting(config, key, value);
    if (applied) continue;
    if (applied.code() != ConfigErrc::unknown_key) {
      return make_error(applied.code(), path + ": " + applied.error().message);
    }
    (is_inapplicable_kafka_key(key) ? skipped : unknown).push_back(key);
  }
  if (!unknown.empty()) {
    std::string list;
    for (const auto& key : unknown) list += (list.empty() ? "'" : ", '") + key + "'";
    return make_error(ConfigErrc::unknown_key,
                      path + ": unknown setting" + (unknown.size() > 1 ? "s " : " ") + list +
                          " (neither Holdfast's nor a Kafka broker setting)");
  }
  return {};
}

Result<void, ConfigErrc> load_properties_file(BrokerConfig& config, const std::string& path) {
  std::ifstream file(path);
  if (!file) return make_error(ConfigErrc::io_error, "cannot read config file '" + path + "'");
  std::stringstream buffer;
  buffer << file.rdbuf();
  auto pairs = parse_properties(buffer.str());
  if (!pairs) {
    return make_error(pairs.code(), path + ": " + pairs.error().message);
  }
  for (const auto& [key, value] : *pairs) {
    auto applied = apply_setting(config, key, value);
    if (!applied) return make_error(applied.code(), path + ": " + applied.error().message);
  }
  return {};
}

}  // namespace holdfast::server
