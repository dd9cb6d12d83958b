// The broker-wide request byte budget (queued.max.request.bytes): unit tests
// of the accounting, and a broker whose clients announce large frames and
// stall.
#include "server/request_budget.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "server/tests/broker_fixture.h"

namespace holdfast::server::testing {
namespace {

// Polls `done` until it holds or ~10 s pass; returns whether it held.
template <class F>
bool wait_until(F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(RequestBudget, GrantsWhatFitsAndWakesWaitersOnRelease) {
  RequestBudget budget(100);
  int a = 0, b = 0;
  uint64_t ticket = 0;
  int woken = 0;
  EXPECT_TRUE(budget.try_acquire(&a, 60, [&] { ++woken; }, &ticket));
  EXPECT_TRUE(budget.try_acquire(&a, 40, [&] { ++woken; }, &ticket));
  EXPECT_EQ(budget.in_use(), 100);
  // Does not fit; `a` is not complete, so `b` may take the overdraft...
  EXPECT_TRUE(budget.try_acquire(&b, 10, [&] { ++woken; }, &ticket));
  EXPECT_EQ(budget.in_use(), 110);
  // ...and then `a` has to wait for it.
  EXPECT_FALSE(budget.try_acquire(&a, 10, [&] { ++woken; }, &ticket));
  EXPECT_EQ(budget.waiting(), 1u);
  budget.release(60);
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(budget.waiting(), 0u);
  EXPECT_EQ(budget.in_use(), 50);
  EXPECT_TRUE(budget.try_acquire(&a, 10, [&] { ++woken; }, &ticket));
}

TEST(RequestBudget, OneFrameAtATimeMayOverdraw) {
  RequestBudget budget(100);
  int a = 0, b = 0, c = 0;
  uint64_t ticket = 0;
  int woken = 0;
  EXPECT_TRUE(budget.try_acquire(&a, 150, [] {}, &ticket));  // larger than the whole budget
  EXPECT_TRUE(budget.try_acquire(&a, 50, [] {}, &ticket));   // the holder keeps growing
  EXPECT_FALSE(budget.try_acquire(&b, 1, [&] { ++woken; }, &ticket));
  budget.frame_done(&a);  // complete: the overdraft passes on, its bytes stay
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(budget.in_use(), 200);
  EXPECT_TRUE(budget.try_acquire(&b, 1, [] {}, &ticket));
  EXPECT_FALSE(budget.try_acquire(&c, 1, [&] { ++woken; }, &ticket));
  budget.cancel_wait(ticket);
  budget.release(150);
  EXPECT_EQ(woken, 1);  // a cancelled waiter is never called
}

TEST(RequestBudget, FrameMemoryReturnsItsChargeWhenFreed) {
  auto budget = std::make_shared<RequestBudget>(1000);
  {
    auto memory = std::make_shared<FrameMemory>(budget);
    uint64_t ticket = 0;
    ASSERT_TRUE(budget->try_acquire(memory.get(), 300, [] {}, &ticket));
    memory->add_charge(300);
    memory->bytes().reserve(300);
    Bytes frame(std::shared_ptr<const void>(memory), memory->bytes().data(), 0);
    memory.reset();
    EXPECT_EQ(budget->in_use(), 300);  // a slice still pins the frame
  }
  EXPECT_EQ(budget->in_use(), 0);
}

// Sends a frame header announcing `size` bytes and then `sent` bytes of it.
class StalledClient {
 public:
  StalledClient(uint16_t port, uint32_t size, size_t sent) : client_(port) {
    std::vector<uint8_t> bytes(4 + sent, 0);
    store_be32(bytes.data(), size);
    // A plausible header start (ApiVersions v0), then zeros.
    if (sent >= 4) store_be16(bytes.data() + 4, 18);
    client_.send_raw(bytes);
  }
  TestClient& client() { return client_; }

 private:
  TestClient client_;
};

class RequestBudgetProtocolTest : public BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override {
    config.offsets_topic_num_partitions = 1;
    if (budget_bytes_ > 0) config.queued_max_request_bytes = budget_bytes_;
  }
  int64_t in_use() const { return broker_->request_budget()->in_use(); }
  bool api_versions_answered(TestClient& client) {
    auto response = client.call<protocol::ApiVersionsRequest, protocol::ApiVersionsResponse>(
        protocol::ApiVersionsRequest{}, 0);
    return response.error_code == 0 && !response.api_keys.empty();
  }
  int64_t budget_bytes_ = 0;
};

// A client that announces a 100 MiB frame and sends 10 bytes holds 10 bytes,
// not 100 MiB; others are served meanwhile.
TEST_F(RequestBudgetProtocolTest, StalledLargeFramesHoldOnlyWhatWasSent) {
  ASSERT_EQ(broker_->config().socket_request_max_bytes, 100 * 1024 * 1024);
  const uint32_t announced = 100 * 1024 * 1024;
  StalledClient first(port(), announced, 10);
  EXPECT_TRUE(wait_until([&] { return in_use() == 10; })) << "in use: " << in_use();
  StalledClient second(port(), announced, 10);
  EXPECT_TRUE(wait_until([&] { return in_use() == 20; })) << "in use: " << in_use();

  TestClient normal(port());
  EXPECT_TRUE(api_versions_answered(normal));
  create_topic(normal, "t", 1);
  // Each stalled client is still mid-frame and holds its 10 bytes; the normal
  // requests' frames are returned once handled.
  EXPECT_TRUE(wait_until([&] { return in_use() == 20; })) << "in use: " << in_use();
}

TEST_F(RequestBudgetProtocolTest, ChargesAreReturnedWhenFramesAreDoneOrAbandoned) {
  {
    StalledClient stalled(port(), 1 << 20, 5000);
    EXPECT_TRUE(wait_until([&] { return in_use() == 5000; })) << "in use: " << in_use();
  }  // disconnects mid-frame
  EXPECT_TRUE(wait_until([&] { return in_use() == 0; })) << "in use: " << in_use();
  TestClient normal(port());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(api_versions_answered(normal));
  EXPECT_TRUE(wait_until([&] { return in_use() == 0; })) << "in use: " << in_use();
}

class SmallRequestBudgetTest : public RequestBudgetProtocolTest {
 protected:
  void SetUp() override {
    budget_bytes_ = 1024;
    RequestBudgetProtocolTest::SetUp();
  }
};

// When the budget is spent, connections stop reading (they wait, nothing is
// allocated) until bytes are released.
TEST_F(SmallRequestBudgetTest, ExhaustedBudgetMakesConnectionsWait) {
  auto stalled = std::make_unique<StalledClient>(port(), 1 << 20, 2000);
  // More than the budget: it went in on the overdraft, which it keeps until
  // its frame is complete.
  EXPECT_TRUE(wait_until([&] { return in_use() == 2000; })) << "in use: " << in_use();

  TestClient waiting(port());
  int32_t correlation = waiting.send(protocol::ApiVersionsRequest{}, 0);
  EXPECT_TRUE(wait_until([&] { return broker_->request_budget()->waiting() == 1; }));
  EXPECT_EQ(in_use(), 2000);  // the waiting request allocated nothing

  stalled.reset();  // its memory and the overdraft are released
  auto response =
      waiting.receive<protocol::ApiVersionsResponse>(18, 0, correlation);
  EXPECT_EQ(response.error_code, 0);
  EXPECT_TRUE(wait_until([&] { return in_use() == 0; })) << "in use: " << in_use();
}

}  // namespace
}  // namespace holdfast::server::testing
