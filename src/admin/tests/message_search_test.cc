#include "admin/message_search.h"

#include <gtest/gtest.h>

#include "record/batch.h"
#include "replication/replica_manager.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::admin {
namespace {

using server::testing::BrokerFixture;

constexpr int64_t kBaseTime = 1700000000000;

class MessageSearchTest : public BrokerFixture {
 protected:
  void after_start() override {
    auto created = broker_->topics().create_topic("events", 1, 1, {}, false);
    ASSERT_TRUE(created.ok()) << created.message;
    replica_ = broker_->replicas().get("events", 0);
    ASSERT_NE(replica_, nullptr);
    log_ = &replica_->log();
  }

  // `batches` batches of `per_batch` records, cycling through the codecs;
  // record i has key "k<i>", value "value-<i>", timestamp kBaseTime + i and a
  // header trace=<i>.
  void fill(int batches, int per_batch) {
    const record::Compression codecs[] = {record::Compression::gzip, record::Compression::lz4,
                                          record::Compression::zstd, record::Compression::none};
    int i = 0;
    for (int b = 0; b < batches; ++b) {
      record::BatchBuilder builder(codecs[b % 4]);
      for (int r = 0; r < per_batch; ++r, ++i) {
        std::string key = "k" + std::to_string(i);
        std::string value = "value-" + std::to_string(i);
        builder.add(key, value, kBaseTime + i,
                    {record::Header{"trace", Bytes::copy_of(std::to_string(i))}});
      }
      Bytes batch = builder.build();
      auto header = record::validate_produced_batch(batch.span(), {1 << 20, true});
      ASSERT_TRUE(header) << header.error().message;
      auto appended = log_->append(batch.span(), *header, 0);
      ASSERT_TRUE(appended) << appended.error().message;
    }
    const int64_t end = log_->log_end_offset();
    ASSERT_TRUE(eventually([&] { return log_->high_watermark() == end; }));
  }

  std::shared_ptr<replication::Partition> replica_;
  storage::PartitionLog* log_ = nullptr;
};

TEST_F(MessageSearchTest, FindsByKeyHeaderValueAndTimestampAcrossCompressedBatches) {
  fill(40, 250);  // 10,000 records in gzip, lz4, zstd and plain batches
  SearchBudget budget;
  {
    SearchQuery q;
    q.key = "k7777";
    auto r = search_messages({log_}, q, budget);
    ASSERT_EQ(r.records.size(), 1u) << r.error;
    EXPECT_EQ(r.records[0].record.offset, 7777);
    EXPECT_EQ(r.records[0].record.value->view(), "value-7777");
    EXPECT_EQ(r.records[0].record.timestamp, kBaseTime + 7777);
    EXPECT_FALSE(r.budget_exhausted);
    EXPECT_TRUE(r.partitions[0].reached_end);  // limit 20 not reached: scanned to the end
  }
  {
    SearchQuery q;
    q.header = "trace=4321";
    q.limit = 1;
    auto r = search_messages({log_}, q, budget);
    ASSERT_EQ(r.records.size(), 1u);
    EXPECT_EQ(r.records[0].record.offset, 4321);
    EXPECT_EQ(r.partitions[0].next_offset, 4322);  // stopped at the limit
  }
  {
    SearchQuery q;
    q.value = "lue-999";  // substring: 999, 9990..9999
    auto r = search_messages({log_}, q, budget);
    ASSERT_EQ(r.records.size(), 11u);
    EXPECT_EQ(r.records[0].record.offset, 999);
    EXPECT_EQ(r.records[1].record.offset, 9990);
  }
  {
    SearchQuery q;
    q.timestamp = kBaseTime + 5555;
    q.limit = 2;
    auto r = search_messages({log_}, q, budget);
    ASSERT_EQ(r.records.size(), 2u);
    EXPECT_EQ(r.records[0].record.offset, 5555);
    EXPECT_EQ(r.records[1].record.offset, 5556);
  }
  {
    SearchQuery q;
    q.offset = 9998;
    auto r = search_messages({log_}, q, budget);
    ASSERT_EQ(r.records.size(), 2u);  // from inside a batch: earlier records skipped
    EXPECT_EQ(r.records[0].record.offset, 9998);
  }
}

TEST_F(MessageSearchTest, NoMatchStopsAtTheByteBudgetAndContinuesFromNextOffset) {
  fill(40, 250);
  SearchQuery q;
  q.key = "no such key";
  SearchBudget budget;
  budget.max_scan_bytes = 4096;
  int64_t position = 0;
  int steps = 0;
  uint64_t total_scanned = 0;
  for (; steps < 1000; ++steps) {
    q.offset = position;
    auto r = search_messages({log_}, q, budget);
    EXPECT_TRUE(r.records.empty());
    total_scanned += r.scanned_bytes;
    ASSERT_GT(r.partitions[0].next_offset, position) << "no progress";
    position = r.partitions[0].next_offset;
    if (r.partitions[0].reached_end) {
      EXPECT_FALSE(r.budget_exhausted);
      break;
    }
    EXPECT_TRUE(r.budget_exhausted);
    // Stops at the first batch boundary past the budget.
    EXPECT_GE(r.scanned_bytes, budget.max_scan_bytes);
  }
  EXPECT_GT(steps, 1);
  EXPECT_EQ(position, 10000);
  EXPECT_EQ(total_scanned, uint64_t(log_->size_bytes()));
}

TEST_F(MessageSearchTest, FsyncsOfTheDataDirectoryAreMeasured) {
  fill(2, 10);
  const std::string text = broker_->metrics().expose();
  const std::string series = "holdfast_log_fsyncs_total{dir=\"" + dir_.string() + "\"} ";
  auto at = text.find(series);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GT(std::stoll(text.substr(at + series.size())), 0);
  EXPECT_NE(text.find("kafka_log_log_size{topic=\"events\",partition=\"0\"}"), std::string::npos);
}

TEST(Utf8Test, ValidatesAndEncodes) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // surrogate
  const uint8_t bytes[] = {0x00, 0xff, 0x10, 0x80};
  EXPECT_EQ(base64_encode(bytes), "AP8QgA==");
  EXPECT_EQ(base64_encode(std::span<const uint8_t>(bytes, 3)), "AP8Q");
}

}  // namespace
}  // namespace holdfast::admin
