// DescribeClientQuotas / AlterClientQuotas over the wire (v0 classic, v1
// flexible): what is refused with INVALID_REQUEST and stores nothing,
// validate_only, per-entry errors, and the describe filters' checks.
#include <gtest/gtest.h>

#include <string>

#include "server/request.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server::testing {
namespace {

using protocol::AlterClientQuotasRequest;
using protocol::AlterClientQuotasResponse;
using protocol::DescribeClientQuotasRequest;
using protocol::DescribeClientQuotasResponse;

constexpr int16_t kInvalidRequest = 42;
using Name = std::optional<std::string>;

struct Op {
  std::string key;
  double value;
  bool remove = false;
};

AlterClientQuotasRequest::EntryData entry(std::vector<std::pair<std::string, Name>> entity,
                                          std::vector<Op> ops) {
  AlterClientQuotasRequest::EntryData e;
  for (auto& [type, name] : entity) {
    auto& c = e.entity.emplace_back();
    c.entity_type = type;
    c.entity_name = name;
  }
  for (auto& op : ops) {
    auto& o = e.ops.emplace_back();
    o.key = op.key;
    o.value = op.value;
    o.remove = op.remove;
  }
  return e;
}

class ClientQuotasProtocolTest : public BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override { config.offsets_topic_num_partitions = 2; }
  size_t stored() { return broker_->metadata_log().current()->client_quotas.size(); }
};

TEST_F(ClientQuotasProtocolTest, BadEntriesAreRefusedOneByOneAndStoreNothing) {
  for (int16_t version : {0, 1}) {
    TestClient client(port());
    AlterClientQuotasRequest request;
    request.entries = {
        entry({{"client-id", "ok"}}, {{"producer_byte_rate", 1000}}),
        entry({{"ip", "10.0.0.1"}}, {{"producer_byte_rate", 1000}}),
        entry({{"client-id", "a"}}, {{"request_percentage", 50}}),
        entry({{"client-id", "a"}}, {{"no_such_key", 1}}),
        entry({{"client-id", "a"}}, {{"consumer_byte_rate", -1}}),
        entry({{"client-id", "a"}}, {{"consumer_byte_rate", 1.5}}),
        entry({{"client-id", "a"}}, {{"consumer_byte_rate", 1}, {"consumer_byte_rate", 2}}),
        entry({{"client-id", "a"}, {"client-id", "b"}}, {{"consumer_byte_rate", 1}}),
        entry({}, {{"consumer_byte_rate", 1}}),
        entry({{"user", ""}}, {{"consumer_byte_rate", 1}}),
    };
    auto response = client.call<AlterClientQuotasRequest, AlterClientQuotasResponse>(request, version);
    ASSERT_EQ(response.entries.size(), request.entries.size());
    EXPECT_EQ(response.entries[0].error_code, 0);  // the control: a valid entry applies
    ASSERT_EQ(response.entries[1].entity.size(), 1u);
    EXPECT_EQ(response.entries[1].entity[0].entity_type, "ip");  // answered as sent
    for (size_t i = 1; i < response.entries.size(); ++i) {
      EXPECT_EQ(response.entries[i].error_code, kInvalidRequest) << "entry " << i << " v" << version;
      EXPECT_TRUE(response.entries[i].error_message.has_value()) << i;
    }
    EXPECT_NE(response.entries[2].error_message->find("not supported"), std::string::npos);
    EXPECT_EQ(stored(), 1u);
    auto image = broker_->metadata_log().current();
    EXPECT_EQ(image->client_quotas.begin()->first, (metadata::QuotaEntity{{"client-id", "ok"}}));
  }
}

TEST_F(ClientQuotasProtocolTest, ValidateOnlyChecksWithoutStoring) {
  TestClient client(port());
  AlterClientQuotasRequest request;
  request.entries = {entry({{"user", std::nullopt}}, {{"producer_byte_rate", 1000}}),
                     entry({{"user", "u"}}, {{"producer_byte_rate", 0}})};
  request.validate_only = true;
  auto response = client.call<AlterClientQuotasRequest, AlterClientQuotasResponse>(request, 1);
  ASSERT_EQ(response.entries.size(), 2u);
  EXPECT_EQ(response.entries[0].error_code, 0);
  EXPECT_EQ(response.entries[1].error_code, kInvalidRequest);
  EXPECT_EQ(stored(), 0u);
  request.validate_only = false;
  request.entries.pop_back();
  response = client.call<AlterClientQuotasRequest, AlterClientQuotasResponse>(request, 1);
  EXPECT_EQ(response.entries.at(0).error_code, 0);
  EXPECT_EQ(stored(), 1u);
}

TEST_F(ClientQuotasProtocolTest, DescribeFiltersAreChecked) {
  TestClient client(port());
  AlterClientQuotasRequest alter;
  alter.entries = {entry({{"user", "u"}, {"client-id", std::nullopt}}, {{"consumer_byte_rate", 7}}),
                   entry({{"client-id", "c"}}, {{"producer_byte_rate", 9}})};
  client.call<AlterClientQuotasRequest, AlterClientQuotasResponse>(alter, 0);
  auto describe = [&](std::vector<std::tuple<std::string, int8_t, Name>> filter, bool strict) {
    DescribeClientQuotasRequest request;
    for (auto& [type, match_type, match] : filter) {
      auto& c = request.components.emplace_back();
      c.entity_type = type;
      c.match_type = match_type;
      c.match = match;
    }
    request.strict = strict;
    return client.call<DescribeClientQuotasRequest, DescribeClientQuotasResponse>(request, 1);
  };
  auto all = describe({}, false);
  ASSERT_EQ(all.error_code, 0);
  ASSERT_TRUE(all.entries);
  EXPECT_EQ(all.entries->size(), 2u);
  EXPECT_EQ(describe({}, true).entries->size(), 0u);  // strict, no component: nothing
  EXPECT_EQ(describe({{"user", 2, std::nullopt}}, false).entries->size(), 1u);   // any user
  EXPECT_EQ(describe({{"user", 2, std::nullopt}}, true).entries->size(), 0u);    // strict: has client-id
  EXPECT_EQ(describe({{"client-id", 1, std::nullopt}}, false).entries->size(), 1u);  // the default
  EXPECT_EQ(describe({{"client-id", 2, std::nullopt}}, false).entries->size(), 2u);  // any, default included
  auto exact = describe({{"client-id", 0, "c"}}, true);
  ASSERT_EQ(exact.entries->size(), 1u);
  EXPECT_EQ(exact.entries->at(0).values.at(0).key, "producer_byte_rate");
  EXPECT_EQ(exact.entries->at(0).values.at(0).value, 9.0);

  for (const auto& bad : std::vector<std::vector<std::tuple<std::string, int8_t, Name>>>{
           {{"ip", 2, std::nullopt}},
           {{"user", 0, std::nullopt}},
           {{"user", 1, "u"}},
           {{"user", 5, std::nullopt}},
           {{"user", 2, std::nullopt}, {"user", 2, std::nullopt}}}) {
    auto refused = describe(bad, false);
    EXPECT_EQ(refused.error_code, kInvalidRequest);
    EXPECT_FALSE(refused.entries.has_value());
  }
}

}  // namespace
}  // namespace holdfast::server::testing
