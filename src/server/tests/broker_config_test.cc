#include "server/broker_config.h"

#include <gtest/gtest.h>

namespace holdfast::server {
namespace {

TEST(BrokerConfig, DefaultsAreDurableAndKafkaLike) {
  BrokerConfig c;
  EXPECT_EQ(c.num_partitions, 4);
  EXPECT_TRUE(c.auto_create_topics);
  EXPECT_EQ(c.effective_flush_policy().kind, FlushPolicyKind::always);
  EXPECT_EQ(c.listen_port, 9092);
}

TEST(BrokerConfig, ParsesPropertiesWithCommentsAndBothSeparators) {
  auto parsed = parse_properties("# comment\n! also\n\nnum.partitions = 7\nlog.dirs: /tmp/x\n");
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].first, "num.partitions");
  EXPECT_EQ((*parsed)[0].second, "7");
  EXPECT_EQ((*parsed)[1].second, "/tmp/x");
}

TEST(BrokerConfig, UnknownKeyIsAnErrorNamingTheKey) {
  BrokerConfig c;
  auto r = apply_setting(c, "num.partitionz", "3");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), ConfigErrc::unknown_key);
  EXPECT_NE(r.error().message.find("num.partitionz"), std::string::npos);
}

TEST(BrokerConfig, InvalidValuesAreErrorsNamingTheKey) {
  BrokerConfig c;
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"num.partitions", "zero"},
           {"num.partitions", "0"},
           {"auto.create.topics.enable", "yes"},
           {"flush.policy", "sometimes"},
           {"flush.policy", "interval:"},
           {"flush.policy", "interval:-5"},
           {"listeners", "nohost"},
           {"log.segment.bytes", "12"},
           {"socket.request.max.bytes", "99999999999"},
       }) {
    auto r = apply_setting(c, key, value);
    ASSERT_FALSE(r) << key << "=" << value;
    EXPECT_EQ(r.code(), ConfigErrc::invalid_value);
    EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error().message;
  }
}

TEST(BrokerConfig, FlushPolicies) {
  BrokerConfig c;
  ASSERT_TRUE(apply_setting(c, "flush.policy", "interval:250"));
  EXPECT_EQ(c.effective_flush_policy().kind, FlushPolicyKind::interval);
  EXPECT_EQ(c.effective_flush_policy().interval_ms, 250);
  EXPECT_EQ(c.effective_flush_policy().to_string(), "interval:250");
  ASSERT_TRUE(apply_setting(c, "flush.policy", "never"));
  EXPECT_EQ(c.effective_flush_policy().kind, FlushPolicyKind::never);

  // Kafka's log.flush.interval.ms selects the interval policy unless
  // flush.policy is given explicitly.
  BrokerConfig k;
  ASSERT_TRUE(apply_setting(k, "log.flush.interval.ms", "100"));
  EXPECT_EQ(k.effective_flush_policy().kind, FlushPolicyKind::interval);
  ASSERT_TRUE(apply_setting(k, "flush.policy", "always"));
  EXPECT_EQ(k.effective_flush_policy().kind, FlushPolicyKind::always);
}

TEST(BrokerConfig, ListenersAndRetentionUnits) {
  BrokerConfig c;
  ASSERT_TRUE(apply_setting(c, "listeners", "PLAINTEXT://127.0.0.1:19092"));
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 19092);
  // Any listener name parses; its security protocol comes from its name or
  // listener.security.protocol.map (TLS ones are refused when the broker
  // starts, since TLS is not built).
  ASSERT_TRUE(apply_setting(c, "listeners",
                            "PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19093,"
                            "CLIENT://127.0.0.1:19094"));
  EXPECT_FALSE(client_listeners(c));  // CLIENT has no protocol yet
  ASSERT_TRUE(apply_setting(c, "listener.security.protocol.map", "CLIENT:SASL_PLAINTEXT"));
  auto listeners = client_listeners(c);
  ASSERT_TRUE(listeners) << listeners.error().message;
  ASSERT_EQ(listeners->size(), 3u);
  EXPECT_EQ((*listeners)[0].protocol, SecurityProtocol::plaintext);
  EXPECT_EQ((*listeners)[1].protocol, SecurityProtocol::sasl_plaintext);
  EXPECT_EQ((*listeners)[2].protocol, SecurityProtocol::sasl_plaintext);
  EXPECT_EQ((*listeners)[2].address.port, 19094);
  EXPECT_FALSE(apply_setting(c, "listener.security.protocol.map", "CLIENT:TLS"));
  ASSERT_TRUE(apply_setting(c, "listeners", "SSL://127.0.0.1:1"));
  EXPECT_EQ(client_listeners(c)->front().protocol, SecurityProtocol::ssl);
  ASSERT_TRUE(apply_setting(c, "listeners", "PLAINTEXT://127.0.0.1:19092"));
  ASSERT_TRUE(apply_setting(c, "advertised.listeners", "broker.example:9000"));
  EXPECT_EQ(c.effective_advertise_host(), "broker.example");
  EXPECT_EQ(c.effective_advertise_port(), 9000);
  ASSERT_TRUE(apply_setting(c, "log.retention.hours", "2"));
  EXPECT_EQ(c.log_retention_ms, 2 * 3600 * 1000);
  auto v6 = parse_host_port("[::1]:9092");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->first, "::1");
}


// --- cluster settings (issue 9) -------------------------------------------

BrokerConfig with(const std::vector<std::pair<std::string, std::string>>& settings) {
  BrokerConfig c;
  for (const auto& [key, value] : settings) {
    auto applied = apply_setting(c, key, value);
    EXPECT_TRUE(applied) << key << "=" << value << ": " << applied.error().message;
  }
  return c;
}

// validate_cluster_settings refuses `c`, naming `setting`.
void expect_refused(const BrokerConfig& c, const std::string& setting) {
  auto valid = validate_cluster_settings(c);
  ASSERT_FALSE(valid) << "accepted; expected an error naming " << setting;
  EXPECT_NE(valid.error().message.find(setting), std::string::npos) << valid.error().message;
}

const std::vector<std::pair<std::string, std::string>> kNode2Of3 = {
    {"node.id", "2"},
    {"controller.quorum.voters", "1@10.0.0.1:9093,2@10.0.0.2:9093,3@10.0.0.3:9093"},
    {"listeners", "PLAINTEXT://:9092,CONTROLLER://10.0.0.2:9093"},
    {"advertised.listeners", "PLAINTEXT://b2.example:9092"},
};

TEST(BrokerConfig, AdvertisedListenersAreMatchedToListenersByName) {
  BrokerConfig c;
  // The order differs from listeners: each entry goes to its own listener.
  ASSERT_TRUE(apply_setting(c, "advertised.listeners",
                            "EXTERNAL://public.example:19093,INTERNAL://10.0.0.1:9092"));
  ASSERT_TRUE(apply_setting(c, "listeners",
                            "INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9093"));
  ASSERT_TRUE(apply_setting(c, "listener.security.protocol.map",
                            "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL"));
  EXPECT_TRUE(client_listeners(c));
  EXPECT_EQ(c.effective_advertise_host(), "10.0.0.1");
  EXPECT_EQ(c.effective_advertise_port(), 9092);
  ASSERT_NE(c.advertised_entry("EXTERNAL"), nullptr);
  EXPECT_EQ(c.advertised_entry("EXTERNAL")->host, "public.example");
  EXPECT_EQ(c.advertised_entry("EXTERNAL")->port, 19093);
  // An unnamed entry (--advertise HOST:PORT) is the first listener's.
  ASSERT_TRUE(apply_setting(c, "advertised.listeners", "first.example:9000"));
  EXPECT_EQ(c.effective_advertise_host(), "first.example");
  EXPECT_EQ(c.advertised_entry("EXTERNAL"), nullptr);
  // A listener without an entry is told its configured address.
  ASSERT_TRUE(apply_setting(c, "advertised.listeners", "EXTERNAL://public.example:19093"));
  EXPECT_EQ(c.effective_advertise_host(), "0.0.0.0");
  EXPECT_EQ(c.effective_advertise_port(), 9092);
  // Kafka's rule: an advertised listener must be one of listeners.
  ASSERT_TRUE(apply_setting(c, "advertised.listeners", "OTHER://public.example:1"));
  auto refused = client_listeners(c);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("advertised.listeners: OTHER://"), std::string::npos)
      << refused.error().message;
}

TEST(ClusterConfig, AThreeNodeConfigIsAClusterWithSafeDefaults) {
  BrokerConfig c = with(kNode2Of3);
  EXPECT_TRUE(c.cluster_mode());
  EXPECT_TRUE(validate_cluster_settings(c)) << validate_cluster_settings(c).error().message;
  EXPECT_TRUE(c.controller_role);
  ASSERT_EQ(c.controller_quorum_voters.size(), 3u);
  EXPECT_EQ(c.controller_quorum_voters[1].address, "10.0.0.2:9093");
  EXPECT_EQ(c.listen_host, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 9092);
  EXPECT_EQ(c.controller_listen_host, "10.0.0.2");
  EXPECT_EQ(c.controller_listen_port, 9093);
  EXPECT_EQ(c.effective_advertise_host(), "b2.example");
  EXPECT_EQ(c.effective_default_replication_factor(), 3);
  EXPECT_EQ(c.effective_min_insync_replicas(), 2);
  EXPECT_EQ(c.effective_offsets_topic_replication_factor(), 3);
  EXPECT_EQ(c.broker_session_timeout_ms, 9000);
  EXPECT_EQ(c.broker_heartbeat_interval_ms, 2000);
  EXPECT_EQ(c.replica_lag_time_max_ms, 30000);
  EXPECT_FALSE(c.unclean_leader_election_enable);
  EXPECT_TRUE(settings_without_effect(c).empty());
}

TEST(ClusterConfig, AControllerListenerWithoutVotersIsRefused) {
  BrokerConfig c = with({{"listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"}});
  auto valid = validate_cluster_settings(c);
  ASSERT_FALSE(valid);
  EXPECT_NE(valid.error().message.find("controller.quorum.voters"), std::string::npos)
      << valid.error().message;
}

TEST(ClusterConfig, ExplicitValuesOverrideTheClusterDefaults) {
  auto settings = kNode2Of3;
  settings.insert(settings.end(), {{"default.replication.factor", "2"},
                                   {"min.insync.replicas", "1"},
                                   {"offsets.topic.replication.factor", "2"},
                                   {"broker.rack", "eu-1a"},
                                   {"broker.session.timeout.ms", "12000"},
                                   {"broker.heartbeat.interval.ms", "3000"},
                                   {"replica.lag.time.max.ms", "10000"},
                                   {"unclean.leader.election.enable", "true"}});
  BrokerConfig c = with(settings);
  EXPECT_TRUE(validate_cluster_settings(c));
  EXPECT_EQ(c.effective_default_replication_factor(), 2);
  EXPECT_EQ(c.effective_min_insync_replicas(), 1);
  EXPECT_EQ(c.effective_offsets_topic_replication_factor(), 2);
  EXPECT_EQ(c.broker_rack, "eu-1a");
  EXPECT_EQ(c.broker_session_timeout_ms, 12000);
  EXPECT_EQ(c.broker_heartbeat_interval_ms, 3000);
  EXPECT_EQ(c.replica_lag_time_max_ms, 10000);
  EXPECT_TRUE(c.unclean_leader_election_enable);
}

TEST(ClusterConfig, TodaysSingleNodeConfigsStayValidWithTodaysDefaults) {
  BrokerConfig plain;
  EXPECT_FALSE(plain.cluster_mode());
  EXPECT_TRUE(validate_cluster_settings(plain));
  EXPECT_EQ(plain.effective_default_replication_factor(), 1);
  EXPECT_EQ(plain.effective_min_insync_replicas(), 1);
  EXPECT_EQ(plain.effective_offsets_topic_replication_factor(), 1);
  // Kafka's stock single-node KRaft file: one voter, this node. A single node;
  // the cluster settings are listed as having no effect.
  BrokerConfig kraft = with({{"process.roles", "broker,controller"},
                             {"node.id", "1"},
                             {"controller.quorum.voters", "1@localhost:9093"},
                             {"listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"},
                             {"offsets.topic.replication.factor", "1"}});
  EXPECT_FALSE(kraft.cluster_mode());
  EXPECT_TRUE(validate_cluster_settings(kraft)) << validate_cluster_settings(kraft).error().message;
  EXPECT_EQ(settings_without_effect(kraft),
            (std::vector<std::string>{"process.roles", "controller.quorum.voters",
                                      "offsets.topic.replication.factor"}));
  // And so without its CONTROLLER listener (serve --listen replaces listeners).
  BrokerConfig listen_override = kraft;
  ASSERT_TRUE(apply_setting(listen_override, "listeners", "127.0.0.1:19092"));
  EXPECT_EQ(listen_override.controller_listen_port, 0);
  EXPECT_TRUE(validate_cluster_settings(listen_override));
}

TEST(ClusterConfig, ABrokerOnlyNodeNeedsVoters) {
  expect_refused(with({{"process.roles", "broker"}}), "process.roles");
  const std::vector<std::pair<std::string, std::string>> node4 = {
      {"process.roles", "broker"},
      {"node.id", "4"},
      {"controller.quorum.voters", "1@h1:9093,2@h2:9093,3@h3:9093"},
      {"listeners", "PLAINTEXT://:9092,CONTROLLER://h4:9093"},
      {"holdfast.broker.bootstrap.servers", "h1:9092,h2:9092"}};
  BrokerConfig follower = with(node4);
  EXPECT_TRUE(follower.cluster_mode());
  EXPECT_TRUE(validate_cluster_settings(follower)) << validate_cluster_settings(follower).error().message;
  ASSERT_EQ(follower.broker_bootstrap_servers.size(), 2u);
  EXPECT_EQ(follower.broker_bootstrap_servers[1], (std::pair<std::string, uint16_t>{"h2", 9092}));
  // A broker-only node following a single controller is a cluster too.
  BrokerConfig one_controller = with({{"process.roles", "broker"},
                                      {"node.id", "1"},
                                      {"controller.quorum.voters", "1@h1:9093"}});
  EXPECT_TRUE(one_controller.cluster_mode());
}

TEST(ClusterConfig, ABrokerOnlyNodeIsAStandbyWithARaftListenerAndBootstrapServers) {
  const std::vector<std::pair<std::string, std::string>> node4 = {
      {"process.roles", "broker"},
      {"node.id", "4"},
      {"controller.quorum.voters", "1@h1:9093,2@h2:9093,3@h3:9093"},
      {"listeners", "PLAINTEXT://:9092,CONTROLLER://h4:9093"},
      {"holdfast.broker.bootstrap.servers", "h1:9092"}};
  auto a_voter = node4;
  a_voter[1] = {"node.id", "2"};
  expect_refused(with(a_voter), "node.id 2 is among controller.quorum.voters");
  auto no_raft_listener = node4;
  no_raft_listener[3] = {"listeners", "PLAINTEXT://:9092"};
  expect_refused(with(no_raft_listener), "CONTROLLER");
  auto a_voters_address = node4;
  a_voters_address[3] = {"listeners", "PLAINTEXT://:9092,CONTROLLER://h3:9093"};
  expect_refused(with(a_voters_address), "controller.quorum.voters");
  auto wildcard = node4;
  wildcard[3] = {"listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"};
  expect_refused(with(wildcard), "advertised.listeners");
  wildcard.push_back({"advertised.listeners", "PLAINTEXT://h4:9092,CONTROLLER://h4:9093"});
  EXPECT_TRUE(validate_cluster_settings(with(wildcard)));
  auto no_bootstrap = node4;
  no_bootstrap.pop_back();
  expect_refused(with(no_bootstrap), "holdfast.broker.bootstrap.servers");
  BrokerConfig c;
  EXPECT_FALSE(apply_setting(c, "holdfast.broker.bootstrap.servers", "h1"));
  EXPECT_FALSE(apply_setting(c, "holdfast.broker.bootstrap.servers", ""));
}

TEST(ClusterConfig, MetadataSnapshotSettingsAreChecked) {
  BrokerConfig defaults;
  EXPECT_EQ(defaults.metadata_snapshot_threshold_records, 1024);
  EXPECT_EQ(defaults.metadata_snapshot_trailing_records, 128);
  BrokerConfig small = with({{"holdfast.metadata.snapshot.threshold.records", "16"},
                             {"holdfast.metadata.snapshot.trailing.records", "4"}});
  EXPECT_TRUE(validate_cluster_settings(small));
  EXPECT_EQ(small.metadata_snapshot_threshold_records, 16);
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"holdfast.metadata.snapshot.threshold.records", "0"},
           {"holdfast.metadata.snapshot.trailing.records", "0"},
           {"holdfast.metadata.snapshot.threshold.records", "-5"},
           {"holdfast.metadata.snapshot.threshold.records", "99999999999"},
       }) {
    BrokerConfig c;
    auto r = apply_setting(c, key, value);
    ASSERT_FALSE(r) << key << "=" << value;
    EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error().message;
  }
  expect_refused(with({{"holdfast.metadata.snapshot.threshold.records", "8"},
                       {"holdfast.metadata.snapshot.trailing.records", "9"}}),
                 "holdfast.metadata.snapshot.trailing.records");
}

TEST(ClusterConfig, AControllerMustBeAVoterWithAMatchingControllerListener) {
  auto not_a_voter = kNode2Of3;
  not_a_voter[0] = {"node.id", "5"};
  expect_refused(with(not_a_voter), "node.id 5 is not among controller.quorum.voters");

  auto no_controller_listener = kNode2Of3;
  no_controller_listener[2] = {"listeners", "PLAINTEXT://:9092"};
  expect_refused(with(no_controller_listener), "CONTROLLER");

  auto wrong_port = kNode2Of3;
  wrong_port[2] = {"listeners", "PLAINTEXT://:9092,CONTROLLER://:9095"};
  expect_refused(with(wrong_port), "listeners");

  auto shared_port = kNode2Of3;
  shared_port[2] = {"listeners", "PLAINTEXT://:9093,CONTROLLER://:9093"};
  expect_refused(with(shared_port), "listeners");
}

TEST(ClusterConfig, MalformedOrDuplicateVotersAndRolesAreRefusedNamingTheSetting) {
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"controller.quorum.voters", "1@h1:9093,1@h2:9093"},
           {"controller.quorum.voters", "1@h1:9093,2@h1:9093"},
           {"controller.quorum.voters", "h1:9093"},
           {"controller.quorum.voters", ""},
           {"process.roles", "controller"},
           {"process.roles", "broker,broker"},
           {"process.roles", "broker,zookeeper"},
           {"listeners", "PLAINTEXT://:1,PLAINTEXT://:2"},
           {"listeners", "SSL://:1,SSL://:2"},
           {"listener.security.protocol.map", "CLIENT"},
           {"listeners", "CONTROLLER://:9093"},
           {"default.replication.factor", "0"},
           {"min.insync.replicas", "x"},
           {"unclean.leader.election.enable", "maybe"},
           {"broker.session.timeout.ms", "0"},
       }) {
    BrokerConfig c;
    auto r = apply_setting(c, key, value);
    ASSERT_FALSE(r) << key << "=" << value;
    EXPECT_EQ(r.code(), ConfigErrc::invalid_value);
    EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error().message;
  }
}

TEST(ClusterConfig, TimeoutsAndSingleNodeReplicationAreChecked) {
  expect_refused(with({{"broker.heartbeat.interval.ms", "9000"}}), "broker.heartbeat.interval.ms");
  // Today's rule, now a check across settings: one replica on a single node.
  expect_refused(with({{"default.replication.factor", "3"}}), "default.replication.factor");
  BrokerConfig one = with({{"default.replication.factor", "1"}});
  EXPECT_TRUE(validate_cluster_settings(one));
}

}  // namespace
}  // namespace holdfast::server
