// Broker configuration: a Kafka-style .properties file plus overrides.
//
// Kafka's names where Kafka has the setting (num.partitions, log.retention.ms,
// ...), so operators' files carry over. Unknown keys and invalid values are
// start-up errors that name the key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "metadata/quorum_voters.h"
#include "server/security/authorizer.h"

namespace holdfast::server {

enum class FlushPolicyKind { always, interval, never };

struct FlushPolicy {
  FlushPolicyKind kind = FlushPolicyKind::always;
  int64_t interval_ms = 0;  // for kind == interval
  std::string to_string() const;
};

// Parses "always", "never" or "interval:<ms>".
std::optional<FlushPolicy> parse_flush_policy(const std::string& text);

// Kafka's security protocols (listener.security.protocol.map values).
enum class SecurityProtocol { plaintext, ssl, sasl_plaintext, sasl_ssl };
std::optional<SecurityProtocol> parse_security_protocol(const std::string& name);
std::string to_string(SecurityProtocol protocol);

// A named client listener ("PLAINTEXT", "SASL_PLAINTEXT", or a name the
// protocol map gives a protocol).
struct ListenerAddress {
  std::string name;
  std::string host;
  uint16_t port = 0;
};

struct BrokerConfig {
  int32_t node_id = 0;
  std::string data_dir = "./data";
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 9092;
  // advertised.listeners' client entries ([NAME://]host:port): the address
  // clients are told for each client listener (advertised_listener()). An
  // entry without a name (--advertise HOST:PORT) is the first listener's.
  std::vector<ListenerAddress> advertised_client_listeners;

  int32_t num_partitions = 4;
  bool auto_create_topics = true;
  int64_t log_retention_ms = 7LL * 24 * 3600 * 1000;
  int64_t log_retention_bytes = -1;
  int64_t log_segment_bytes = 1LL << 30;
  int64_t log_roll_ms = 7LL * 24 * 3600 * 1000;
  int32_t log_index_interval_bytes = 4096;
  int64_t log_retention_check_interval_ms = 5 * 60 * 1000;
  // The log cleaner's key map bound (Kafka's default 128 MiB); a pass whose
  // dirty part has more keys cleans in several rounds.
  int64_t log_cleaner_dedupe_buffer_size = 128LL << 20;
  int32_t log_flush_threads = 4;  // log.flush.threads: group-commit threads (LogManagerOptions)
  int32_t socket_request_max_bytes = 100 * 1024 * 1024;
  int32_t message_max_bytes = 1048588;
  // Fetch: the most record bytes one response carries, whatever the request
  // asks (Kafka's fetch.max.bytes, 55 MiB; the first batch still goes whole,
  // KIP-74), and the longest a long-poll may wait, whatever its max_wait_ms
  // (holdfast's fetch.max.wait.ms.cap; the clients' default request timeout).
  int32_t fetch_max_bytes = 55 * 1024 * 1024;
  int32_t fetch_max_wait_ms_cap = 30000;
  // Kafka's log.flush.interval.messages / log.flush.interval.ms. When either
  // is set (and flush.policy is not), it selects the interval policy.
  int64_t log_flush_interval_messages = INT64_MAX;
  int64_t log_flush_interval_ms = -1;
  FlushPolicy flush_policy;
  bool flush_policy_explicit = false;  // flush.policy given; otherwise log.flush.* may pick it
  int32_t num_network_threads = 0;  // 0 = one per core
  int32_t queued_max_requests_per_connection = 128;
  // Bytes of request frames being read or handled, broker-wide; connections
  // stop reading while it is exhausted. Kafka's default is unbounded (-1);
  // ours is 500 MiB (five frames of the default socket.request.max.bytes).
  int64_t queued_max_request_bytes = 500LL * 1024 * 1024;
  // Client connections open at once, over all listeners, and from one IP
  // address (docs/security.md, "Overload and hostile clients"). A connection
  // over a limit is accepted and closed at once. Kafka's max.connections
  // default is unbounded; ours is 10000, which bounds the broker's connection
  // memory (a few KiB each) and leaves room for data files under an open-files
  // limit of 16384 or more (start-up warns when the limit is lower).
  // max.connections.per.ip: unbounded (INT32_MAX) as in Kafka; the overrides
  // (max.connections.per.ip.overrides, "ip:count,...") replace it per address.
  int32_t max_connections = 10000;
  int32_t max_connections_per_ip = INT32_MAX;
  std::map<std::string, int32_t> max_connections_per_ip_overrides;
  // connections.max.idle.ms (Kafka's default, 10 minutes): a connection with
  // no request being read or handled and nothing written for this long is
  // closed; so is one whose unwritten responses made no progress for this
  // long, and one whose request frame has not arrived whole this long after
  // its first byte (a slow-loris client; Kafka has no such bound).
  int64_t connections_max_idle_ms = 600000;
  // connections.max.reauth.ms (KIP-368; Kafka's default 0 = sessions never
  // end): a SASL connection's session lasts this long from each
  // authentication; SaslAuthenticate v1+ tells the client, which should
  // authenticate again on the same connection before it ends. A request other
  // than SaslHandshake after the end closes the connection.
  int64_t connections_max_reauth_ms = 0;
  // Client quotas (quota_manager.h): rates are measured over quota.window.num
  // samples of quota.window.size.seconds each (Kafka's defaults, 11 and 1).
  int32_t quota_window_num = 11;
  int32_t quota_window_size_seconds = 1;
  std::string log_level = "info";
  std::string log_message_timestamp_type = "CreateTime";
  // Idempotent producers: how long a partition keeps an idle producer's
  // sequence state (Kafka's producer.id.expiration.ms, default one day), and
  // how often it looks for expired ones.
  int64_t producer_id_expiration_ms = 86400000;
  int64_t producer_id_expiration_check_interval_ms = 600000;

  // Consumer groups (Kafka's names and defaults).
  int32_t offsets_topic_num_partitions = 50;            // offsets.topic.num.partitions
  int64_t offsets_topic_segment_bytes = 104857600;      // offsets.topic.segment.bytes
  int64_t offsets_retention_ms = 10080LL * 60 * 1000;   // offsets.retention.minutes
  int64_t offsets_retention_check_interval_ms = 600000;  // offsets.retention.check.interval.ms
  int32_t offset_metadata_max_bytes = 4096;             // offset.metadata.max.bytes
  int32_t group_initial_rebalance_delay_ms = 3000;      // group.initial.rebalance.delay.ms
  int32_t group_min_session_timeout_ms = 6000;          // group.min.session.timeout.ms
  int32_t group_max_session_timeout_ms = 1800000;       // group.max.session.timeout.ms
  int32_t offsets_commit_timeout_ms = 5000;             // offsets.commit.timeout.ms

  // Transactions (Kafka's names and defaults; replication factor and min ISR
  // are below with the cluster settings).
  int32_t transaction_state_log_num_partitions = 50;        // transaction.state.log.num.partitions
  int64_t transaction_state_log_segment_bytes = 104857600;  // transaction.state.log.segment.bytes
  int32_t transaction_max_timeout_ms = 900000;              // transaction.max.timeout.ms
  // transaction.abort.timed.out.transaction.cleanup.interval.ms
  int32_t transaction_abort_timed_out_check_interval_ms = 10000;
  // transactional.id.expiration.ms: an id with no open transaction, idle this
  // long, is removed (Kafka's default, 7 days).
  int64_t transactional_id_expiration_ms = 604800000;
  // transaction.remove.expired.transaction.cleanup.interval.ms
  int64_t transaction_expired_id_check_interval_ms = 3600000;

  // Cluster settings (issue 9, Kafka's KRaft names). `serve` runs cluster
  // mode only with holdfast.cluster.experimental=true.
  //
  // process.roles: "broker,controller" (the default) or "broker" (a broker
  // that only follows the controllers in controller.quorum.voters, as a
  // non-voting Raft member on its CONTROLLER listener). Every Holdfast node
  // is a broker, so "controller" alone is refused.
  bool controller_role = true;
  bool process_roles_explicit = false;
  // controller.quorum.voters, parsed ("1@host:port,..."); empty = single node.
  std::vector<metadata::QuorumVoter> controller_quorum_voters;
  // The CONTROLLER listener of `listeners` (Raft traffic); port 0 = none.
  std::string controller_listen_host;
  uint16_t controller_listen_port = 0;
  std::string controller_advertise_host;  // from advertised.listeners; empty = none
  uint16_t controller_advertise_port = 0;
  // cluster.id: the cluster this node belongs to, recorded in the data dir's
  // meta.properties on first start and checked on every later one. Unset in
  // cluster mode: derived from controller.quorum.voters (cluster_identity.h),
  // so the nodes of one voter set agree without a formatting step.
  std::string cluster_id;
  // holdfast.cluster.experimental: run cluster mode although partition data
  // does not replicate yet (development and tests only; lifted at integration).
  bool cluster_experimental = false;
  // holdfast.broker.bootstrap.servers: client listeners of brokers already in
  // the cluster; a broker-only node (process.roles=broker) sends its
  // registration there until it has joined the metadata quorum and knows the
  // controller (any broker forwards a registration to the controller).
  std::vector<std::pair<std::string, uint16_t>> broker_bootstrap_servers;
  // holdfast.metadata.snapshot.threshold.records / .trailing.records: a Raft
  // snapshot of the metadata image every `threshold` applied records, keeping
  // `trailing` records of log after it (a member further behind than that
  // catches up by installing the leader's snapshot). 1 <= trailing <= threshold.
  int64_t metadata_snapshot_threshold_records = 1024;
  int64_t metadata_snapshot_trailing_records = 128;
  std::string broker_rack;                          // broker.rack; empty = none
  int32_t broker_session_timeout_ms = 9000;         // broker.session.timeout.ms
  int32_t broker_heartbeat_interval_ms = 2000;      // broker.heartbeat.interval.ms
  int64_t replica_lag_time_max_ms = 30000;          // replica.lag.time.max.ms
  bool unclean_leader_election_enable = false;      // unclean.leader.election.enable
  // Unset: the mode's default (effective_* below): 3 / 2 / 3 in a cluster,
  // 1 / 1 / 1 on a single node. Holdfast's cluster defaults are safer than
  // Kafka's (1 / 1 / 3).
  std::optional<int16_t> default_replication_factor;        // default.replication.factor
  std::optional<int16_t> min_insync_replicas;               // min.insync.replicas
  std::optional<int16_t> offsets_topic_replication_factor;  // offsets.topic.replication.factor
  std::optional<int16_t> transaction_state_log_replication_factor;  // transaction.state.log.replication.factor
  std::optional<int16_t> transaction_state_log_min_isr;             // transaction.state.log.min.isr
  // The cluster settings given, in order (settings_without_effect lists them
  // for the single-node warning).
  std::vector<std::string> cluster_settings_given;

  // A cluster: voters other than this node alone. controller.quorum.voters
  // naming only this node (Kafka's stock single-node KRaft file) is a single
  // node, as is no voters at all.
  bool cluster_mode() const {
    if (controller_quorum_voters.empty()) return false;
    return !(controller_quorum_voters.size() == 1 && controller_role &&
             controller_quorum_voters[0].id == node_id);
  }
  int16_t effective_default_replication_factor() const {
    return default_replication_factor.value_or(cluster_mode() ? 3 : 1);
  }
  int16_t effective_min_insync_replicas() const {
    return min_insync_replicas.value_or(cluster_mode() ? 2 : 1);
  }
  int16_t effective_offsets_topic_replication_factor() const {
    return offsets_topic_replication_factor.value_or(cluster_mode() ? 3 : 1);
  }
  int16_t effective_transaction_state_log_replication_factor() const {
    return transaction_state_log_replication_factor.value_or(cluster_mode() ? 3 : 1);
  }
  int16_t effective_transaction_state_log_min_isr() const {
    return transaction_state_log_min_isr.value_or(cluster_mode() ? 2 : 1);
  }

  // ACL authorisation (docs/acls.md): authorizer.enabled (or Kafka's
  // authorizer.class.name naming an ACL authoriser), allow.everyone.if.no.acl.found
  // and super.users.
  security::AuthorizerConfig authorizer;

  // Admin HTTP API, /metrics and message search (docs/admin-api.md):
  // "host:port" (port 0 picks a free one), empty = off.
  std::string admin_listener;
  // Bounds on one message search: bytes of batches scanned, and time.
  int64_t admin_search_max_scan_bytes = 64LL << 20;
  int64_t admin_search_max_scan_ms = 2000;

  // Security (issue 11, docs/security.md). `listeners` may name several
  // client listeners: the first is listen_host:listen_port (the one
  // advertised in Metadata) under `listen_name`; the others follow.
  std::string listen_name = "PLAINTEXT";
  std::vector<ListenerAddress> extra_client_listeners;
  // listener.security.protocol.map: the entries given (Kafka's defaults,
  // each protocol name mapping to itself, apply to names not listed).
  std::map<std::string, std::string> listener_security_protocol_map;
  // sasl.enabled.mechanisms. Kafka's default is GSSAPI, which Holdfast does
  // not build; ours is SCRAM only, and PLAIN only when listed.
  std::vector<std::string> sasl_enabled_mechanisms = {"SCRAM-SHA-256", "SCRAM-SHA-512"};
  // sasl.scram.bootstrap.file: salted SCRAM credentials created once
  // (security/scram_bootstrap.h); empty = none.
  std::string sasl_scram_bootstrap_file;
  // TLS on SSL and SASL_SSL listeners (PEM files, librdkafka's names;
  // security/tls_context.h). ssl_client_auth: none, requested or required.
  std::string ssl_certificate_location;
  std::string ssl_key_location;
  std::string ssl_key_password;
  std::string ssl_ca_location;
  std::string ssl_client_auth = "none";

  // Between brokers (docs/security.md, "Between brokers"; cluster only).
  // Brokers reach each other on the first client listener, with its
  // protocol: inter.broker.listener.name and security.inter.broker.protocol
  // (Kafka's names, at most one of them) may only name that listener or its
  // protocol (inter_broker.h checks it). SASL takes the mechanism from
  // sasl.mechanism.inter.broker.protocol and the credentials from
  // listener.name.<listener>.<mechanism>.sasl.jaas.config, keyed here by
  // "<listener>.<mechanism>" in lower case as Kafka writes the key.
  std::string inter_broker_listener_name;
  std::string security_inter_broker_protocol;
  std::string sasl_mechanism_inter_broker_protocol;
  std::map<std::string, std::string> listener_sasl_jaas_configs;

  // The policy in force: flush.policy when given, else interval:<log.flush.interval.ms>
  // when that is set, else always (durable by default, DESIGN §1).
  FlushPolicy effective_flush_policy() const {
    if (!flush_policy_explicit && log_flush_interval_ms >= 0) {
      return FlushPolicy{FlushPolicyKind::interval, log_flush_interval_ms < 1 ? 1 : log_flush_interval_ms};
    }
    return flush_policy;
  }

  // The advertised.listeners entry of client listener `name` ("" = the
  // first listener): its entry by name, for the first listener also an
  // unnamed one; none when it has no entry (clients are then told the
  // bound address).
  const ListenerAddress* advertised_entry(const std::string& name) const {
    const std::string& wanted = name.empty() ? listen_name : name;
    for (const auto& a : advertised_client_listeners) {
      if (a.name == wanted || (a.name.empty() && wanted == listen_name)) return &a;
    }
    return nullptr;
  }
  // The first client listener's advertised host and port (its configured
  // listen host and port when advertised.listeners has no entry for it).
  std::string effective_advertise_host() const {
    const auto* a = advertised_entry("");
    return a != nullptr ? a->host : listen_host;
  }
  uint16_t effective_advertise_port() const {
    const auto* a = advertised_entry("");
    return a != nullptr && a->port != 0 ? a->port : listen_port;
  }
};

enum class ConfigErrc { unknown_key, invalid_value, io_error };

// A client listener with its security protocol resolved.
struct ClientListener {
  ListenerAddress address;
  SecurityProtocol protocol = SecurityProtocol::plaintext;
};
// Every client listener, the primary first, each with the protocol that
// listener.security.protocol.map (or Kafka's default: the name itself) gives
// it; an error names a listener without a known protocol.
Result<std::vector<ClientListener>, ConfigErrc> client_listeners(const BrokerConfig& config);

// The security protocol of the Raft traffic between metadata quorum members:
// listener.security.protocol.map's entry for CONTROLLER, PLAINTEXT without
// one. SSL is mutual TLS (docs/security.md); SASL_PLAINTEXT and SASL_SSL are
// refused with an error naming the setting (Raft peers do not speak SASL).
Result<SecurityProtocol, ConfigErrc> controller_security_protocol(const BrokerConfig& config);

// Applies key=value settings in order onto `config`. An unknown key or a bad
// value is an error whose message names the key and what was wrong.
Result<void, ConfigErrc> apply_setting(BrokerConfig& config, const std::string& key,
                                       const std::string& value);

// Reads a .properties file (key=value or key: value, # and ! comments, blank
// lines) and applies each setting.
Result<void, ConfigErrc> load_properties_file(BrokerConfig& config, const std::string& path);

// As above, for a stock Kafka server.properties: Kafka broker settings that do
// not apply to Holdfast (is_inapplicable_kafka_key) are skipped and returned in
// `skipped` for one warning; unknown keys that are not Kafka's are all listed
// in one error.
Result<void, ConfigErrc> load_properties_file(BrokerConfig& config, const std::string& path,
                                              std::vector<std::string>& skipped);

// The checks across cluster settings that stop start-up, each naming the
// setting: process.roles=broker without controller.quorum.voters; a
// replication factor above 1 on a single node; in a cluster, a node that
// claims the controller role but is not among the voters, or has no CONTROLLER
// listener (or one on another port than its voter entry); a broker-only node
// (process.roles=broker) that is among the voters, has no CONTROLLER listener
// (or a voter's), or no holdfast.broker.bootstrap.servers; a CONTROLLER
// listener on the client port; a CONTROLLER protocol other than PLAINTEXT or
// SSL (controller_security_protocol); a heartbeat interval not below the session
// timeout; a snapshot trailing count above the threshold. (Malformed or duplicate voters are refused when the setting is read.)
Result<void, ConfigErrc> validate_cluster_settings(const BrokerConfig& config);

// The cluster settings given that have no effect because this is a single
// node (for the start-up warning about settings that do not apply).
std::vector<std::string> settings_without_effect(const BrokerConfig& config);

// A Kafka broker setting that has no meaning for Holdfast (thread pools,
// socket buffers, KRaft/ZooKeeper roles, replication of internal topics, ...).
bool is_inapplicable_kafka_key(const std::string& key);

// Parses a properties text (for tests and for the file loader).
Result<std::vector<std::pair<std::string, std::string>>, ConfigErrc> parse_properties(
    const std::string& text);

// max.connections.per.ip.overrides: "ip:count,..." (IPv4 or IPv6 addresses,
// printed back in their usual form; Kafka also takes host names, we do not).
std::optional<std::map<std::string, int32_t>> parse_connection_overrides(const std::string& text);

// "host:port" → host, port. IPv6 in brackets.
std::optional<std::pair<std::string, uint16_t>> parse_host_port(const std::string& text);

}  // namespace holdfast::server
