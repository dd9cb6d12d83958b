// A partition whose segment is corrupt comes up offline (issue 8, item 1):
// the broker starts, that partition answers KAFKA_STORAGE_ERROR, the others
// serve, and nothing on disk is cut.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "record/batch.h"
#include "server/kafka_error.h"
#include "server/tests/broker_fixture.h"
#include "storage/format.h"

namespace holdfast::server {
namespace {

using testing::TestClient;

class CorruptPartitionTest : public testing::BrokerFixture {
 protected:
  static protocol::ProduceRequest produce_request(const std::string& topic,
                                                  const std::string& value) {
    record::BatchBuilder builder;
    builder.add(std::nullopt, value, 1000);
    protocol::ProduceRequest request;
    request.acks = -1;
    request.timeout_ms = 5000;
    auto& t = request.topic_data.emplace_back();
    t.name = topic;
    auto& p = t.partition_data.emplace_back();
    p.index = 0;
    p.records = builder.build();
    return request;
  }
  static int16_t produce(TestClient& client, const std::string& topic, const std::string& value) {
    auto response = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
        produce_request(topic, value), 7);
    return response.responses.at(0).partition_responses.at(0).error_code;
  }
  static protocol::FetchResponse fetch(TestClient& client, const std::string& topic) {
    return client.fetch_from(topic);
  }
};

TEST_F(CorruptPartitionTest, ACorruptPartitionAnswersStorageErrorWhileTheOthersServe) {
  {
    TestClient client(port());
    create_topic(client, "bad", 1);
    create_topic(client, "good", 1);
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(produce(client, "bad", "b" + std::to_string(i)), 0);
      ASSERT_EQ(produce(client, "good", "g" + std::to_string(i)), 0);
    }
  }
  broker_.reset();  // clean shutdown
  // The first batch's length field now runs past the end of the file.
  std::string segment =
      (dir_ / "bad-0" / storage::format::segment_file_name(0, storage::format::kLogSuffix))
          .string();
  auto size = std::filesystem::file_size(segment);
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(record::kLengthOffset));
    f.put('\x7f');
  }
  start();  // the broker starts all the same

  TestClient client(port());
  const auto storage_error = int16_t(KafkaError::kafka_storage_error);
  EXPECT_EQ(produce(client, "bad", "more"), storage_error);
  auto bad = fetch(client, "bad");
  EXPECT_EQ(bad.responses.at(0).partitions.at(0).error_code, storage_error);
  EXPECT_EQ(bad.responses.at(0).partitions.at(0).records.value_or(Bytes()).size(), 0u);

  EXPECT_EQ(produce(client, "good", "g3"), 0);
  auto good = fetch(client, "good");
  const auto& partition = good.responses.at(0).partitions.at(0);
  EXPECT_EQ(partition.error_code, 0);
  EXPECT_EQ(partition.high_watermark, 4);
  ASSERT_TRUE(partition.records.has_value());
  auto data = partition.records->span();
  int batches = 0;
  while (!data.empty()) {
    auto header = record::check_batch(data);
    ASSERT_TRUE(header);
    data = data.subspan(header->size_in_bytes());
    ++batches;
  }
  EXPECT_EQ(batches, 4);
  // Nothing was cut.
  EXPECT_EQ(std::filesystem::file_size(segment), size);
}

}  // namespace
}  // namespace holdfast::server
