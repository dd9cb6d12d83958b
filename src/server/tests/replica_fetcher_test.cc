// replication::ReplicaFetcherManager following a real broker in this process
// (the leader) into in-memory follower replicas: everything produced arrives
// byte for byte, truncation by epoch where the logs diverge (KIP-279's loop),
// a start below the leader's log start, removal, a leader that goes away and
// comes back, a fenced epoch that waits until the partition is re-added.
#include "replication/replica_fetcher.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "record/batch.h"
#include "replication/replica_manager.h"
#include "server/tests/broker_fixture.h"
#include "storage/leader_epoch_cache.h"

namespace holdfast::server {
namespace {

using testing::TestClient;

// Appends of several replicas in the order they happened: (partition, base offset).
struct Journal {
  std::mutex mutex;
  std::vector<std::pair<int32_t, int64_t>> appends;
};

// A follower replica in memory: whole batches, a leader epoch cache, and a
// "durability" thread that completes wait_durable asynchronously like the
// flusher does. After freeze() every append counts as a violation.
class MemoryReplica : public replication::FollowerReplica {
 public:
  MemoryReplica(std::string topic, int32_t index, int32_t current_leader_epoch = 0)
      : topic_(std::move(topic)), index_(index), current_leader_epoch_(current_leader_epoch) {
    durability_ = std::thread([this] { run_durability(); });
  }
  ~MemoryReplica() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      cv_.notify_all();
    }
    durability_.join();
  }

  const std::string& topic() const override { return topic_; }
  int32_t index() const override { return index_; }
  int64_t log_end_offset() const override {
    std::lock_guard lock(mutex_);
    return end_;
  }
  int64_t log_start_offset() const override {
    std::lock_guard lock(mutex_);
    return start_;
  }
  int32_t latest_epoch() const override {
    std::lock_guard lock(mutex_);
    return epochs_.latest_epoch().value_or(-1);
  }
  std::optional<std::pair<int32_t, int64_t>> end_offset_for_epoch(int32_t epoch) const override {
    std::lock_guard lock(mutex_);
    auto found = epochs_.end_offset_for(epoch, end_);
    if (found.undefined()) return std::nullopt;
    return std::make_pair(found.epoch, found.end_offset);
  }
  int32_t current_leader_epoch() const override {
    std::lock_guard lock(mutex_);
    return current_leader_epoch_;
  }
  Result<void, storage::Errc> append_replicated(std::span<const uint8_t> batch,
                                                const record::BatchHeader& header) override {
    std::lock_guard lock(mutex_);
    if (frozen_) ++appends_after_freeze_;
    if (header.base_offset != end_)
      return make_error(storage::Errc::invalid_argument, "not at end");
    epochs_.assign(header.partition_leader_epoch, header.base_offset);
    batches_.push_back({header.base_offset, std::vector<uint8_t>(batch.begin(), batch.end())});
    if (journal_) {
      std::lock_guard journal_lock(journal_->mutex);
      journal_->appends.emplace_back(index_, header.base_offset);
    }
    end_ = header.last_offset() + 1;
    return {};
  }
  void wait_durable(int64_t end_offset,
                    std::function<void(Result<void, storage::Errc>)> done) override {
    std::lock_guard lock(mutex_);
    ++durable_waits_;
    pending_durable_.push_back(std::move(done));
    cv_.notify_all();
  }
  Result<void, storage::Errc> truncate_to(int64_t offset) override {
    std::lock_guard lock(mutex_);
    if (frozen_) ++appends_after_freeze_;
    if (offset >= end_) return {};
    while (!batches_.empty() && batches_.back().base_offset >= offset) batches_.pop_back();
    if (!batches_.empty()) {
      auto h = record::parse_batch_header(batches_.back().bytes);
      EXPECT_LT(h->last_offset(), offset) << "truncation inside a batch";
    }
    end_ = offset;
    epochs_.truncate_from_end(offset);
    truncations_.push_back(offset);
    return {};
  }
  Result<void, storage::Errc> truncate_fully_and_start_at(int64_t offset) override {
    std::lock_guard lock(mutex_);
    if (frozen_) ++appends_after_freeze_;
    batches_.clear();
    epochs_ = storage::LeaderEpochCache();
    start_ = end_ = offset;
    full_truncations_.push_back(offset);
    return {};
  }
  void set_high_watermark(int64_t high_watermark) override {
    std::lock_guard lock(mutex_);
    EXPECT_LE(high_watermark, end_);
    high_watermark_ = high_watermark;
  }

  // ---- For the tests ----
  std::vector<uint8_t> bytes() const {
    std::lock_guard lock(mutex_);
    std::vector<uint8_t> all;
    for (const auto& b : batches_) all.insert(all.end(), b.bytes.begin(), b.bytes.end());
    return all;
  }
  int64_t high_watermark() const {
    std::lock_guard lock(mutex_);
    return high_watermark_;
  }
  std::vector<int64_t> truncations() const {
    std::lock_guard lock(mutex_);
    return truncations_;
  }
  std::vector<int64_t> full_truncations() const {
    std::lock_guard lock(mutex_);
    return full_truncations_;
  }
  void freeze() {
    std::lock_guard lock(mutex_);
    frozen_ = true;
  }
  int appends_after_freeze() const {
    std::lock_guard lock(mutex_);
    return appends_after_freeze_;
  }
  int64_t durable_waits() const {
    std::lock_guard lock(mutex_);
    return durable_waits_;
  }
  // While stuck, wait_durable never completes (a log whose flusher hangs).
  void set_durability_stuck(bool stuck) {
    std::lock_guard lock(mutex_);
    durability_stuck_ = stuck;
    cv_.notify_all();
  }
  void set_journal(std::shared_ptr<Journal> journal) {
    std::lock_guard lock(mutex_);
    journal_ = std::move(journal);
  }
  void set_current_leader_epoch(int32_t epoch) {
    std::lock_guard lock(mutex_);
    current_leader_epoch_ = epoch;
  }

 private:
  struct StoredBatch {
    int64_t base_offset;
    std::vector<uint8_t> bytes;
  };

  void run_durability() {
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || (!pending_durable_.empty() && !durability_stuck_); });
      if (stop_) return;
      auto done = std::move(pending_durable_.front());
      pending_durable_.pop_front();
      lock.unlock();
      done({});
      lock.lock();
    }
  }

  const std::string topic_;
  const int32_t index_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int32_t current_leader_epoch_;
  std::vector<StoredBatch> batches_;
  storage::LeaderEpochCache epochs_;
  int64_t start_ = 0;
  int64_t end_ = 0;
  int64_t high_watermark_ = 0;
  bool frozen_ = false;
  int appends_after_freeze_ = 0;
  int64_t durable_waits_ = 0;
  std::vector<int64_t> truncations_;
  std::vector<int64_t> full_truncations_;
  std::deque<std::function<void(Result<void, storage::Errc>)>> pending_durable_;
  std::shared_ptr<Journal> journal_;
  bool durability_stuck_ = false;
  bool stop_ = false;
  std::thread durability_;
};

// A batch of `values` as a leader of `epoch` would have stored it at `base_offset`.
std::vector<uint8_t> stored_batch(int64_t base_offset, int32_t epoch,
                                  std::initializer_list<std::string> values) {
  record::BatchBuilder builder;
  for (const auto& v : values) builder.add(std::nullopt, v, 1000);
  auto built = builder.build();
  std::vector<uint8_t> bytes(built.span().begin(), built.span().end());
  store_be64(bytes.data() + record::kBaseOffsetOffset, static_cast<uint64_t>(base_offset));
  store_be32(bytes.data() + record::kPartitionLeaderEpochOffset, static_cast<uint32_t>(epoch));
  return bytes;
}

void append_stored(MemoryReplica& replica, const std::vector<uint8_t>& batch) {
  auto header = record::check_batch(batch);
  ASSERT_TRUE(header);
  ASSERT_TRUE(replica.append_replicated(batch, *header));
}

class ReplicaFetcherTest : public testing::BrokerFixture {
 protected:
  void configure(BrokerConfig& config) override { config.listen_port = fixed_port_; }

  replication::ReplicaFetcherOptions fetcher_options() const {
    replication::ReplicaFetcherOptions options;
    options.node_id = 1;
    options.max_wait_ms = 100;
    options.backoff = std::chrono::milliseconds(20);
    options.client.reconnect_backoff = std::chrono::milliseconds(10);
    options.client.reconnect_backoff_max = std::chrono::milliseconds(100);
    return options;
  }
  net::Endpoint leader() const { return {"127.0.0.1", port()}; }

  void create(const std::string& topic, int32_t partitions) {
    TestClient client(port());
    create_topic(client, topic, partitions);
    admit_follower(topic, partitions);
  }

  // The leader serves follower fetches only to replicas of the partition:
  // make the fetcher's node (1) a replica, outside the ISR so the leader's
  // high watermark stays its own.
  void admit_follower(const std::string& topic, int32_t partitions) {
    for (int32_t p = 0; p < partitions; ++p) {
      auto partition = broker_->replicas().get(topic, p);
      ASSERT_TRUE(partition);
      partition->become_leader(partition->leader_epoch(), 1, {0, 1}, {0});
    }
  }

  void produce(const std::string& topic, int32_t partition,
               std::initializer_list<std::string> values) {
    TestClient client(port());
    record::BatchBuilder builder;
    for (const auto& v : values) builder.add(std::nullopt, v, 1000);
    protocol::ProduceRequest request;
    request.acks = -1;
    request.timeout_ms = 5000;
    auto& t = request.topic_data.emplace_back();
    t.name = topic;
    auto& p = t.partition_data.emplace_back();
    p.index = partition;
    p.records = builder.build();
    auto r = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(request, 7);
    ASSERT_EQ(r.responses.at(0).partition_responses.at(0).error_code, 0);
  }

  // Every batch the leader holds from `from` up to its high watermark, as stored.
  std::vector<uint8_t> leader_bytes(const std::string& topic, int32_t partition, int64_t from = 0) {
    TestClient client(port());
    std::vector<uint8_t> all;
    int64_t offset = from;
    for (int rounds = 0; rounds < 1000; ++rounds) {
      auto r = client.fetch_from(topic, partition, offset);
      const auto& p = r.responses.at(0).partitions.at(0);
      EXPECT_EQ(p.error_code, 0);
      if (!p.records || p.records->empty()) break;
      auto span = p.records->span();
      size_t pos = 0;
      while (pos < span.size()) {
        auto h = record::check_batch(span.subspan(pos));
        if (!h) break;
        all.insert(all.end(), span.begin() + pos, span.begin() + pos + h->size_in_bytes());
        pos += h->size_in_bytes();
        offset = h->last_offset() + 1;
      }
      if (offset >= p.high_watermark) break;
    }
    return all;
  }

  std::shared_ptr<replication::Partition> leader_partition(const std::string& topic, int32_t p) {
    return broker_->replicas().get(topic, p);
  }

  uint16_t fixed_port_ = 0;
};

TEST_F(ReplicaFetcherTest, FollowerGetsEverythingTheLeaderHasByteForByte) {
  create("t", 2);
  produce("t", 0, {"a", "b", "c"});
  produce("t", 0, {std::string(5000, 'x')});
  produce("t", 1, {"p1-a"});

  auto r0 = std::make_shared<MemoryReplica>("t", 0);
  auto r1 = std::make_shared<MemoryReplica>("t", 1);
  replication::ReplicaFetcherManager fetchers(fetcher_options());
  fetchers.add(0, leader(), r0);
  fetchers.add(0, leader(), r1);

  ASSERT_TRUE(eventually([&] { return r0->log_end_offset() == 4 && r1->log_end_offset() == 1; }));
  EXPECT_EQ(r0->bytes(), leader_bytes("t", 0));
  EXPECT_EQ(r1->bytes(), leader_bytes("t", 1));

  // Produced while the fetcher long-polls.
  for (int i = 0; i < 20; ++i) produce("t", 0, {"more-" + std::to_string(i), "and more"});
  ASSERT_TRUE(eventually([&] { return r0->log_end_offset() == 44; }));
  EXPECT_EQ(r0->bytes(), leader_bytes("t", 0));
  // The leader's high watermark follows (capped at the follower's log end).
  EXPECT_TRUE(eventually([&] { return r0->high_watermark() == 44; }));
  EXPECT_GT(r0->durable_waits(), 0);
  EXPECT_TRUE(r0->truncations().empty());
  EXPECT_EQ(fetchers.followed().size(), 2u);
}

TEST_F(ReplicaFetcherTest, ABatchLargerThanThePartitionLimitIsNotStarvedByABusyPartition) {
  create("t", 2);
  // Partition 0 has a long backlog: with a tiny per-partition limit every
  // round brings one batch of it (KIP-74: the first partition gets one batch
  // whatever its size). Partition 1's one batch is over the limit too, so it
  // comes only in a round where partition 1 is asked first.
  constexpr int kBacklog = 100;
  for (int i = 0; i < kBacklog; ++i) produce("t", 0, {"backlog-" + std::to_string(i)});
  produce("t", 1, {std::string(2000, 'y')});

  auto journal = std::make_shared<Journal>();
  auto r0 = std::make_shared<MemoryReplica>("t", 0);
  auto r1 = std::make_shared<MemoryReplica>("t", 1);
  r0->set_journal(journal);
  r1->set_journal(journal);
  auto options = fetcher_options();
  options.partition_max_bytes = 1;
  replication::ReplicaFetcherManager fetchers(options);
  fetchers.add(0, leader(), r0);
  fetchers.add(0, leader(), r1);
  ASSERT_TRUE(
      eventually([&] { return r0->log_end_offset() == kBacklog && r1->log_end_offset() == 1; }));

  std::lock_guard lock(journal->mutex);
  auto p1 = std::find_if(journal->appends.begin(), journal->appends.end(),
                         [](const auto& a) { return a.first == 1; });
  ASSERT_NE(p1, journal->appends.end());
  // Within the first few rounds, not after the whole backlog.
  EXPECT_LT(p1 - journal->appends.begin(), 10);
  EXPECT_EQ(r1->bytes(), leader_bytes("t", 1));
}

TEST_F(ReplicaFetcherTest, DivergedFollowerTruncatesByEpochThenCatchesUp) {
  create("t", 1);
  auto partition = leader_partition("t", 0);
  ASSERT_TRUE(partition);
  // Leader: epoch 0 at 0-2, epoch 2 at 3-4, epoch 4 at 5-6.
  produce("t", 0, {"a", "b", "c"});
  ASSERT_TRUE(partition->set_leader_epoch(2));
  produce("t", 0, {"d", "e"});
  ASSERT_TRUE(partition->set_leader_epoch(4));
  produce("t", 0, {"f", "g"});
  auto leader_all = leader_bytes("t", 0);

  // Follower: the leader's epoch-0 batch, then epoch 1 at 3 and epoch 3 at
  // 4-5 from leaders that lost their tails.
  auto follower = std::make_shared<MemoryReplica>("t", 0, /*current_leader_epoch=*/4);
  auto first = record::check_batch(leader_all);
  ASSERT_TRUE(first);
  append_stored(*follower, std::vector<uint8_t>(leader_all.begin(),
                                                leader_all.begin() + first->size_in_bytes()));
  append_stored(*follower, stored_batch(3, 1, {"stale-1"}));
  append_stored(*follower, stored_batch(4, 3, {"stale-3a", "stale-3b"}));
  ASSERT_EQ(follower->log_end_offset(), 6);

  // OffsetForLeaderEpoch(3) -> (2, 5); the follower has no epoch 2, asks
  // again for its epoch 1 -> (0, 3); it has epoch 0 ending at 3: truncate to
  // 3. (Truncating to min(5, its end of epoch 1 = 4) would keep the stale
  // record at offset 3.)
  replication::ReplicaFetcherManager fetchers(fetcher_options());
  fetchers.add(0, leader(), follower);
  ASSERT_TRUE(eventually([&] { return follower->log_end_offset() == 7; }));
  EXPECT_EQ(follower->truncations(), std::vector<int64_t>{3});
  EXPECT_EQ(follower->bytes(), leader_all);
  EXPECT_EQ(follower->latest_epoch(), 4);
}

TEST_F(ReplicaFetcherTest, AFollowerBelowTheLeadersLogStartStartsOverThere) {
  create("t", 1);
  produce("t", 0, {"a"});
  produce("t", 0, {"b"});
  produce("t", 0, {"c"});
  auto partition = leader_partition("t", 0);
  ASSERT_TRUE(partition->delete_records_before(2));

  auto follower = std::make_shared<MemoryReplica>("t", 0);
  replication::ReplicaFetcherManager fetchers(fetcher_options());
  fetchers.add(0, leader(), follower);
  ASSERT_TRUE(eventually([&] { return follower->log_end_offset() == 3; }));
  EXPECT_EQ(follower->full_truncations(), std::vector<int64_t>{2});
  EXPECT_EQ(follower->log_start_offset(), 2);
  EXPECT_EQ(follower->bytes(), leader_bytes("t", 0, 2));
}

TEST_F(ReplicaFetcherTest, ARemovedPartitionIsNotTouchedAfterRemoveReturns) {
  create("t", 2);
  produce("t", 0, {"a"});
  produce("t", 1, {"b"});
  auto r0 = std::make_shared<MemoryReplica>("t", 0);
  auto r1 = std::make_shared<MemoryReplica>("t", 1);
  replication::ReplicaFetcherManager fetchers(fetcher_options());
  fetchers.add(0, leader(), r0);
  fetchers.add(0, leader(), r1);
  ASSERT_TRUE(eventually([&] { return r0->log_end_offset() == 1 && r1->log_end_offset() == 1; }));

  EXPECT_TRUE(fetchers.remove("t", 0));
  r0->freeze();
  EXPECT_FALSE(fetchers.remove("t", 0));
  EXPECT_EQ(fetchers.followed().count({"t", 0}), 0u);
  // Both partitions get more; the one still followed shows the fetcher ran
  // rounds after the removal.
  for (int i = 0; i < 5; ++i) {
    produce("t", 0, {"more"});
    produce("t", 1, {"more"});
  }
  ASSERT_TRUE(eventually([&] { return r1->log_end_offset() == 6; }));
  EXPECT_EQ(r0->log_end_offset(), 1);
  EXPECT_EQ(r0->appends_after_freeze(), 0);
}

TEST_F(ReplicaFetcherTest, RemovingAPartitionWhoseDurabilityHangsLetsTheOthersGoOn) {
  create("t", 2);
  auto r0 = std::make_shared<MemoryReplica>("t", 0);
  auto r1 = std::make_shared<MemoryReplica>("t", 1);
  r0->set_durability_stuck(true);
  replication::ReplicaFetcherManager fetchers(fetcher_options());
  fetchers.add(0, leader(), r0);
  fetchers.add(0, leader(), r1);
  produce("t", 0, {"a"});
  // The fetcher appended r0's batch and now waits for it to be durable
  // before fetching again (decision 1): r1 gets nothing meanwhile.
  ASSERT_TRUE(eventually([&] { return r0->durable_waits() == 1; }));
  produce("t", 1, {"b"});

  ASSERT_TRUE(fetchers.remove("t", 0));
  ASSERT_TRUE(eventually([&] { return r1->log_end_offset() == 1; }));
  EXPECT_EQ(r1->bytes(), leader_bytes("t", 1));
}

TEST_F(ReplicaFetcherTest, ALeaderThatGoesAwayAndComesBackIsFollowedAgain) {
  fixed_port_ = port();
  create("t", 1);
  produce("t", 0, {"a", "b"});
  auto follower = std::make_shared<MemoryReplica>("t", 0);
  replication::ReplicaFetcherManager fetchers(fetcher_options());
  fetchers.add(0, leader(), follower);
  ASSERT_TRUE(eventually([&] { return follower->log_end_offset() == 2; }));

  broker_.reset();  // the leader goes away; the fetcher keeps retrying
  start();
  ASSERT_EQ(port(), fixed_port_);
  admit_follower("t", 1);
  produce("t", 0, {"c"});
  produce("t", 0, {"d", "e"});
  ASSERT_TRUE(eventually([&] { return follower->log_end_offset() == 5; }));
  EXPECT_EQ(follower->bytes(), leader_bytes("t", 0));
  EXPECT_TRUE(follower->truncations().empty());
}

TEST_F(ReplicaFetcherTest, AnEpochTheLeaderDoesNotKnowYetFetchesNothingUntilItDoes) {
  create("t", 1);
  produce("t", 0, {"a"});
  // The follower believes in epoch 3; the leader is still in epoch 0:
  // UNKNOWN_LEADER_EPOCH, so nothing is fetched.
  auto follower = std::make_shared<MemoryReplica>("t", 0, /*current_leader_epoch=*/3);
  replication::ReplicaFetcherManager fetchers(fetcher_options());
  fetchers.add(0, leader(), follower);
  // A second partition on the same fetcher shows rounds go on meanwhile.
  create("u", 1);
  produce("u", 0, {"x"});
  auto witness = std::make_shared<MemoryReplica>("u", 0);
  fetchers.add(0, leader(), witness);
  ASSERT_TRUE(eventually([&] { return witness->log_end_offset() == 1; }));
  produce("u", 0, {"y"});
  ASSERT_TRUE(eventually([&] { return witness->log_end_offset() == 2; }));
  EXPECT_EQ(follower->log_end_offset(), 0);

  // The leader reaches epoch 3 (the metadata caught up there); the retries,
  // or the lifecycle re-adding the partition, then succeed.
  ASSERT_TRUE(leader_partition("t", 0)->set_leader_epoch(3));
  fetchers.add(0, leader(), follower);
  ASSERT_TRUE(eventually([&] { return follower->log_end_offset() == 1; }));
  EXPECT_EQ(follower->bytes(), leader_bytes("t", 0));
}

}  // namespace
}  // namespace holdfast::server
