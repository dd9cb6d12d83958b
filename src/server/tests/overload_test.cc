// Overload bounds (issue 11): max.connections and max.connections.per.ip in
// the accept loop, connections.max.idle.ms for idle connections, request
// frames that trickle in, and responses nobody reads.
#include <gtest/gtest.h>

#include <thread>

#include "server/broker.h"
#include "server/connection.h"
#include "server/network_server.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using namespace std::chrono_literals;
using testing::TestClient;
using Refusal = ConnectionLimits::Refusal;

TEST(ConnectionLimitsTest, PerIpLimitThenTotalLimit) {
  auto limits = std::make_shared<ConnectionLimits>(4, 2, std::map<std::string, int32_t>{{"10.0.0.9", 3}});
  auto a1 = limits->admit("10.0.0.1");
  auto a2 = limits->admit("10.0.0.1");
  auto a3 = limits->admit("10.0.0.1");
  ASSERT_TRUE(a1.ticket);
  ASSERT_TRUE(a2.ticket);
  EXPECT_FALSE(a3.ticket);
  EXPECT_EQ(a3.refused, Refusal::max_connections_per_ip);
  EXPECT_EQ(a3.limit, 2);
  EXPECT_EQ(limits->open_from("10.0.0.1"), 2);

  // The override lets 10.0.0.9 have three; the fourth connection overall is
  // the total's last place.
  auto b1 = limits->admit("10.0.0.9");
  auto b2 = limits->admit("10.0.0.9");
  ASSERT_TRUE(b1.ticket);
  ASSERT_TRUE(b2.ticket);
  auto b3 = limits->admit("10.0.0.9");
  EXPECT_FALSE(b3.ticket);
  EXPECT_EQ(b3.refused, Refusal::max_connections);
  EXPECT_EQ(limits->open(), 4);

  // A released place is free again.
  a1.ticket.reset();
  EXPECT_EQ(limits->open(), 3);
  EXPECT_EQ(limits->open_from("10.0.0.1"), 1);
  EXPECT_TRUE(limits->admit("10.0.0.9").ticket);
}

TEST(ConnectionLimitsTest, OverridesParseAndAreApplied) {
  auto parsed = parse_connection_overrides(" 127.0.0.2:5, ::1:7 ,0:0:0:0:0:0:0:2:1");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->at("127.0.0.2"), 5);
  EXPECT_EQ(parsed->at("::1"), 7);
  EXPECT_EQ(parsed->at("::2"), 1);  // printed as asio prints a peer
  EXPECT_FALSE(parse_connection_overrides("broker.example.com:5"));
  EXPECT_FALSE(parse_connection_overrides("127.0.0.1:-1"));
  EXPECT_FALSE(parse_connection_overrides("127.0.0.1"));
  EXPECT_TRUE(parse_connection_overrides(""));

  BrokerConfig config;
  EXPECT_EQ(config.max_connections, 10000);
  EXPECT_EQ(config.connections_max_idle_ms, 600000);
  ASSERT_TRUE(apply_setting(config, "max.connections.per.ip.overrides", "127.0.0.1:3"));
  EXPECT_EQ(config.max_connections_per_ip_overrides.at("127.0.0.1"), 3);
  ASSERT_TRUE(apply_setting(config, "max.connections", "50"));
  ASSERT_TRUE(apply_setting(config, "connections.max.idle.ms", "1000"));
  EXPECT_FALSE(apply_setting(config, "max.connections", "0"));
  EXPECT_FALSE(apply_setting(config, "max.connections.per.ip.overrides", "x:1"));
}

class OverloadTest : public testing::BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override {
    config.connections_max_idle_ms = idle_ms_;
    config.max_connections_per_ip = per_ip_;
  }

  static bool api_versions_answered(TestClient& client) {
    protocol::ApiVersionsRequest request;
    try {
      auto response =
          client.call<protocol::ApiVersionsRequest, protocol::ApiVersionsResponse>(request, 0);
      return response.error_code == 0;
    } catch (const std::exception&) {
      return false;
    }
  }

  const ConnectionCloseCounts& closes() const { return broker_->network()->connection_closes(); }

  int64_t idle_ms_ = 500;
  int32_t per_ip_ = 3;
};

TEST_F(OverloadTest, IdleConnectionIsClosed) {
  TestClient client(port());
  ASSERT_TRUE(api_versions_answered(client));
  EXPECT_TRUE(client.closed_by_peer(10s));
  EXPECT_TRUE(eventually([&] { return closes().idle.load() >= 1; }));
}

TEST_F(OverloadTest, ARequestBeingHandledIsNotIdle) {
  // A long-poll that outlasts connections.max.idle.ms gets its answer.
  TestClient client(port());
  create_topic(client, "t", 1);
  // Wait (bounded) until the partition answers a fetch, on a connection of
  // its own (this one must not sit idle meanwhile).
  ASSERT_TRUE(eventually([&] {
    TestClient probe(port());
    try {
      return probe.fetch_from("t").responses.at(0).partitions.at(0).error_code == 0;
    } catch (const std::exception&) {
      return false;
    }
  }));
  ASSERT_TRUE(api_versions_answered(client));  // still open
  protocol::FetchRequest fetch;
  fetch.replica_id = -1;
  fetch.max_wait_ms = static_cast<int32_t>(idle_ms_ * 4);
  fetch.min_bytes = 1;
  fetch.max_bytes = 1 << 20;
  auto& ft = fetch.topics.emplace_back();
  ft.topic = "t";
  auto& p = ft.partitions.emplace_back();
  p.partition = 0;
  p.fetch_offset = 0;
  p.partition_max_bytes = 1 << 20;
  // Nothing to read: the long-poll waits its whole max_wait_ms, then answers.
  auto response = client.call<protocol::FetchRequest, protocol::FetchResponse>(fetch, 11);
  EXPECT_EQ(response.error_code, 0);
  EXPECT_EQ(response.responses.at(0).partitions.at(0).error_code, 0);
  const auto& records = response.responses.at(0).partitions.at(0).records;
  EXPECT_TRUE(!records || records->empty());
}

TEST_F(OverloadTest, FrameThatTricklesInIsClosed) {
  // A slow-loris client: a size prefix, then a byte every 20 ms, so the
  // connection is never silent for connections.max.idle.ms (500 ms).
  TestClient client(port());
  std::vector<uint8_t> prefix{0, 0, 0x10, 0};  // 4096 bytes announced
  client.send_raw(prefix);
  bool closed = false;
  for (int i = 0; i < 500 && !closed; ++i) {  // at most 4 KiB and 10 s
    try {
      client.send_raw({0});
    } catch (const std::exception&) {
      closed = true;
      break;
    }
    closed = client.closed_by_peer(20ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(closes().slow_request.load(), 1);
  EXPECT_EQ(closes().idle.load(), 0);
}

class PerIpLimitTest : public OverloadTest {
 protected:
  void configure(BrokerConfig& config) override {
    idle_ms_ = 60000;  // nothing closes for idleness during the test
    OverloadTest::configure(config);
  }
};

TEST_F(PerIpLimitTest, ConnectionsOverThePerIpLimitAreClosed) {
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < per_ip_; ++i) {
    clients.push_back(std::make_unique<TestClient>(port()));
    ASSERT_TRUE(api_versions_answered(*clients.back()));
  }
  TestClient excess(port());
  EXPECT_TRUE(excess.closed_by_peer(5s));
  const auto* network = broker_->network();
  EXPECT_EQ(network->connections_refused(Refusal::max_connections_per_ip), 1);
  // One closes: its place is free again (once the broker has seen it go).
  clients.pop_back();
  EXPECT_TRUE(eventually([&] { return network->connection_limits().open() < per_ip_; }));
  TestClient next(port());
  EXPECT_TRUE(api_versions_answered(next));
}

class NoPerIpLimitTest : public PerIpLimitTest {
 protected:
  void configure(BrokerConfig& config) override {
    per_ip_ = INT32_MAX;
    PerIpLimitTest::configure(config);
  }
};

// The control: without the limit, the same connections are all served.
TEST_F(NoPerIpLimitTest, AllConnectionsServed) {
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<TestClient>(port()));
    EXPECT_TRUE(api_versions_answered(*clients.back()));
  }
  EXPECT_EQ(broker_->network()->connections_refused(Refusal::max_connections_per_ip), 0);
}

}  // namespace
}  // namespace holdfast::server
