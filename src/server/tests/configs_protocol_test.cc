// AlterConfigs (replace-all) and IncrementalAlterConfigs (KIP-339) over the
// wire, including what neither may do to internal topics.
#include <gtest/gtest.h>

#include <string>

#include "server/request.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server::testing {
namespace {

using protocol::AlterConfigsRequest;
using protocol::AlterConfigsResponse;
using protocol::DeleteTopicsRequest;
using protocol::DeleteTopicsResponse;
using protocol::IncrementalAlterConfigsRequest;
using protocol::IncrementalAlterConfigsResponse;

constexpr int8_t kTopic = 2;
constexpr int8_t kBroker = 4;
constexpr int8_t kSet = 0, kDelete = 1, kAppend = 2, kSubtract = 3;
constexpr int16_t kInvalidConfig = 40;
constexpr int16_t kInvalidRequest = 42;
const std::string kOffsets = "__consumer_offsets";

class ConfigsProtocolTest : public BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override { config.offsets_topic_num_partitions = 2; }

  metadata::ConfigMap overrides(const std::string& topic) {
    auto image = broker_->topics().image();
    const auto* info = image->find_topic(topic);
    EXPECT_NE(info, nullptr) << topic;
    return info ? info->configs : metadata::ConfigMap{};
  }

  struct Op {
    std::string name;
    int8_t op;
    std::optional<std::string> value;
  };
  static IncrementalAlterConfigsRequest incremental(int8_t type, const std::string& name,
                                                    std::vector<Op> ops,
                                                    bool validate_only = false) {
    IncrementalAlterConfigsRequest request;
    auto& r = request.resources.emplace_back();
    r.resource_type = type;
    r.resource_name = name;
    for (auto& op : ops) {
      auto& c = r.configs.emplace_back();
      c.name = op.name;
      c.config_operation = op.op;
      c.value = op.value;
    }
    request.validate_only = validate_only;
    return request;
  }
  IncrementalAlterConfigsResponse::AlterConfigsResourceResponse call_incremental(
      TestClient& client, const IncrementalAlterConfigsRequest& request, int16_t version = 1) {
    auto response =
        client.call<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(request,
                                                                                     version);
    EXPECT_EQ(response.responses.size(), request.resources.size());
    return response.responses.empty()
               ? IncrementalAlterConfigsResponse::AlterConfigsResourceResponse{}
               : response.responses[0];
  }
  AlterConfigsResponse::AlterConfigsResourceResponse call_alter(
      TestClient& client, const std::string& topic,
      std::vector<std::pair<std::string, std::string>> configs) {
    AlterConfigsRequest request;
    auto& r = request.resources.emplace_back();
    r.resource_type = kTopic;
    r.resource_name = topic;
    for (auto& [k, v] : configs) {
      auto& c = r.configs.emplace_back();
      c.name = k;
      c.value = v;
    }
    auto response = client.call<AlterConfigsRequest, AlterConfigsResponse>(request, 1);
    EXPECT_EQ(response.responses.size(), 1u);
    return response.responses.at(0);
  }
};

// AlterConfigs replaces the whole set: an empty set would drop the compact
// policy of __consumer_offsets and put committed offsets under time retention.
TEST_F(ConfigsProtocolTest, AlterConfigsCannotChangeInternalTopicRetention) {
  TestClient client(port());
  const auto before = overrides(kOffsets);
  ASSERT_EQ(before.at("cleanup.policy"), "compact");

  auto emptied = call_alter(client, kOffsets, {});
  EXPECT_EQ(emptied.error_code, kInvalidConfig);
  EXPECT_NE(emptied.error_message.value_or("").find("cleanup.policy"), std::string::npos)
      << emptied.error_message.value_or("");

  auto retention = call_alter(client, kOffsets,
                              {{"cleanup.policy", "compact"},
                               {"segment.bytes", before.at("segment.bytes")},
                               {"retention.ms", "1000"}});
  EXPECT_EQ(retention.error_code, kInvalidConfig);
  EXPECT_NE(retention.error_message.value_or("").find("retention.ms"), std::string::npos);

  auto policy = call_alter(client, kOffsets,
                           {{"cleanup.policy", "compact,delete"},
                            {"segment.bytes", before.at("segment.bytes")}});
  EXPECT_EQ(policy.error_code, kInvalidConfig);
  EXPECT_EQ(overrides(kOffsets), before);

  // Settings that do not touch compaction or retention may still change.
  auto other = call_alter(client, kOffsets,
                          {{"cleanup.policy", "compact"},
                           {"segment.bytes", before.at("segment.bytes")},
                           {"max.message.bytes", "2000000"}});
  EXPECT_EQ(other.error_code, 0) << other.error_message.value_or("");
  EXPECT_EQ(overrides(kOffsets).at("max.message.bytes"), "2000000");
}

TEST_F(ConfigsProtocolTest, IncrementalAlterConfigsCannotChangeInternalTopicRetention) {
  TestClient client(port());
  const auto before = overrides(kOffsets);
  const std::vector<std::pair<Op, std::string>> refused = {
      {{"cleanup.policy", kDelete, std::nullopt}, "cleanup.policy"},
      {{"cleanup.policy", kSet, "delete"}, "cleanup.policy"},
      {{"cleanup.policy", kAppend, "delete"}, "cleanup.policy"},
      {{"cleanup.policy", kSubtract, "compact"}, "cleanup.policy"},
      {{"retention.ms", kSet, "604800000"}, "retention.ms"},
      {{"retention.bytes", kSet, "1000"}, "retention.bytes"},
  };
  for (const auto& [op, key] : refused) {
    auto out = call_incremental(client, incremental(kTopic, kOffsets, {op}));
    EXPECT_EQ(out.error_code, kInvalidConfig) << op.name << " op " << int(op.op);
    EXPECT_NE(out.error_message.value_or("").find(key), std::string::npos)
        << out.error_message.value_or("");
  }
  EXPECT_EQ(overrides(kOffsets), before);
  // Setting the value it already has is not a change.
  auto same = call_incremental(client, incremental(kTopic, kOffsets, {{"cleanup.policy", kSet, "compact"}}));
  EXPECT_EQ(same.error_code, 0) << same.error_message.value_or("");
}

TEST_F(ConfigsProtocolTest, InternalTopicsCannotBeDeleted) {
  TestClient client(port());
  DeleteTopicsRequest request;
  request.topic_names = {kOffsets};
  request.timeout_ms = 5000;
  auto response = client.call<DeleteTopicsRequest, DeleteTopicsResponse>(request, 1);
  ASSERT_EQ(response.responses.size(), 1u);
  EXPECT_NE(response.responses[0].error_code, 0);
  EXPECT_NE(broker_->topics().image()->find_topic(kOffsets), nullptr);
}

TEST_F(ConfigsProtocolTest, IncrementalSetAndDeleteKeepOtherOverrides) {
  TestClient client(port());
  create_topic(client, "t", 1);
  for (int16_t version : {0, 1}) {
    auto set = call_incremental(
        client, incremental(kTopic, "t", {{"retention.ms", kSet, "1000"}}), version);
    EXPECT_EQ(set.error_code, 0) << set.error_message.value_or("");
    EXPECT_EQ(set.resource_name, "t");
    auto second = call_incremental(
        client, incremental(kTopic, "t", {{"segment.bytes", kSet, "2048"}}), version);
    EXPECT_EQ(second.error_code, 0);
    // Unlike AlterConfigs, what the request does not name is kept.
    EXPECT_EQ(overrides("t"),
              (metadata::ConfigMap{{"retention.ms", "1000"}, {"segment.bytes", "2048"}}));
    auto removed = call_incremental(
        client, incremental(kTopic, "t", {{"retention.ms", kDelete, std::nullopt}}), version);
    EXPECT_EQ(removed.error_code, 0);
    EXPECT_EQ(overrides("t"), (metadata::ConfigMap{{"segment.bytes", "2048"}}));
    auto reset = call_incremental(
        client, incremental(kTopic, "t", {{"segment.bytes", kDelete, std::nullopt}}), version);
    EXPECT_EQ(reset.error_code, 0);
    EXPECT_TRUE(overrides("t").empty());
  }
  // The logs run with the new settings.
  call_incremental(client, incremental(kTopic, "t", {{"retention.ms", kSet, "1000"}}));
  EXPECT_EQ(broker_->topics().log_config("t").retention_ms, 1000);
}

TEST_F(ConfigsProtocolTest, AppendAndSubtractApplyToListConfigsOnly) {
  TestClient client(port());
  create_topic(client, "t", 1);
  // Starts from the default ("delete") when the key is not overridden.
  auto append = call_incremental(client, incremental(kTopic, "t", {{"cleanup.policy", kAppend, "compact"}}));
  EXPECT_EQ(append.error_code, 0) << append.error_message.value_or("");
  EXPECT_EQ(overrides("t").at("cleanup.policy"), "delete,compact");
  auto again = call_incremental(client, incremental(kTopic, "t", {{"cleanup.policy", kAppend, "compact"}}));
  EXPECT_EQ(again.error_code, 0);
  EXPECT_EQ(overrides("t").at("cleanup.policy"), "delete,compact");
  auto subtract = call_incremental(client, incremental(kTopic, "t", {{"cleanup.policy", kSubtract, "delete"}}));
  EXPECT_EQ(subtract.error_code, 0);
  EXPECT_EQ(overrides("t").at("cleanup.policy"), "compact");
  EXPECT_TRUE(broker_->topics().log_config("t").compact);
  // An empty policy is not a valid value.
  auto empty = call_incremental(client, incremental(kTopic, "t", {{"cleanup.policy", kSubtract, "compact"}}));
  EXPECT_EQ(empty.error_code, kInvalidConfig);
  EXPECT_EQ(overrides("t").at("cleanup.policy"), "compact");

  for (int8_t op : {kAppend, kSubtract}) {
    auto not_list = call_incremental(client, incremental(kTopic, "t", {{"retention.ms", op, "5"}}));
    EXPECT_EQ(not_list.error_code, kInvalidConfig);
    EXPECT_NE(not_list.error_message.value_or("").find("retention.ms"), std::string::npos);
  }
  EXPECT_EQ(overrides("t").count("retention.ms"), 0u);
}

TEST_F(ConfigsProtocolTest, IncrementalErrorsArePerResource) {
  TestClient client(port());
  create_topic(client, "good", 1);
  create_topic(client, "other", 1);
  IncrementalAlterConfigsRequest request;
  auto add = [&](int8_t type, const std::string& name, std::vector<Op> ops) {
    auto one = incremental(type, name, std::move(ops));
    request.resources.push_back(one.resources[0]);
  };
  add(kTopic, "good", {{"retention.ms", kSet, "5000"}});
  add(kBroker, "0", {{"log.retention.ms", kSet, "5000"}});
  add(kTopic, "missing", {{"retention.ms", kSet, "5000"}});
  add(kTopic, "other", {{"retention.ms", kSet, "1"}, {"retention.ms", kSet, "2"}});
  add(kTopic, "other", {{"retention.ms", int8_t(9), "1"}});
  add(kTopic, "other", {{"retention.ms", kSet, std::nullopt}});
  add(kTopic, "other", {{"retention.ms", kSet, "not-a-number"}});
  add(kTopic, "other", {{"no.such.config", kSet, "1"}});
  auto response =
      client.call<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(request, 1);
  ASSERT_EQ(response.responses.size(), 8u);
  EXPECT_EQ(response.responses[0].error_code, 0);
  EXPECT_EQ(response.responses[1].error_code, kInvalidRequest);  // as AlterConfigs answers brokers
  EXPECT_EQ(response.responses[1].resource_type, kBroker);
  EXPECT_NE(response.responses[1].error_message.value_or("").find("properties file"),
            std::string::npos);
  EXPECT_EQ(response.responses[2].error_code, 3);  // UNKNOWN_TOPIC_OR_PARTITION
  EXPECT_EQ(response.responses[3].error_code, kInvalidRequest);  // duplicate key
  EXPECT_EQ(response.responses[4].error_code, kInvalidRequest);  // unknown operation
  EXPECT_EQ(response.responses[5].error_code, kInvalidRequest);  // SET null
  EXPECT_EQ(response.responses[6].error_code, kInvalidConfig);
  EXPECT_EQ(response.responses[7].error_code, kInvalidConfig);
  EXPECT_EQ(overrides("good").at("retention.ms"), "5000");
  EXPECT_TRUE(overrides("other").empty());
}

TEST_F(ConfigsProtocolTest, IncrementalValidateOnlyChangesNothing) {
  TestClient client(port());
  create_topic(client, "t", 1);
  auto ok = call_incremental(
      client, incremental(kTopic, "t", {{"retention.ms", kSet, "1000"}}, /*validate_only=*/true));
  EXPECT_EQ(ok.error_code, 0);
  EXPECT_TRUE(overrides("t").empty());
  auto bad = call_incremental(
      client, incremental(kTopic, "t", {{"retention.ms", kSet, "x"}}, /*validate_only=*/true));
  EXPECT_EQ(bad.error_code, kInvalidConfig);
}

// An error message that echoes a client-supplied name longer than the wire's
// string limit once quoted must still come back as a well-formed frame.
TEST_F(ConfigsProtocolTest, ErrorMessageEchoingALongNameIsAWellFormedResponse) {
  TestClient client(port());
  protocol::CreateTopicsRequest request;
  auto& t = request.topics.emplace_back();
  t.name = std::string(protocol::kMaxWireStringBytes, 'x');  // the longest a client can send
  t.num_partitions = 1;
  t.replication_factor = 1;
  request.timeout_ms = 5000;
  for (int16_t version : {int16_t(1), int16_t(4)}) {
    auto response =
        client.call<protocol::CreateTopicsRequest, protocol::CreateTopicsResponse>(request, version);
    ASSERT_EQ(response.topics.size(), 1u);
    EXPECT_EQ(response.topics[0].name, t.name);
    EXPECT_EQ(response.topics[0].error_code, 17);  // INVALID_TOPIC_EXCEPTION
    ASSERT_TRUE(response.topics[0].error_message.has_value());
    EXPECT_EQ(response.topics[0].error_message->size(), protocol::kMaxWireStringBytes);
    EXPECT_EQ(response.topics[0].error_message->rfind("topic name '", 0), 0u);
  }
  // The connection is still in step: another request is answered.
  create_topic(client, "after", 1);
}

TEST_F(ConfigsProtocolTest, ResponsesTooLargeForAFrameAreNotSent) {
  RequestContext ctx{*broker_, protocol::ApiVersionsRequest::kApiKey, 0, 7, std::nullopt, {},
                     "test"};
  protocol::Writer fits;
  fits.put_int32(0);
  fits.put_raw(std::vector<uint8_t>(100, 1));
  auto ok = finish_response(ctx, fits, 100);
  EXPECT_TRUE(ok.send);
  EXPECT_FALSE(ok.close_connection);
  EXPECT_EQ(load_be32(ok.frame.data()), 100u);

  protocol::Writer too_big;
  too_big.put_int32(0);
  too_big.put_raw(std::vector<uint8_t>(101, 1));
  auto refused = finish_response(ctx, too_big, 100);
  EXPECT_FALSE(refused.send);
  EXPECT_TRUE(refused.close_connection);
  EXPECT_TRUE(refused.frame.empty());
}

}  // namespace
}  // namespace holdfast::server::testing
