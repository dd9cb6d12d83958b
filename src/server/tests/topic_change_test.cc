// Topic changes (CreateTopics, CreatePartitions, DeleteTopics, AlterConfigs)
// wait for their metadata record without blocking the network thread: while
// a commit is held back (a Raft quorum that is gone, here a test hook), the
// same thread keeps serving every other connection.
#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <vector>

#include "server/broker.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using namespace std::chrono_literals;
using testing::TestClient;

// Metadata appends the test holds back and releases.
class HeldAppends {
 public:
  void hold(std::function<void()> proceed) {
    std::lock_guard lock(mu_);
    held_.push_back(std::move(proceed));
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  void release_all() {
    std::vector<std::function<void()>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& proceed : held) proceed();
  }

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> held_;
};

class TopicChangeTest : public testing::BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override {
    // One network thread: a handler that blocks it stalls every connection.
    config.num_network_threads = 1;
    config.offsets_topic_num_partitions = 1;
  }
  void after_start() override {
    held_ = std::make_shared<HeldAppends>();
    std::weak_ptr<HeldAppends> weak = held_;
    broker_->topics().set_append_hook_for_testing([weak](std::function<void()> proceed) {
      if (auto held = weak.lock()) held->hold(std::move(proceed));
    });
  }
  void TearDown() override {
    held_->release_all();  // nothing stays in flight into the shutdown
    BrokerFixture::TearDown();
  }

  static protocol::CreateTopicsRequest create_request(const std::string& name) {
    protocol::CreateTopicsRequest request;
    auto& t = request.topics.emplace_back();
    t.name = name;
    t.num_partitions = 2;
    t.replication_factor = 1;
    request.timeout_ms = 30000;
    return request;
  }

  std::shared_ptr<HeldAppends> held_;
};

TEST_F(TopicChangeTest, TheNetworkThreadServesOtherConnectionsWhileACreateTopicsWaitsForItsCommit) {
  TestClient creator(port());
  TestClient other(port());
  const int32_t corr = creator.send(create_request("waiting"), 4);
  ASSERT_TRUE(eventually([&] { return held_->count() == 1; }));

  // The only network thread answers another connection while the create waits.
  protocol::ApiVersionsRequest versions;
  versions.client_software_name = "test";
  versions.client_software_version = "1";
  auto answer =
      other.call<protocol::ApiVersionsRequest, protocol::ApiVersionsResponse>(versions, 3);
  EXPECT_EQ(answer.error_code, 0);
  protocol::MetadataRequest metadata;
  metadata.topics.emplace();  // no topics: brokers only
  auto brokers = other.call<protocol::MetadataRequest, protocol::MetadataResponse>(metadata, 9);
  EXPECT_EQ(brokers.brokers.size(), 1u);
  // ... and the create is still waiting for its commit, unanswered.
  EXPECT_FALSE(creator.read_frame(0ms).has_value());
  EXPECT_EQ(broker_->topics().image()->find_topic("waiting"), nullptr);

  held_->release_all();
  auto created = creator.receive<protocol::CreateTopicsResponse>(
      protocol::CreateTopicsRequest::kApiKey, 4, corr);
  ASSERT_EQ(created.topics.size(), 1u);
  EXPECT_EQ(created.topics[0].error_code, 0) << created.topics[0].error_message.value_or("");
  EXPECT_NE(broker_->topics().image()->find_topic("waiting"), nullptr);
  // Answered once the partitions exist: a produce right after finds them.
  EXPECT_NE(broker_->replicas().get("waiting", 1), nullptr);
}

// Changes stay serialised: a second create of the same name, sent while the
// first one's record is held, is checked against the image that has the
// first, and so is refused as TOPIC_ALREADY_EXISTS (not a stale "ok").
TEST_F(TopicChangeTest, ChangesQueuedBehindAHeldOneSeeItsOutcome) {
  TestClient first(port());
  TestClient second(port());
  const int32_t corr1 = first.send(create_request("twice"), 4);
  ASSERT_TRUE(eventually([&] { return held_->count() == 1; }));
  const int32_t corr2 = second.send(create_request("twice"), 4);
  held_->release_all();
  auto one = first.receive<protocol::CreateTopicsResponse>(protocol::CreateTopicsRequest::kApiKey,
                                                           4, corr1);
  ASSERT_EQ(one.topics.size(), 1u);
  EXPECT_EQ(one.topics[0].error_code, 0) << one.topics[0].error_message.value_or("");
  auto two = second.receive<protocol::CreateTopicsResponse>(
      protocol::CreateTopicsRequest::kApiKey, 4, corr2);
  ASSERT_EQ(two.topics.size(), 1u);
  EXPECT_EQ(two.topics[0].error_code, code(KafkaError::topic_already_exists));
}

}  // namespace
}  // namespace holdfast::server
