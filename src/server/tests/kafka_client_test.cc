// net::KafkaClient against a real broker in this process: requests and
// decoded responses, pipelining, a dead destination (timely connect_failed,
// then a successful reconnect once the broker is back), request timeouts
// against a listener that never answers, and shutdown semantics.
#include "net/kafka_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "record/batch.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using net::Errc;
using net::KafkaClient;
using net::KafkaClientOptions;
using net::NetResult;

// A socket that listens on a loopback port and never accepts nor answers:
// connects succeed (the kernel's backlog), requests are never answered.
class SilentListener {
 public:
  SilentListener()
      : acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
};

// Accepts one connection, reads one request frame and answers it with
// `reply(correlation id of the request)` (raw bytes, size prefix included).
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<std::vector<uint8_t>(int32_t)> reply)
      : acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this, reply = std::move(reply)] {
      asio::error_code ec;
      asio::ip::tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      uint8_t size[4];
      asio::read(socket, asio::buffer(size), ec);
      if (ec) return;
      std::vector<uint8_t> frame(load_be32(size));
      asio::read(socket, asio::buffer(frame), ec);
      if (ec || frame.size() < 8) return;
      auto answer = reply(static_cast<int32_t>(load_be32(frame.data() + 4)));
      asio::write(socket, asio::buffer(answer), ec);
      // Keep the socket open until the client closes it.
      asio::read(socket, asio::buffer(size), ec);
    });
  }
  ~ScriptedServer() {
    asio::error_code ignored;
    acceptor_.close(ignored);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

std::vector<uint8_t> frame_of(int32_t size_field, int32_t correlation_id) {
  std::vector<uint8_t> bytes(8);
  store_be32(bytes.data(), static_cast<uint32_t>(size_field));
  store_be32(bytes.data() + 4, static_cast<uint32_t>(correlation_id));
  return bytes;
}

KafkaClientOptions quick_options() {
  KafkaClientOptions options;
  options.client_id = "kafka-client-test";
  options.request_timeout = std::chrono::seconds(30);
  options.reconnect_backoff = std::chrono::milliseconds(10);
  options.reconnect_backoff_max = std::chrono::milliseconds(100);
  return options;
}

class KafkaClientTest : public testing::BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override { config.listen_port = fixed_port_; }

  net::Endpoint broker_endpoint() const { return {"127.0.0.1", port()}; }
  static net::Endpoint broker_endpoint_for(uint16_t port) { return {"127.0.0.1", port}; }

  static protocol::CreateTopicsRequest create_request(const std::string& name) {
    protocol::CreateTopicsRequest request;
    auto& t = request.topics.emplace_back();
    t.name = name;
    t.num_partitions = 1;
    t.replication_factor = 1;
    request.timeout_ms = 5000;
    return request;
  }

  uint16_t fixed_port_ = 0;
};

TEST_F(KafkaClientTest, CallsDecodeResponsesAtTheRequestedVersions) {
  KafkaClient client(quick_options());
  auto versions = client.call<protocol::ApiVersionsResponse>(broker_endpoint(),
                                                             protocol::ApiVersionsRequest{}, 3);
  ASSERT_TRUE(versions) << versions.error().message;
  EXPECT_EQ(versions->error_code, 0);
  EXPECT_FALSE(versions->api_keys.empty());

  auto created =
      client.call<protocol::CreateTopicsResponse>(broker_endpoint(), create_request("t"), 4);
  ASSERT_TRUE(created) << created.error().message;
  ASSERT_EQ(created->topics.size(), 1u);
  EXPECT_EQ(created->topics[0].error_code, 0);

  // Metadata v9: flexible request and response headers.
  protocol::MetadataRequest metadata;
  metadata.topics.emplace().emplace_back().name = "t";
  auto described = client.call<protocol::MetadataResponse>(broker_endpoint(), metadata, 9);
  ASSERT_TRUE(described) << described.error().message;
  ASSERT_EQ(described->topics.size(), 1u);
  EXPECT_EQ(described->topics[0].partitions.size(), 1u);

  // A produce and the fetch of it.
  record::BatchBuilder builder;
  builder.add(std::nullopt, "hello", 1000);
  protocol::ProduceRequest produce;
  produce.acks = -1;
  produce.timeout_ms = 5000;
  auto& pt = produce.topic_data.emplace_back();
  pt.name = "t";
  auto& pp = pt.partition_data.emplace_back();
  pp.index = 0;
  pp.records = builder.build();
  auto produced = client.call<protocol::ProduceResponse>(broker_endpoint(), produce, 7);
  ASSERT_TRUE(produced) << produced.error().message;
  EXPECT_EQ(produced->responses.at(0).partition_responses.at(0).error_code, 0);

  protocol::FetchRequest fetch;
  fetch.replica_id = -1;
  fetch.max_bytes = 1 << 20;
  auto& ft = fetch.topics.emplace_back();
  ft.topic = "t";
  auto& fp = ft.partitions.emplace_back();
  fp.partition = 0;
  fp.fetch_offset = 0;
  fp.partition_max_bytes = 1 << 20;
  auto fetched = client.call<protocol::FetchResponse>(broker_endpoint(), fetch, 11);
  ASSERT_TRUE(fetched) << fetched.error().message;
  const auto& part = fetched->responses.at(0).partitions.at(0);
  EXPECT_EQ(part.error_code, 0);
  EXPECT_EQ(part.high_watermark, 1);
  ASSERT_TRUE(part.records.has_value());
  auto header = record::check_batch(part.records->span());
  ASSERT_TRUE(header);
  EXPECT_EQ(header->records_count, 1);
  EXPECT_EQ(client.connects(), 1);  // one connection for all of it
}

TEST_F(KafkaClientTest, PipelinedRequestsAreAllAnsweredInOrder) {
  KafkaClient client(quick_options());
  constexpr int kRequests = 200;
  std::mutex mutex;
  std::vector<int> answered;
  std::vector<std::string> errors;
  protocol::MetadataRequest metadata;
  metadata.topics.emplace();  // no topics
  for (int i = 0; i < kRequests; ++i) {
    // Alternate a classic and a flexible response header.
    auto record = [&, i](const auto& r) {
      std::lock_guard lock(mutex);
      if (!r) errors.push_back(r.error().message);
      answered.push_back(i);
    };
    if (i % 2 == 0) {
      client.send<protocol::ApiVersionsResponse>(broker_endpoint(), protocol::ApiVersionsRequest{},
                                                 3, record);
    } else {
      client.send<protocol::MetadataResponse>(broker_endpoint(), metadata, 9, record);
    }
  }
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return answered.size() == kRequests;
  }));
  std::lock_guard lock(mutex);
  EXPECT_TRUE(errors.empty()) << errors.front();
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(answered[i], i);
  EXPECT_EQ(client.connects(), 1);
}

TEST_F(KafkaClientTest, DeadDestinationFailsAtOnceAndReconnectsOnceItIsBack) {
  fixed_port_ = port();
  broker_.reset();  // nothing listens on the port now

  KafkaClient client(quick_options());
  // The request timeout is long: the failure must come from the connect.
  auto dead = client.call<protocol::ApiVersionsResponse>(
      broker_endpoint_for(fixed_port_), protocol::ApiVersionsRequest{}, 3, std::chrono::minutes(5));
  ASSERT_FALSE(dead);
  EXPECT_EQ(dead.code(), Errc::connect_failed) << dead.error().message;
  // A second attempt (after the backoff) fails the same way.
  auto again = client.call<protocol::ApiVersionsResponse>(
      broker_endpoint_for(fixed_port_), protocol::ApiVersionsRequest{}, 3, std::chrono::minutes(5));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), Errc::connect_failed);

  start();  // the broker comes back on the same port
  ASSERT_EQ(port(), fixed_port_);
  bool answered = eventually([&] {
    return client
        .call<protocol::ApiVersionsResponse>(broker_endpoint(), protocol::ApiVersionsRequest{}, 3)
        .ok();
  });
  EXPECT_TRUE(answered);
  EXPECT_EQ(client.connects(), 1);
}

TEST_F(KafkaClientTest, ABrokerRestartFailsTheConnectionAndTheNextRequestReconnects) {
  fixed_port_ = port();
  KafkaClient client(quick_options());
  ASSERT_TRUE(client.call<protocol::ApiVersionsResponse>(broker_endpoint(),
                                                         protocol::ApiVersionsRequest{}, 3));
  restart();
  ASSERT_EQ(port(), fixed_port_);
  // The first request may find the old connection closed (disconnected);
  // the client reconnects for a later one.
  bool answered = eventually([&] {
    auto r = client.call<protocol::ApiVersionsResponse>(broker_endpoint(),
                                                        protocol::ApiVersionsRequest{}, 3);
    if (!r) {
      EXPECT_NE(r.code(), Errc::timed_out) << r.error().message;
    }
    return r.ok();
  });
  EXPECT_TRUE(answered);
  EXPECT_EQ(client.connects(), 2);
}

TEST_F(KafkaClientTest, UnansweredRequestsTimeOutAndCloseTheirConnection) {
  SilentListener silent;
  KafkaClient client(quick_options());
  net::Endpoint to{"127.0.0.1", silent.port()};
  auto r = client.call<protocol::ApiVersionsResponse>(to, protocol::ApiVersionsRequest{}, 3,
                                                      std::chrono::milliseconds(100));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::timed_out) << r.error().message;
  // Another destination on the same client is unaffected.
  auto ok = client.call<protocol::ApiVersionsResponse>(broker_endpoint(),
                                                       protocol::ApiVersionsRequest{}, 3);
  EXPECT_TRUE(ok);
  // The silent one times out again, on a new connection.
  auto r2 = client.call<protocol::ApiVersionsResponse>(to, protocol::ApiVersionsRequest{}, 3,
                                                       std::chrono::milliseconds(100));
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.code(), Errc::timed_out);
  EXPECT_EQ(client.connects(), 3);
}

TEST(KafkaClient, AResponseForAnotherRequestIsABadResponse) {
  ScriptedServer server([](int32_t correlation_id) { return frame_of(4, correlation_id + 1); });
  KafkaClient client(quick_options());
  auto r = client.call<protocol::ApiVersionsResponse>({"127.0.0.1", server.port()},
                                                      protocol::ApiVersionsRequest{}, 3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::bad_response) << r.error().message;
}

TEST(KafkaClient, AnOversizedResponseFrameIsABadResponse) {
  ScriptedServer server(
      [](int32_t correlation_id) { return frame_of(0x7fffffff, correlation_id); });
  KafkaClient client(quick_options());
  auto r = client.call<protocol::ApiVersionsResponse>({"127.0.0.1", server.port()},
                                                      protocol::ApiVersionsRequest{}, 3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::bad_response) << r.error().message;
}

TEST(KafkaClient, AResponseThatDoesNotDecodeIsABadResponse) {
  // The right correlation id, then a body too short for ApiVersionsResponse.
  ScriptedServer server([](int32_t correlation_id) { return frame_of(4, correlation_id); });
  KafkaClient client(quick_options());
  auto r = client.call<protocol::ApiVersionsResponse>({"127.0.0.1", server.port()},
                                                      protocol::ApiVersionsRequest{}, 3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::bad_response) << r.error().message;
}

TEST_F(KafkaClientTest, ShutdownCompletesOutstandingRequestsAndNothingRunsAfterIt) {
  SilentListener silent;
  auto client = std::make_unique<KafkaClient>(quick_options());
  net::Endpoint to{"127.0.0.1", silent.port()};
  std::atomic<int> completed{0};
  std::atomic<int> shut_down{0};
  for (int i = 0; i < 10; ++i) {
    client->send<protocol::ApiVersionsResponse>(
        to, protocol::ApiVersionsRequest{}, 3,
        [&](NetResult<protocol::ApiVersionsResponse> r) {
          if (!r && r.code() == Errc::shut_down) shut_down.fetch_add(1);
          completed.fetch_add(1);
        },
        std::chrono::minutes(5));
  }
  // Wait until at least one is written (the connection is up).
  ASSERT_TRUE(eventually([&] { return client->connects() == 1; }));
  client->shutdown();
  EXPECT_EQ(completed.load(), 10);
  EXPECT_EQ(shut_down.load(), 10);

  // After shutdown: completes at once, on this thread.
  std::thread::id ran_on;
  client->send<protocol::ApiVersionsResponse>(to, protocol::ApiVersionsRequest{}, 3,
                                              [&](NetResult<protocol::ApiVersionsResponse> r) {
                                                EXPECT_EQ(r.code(), Errc::shut_down);
                                                ran_on = std::this_thread::get_id();
                                              });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  client.reset();  // the destructor after an explicit shutdown is fine
}

TEST_F(KafkaClientTest, AsyncCallResumesACoroutine) {
  KafkaClient client(quick_options());
  asio::io_context io;
  std::optional<NetResult<protocol::ApiVersionsResponse>> got;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Named, not a temporary: GCC 12 destroys temporaries of a co_await
        // full-expression wrongly.
        protocol::ApiVersionsRequest request;
        auto to = broker_endpoint();
        got.emplace(co_await client.async_call<protocol::ApiVersionsResponse>(to, request, 3));
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(*got);
}

}  // namespace
}  // namespace holdfast::server
