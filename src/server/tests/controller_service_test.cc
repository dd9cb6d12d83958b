// The controller service over a local metadata log with a scripted Raft
// status: it answers only as the ready leader, appends what the controller
// decides (registration, unfencing, fencing on its tick), and the handler
// boundary maps its failures to Kafka errors. Also the cluster identity.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "io/posix_file_system.h"
#include "metadata/metadata_store.h"
#include "server/cluster/cluster_errors.h"
#include "server/cluster/cluster_identity.h"
#include "server/cluster/controller_service.h"

namespace holdfast::server::cluster {
namespace {

template <typename T, typename Start>
T wait_for(Start start) {
  std::promise<T> promise;
  auto future = promise.get_future();
  start([&promise](T value) { promise.set_value(std::move(value)); });
  return future.get();
}

template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class ControllerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-ctrl-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = metadata::MetadataStore::open(fs_, dir_.string(), 1);
    ASSERT_TRUE(store) << store.error().message;
    log_ = std::move(*store);
    ControllerServiceOptions options;
    options.node_id = 1;
    options.config.session_timeout_ms = 300;
    options.tick_interval = std::chrono::milliseconds(10);
    service_ = std::make_unique<ControllerService>(
        *log_, [this] { return status(); }, options);
    service_->start();
  }
  void TearDown() override {
    service_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  metadata::RaftStatus status() const {
    metadata::RaftStatus s;
    s.role = leader_.load() ? metadata::RaftRole::leader : metadata::RaftRole::follower;
    s.leader_id = leader_.load() ? 1 : 2;
    s.term = 3;
    s.leader_ready = leader_.load();
    return s;
  }

  ServiceResult<int64_t> register_broker(int32_t node) {
    controller::BrokerRegistrationRequest request;
    request.node_id = node;
    request.incarnation = metadata::random_id();
    request.endpoints = {{"PLAINTEXT", "127.0.0.1", 9000 + node}};
    return wait_for<ServiceResult<int64_t>>(
        [&](auto done) { service_->register_broker(request, done); });
  }
  ServiceResult<controller::HeartbeatOutcome> heartbeat(int32_t node, int64_t epoch) {
    controller::HeartbeatRequest request{node, epoch, log_->current()->last_record_index};
    return wait_for<ServiceResult<controller::HeartbeatOutcome>>(
        [&](auto done) { service_->heartbeat(request, done); });
  }

  std::filesystem::path dir_;
  io::PosixFileSystem fs_;
  std::unique_ptr<metadata::MetadataStore> log_;
  std::atomic<bool> leader_{true};
  std::unique_ptr<ControllerService> service_;
};

TEST_F(ControllerServiceTest, AnswersOnlyAsTheReadyLeader) {
  leader_ = false;
  EXPECT_FALSE(service_->active());
  EXPECT_EQ(service_->active_controller_id(), 2);
  auto refused = register_broker(5);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code().kind, ServiceErrc::not_controller);
  EXPECT_EQ(to_kafka_error(refused.code()), KafkaError::not_controller);
  EXPECT_EQ(log_->current()->find_broker(5), nullptr);

  leader_ = true;
  EXPECT_TRUE(service_->active());
  auto registered = register_broker(5);
  ASSERT_TRUE(registered) << registered.error().message;
  EXPECT_EQ(*registered, 1);
  const auto* broker = log_->current()->find_broker(5);
  ASSERT_NE(broker, nullptr);
  EXPECT_TRUE(broker->fenced);  // registered fenced
}

TEST_F(ControllerServiceTest, HeartbeatUnfencesThenSilenceFences) {
  auto registered = register_broker(5);
  ASSERT_TRUE(registered) << registered.error().message;
  auto beat = heartbeat(5, *registered);
  ASSERT_TRUE(beat) << beat.error().message;
  EXPECT_FALSE(beat->fenced);
  EXPECT_FALSE(log_->current()->find_broker(5)->fenced);
  // No more heartbeats: the tick fences it after the session timeout.
  EXPECT_TRUE(eventually([&] { return log_->current()->find_broker(5)->fenced; }));
}

TEST_F(ControllerServiceTest, HeartbeatWithAStaleEpochIsRefused) {
  auto registered = register_broker(5);
  ASSERT_TRUE(registered);
  auto stale = heartbeat(5, *registered - 1);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.code().kind, ServiceErrc::rejected);
  EXPECT_EQ(to_kafka_error(stale.code()), KafkaError::stale_broker_epoch);
  auto unknown = heartbeat(6, 1);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(to_kafka_error(unknown.code()), KafkaError::broker_id_not_registered);
}

TEST(ClusterErrors, EveryFailureHasItsKafkaError) {
  using controller::Errc;
  auto rejected = [](Errc e) { return to_kafka_error({ServiceErrc::rejected, e}); };
  EXPECT_EQ(to_kafka_error({ServiceErrc::not_controller, {}}), KafkaError::not_controller);
  EXPECT_EQ(to_kafka_error({ServiceErrc::timed_out, {}}), KafkaError::request_timed_out);
  EXPECT_EQ(rejected(Errc::invalid_replication_factor), KafkaError::invalid_replication_factor);
  EXPECT_EQ(rejected(Errc::duplicate_broker_registration),
            KafkaError::duplicate_broker_registration);
  EXPECT_EQ(rejected(Errc::broker_id_not_registered), KafkaError::broker_id_not_registered);
  EXPECT_EQ(rejected(Errc::stale_broker_epoch), KafkaError::stale_broker_epoch);
  EXPECT_EQ(rejected(Errc::fenced_leader_epoch), KafkaError::fenced_leader_epoch);
  EXPECT_EQ(rejected(Errc::not_leader), KafkaError::invalid_request);
  EXPECT_EQ(rejected(Errc::invalid_update_version), KafkaError::invalid_update_version);
  EXPECT_EQ(rejected(Errc::ineligible_replica), KafkaError::ineligible_replica);
  EXPECT_EQ(code(KafkaError::ineligible_replica), 107);
  EXPECT_EQ(code(KafkaError::duplicate_broker_registration), 101);
}

TEST(ClusterIdentity, DerivedFromTheVotersUnlessGiven) {
  BrokerConfig a;
  a.node_id = 1;
  ASSERT_TRUE(apply_setting(a, "controller.quorum.voters",
                            "1@127.0.0.1:19001,2@127.0.0.1:19002,3@127.0.0.1:19003"));
  BrokerConfig b = a;
  b.node_id = 2;
  // Every node of one voter set derives the same id, whatever its node id.
  EXPECT_EQ(configured_cluster_id(a), configured_cluster_id(b));
  EXPECT_EQ(configured_cluster_id(a).size(), 22u);
  BrokerConfig other = a;
  ASSERT_TRUE(apply_setting(other, "controller.quorum.voters", "1@127.0.0.1:19001,2@127.0.0.1:19009"));
  EXPECT_NE(configured_cluster_id(a), configured_cluster_id(other));
  ASSERT_TRUE(apply_setting(a, "cluster.id", "my-cluster"));
  EXPECT_EQ(configured_cluster_id(a), "my-cluster");
  // A single node without cluster.id accepts whatever its directory has.
  BrokerConfig single;
  EXPECT_EQ(configured_cluster_id(single), "");
  EXPECT_EQ(cluster_id_mismatch(single, "anything"), "");
}

TEST(ClusterIdentity, AnotherClustersDirectoryIsRefusedNamingTheSetting) {
  BrokerConfig config;
  config.node_id = 1;
  ASSERT_TRUE(apply_setting(config, "controller.quorum.voters", "1@127.0.0.1:19001,2@127.0.0.1:19002"));
  EXPECT_EQ(cluster_id_mismatch(config, configured_cluster_id(config)), "");
  auto message = cluster_id_mismatch(config, "someone-elses");
  EXPECT_NE(message.find("someone-elses"), std::string::npos) << message;
  EXPECT_NE(message.find("cluster.id"), std::string::npos) << message;
  EXPECT_NE(message.find("controller.quorum.voters"), std::string::npos) << message;
}

}  // namespace
}  // namespace holdfast::server::cluster
