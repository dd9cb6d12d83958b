// What a request may hold on to, and for how long (issue 8 item 9): the
// coordinator keeps copies, not slices of request frames; a Fetch response is
// capped by fetch.max.bytes and a long-poll by fetch.max.wait.ms.cap; a
// long-poll whose client disconnected drops its waiter at once.
#include <gtest/gtest.h>

#include <thread>

#include "record/batch.h"
#include "server/broker.h"
#include "server/handlers/handlers.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using namespace std::chrono_literals;
using testing::TestClient;

class RequestLifetimeTest : public testing::BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override {
    config.offsets_topic_num_partitions = 1;
    config.group_initial_rebalance_delay_ms = 0;
    config.fetch_max_bytes = fetch_max_bytes_;
    config.fetch_max_wait_ms_cap = fetch_max_wait_ms_cap_;
  }

  void produce(TestClient& client, int32_t partition, const std::string& value) {
    record::BatchBuilder builder;
    builder.add(std::nullopt, value, 1000);
    protocol::ProduceRequest request;
    request.acks = -1;
    request.timeout_ms = 5000;
    auto& t = request.topic_data.emplace_back();
    t.name = "t";
    auto& p = t.partition_data.emplace_back();
    p.index = partition;
    p.records = builder.build();
    auto response = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(request, 7);
    ASSERT_EQ(response.responses.at(0).partition_responses.at(0).error_code, 0);
  }

  static protocol::FetchRequest fetch_request(std::vector<int32_t> partitions, int32_t max_wait_ms,
                                              int64_t offset = 0) {
    protocol::FetchRequest request;
    request.replica_id = -1;
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 50 << 20;
    auto& t = request.topics.emplace_back();
    t.topic = "t";
    for (int32_t partition : partitions) {
      auto& p = t.partitions.emplace_back();
      p.partition = partition;
      p.fetch_offset = offset;
      p.partition_max_bytes = 10 << 20;
    }
    return request;
  }

  int32_t fetch_max_bytes_ = 55 * 1024 * 1024;
  int32_t fetch_max_wait_ms_cap_ = 30000;
};

asio::awaitable<void> run_handler(Awaitable<Response> (*handler)(RequestContext&),
                                  RequestContext* ctx, Response* out, std::atomic<bool>* done) {
  *out = co_await handler(*ctx);
  done->store(true);
}

// Item 9a: after a JoinGroup completes, nothing in the broker still holds
// the request's frame (the member's protocol metadata is a copy).
TEST_F(RequestLifetimeTest, JoinGroupDoesNotPinTheRequestFrame) {
  ASSERT_TRUE(broker_->groups().wait_until_loaded(10000));
  protocol::JoinGroupRequest request;
  request.group_id = "g";
  request.session_timeout_ms = 30000;
  request.rebalance_timeout_ms = 30000;
  request.member_id = "";
  request.protocol_type = "consumer";
  request.protocols.push_back({"range", Bytes::copy_of(std::string_view("metadata"))});
  protocol::Writer w;
  request.encode(w, 3);

  RequestContext ctx{*broker_, protocol::JoinGroupRequest::kApiKey, 3, 1, "c", Bytes(w.release()),
                     "127.0.0.1:1", "User:ANONYMOUS", nullptr};
  std::weak_ptr<const void> frame = ctx.body.owner();
  asio::io_context io(1);
  auto guard = asio::make_work_guard(io);
  Response response;
  std::atomic<bool> done{false};
  asio::co_spawn(io, run_handler(&handle_join_group, &ctx, &response, &done), asio::detached);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
  ASSERT_TRUE(done);
  ASSERT_TRUE(response.send);
  guard.reset();
  io.run();

  // The member is in the group, with its metadata...
  ctx.body = Bytes();
  {
    auto described = broker_->groups().describe("g");
    ASSERT_EQ(described.members.size(), 1u);
  }
  // ...and the frame is gone.
  EXPECT_TRUE(frame.expired()) << "the coordinator still references the JoinGroup frame";
}

class FetchMaxBytesTest : public RequestLifetimeTest {
 protected:
  void configure(BrokerConfig& config) override {
    fetch_max_bytes_ = 2048;
    fetch_max_wait_ms_cap_ = 100;
    RequestLifetimeTest::configure(config);
  }
};

// Item 9b: the broker caps a response at fetch.max.bytes whatever the request
// asks for (the first batch still goes whole).
TEST_F(FetchMaxBytesTest, ResponseIsCappedByFetchMaxBytes) {
  TestClient client(port());
  create_topic(client, "t", 2);
  const std::string value(700, 'x');
  for (int i = 0; i < 4; ++i) {
    produce(client, 0, value);
    produce(client, 1, value);
  }
  auto response =
      client.call<protocol::FetchRequest, protocol::FetchResponse>(fetch_request({0, 1}, 0), 11);
  size_t total = 0;
  for (const auto& t : response.responses) {
    for (const auto& p : t.partitions) {
      EXPECT_EQ(p.error_code, 0);
      if (p.records) total += p.records->size();
    }
  }
  EXPECT_GT(total, 0u);
  EXPECT_LE(total, 2048u);
}

// Item 9b: a long-poll asking for INT32_MAX ms waits at most
// fetch.max.wait.ms.cap (here 100 ms), then answers with nothing.
TEST_F(FetchMaxBytesTest, MaxWaitIsCapped) {
  TestClient client(port());
  create_topic(client, "t", 1);
  auto id = client.send(fetch_request({0}, INT32_MAX), 11);
  auto response =
      client.receive<protocol::FetchResponse>(protocol::FetchRequest::kApiKey, 11, id);
  ASSERT_EQ(response.responses.at(0).partitions.at(0).error_code, 0);
  EXPECT_TRUE(!response.responses[0].partitions[0].records ||
              response.responses[0].partitions[0].records->empty());
}

// Item 9c: long-polls from clients that disconnect drop their waiters at
// once, not when their max_wait_ms (here 25 s) runs out.
TEST_F(RequestLifetimeTest, LongPollsOfClosedConnectionsDropTheirWaiters) {
  {
    TestClient admin(port());
    create_topic(admin, "t", 2);
  }
  constexpr int kClients = 20;
  {
    std::vector<std::unique_ptr<TestClient>> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(std::make_unique<TestClient>(port()));
      clients.back()->send(fetch_request({0, 1}, 25000), 11);
    }
    ASSERT_TRUE(eventually([&] { return broker_->fetch_waiters().size() == 2 * kClients; }));
  }  // the clients disconnect
  EXPECT_TRUE(eventually([&] { return broker_->fetch_waiters().size() == 0; }))
      << broker_->fetch_waiters().size() << " waiters left";
}

}  // namespace
}  // namespace holdfast::server
