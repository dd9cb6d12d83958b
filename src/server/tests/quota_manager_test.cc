// The quota manager with an injected clock: Kafka's precedence between
// entities, the sampled rate (windows, the padded span, expiry) and the
// throttle time Kafka would return.
#include <gtest/gtest.h>

#include "server/quota_manager.h"

namespace holdfast::server {
namespace {

using metadata::ClientQuotaMap;
using metadata::QuotaEntity;
using Name = std::optional<std::string>;

constexpr const char* kProduce = "producer_byte_rate";

QuotaEntity user_client(Name user, Name client) { return {{"user", user}, {"client-id", client}}; }
QuotaEntity user(Name name) { return {{"user", name}}; }
QuotaEntity client(Name name) { return {{"client-id", name}}; }

TEST(QuotaResolution, KafkasPrecedenceFirstMatchWins) {
  // All eight levels set, each with its own rate; removing the winner each
  // time must reveal the next level down.
  std::vector<QuotaEntity> levels = {
      user_client("alice", "app"), user_client("alice", {}), user("alice"),
      user_client({}, "app"),      user_client({}, {}),      user({}),
      client("app"),               client({}),
  };
  ClientQuotaMap quotas;
  for (size_t i = 0; i < levels.size(); ++i) quotas[levels[i]] = {{kProduce, double(i + 1)}};
  for (size_t i = 0; i < levels.size(); ++i) {
    auto resolved = resolve_quota(quotas, "alice", "app", kProduce);
    ASSERT_TRUE(resolved) << i;
    EXPECT_EQ(resolved->bytes_per_second, double(i + 1)) << i;
    EXPECT_EQ(resolved->entity, levels[i]);
    quotas.erase(levels[i]);
  }
  EXPECT_FALSE(resolve_quota(quotas, "alice", "app", kProduce));
}

TEST(QuotaResolution, OtherNamesAndOtherKeysDoNotMatch) {
  ClientQuotaMap quotas;
  quotas[client("app")] = {{kProduce, 100}};
  quotas[user("bob")] = {{"consumer_byte_rate", 50}};
  EXPECT_FALSE(resolve_quota(quotas, "alice", "other", kProduce));
  EXPECT_FALSE(resolve_quota(quotas, "bob", "other", kProduce));  // bob's is a consumer quota
  EXPECT_TRUE(resolve_quota(quotas, "bob", "other", "consumer_byte_rate"));
  EXPECT_TRUE(resolve_quota(quotas, "ANONYMOUS", "app", kProduce));
  EXPECT_EQ(quota_user("User:alice"), "alice");
  EXPECT_EQ(quota_user("User:ANONYMOUS"), "ANONYMOUS");
}

TEST(ByteRate, AveragesOverAtLeastTheFullSpanAndForgetsOldSamples) {
  ByteRate rate(QuotaWindows{11, 1000});
  rate.record(0, 10000);
  // A burst at the start counts over (samples - 1) windows, not 0 ms.
  EXPECT_EQ(rate.span_ms(0), 10000);
  EXPECT_DOUBLE_EQ(rate.rate(0), 1000.0);
  rate.record(5500, 10000);
  EXPECT_EQ(rate.span_ms(5500), 10500);  // 5.5 s, padded by the 5 windows missing
  EXPECT_DOUBLE_EQ(rate.rate(5500), 20000 * 1000.0 / 10500);
  // Past 10 full windows the span is the real one.
  EXPECT_EQ(rate.span_ms(10500), 10500);
  // The sample started at 0 expires 11 windows later; only the second counts.
  EXPECT_DOUBLE_EQ(rate.rate(11000), 10000 * 1000.0 / 10500);
  EXPECT_DOUBLE_EQ(rate.rate(17000), 0.0);
}

TEST(ThrottleTime, IsKafkasFormula) {
  EXPECT_EQ(throttle_time_ms(100, 100, 10000), 0);
  EXPECT_EQ(throttle_time_ms(50, 100, 10000), 0);
  EXPECT_EQ(throttle_time_ms(150, 100, 10000), 5000);  // (150 - 100) / 100 * 10 s
  EXPECT_EQ(throttle_time_ms(300, 100, 2000), 4000);
}

struct FakeClock {
  int64_t now = 1000000;
  QuotaManager::NowMs fn() {
    return [this] { return now; };
  }
};

TEST(QuotaManager, ThrottlesOnlyWhatExceedsItsQuota) {
  FakeClock clock;
  QuotaManager manager(QuotaWindows{11, 1000}, clock.fn());
  ClientQuotaMap quotas;
  quotas[client("slow")] = {{kProduce, 1000}};  // 1000 B/s: 10 000 B fit in the first span
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "ANONYMOUS", "slow", 10000), 0);
  // 5000 more: 15 000 B over 10 s = 1500 B/s, throttled (1500-1000)/1000 * 10 s.
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "ANONYMOUS", "slow", 5000), 5000);
  // The control: another client id, and the fetch side of the same client.
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "ANONYMOUS", "fast", 1e9), 0);
  EXPECT_EQ(manager.record(QuotaKind::fetch, quotas, "ANONYMOUS", "slow", 1e9), 0);
  EXPECT_EQ(manager.tracked(), 1u);  // no quota: nothing tracked
  // Once its samples expire the client is within its quota again.
  clock.now += 11000;
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "ANONYMOUS", "slow", 900), 0);
}

TEST(QuotaManager, DefaultClientQuotaAppliesToEachClientOnItsOwn) {
  FakeClock clock;
  QuotaManager manager(QuotaWindows{2, 1000}, clock.fn());
  ClientQuotaMap quotas;
  quotas[client({})] = {{kProduce, 1000}};
  quotas[user("alice")] = {{kProduce, 1000}};
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "ANONYMOUS", "a", 1000), 0);
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "ANONYMOUS", "b", 1000), 0);  // a's bytes not counted
  // A user quota is shared by every client of the user.
  EXPECT_EQ(manager.record(QuotaKind::produce, quotas, "alice", "a", 1000), 0);
  EXPECT_GT(manager.record(QuotaKind::produce, quotas, "alice", "b", 1000), 0);
}

TEST(QuotaManager, UnrecordTakesBackAThrottledResponse) {
  FakeClock clock;
  QuotaManager manager(QuotaWindows{2, 1000}, clock.fn());
  ClientQuotaMap quotas;
  quotas[client("c")] = {{"consumer_byte_rate", 1000}};
  EXPECT_GT(manager.record(QuotaKind::fetch, quotas, "ANONYMOUS", "c", 5000), 0);
  manager.unrecord(QuotaKind::fetch, quotas, "ANONYMOUS", "c", 5000);
  EXPECT_EQ(manager.record(QuotaKind::fetch, quotas, "ANONYMOUS", "c", 500), 0);
}

TEST(QuotaManager, WindowBytesIsWhatTheQuotaLetsThroughInOneSpan) {
  QuotaManager manager(QuotaWindows{11, 1000});
  ClientQuotaMap quotas;
  quotas[client("c")] = {{"consumer_byte_rate", 1000}};
  EXPECT_EQ(manager.window_bytes(QuotaKind::fetch, quotas, "u", "c"), 10000u);  // 10 windows
  EXPECT_EQ(manager.window_bytes(QuotaKind::fetch, quotas, "u", "other"), std::nullopt);
  EXPECT_EQ(manager.window_bytes(QuotaKind::produce, quotas, "u", "c"), std::nullopt);
}

TEST(QuotaManager, IdleRatesAreDropped) {
  FakeClock clock;
  QuotaManager manager(QuotaWindows{2, 1000}, clock.fn());
  ClientQuotaMap quotas;
  quotas[client({})] = {{kProduce, 1000}};
  for (int i = 0; i < 50; ++i) manager.record(QuotaKind::produce, quotas, "u", std::to_string(i), 1);
  EXPECT_EQ(manager.tracked(), 50u);
  clock.now += 10000;
  manager.record(QuotaKind::produce, quotas, "u", "new", 1);
  EXPECT_EQ(manager.tracked(), 1u);
}

}  // namespace
}  // namespace holdfast::server
