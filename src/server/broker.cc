#include "server/broker.h"

#include <csignal>
#include <thread>

#include "base/log.h"
#include "metadata/raft_metadata_log.h"
#include "net/kafka_client.h"
#include "server/cluster/broker_registrar.h"
#include "server/cluster/cluster_identity.h"
#include "server/cluster/cluster_view.h"
#include "server/cluster/controller_service.h"
#include "server/cluster/replication_wiring.h"
#include "server/handlers/produce_append.h"
#include "server/metered_file_system.h"
#include "server/network_server.h"
#include "server/security/inter_broker.h"
#include "server/security/tls_context.h"
#include "server/topic_config.h"
#include "server/security/scram_bootstrap.h"
#include "server/security/scram_credentials.h"
#include "server/txn_marker_sender.h"

namespace holdfast::server {
namespace {

coordinator::GroupCoordinatorOptions group_coordinator_options(const BrokerConfig& config,
                                                               const TopicManager& topics) {
  coordinator::GroupCoordinatorOptions o;
  const auto* info = topics.image()->find_topic(coordinator::kOffsetsTopic);
  o.num_partitions = info ? info->partition_count : config.offsets_topic_num_partitions;
  o.initial_rebalance_delay_ms = config.group_initial_rebalance_delay_ms;
  o.min_session_timeout_ms = config.group_min_session_timeout_ms;
  o.max_session_timeout_ms = config.group_max_session_timeout_ms;
  o.offsets_retention_ms = config.offsets_retention_ms;
  o.offsets_retention_check_interval_ms = config.offsets_retention_check_interval_ms;
  o.offset_metadata_max_bytes = config.offset_metadata_max_bytes;
  return o;
}

// This node's CONTROLLER endpoint as announced (advertised, else listened):
// a broker-only node's Raft address.
std::string controller_advertised_address(const BrokerConfig& config) {
  return (config.controller_advertise_host.empty() ? config.controller_listen_host
                                                   : config.controller_advertise_host) +
         ":" +
         std::to_string(config.controller_advertise_port != 0 ? config.controller_advertise_port
                                                              : config.controller_listen_port);
}

// Adds the inter-broker TLS and SASL settings of a cluster node to
// `options` (nothing on a single node); an error names the setting.
// `announce`: log which listener and user the brokers use (once per start).
Result<void, ConfigErrc> secure_client_options(const BrokerConfig& config,
                                               net::KafkaClientOptions& options,
                                               bool announce = false) {
  if (!config.cluster_mode()) return {};
  auto security = security::inter_broker_security(config);
  if (!security) return security.error();
  if (auto applied = security::apply_inter_broker_security(*security, config, options); !applied) {
    return applied.error();
  }
  if (announce &&
      (security->protocol != SecurityProtocol::plaintext || !config.extra_client_listeners.empty())) {
    HF_INFO("brokers reach each other on listener {} ({}{})", security->listener,
            to_string(security->protocol),
            security->mechanism.empty()
                ? std::string()
                : ", " + security->mechanism + " as user '" + security->username + "'");
  }
  return {};
}

}  // namespace

Broker::Broker(BrokerConfig config, io::FileSystem& fs)
    : config_(std::move(config)),
      metered_fs_(std::make_unique<MeteredFileSystem>(fs, metrics_->sync_metrics(config_.data_dir))),
      fs_(*metered_fs_) {}

Broker::~Broker() { shutdown(); }

uint16_t Broker::bound_port() const { return network_ ? network_->port() : 0; }

uint16_t Broker::advertised_port() const {
  auto advertised = advertised_listener("");
  return advertised ? advertised->port : 0;
}

std::optional<ListenerAddress> Broker::advertised_listener(const std::string& name) const {
  const std::string& wanted = name.empty() ? config_.listen_name : name;
  std::optional<ListenerAddress> out;
  if (wanted == config_.listen_name) {
    out = ListenerAddress{wanted, config_.listen_host, bound_port()};
  } else {
    for (const auto& l : config_.extra_client_listeners) {
      if (l.name == wanted) {
        out = ListenerAddress{wanted, l.host, network_ ? network_->port_of(wanted) : l.port};
      }
    }
  }
  if (!out) return std::nullopt;
  if (const auto* entry = config_.advertised_entry(wanted)) {
    out->host = entry->host;
    if (entry->port != 0) out->port = entry->port;
  }
  return out;
}

int32_t Broker::active_controller_id() const {
  if (!config_.cluster_mode()) return config_.node_id;
  return controller_ ? controller_->active_controller_id() : -1;
}

Result<void, StartupErrc> Broker::start() {
  if (config_.node_id < 0) {
    return make_error(StartupErrc::failed,
                      "invalid node.id " + std::to_string(config_.node_id) + ": must be >= 0");
  }
  if (auto valid = validate_cluster_settings(config_); !valid) {
    return make_error(StartupErrc::failed, valid.error().message);
  }
  // The first SCRAM users (security/scram_bootstrap.h): read now, so a bad
  // file stops the start before anything binds; appended once the metadata
  // log is open (a single node) or by the active controller (a cluster).
  if (!config_.sasl_scram_bootstrap_file.empty()) {
    auto loaded = security::load_scram_bootstrap_file(config_.sasl_scram_bootstrap_file);
    if (!loaded) {
      return make_error(StartupErrc::failed,
                        "sasl.scram.bootstrap.file: " + loaded.error().message);
    }
    scram_bootstrap_ = std::move(*loaded);
  }
  // Checked and parsed, but not run: nothing replicates partition data yet,
  // and a "cluster" of brokers that each hold their own copy of everything
  // would only look like one (docs/dev/cluster-plan.md). Development and
  // tests run it with holdfast.cluster.experimental=true.
  if (config_.cluster_mode() && !config_.cluster_experimental) {
    return make_error(StartupErrc::failed,
                      "controller.quorum.voters names " +
                          std::to_string(config_.controller_quorum_voters.size()) +
                          " voters: cluster mode is not yet available in this build; Holdfast "
                          "runs as a single node (leave controller.quorum.voters unset, or name "
                          "only this node in it)");
  }
  // The listener first: a port in use (or a bad address) fails here, before
  // anything in the data directory exists or changes.
  int threads = config_.num_network_threads;
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  network_ = std::make_unique<NetworkServer>(*this, threads);
  auto listeners = client_listeners(config_);
  if (!listeners) return make_error(StartupErrc::failed, listeners.error().message);
  // In a cluster, brokers reach each other (follower fetches, forwarded admin
  // requests, KIP-890 verify questions, transaction markers) on the
  // inter-broker listener, with its protocol and this broker's inter-broker
  // credentials (security/inter_broker.h): checked, and the TLS client
  // context built, before anything binds.
  if (config_.cluster_mode()) {
    net::KafkaClientOptions probe;
    if (auto secured = secure_client_options(config_, probe, /*announce=*/true); !secured) {
      network_.reset();
      return make_error(StartupErrc::failed, secured.error().message);
    }
    inter_broker_listener_ = security::inter_broker_security(config_)->listener;
  }
  // The Raft traffic's mutual TLS (CONTROLLER:SSL): its files checked and
  // its contexts built before anything binds, too.
  security::MutualTlsContexts raft_tls;
  const auto raft_protocol = controller_security_protocol(config_);  // validated above
  if (config_.cluster_mode() && raft_protocol && *raft_protocol == SecurityProtocol::ssl) {
    auto made = security::make_mutual_tls_contexts(security::tls_settings(config_),
                                                   "listener.security.protocol.map=CONTROLLER:SSL");
    if (!made) {
      network_.reset();
      return make_error(StartupErrc::failed, made.error().message);
    }
    raft_tls = std::move(*made);
  }
  // One TLS context for every SSL and SASL_SSL listener, built (and its
  // files checked) before anything binds.
  std::shared_ptr<asio::ssl::context> tls;
  for (const ClientListener& l : *listeners) {
    if (tls || (l.protocol != SecurityProtocol::ssl && l.protocol != SecurityProtocol::sasl_ssl)) {
      continue;
    }
    auto made = security::make_tls_context(security::tls_settings(config_));
    if (!made) {
      network_.reset();
      return make_error(StartupErrc::failed, "listeners: " + l.address.name + " uses " +
                                                 to_string(l.protocol) + ": " +
                                                 made.error().message);
    }
    tls = std::move(*made);
  }
  for (const ClientListener& l : *listeners) {
    if (auto bound =
            network_->bind(l.address.host, l.address.port, l.protocol, l.address.name, tls);
        !bound) {
      network_.reset();
      return bound.error();
    }
    HF_INFO("listener {} ({}) on {}:{}", l.address.name, to_string(l.protocol), l.address.host,
            network_->port_of(l.address.name));
  }
  if (auto made = io::create_dirs(fs_, config_.data_dir); !made) {
    return make_error(StartupErrc::failed, "cannot create data directory " + config_.data_dir + ": " +
                                   made.error().message);
  }
  // Then the lock, before reading or writing anything else in the directory:
  // a second broker on it would interleave its writes with ours, and its
  // shutdown would write the clean-shutdown marker into our live directory.
  auto lock = DataDirLock::acquire(config_.data_dir);
  if (!lock) return make_error(StartupErrc::failed, lock.error().message);
  data_dir_lock_ = std::move(*lock);

  auto identity = metadata::load_or_create_identity(fs_, config_.data_dir, config_.node_id,
                                                   cluster::configured_cluster_id(config_));
  if (!identity) return make_error(StartupErrc::failed, identity.error().message);
  identity_ = *identity;
  if (auto mismatch = cluster::cluster_id_mismatch(config_, identity_.cluster_id);
      !mismatch.empty()) {
    return make_error(StartupErrc::failed, mismatch);
  }

  if (config_.cluster_mode()) {
    metadata::RaftOptions raft_options;
    raft_options.node_id = config_.node_id;
    raft_options.data_dir = config_.data_dir;
    raft_options.voters = config_.controller_quorum_voters;
    // A broker-only node is a standby member on its CONTROLLER listener (a
    // voter's address is its entry in controller.quorum.voters).
    if (!config_.controller_role) {
      raft_options.address = controller_advertised_address(config_);
      raft_options.bind_address =
          config_.controller_listen_host + ":" + std::to_string(config_.controller_listen_port);
    }
    raft_options.snapshot_threshold = unsigned(config_.metadata_snapshot_threshold_records);
    raft_options.snapshot_trailing = unsigned(config_.metadata_snapshot_trailing_records);
    raft_options.tls_server = raft_tls.server;  // both null: plain TCP
    raft_options.tls_client = raft_tls.client;
    auto raft = metadata::RaftMetadataLog::open(std::move(raft_options));
    if (!raft) {
      return make_error(StartupErrc::failed, "metadata quorum: " + raft.error().message);
    }
    raft_ = std::move(*raft);
    metadata_log_ = raft_.get();
  } else {
    auto metadata = metadata::MetadataStore::open(fs_, config_.data_dir, config_.node_id);
    if (!metadata) return make_error(StartupErrc::failed, metadata.error().message);
    metadata_ = std::move(*metadata);
    metadata_log_ = metadata_.get();
    for (const auto& due : security::scram_bootstrap_due(*metadata_->current(), scram_bootstrap_)) {
      if (auto appended = metadata_->append(due); !appended) {
        return make_error(StartupErrc::failed,
                          "sasl.scram.bootstrap.file: " + appended.error().message);
      }
      HF_INFO("sasl.scram.bootstrap.file: created the {} credential of user {}",
              security::mechanism_name(security::ScramMechanism(due.mechanism)), due.user);
    }
  }

  storage::LogManagerOptions log_options;
  log_options.producer_id_expiration_ms = config_.producer_id_expiration_ms;
  log_options.producer_id_expiration_check_interval_ms =
      config_.producer_id_expiration_check_interval_ms;
  log_options.log_cleaner_dedupe_buffer_size = config_.log_cleaner_dedupe_buffer_size;
  log_options.flush_threads = config_.log_flush_threads;
  logs_ = std::make_unique<storage::LogManager>(fs_, config_.data_dir, log_options);
  auto config_for_overrides = [this](const metadata::ConfigMap& overrides) {
    return log_config_for(config_, overrides);
  };
  auto opened = logs_->open([this, config_for_overrides](const std::string& topic) {
    const auto* info = metadata_log_->current()->find_topic(topic);
    return config_for_overrides(info ? info->configs : metadata::ConfigMap{});
  });
  if (!opened) return make_error(StartupErrc::failed, "opening logs: " + opened.error().message);
  replicas_ = std::make_unique<replication::ReplicaManager>(*logs_, config_.node_id);
  if (config_.cluster_mode()) {
    // Before the lifecycle applies anything: a replica that starts as a
    // follower is handed to the fetchers from the first record on.
    net::KafkaClientOptions client_options;
    client_options.client_id = "holdfast-broker-" + std::to_string(config_.node_id);
    if (auto secured = secure_client_options(config_, client_options); !secured) {
      return make_error(StartupErrc::failed, secured.error().message);
    }
    client_ = std::make_unique<net::KafkaClient>(client_options);
    cluster::ReplicationWiringOptions wiring;
    wiring.node_id = config_.node_id;
    wiring.rack = config_.broker_rack;
    wiring.replica_lag_time_max_ms = config_.replica_lag_time_max_ms;
    wiring.fetch_client = client_options;  // the same TLS and SASL settings
    wiring.endpoint_of = [this](int32_t node) -> std::optional<net::Endpoint> {
      auto address = cluster::broker_address(*this, *metadata_log_->current(), node);
      if (!address) return std::nullopt;
      return net::Endpoint{address->host, static_cast<uint16_t>(address->port)};
    };
    wiring.controller = [this]() { return controller_endpoint(); };
    wiring.broker_epoch = [this]() -> int64_t { return registrar_ ? registrar_->broker_epoch() : -1; };
    replication_ = std::make_unique<cluster::ReplicationWiring>(*replicas_, *client_, std::move(wiring));
    replication_->install();
  }
  // The local replicas follow the metadata log from here on; start() first
  // reconciles them with the image (creates what a crash left uncreated,
  // removes what a crash left undeleted).
  lifecycle_ = std::make_unique<replication::PartitionLifecycle>(*metadata_log_, *replicas_,
                                                                 config_for_overrides);
  if (config_.cluster_mode()) {
    // Until the metadata has caught up (see start_held), every replica on
    // disk is a follower of no one: it neither answers produces nor fetches.
    for (const auto& partition : replicas_->all()) partition->become_follower(-1, 0, -1, {}, {});
  }
  if (auto reconciled = config_.cluster_mode() ? lifecycle_->start_held() : lifecycle_->start();
      !reconciled) {
    return make_error(StartupErrc::failed, "reconciling logs with metadata: " +
                                   reconciled.error().message);
  }
  topics_ = std::make_unique<TopicManager>(config_, *metadata_log_, *lifecycle_);
  auto producer_ids = coordinator::ProducerIdManager::open(fs_, config_.data_dir);
  if (!producer_ids) {
    return make_error(StartupErrc::failed, "producer ids: " + producer_ids.error().message);
  }
  producer_ids_ = std::move(*producer_ids);
  if (config_.cluster_mode()) producer_ids_->set_node_id_base(config_.node_id);
  replicas_->set_high_watermark_listener(
      [this](replication::Partition* partition) { fetch_waiters_.notify(partition); });
  logs_->start();
  if (replication_) replication_->start();

  // Consumer groups: __consumer_offsets exists before the coordinator replays it.
  // In a cluster only the active controller can create it, once brokers are
  // registered: FindCoordinator creates it on first use there.
  if (!config_.cluster_mode()) {
    if (auto made = topics_->ensure_offsets_topic(); !made.ok()) {
      return make_error(StartupErrc::failed, "creating __consumer_offsets: " + made.message);
    }
  }
  auto group_options = group_coordinator_options(config_, *topics_);
  if (config_.cluster_mode()) {
    // The coordinator of a group is the leader of its __consumer_offsets
    // partition: loaded when this broker becomes its leader, dropped when it
    // stops; writes are acks=all (docs/consumer-groups.md).
    group_options.follow_leadership = true;
    group_options.min_insync_replicas = [this] {
      return min_insync_replicas(*this, coordinator::kOffsetsTopic);
    };
  }
  groups_ = std::make_unique<coordinator::GroupCoordinator>(*logs_, std::move(group_options));
  if (config_.cluster_mode()) {
    replicas_->add_role_change_listener(
        [this](std::shared_ptr<replication::Partition> partition, replication::Role role) {
          if (partition->topic() != coordinator::kOffsetsTopic) return;
          if (role == replication::Role::leader) {
            groups_->became_leader(std::move(partition));
          } else {
            groups_->became_follower(partition);
          }
        });
    // Leaderships taken before the listener existed (none while the lifecycle
    // is held, which it is until this broker is unfenced).
    for (const auto& partition : replicas_->all()) {
      if (partition->topic() == coordinator::kOffsetsTopic &&
          partition->role() == replication::Role::leader) {
        groups_->became_leader(partition);
      }
    }
  }
  groups_->start();
  lifecycle_->add_topic_deleted_listener(
      [this](const std::string& topic) { groups_->remove_offsets_of_topic(topic); });
  if (auto txns = start_transaction_coordinator(); !txns) return txns.error();
  lifecycle_->add_topic_deleted_listener(
      [this](const std::string& topic) { metrics_->remove_topic(topic); });

  if (config_.cluster_mode()) {
    cluster::ControllerServiceOptions controller_options;
    controller_options.node_id = config_.node_id;
    controller_options.config.session_timeout_ms = config_.broker_session_timeout_ms;
    controller_options.config.unclean_leader_election = config_.unclean_leader_election_enable;
    for (const auto& voter : config_.controller_quorum_voters) {
      controller_options.voter_ids.push_back(voter.id);
    }
    controller_options.scram_bootstrap = scram_bootstrap_;
    controller_options.add_standby = [raft = raft_.get()](
                                         int32_t id, std::string address,
                                         std::function<void(Result<void, metadata::Errc>)> done) {
      raft->add_standby(id, std::move(address), std::move(done));
    };
    controller_ = std::make_unique<cluster::ControllerService>(
        *raft_, [raft = raft_.get()] { return raft->status(); }, controller_options);
    controller_->start();
  }

  metrics_->add_broker_collectors(*this);
  network_->start();
  if (config_.cluster_mode()) start_registration();
  HF_INFO("holdfast node {} of cluster {} listening on {}:{} (advertised as {}:{}), data in {}, "
          "flush.policy={}",
          config_.node_id, identity_.cluster_id, config_.listen_host, network_->port(),
          config_.effective_advertise_host(), advertised_port(),
          config_.data_dir, config_.effective_flush_policy().to_string());
  return {};
}

Result<void, StartupErrc> Broker::start_transaction_coordinator() {
  const std::string topic = coordinator::kTransactionStateTopic;
  // As __consumer_offsets: created here on a single node, through the
  // controller by the first FindCoordinator in a cluster.
  if (!config_.cluster_mode()) {
    if (auto made = topics_->ensure_transaction_state_topic(); !made.ok()) {
      return make_error(StartupErrc::failed, "creating " + topic + ": " + made.message);
    }
  }
  coordinator::TxnCoordinatorOptions o;
  const auto* info = topics_->image()->find_topic(topic);
  o.num_partitions = info ? info->partition_count : config_.transaction_state_log_num_partitions;
  o.max_timeout_ms = config_.transaction_max_timeout_ms;
  o.abort_check_interval_ms = config_.transaction_abort_timed_out_check_interval_ms;
  o.id_expiration_ms = config_.transactional_id_expiration_ms;
  o.expiration_check_interval_ms = config_.transaction_expired_id_check_interval_ms;
  o.min_insync_replicas = [this, topic] { return min_insync_replicas(*this, topic); };
  o.next_producer_id = [this]() -> Result<int64_t, std::string> {
    auto id = producer_ids_->next_producer_id();
    if (!id) return make_error(id.error().message);
    return *id;
  };
  net::KafkaClientOptions client_options;
  client_options.client_id = "holdfast-txn-markers-" + std::to_string(config_.node_id);
  client_options.thread_name = "hf-txn-markers";
  client_options.request_timeout = std::chrono::milliseconds(30000);
  if (auto secured = secure_client_options(config_, client_options); !secured) {
    return make_error(StartupErrc::failed, secured.error().message);
  }
  txn_client_ = std::make_unique<net::KafkaClient>(client_options);
  txn_markers_ = std::make_unique<KafkaTxnMarkerSender>(*this, *txn_client_);
  txns_ = std::make_unique<coordinator::TxnCoordinator>(std::move(o), *txn_markers_);
  // The coordinator of a transactional id is the leader of its partition:
  // loaded when this broker becomes its leader, dropped when it stops. On a
  // single node this broker leads every partition from the start.
  replicas_->add_role_change_listener(
      [this](std::shared_ptr<replication::Partition> partition, replication::Role role) {
        if (partition->topic() != coordinator::kTransactionStateTopic) return;
        if (role == replication::Role::leader) {
          txns_->became_leader(std::move(partition));
        } else {
          txns_->became_follower(partition);
        }
      });
  for (const auto& partition : replicas_->all()) {
    if (partition->topic() == topic && partition->role() == replication::Role::leader) {
      txns_->became_leader(partition);
    }
  }
  txns_->start();
  return {};
}

std::optional<net::Endpoint> Broker::controller_endpoint() {
  const int32_t leader = active_controller_id();
  if (leader < 0) return std::nullopt;
  auto address = cluster::broker_address(*this, *metadata_log_->current(), leader);
  if (!address) return std::nullopt;
  return net::Endpoint{address->host, static_cast<uint16_t>(address->port)};
}

void Broker::start_registration() {
  cluster::RegistrarOptions options;
  options.node_id = config_.node_id;
  options.cluster_id = identity_.cluster_id;
  // Every client listener under its name, the inter-broker one first (the
  // others dial a broker's first endpoint; cluster_view.h).
  std::vector<std::string> names{inter_broker_listener_.empty() ? config_.listen_name
                                                                : inter_broker_listener_};
  if (config_.listen_name != names.front()) names.push_back(config_.listen_name);
  for (const auto& l : config_.extra_client_listeners) {
    if (l.name != names.front()) names.push_back(l.name);
  }
  for (const std::string& name : names) {
    if (auto advertised = advertised_listener(name)) {
      options.endpoints.push_back({name, advertised->host, advertised->port});
    }
  }
  options.endpoints.push_back(
      {cluster::kControllerListener,
       config_.controller_advertise_host.empty() ? config_.controller_listen_host
                                                 : config_.controller_advertise_host,
       config_.controller_advertise_port != 0 ? config_.controller_advertise_port
                                              : config_.controller_listen_port});
  options.rack = config_.broker_rack;
  options.heartbeat_interval = std::chrono::milliseconds(config_.broker_heartbeat_interval_ms);
  // A broker-only node that has not joined the metadata quorum yet knows no
  // controller: it registers through holdfast.broker.bootstrap.servers (in
  // turn), and any broker there forwards the registration to the controller,
  // which adds it to the Raft configuration.
  auto bootstrap = config_.broker_bootstrap_servers;
  auto next_bootstrap = std::make_shared<size_t>(0);
  auto controller = [this, bootstrap, next_bootstrap]() -> std::optional<net::Endpoint> {
    if (auto endpoint = controller_endpoint()) return endpoint;
    if (bootstrap.empty()) return std::nullopt;
    const auto& server = bootstrap[(*next_bootstrap)++ % bootstrap.size()];
    return net::Endpoint{server.first, server.second};
  };
  auto applied = [this] { return metadata_log_->current()->last_record_index; };
  options.session_timeout = std::chrono::milliseconds(config_.broker_session_timeout_ms);
  options.controller_id = [this] { return active_controller_id(); };
  options.image_unfenced = [this](int64_t epoch) {
    const auto image = metadata_log_->current();
    const auto* self = image->find_broker(config_.node_id);
    return self != nullptr && self->epoch == epoch && !self->fenced;
  };
  options.on_unfenced = [this] { lifecycle_->caught_up(); };
  // Fenced again (the controller says so, or none answered for a session):
  // stop leading until unfenced (PartitionLifecycle::hold).
  options.on_fenced = [this] { lifecycle_->hold(); };
  registrar_ = std::make_unique<cluster::BrokerRegistrar>(*client_, std::move(options), controller,
                                                          applied);
  registrar_->start();
}

void Broker::run_until_signalled() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (power_loss_handler_) sigaddset(&signals, SIGUSR1);
  int received = 0;
  for (;;) {
    sigwait(&signals, &received);
    if (received != SIGUSR1) break;
    HF_WARN("received SIGUSR1: simulating a power loss (fault injection)");
    power_loss_handler_();  // does not return in practice
  }
  HF_INFO("received {}, shutting down", received == SIGTERM ? "SIGTERM" : "SIGINT");
  shutdown();
}

void Broker::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  if (before_shutdown_) before_shutdown_();
  stopping_ = true;
  constexpr auto kGrace = std::chrono::milliseconds(5000);
  stage_ = Stage::draining;
  // 1. No new connections, no new requests.
  if (network_) network_->stop_accepting();
  // Cluster: no more heartbeats (the controller fences this broker after its
  // session), no more controller decisions here, and forwarded requests in
  // flight fail now rather than at the grace deadline.
  if (registrar_) registrar_->stop();
  if (controller_) controller_->stop();
  // No follower appends and no ISR proposals once the logs start closing.
  if (replication_) replication_->stop();
  if (client_) client_->shutdown();
  // 2. Answer what waits on something other than the disk: long-poll fetches,
  // joins and syncs waiting for other members.
  fetch_waiters_.notify_all();
  if (groups_) groups_->shutdown();
  // Marker sends in flight fail now (they are resent by whoever loads the
  // Prepare record next).
  if (txns_) txns_->shutdown();
  if (txn_client_) txn_client_->shutdown();
  // 3. Let in-flight requests finish normally (produces and commits waiting
  // for their fsync), bounded.
  if (network_) network_->wait_idle(kGrace);
  // 4. Pause the network threads: nothing appends while the logs close, and
  // the executors (with the coroutines waiting on them) stay alive.
  if (network_) network_->pause();
  // 5. Close the logs: every remaining durability waiter completes (flushed)
  // or fails (closed); its resumption queues on a paused executor. The
  // lifecycle stops first: no partition is created or removed meanwhile.
  stage_ = Stage::closing_logs;
  if (lifecycle_) lifecycle_->stop();
  if (logs_) {
    auto closed = logs_->shutdown();
    if (!closed) {
      HF_ERROR("shutdown: flushing logs failed: {}; the next start will run recovery",
               closed.error().message);
    } else {
      HF_INFO("shutdown: logs flushed and closed");
    }
  }
  // acks=all produces still waiting for followers are answered (failed) now,
  // while the executors they resume on still exist.
  if (replicas_) replicas_->close_all();
  // 6. Run the network threads again so those answers go out, then close the
  // connections, join the threads and destroy the executors.
  stage_ = Stage::closing_network;
  if (network_) network_->stop(kGrace);
  network_.reset();
  // The metadata quorum member last: appends still waiting fail with
  // shut_down / unknown_outcome.
  if (raft_) raft_->stop();
  // 7. Only now may another process have the directory.
  data_dir_lock_.release();
  stage_ = Stage::stopped;
}

}  // namespace holdfast::server
