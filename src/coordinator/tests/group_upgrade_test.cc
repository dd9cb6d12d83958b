// Upgrading a data dir whose __consumer_offsets was written by a release
// before Kafka's record formats: the coordinator loads the legacy records and
// rewrites the live ones in Kafka's layout, so that after compaction only
// Kafka's layout is left and tools that read the topic understand it.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>

#include "coordinator/group_coordinator.h"
#include "coordinator/tests/legacy_group_records.h"
#include "io/posix_file_system.h"
#include "record/batch.h"

namespace holdfast::coordinator {
namespace {

constexpr int kPartitions = 3;

std::span<const uint8_t> span_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class GroupUpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-gupgrade-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.compact = true;
    config_.segment_bytes = 400;
    config_.min_cleanable_dirty_ratio = 0.01;
    config_.delete_retention_ms = 0;
    config_.retention_ms = -1;
    open_logs();
    for (int p = 0; p < kPartitions; ++p) ASSERT_TRUE(logs_->create(kOffsetsTopic, p, config_));
  }
  void TearDown() override {
    coordinator_.reset();
    if (logs_) (void)logs_->shutdown();
    logs_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open_logs() {
    storage::LogManagerOptions options;
    options.log_cleaner_enable = false;
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.string(), options);
    ASSERT_TRUE(logs_->open([this](const std::string&) { return config_; }));
    logs_->start();
  }
  void start_coordinator() {
    GroupCoordinatorOptions o;
    o.num_partitions = kPartitions;
    o.offsets_retention_ms = 1LL << 40;
    o.offsets_retention_check_interval_ms = 1LL << 40;
    o.start_timer_thread = false;
    o.clock = [] { return int64_t(1000); };
    o.wall_clock = [] { return int64_t(1700000000000); };
    coordinator_ = std::make_unique<GroupCoordinator>(*logs_, o);
    coordinator_->start();
    ASSERT_TRUE(coordinator_->wait_until_loaded(5000));
  }
  void restart() {
    coordinator_.reset();
    ASSERT_TRUE(logs_->shutdown());
    logs_.reset();
    open_logs();
    start_coordinator();
  }
  // What the previous release appended: one batch of (key, value) records.
  void append_legacy(const std::string& group,
                     const std::vector<std::pair<std::string, std::optional<std::string>>>& records) {
    record::BatchBuilder builder;
    for (const auto& [key, value] : records) {
      builder.add(std::string_view(key),
                  value ? std::optional<std::string_view>(*value) : std::nullopt, 1700000000000);
    }
    Bytes batch = builder.build();
    auto header = record::parse_batch_header(batch.span());
    ASSERT_TRUE(header);
    auto* log = logs_->get(kOffsetsTopic, partition_for_group(group, kPartitions));
    ASSERT_TRUE(log->append(batch.span(), *header, 0));
  }
  static std::string offset_key(const std::string& g, const std::string& t, int32_t p) {
    return encode_key(OffsetKey{g, t, p});
  }
  static std::string legacy_offset(int64_t offset, std::optional<std::string> metadata,
                                   int32_t epoch = -1) {
    return legacy::encode_offset_value({offset, epoch, std::move(metadata), 1699999999000, -1});
  }
  int64_t committed(const std::string& group, const std::string& topic, int32_t partition) {
    auto r = coordinator_->fetch_offsets(group, std::vector<TopicPartitionKey>{{topic, partition}},
                                         false);
    return r.offsets.at(0).offset;
  }
  // The last record of every key over all partitions, and how many values of
  // each layout the logs hold.
  struct Scan {
    std::map<std::string, std::optional<std::string>> last;
    int legacy_values = 0;
    int kafka_values = 0;
  };
  Scan scan() {
    Scan out;
    for (int p = 0; p < kPartitions; ++p) {
      auto* log = logs_->get(kOffsetsTopic, p);
      auto read = log->read(log->log_start_offset(), 1 << 20, true, log->log_end_offset());
      EXPECT_TRUE(read);
      auto data = read->records.span();
      while (!data.empty()) {
        auto header = record::check_batch(data);
        EXPECT_TRUE(header);
        if (!header) break;
        auto batch = data.subspan(0, header->size_in_bytes());
        data = data.subspan(header->size_in_bytes());
        auto records = record::decode_records(batch);
        EXPECT_TRUE(records);
        for (const auto& r : *records) {
          std::string key(r.key->view());
          if (!r.value) {
            out.last[key] = std::nullopt;
            continue;
          }
          std::string value(r.value->view());
          out.last[key] = value;
          auto decoded_key = decode_key(r.key->span());
          EXPECT_TRUE(decoded_key);
          RecordLayout layout = RecordLayout::kafka;
          bool ok = std::holds_alternative<OffsetKey>(*decoded_key)
                        ? decode_offset_value(span_of(value), &layout).ok()
                        : decode_group_value(span_of(value), &layout).ok();
          EXPECT_TRUE(ok);
          (layout == RecordLayout::kafka ? out.kafka_values : out.legacy_values)++;
        }
      }
    }
    return out;
  }
  int64_t total_end_offset() {
    int64_t sum = 0;
    for (int p = 0; p < kPartitions; ++p) sum += logs_->get(kOffsetsTopic, p)->log_end_offset();
    return sum;
  }

  std::filesystem::path dir_;
  io::PosixFileSystem fs_;
  storage::LogConfig config_;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<GroupCoordinator> coordinator_;
};

TEST_F(GroupUpgradeTest, ADataDirOfThePreviousLayoutLoadsAndIsRewrittenInKafkasLayout) {
  // A consumer group with a static member, its offsets (one overwritten, one
  // with metadata), an offsets-only group, a deleted group and a deleted offset.
  GroupValue consumers;
  consumers.protocol_type = "consumer";
  consumers.generation = 4;
  consumers.protocol_name = "range";
  consumers.leader = "m-1";
  consumers.state_timestamp_ms = 1699999990000;
  consumers.members.push_back({"m-1", "instance-1", "client", "/127.0.0.1", 60000, 30000,
                               Bytes::copy_of(std::string_view("subscription")),
                               Bytes::copy_of(std::string_view("assignment"))});
  append_legacy("consumers", {{encode_key(GroupKey{"consumers"}),
                               legacy::encode_group_value(consumers)}});
  append_legacy("consumers", {{offset_key("consumers", "t", 0), legacy_offset(5, std::nullopt)},
                              {offset_key("consumers", "t", 1), legacy_offset(7, "meta", 2)}});
  append_legacy("consumers", {{offset_key("consumers", "t", 0), legacy_offset(15, std::nullopt)}});
  append_legacy("simple", {{offset_key("simple", "u", 0), legacy_offset(100, std::nullopt)},
                           {offset_key("simple", "u", 1), legacy_offset(200, std::nullopt)}});
  append_legacy("simple", {{offset_key("simple", "u", 1), std::nullopt}});
  GroupValue gone;
  gone.protocol_type = "consumer";
  append_legacy("gone", {{encode_key(GroupKey{"gone"}), legacy::encode_group_value(gone)},
                         {offset_key("gone", "t", 0), legacy_offset(1, std::nullopt)}});
  append_legacy("gone", {{offset_key("gone", "t", 0), std::nullopt},
                         {encode_key(GroupKey{"gone"}), std::nullopt}});

  auto check_state = [this] {
    EXPECT_EQ(committed("consumers", "t", 0), 15);
    EXPECT_EQ(committed("consumers", "t", 1), 7);
    auto fetched = coordinator_->fetch_offsets("consumers", std::nullopt, false);
    ASSERT_EQ(fetched.offsets.size(), 2u);
    EXPECT_EQ(fetched.offsets[0].metadata.value_or("<null>"), "");  // as Kafka stores a null
    EXPECT_EQ(fetched.offsets[1].metadata.value_or("<null>"), "meta");
    EXPECT_EQ(fetched.offsets[1].leader_epoch, 2);
    EXPECT_EQ(committed("simple", "u", 0), 100);
    EXPECT_EQ(committed("simple", "u", 1), -1);
    EXPECT_EQ(committed("gone", "t", 0), -1);
    EXPECT_EQ(coordinator_->describe("gone").state, "Dead");
    auto d = coordinator_->describe("consumers");
    EXPECT_EQ(d.state, "Stable");
    EXPECT_EQ(d.protocol_name, "range");
    ASSERT_EQ(d.members.size(), 1u);
    EXPECT_EQ(d.members[0].member_id, "m-1");
    EXPECT_EQ(d.members[0].group_instance_id, "instance-1");
    EXPECT_EQ(d.members[0].assignment.to_string(), "assignment");
  };

  start_coordinator();
  check_state();
  // Every live key's last record is now in Kafka's layout.
  Scan after_load = scan();
  EXPECT_GT(after_load.legacy_values, 0);
  for (const auto& [key, value] : after_load.last) {
    if (!value) continue;
    RecordLayout layout = RecordLayout::holdfast_legacy;
    auto k = decode_key(span_of(key));
    ASSERT_TRUE(k);
    if (std::holds_alternative<OffsetKey>(*k)) {
      ASSERT_TRUE(decode_offset_value(span_of(*value), &layout));
    } else {
      ASSERT_TRUE(decode_group_value(span_of(*value), &layout));
    }
    EXPECT_EQ(layout, RecordLayout::kafka);
  }

  // The rewrite happens once: a second start appends nothing.
  int64_t end = total_end_offset();
  restart();
  EXPECT_EQ(total_end_offset(), end);
  check_state();

  // Compaction drops the superseded legacy records; the state is unchanged.
  for (int i = 0; i < 3; ++i) {  // roll the rewritten records out of the active segment
    std::promise<CommitResult> done;
    coordinator_->commit({"simple", -1, "", std::nullopt, {{{"v", i}, 1}}},
                         [&](CommitResult r) { done.set_value(std::move(r)); });
    ASSERT_EQ(done.get_future().get().errors.at(0), GroupErrc::none);
  }
  ASSERT_TRUE(logs_->run_compaction_now().ok());
  restart();
  check_state();
  EXPECT_LT(scan().legacy_values, after_load.legacy_values);
}

}  // namespace
}  // namespace holdfast::coordinator
