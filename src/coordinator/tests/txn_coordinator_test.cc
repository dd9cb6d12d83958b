// The transaction coordinator's state machine (txn_coordinator.h): every
// transition and every illegal one with Kafka's error, fencing, the order
// "decision replicated before any marker", loading in each state (a Prepare*
// finishes), and the timeout abort. Replicas are real replication::Partition
// objects of node 1; markers go to a fake sender the test answers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "coordinator/txn_coordinator.h"
#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "replication/replica_manager.h"

namespace holdfast::coordinator {
namespace {

using replication::Partition;

constexpr int32_t kSelf = 1;
constexpr int32_t kFollower = 2;
constexpr int kPartitions = 3;

template <typename T>
struct Answer {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<T> value;
  std::function<void(T)> callback(std::shared_ptr<Answer> self) {
    return [self](T v) {
      {
        std::lock_guard lock(self->mu);
        self->value = std::move(v);
      }
      self->cv.notify_all();
    };
  }
  bool done() {
    std::lock_guard lock(mu);
    return value.has_value();
  }
  T get() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [this] { return value.has_value(); });
    EXPECT_TRUE(value.has_value()) << "no answer within 10 s";
    return value.value_or(T{});
  }
};

// Records every marker request; answers at once (auto_ack) or when told.
class FakeMarkers : public TxnMarkerSender {
 public:
  void send(TxnMarkers m, std::function<void(std::vector<TxnPartition>)> done) override {
    std::vector<TxnPartition> ack;
    {
      std::lock_guard lock(mu_);
      sent_.push_back(m);
      if (!auto_ack_) {
        held_.emplace_back(std::move(m), std::move(done));
        cv_.notify_all();
        return;
      }
      ack = m.partitions;
    }
    cv_.notify_all();
    done(ack);
  }
  void set_auto_ack(bool on) {
    std::lock_guard lock(mu_);
    auto_ack_ = on;
  }
  // Answers every held request, acknowledging all of its partitions but
  // those in `failing`.
  void answer_held(const std::set<TxnPartition>& failing = {}) {
    std::vector<std::pair<TxnMarkers, std::function<void(std::vector<TxnPartition>)>>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& [m, done] : held) {
      std::vector<TxnPartition> ack;
      for (const auto& tp : m.partitions) {
        if (!failing.count(tp)) ack.push_back(tp);
      }
      done(ack);
    }
  }
  void drop_held() {
    std::lock_guard lock(mu_);
    held_.clear();
  }
  bool wait_held(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_.size() >= n; });
  }
  std::vector<TxnMarkers> sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool auto_ack_ = true;
  std::vector<TxnMarkers> sent_;
  std::vector<std::pair<TxnMarkers, std::function<void(std::vector<TxnPartition>)>>> held_;
};

class TxnCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logs_ = std::make_unique<storage::LogManager>(fs_, dir_.path());
    ASSERT_TRUE(logs_->open([](const std::string&) { return storage::LogConfig{}; }).ok());
    replicas_ = std::make_unique<replication::ReplicaManager>(*logs_, kSelf,
                                                              [this] { return now_.load(); });
    storage::LogConfig config;
    config.flush_mode = storage::FlushMode::never;
    for (int p = 0; p < kPartitions; ++p) {
      auto made = replicas_->create(kTransactionStateTopic, p, config);
      ASSERT_TRUE(made.ok());
      partitions_.push_back(*made);
      (*made)->become_follower(-1, 0, -1, {}, {});
    }
    logs_->start();
    make_coordinator();
  }
  void TearDown() override {
    // The logs first: writes still waiting for their high watermark fail
    // into a live coordinator.
    EXPECT_TRUE(logs_->shutdown().ok());
    for (auto& p : partitions_) p->close();
    coordinator_.reset();
    replicas_.reset();
  }
  void make_coordinator() {
    coordinator_.reset();
    TxnCoordinatorOptions o;
    o.num_partitions = kPartitions;
    o.max_timeout_ms = 60000;
    o.abort_check_interval_ms = 0;
    o.id_expiration_ms = id_expiration_ms_;
    o.marker_retry_backoff_ms = 0;
    o.start_timer_thread = false;
    o.clock = [this] { return now_.load(); };
    o.next_producer_id = [this]() -> Result<int64_t, std::string> { return next_pid_++; };
    coordinator_ = std::make_unique<TxnCoordinator>(o, markers_);
    coordinator_->start();
  }
  std::shared_ptr<Partition> replica_of(const std::string& id) {
    return partitions_[coordinator_->partition_for(id)];
  }
  void lead(const std::string& id, int32_t epoch, std::vector<int32_t> isr = {kSelf}) {
    auto replica = replica_of(id);
    replica->become_leader(epoch, epoch, {kSelf, kFollower}, std::move(isr));
    coordinator_->became_leader(replica);
    ASSERT_TRUE(coordinator_->wait_until_loaded(10000));
    ASSERT_TRUE(coordinator_->serving(coordinator_->partition_for(id)));
  }
  void follow(const std::string& id, int32_t epoch) {
    auto replica = replica_of(id);
    replica->become_follower(kFollower, epoch, epoch, {kSelf, kFollower}, {kSelf, kFollower});
    coordinator_->became_follower(replica);
  }
  InitProducerIdResult init(const std::string& id, int32_t timeout = 10000, int64_t pid = -1,
                            int16_t epoch = -1) {
    auto a = std::make_shared<Answer<InitProducerIdResult>>();
    coordinator_->init_producer_id(id, timeout, pid, epoch, a->callback(a));
    return a->get();
  }
  std::shared_ptr<Answer<TxnErrc>> add_async(const std::string& id, int64_t pid, int16_t epoch,
                                             std::vector<TxnPartition> tps) {
    auto a = std::make_shared<Answer<TxnErrc>>();
    coordinator_->add_partitions(id, pid, epoch, std::move(tps), a->callback(a));
    return a;
  }
  TxnErrc add(const std::string& id, int64_t pid, int16_t epoch,
              std::vector<TxnPartition> tps = {{"orders", 0}, {"orders", 1}}) {
    return add_async(id, pid, epoch, std::move(tps))->get();
  }
  std::shared_ptr<Answer<TxnErrc>> end_async(const std::string& id, int64_t pid, int16_t epoch,
                                             bool commit) {
    auto a = std::make_shared<Answer<TxnErrc>>();
    coordinator_->end_txn(id, pid, epoch, commit, a->callback(a));
    return a;
  }
  TxnErrc end(const std::string& id, int64_t pid, int16_t epoch, bool commit) {
    return end_async(id, pid, epoch, commit)->get();
  }
  TxnState state(const std::string& id) { return coordinator_->describe(id).state; }
  // The Complete record is written after the last marker is acknowledged,
  // on whichever thread acknowledged it: wait (bounded) for its state.
  bool await_state(const std::string& id, TxnState want) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (state(id) != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return state(id) == want;
  }

  io::testing::TempDir dir_;
  io::PosixFileSystem fs_;
  std::atomic<int64_t> now_{1'000'000};
  std::atomic<int64_t> next_pid_{1000};
  int64_t id_expiration_ms_ = 604800000;
  std::unique_ptr<storage::LogManager> logs_;
  std::unique_ptr<replication::ReplicaManager> replicas_;
  std::vector<std::shared_ptr<Partition>> partitions_;
  FakeMarkers markers_;
  std::unique_ptr<TxnCoordinator> coordinator_;
};

TEST(TxnRecordsTest, KeyAndValueRoundTripInKafkasLayout) {
  std::string key = encode_txn_key("t1");
  // version 0, int16 length 2, "t1"
  EXPECT_EQ(key, std::string("\0\0\0\x02t1", 6));
  auto id = decode_txn_key(std::span(reinterpret_cast<const uint8_t*>(key.data()), key.size()));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "t1");
  TxnValue v;
  v.producer_id = 42;
  v.producer_epoch = 7;
  v.timeout_ms = 60000;
  v.state = TxnState::prepare_commit;
  v.partitions = {{"a", 0}, {"a", 3}, {"b", 1}};
  v.last_update_ms = 123;
  v.start_ms = 100;
  std::string value = encode_txn_value(v);
  // 2 + 8 + 2 + 4 + 1 + (4 + (2+1+4+8) + (2+1+4+4)) + 8 + 8
  EXPECT_EQ(value.size(), 2u + 8 + 2 + 4 + 1 + 4 + 15 + 11 + 8 + 8);
  EXPECT_EQ(value[16], 2);  // the status byte: PrepareCommit
  auto back = decode_txn_value(std::span(reinterpret_cast<const uint8_t*>(value.data()), value.size()));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, v);
}

TEST(TxnRecordsTest, PartitionIsKafkasHashOfTheId) {
  // "my-txn".hashCode() = -1061187895 in Java; abs % 50 = 45.
  EXPECT_EQ(partition_for_transactional_id("my-txn", 50), 45);
}

TEST_F(TxnCoordinatorTest, APartitionNotLedHereAnswersNotCoordinator) {
  EXPECT_EQ(init("t").error, TxnErrc::not_coordinator);
  EXPECT_EQ(add("t", 1, 0), TxnErrc::not_coordinator);
  EXPECT_EQ(end("t", 1, 0, true), TxnErrc::not_coordinator);
  EXPECT_EQ(coordinator_->describe("t").error, TxnErrc::not_coordinator);
}

TEST_F(TxnCoordinatorTest, InitProducerIdGivesANewIdThenBumpsTheEpoch) {
  lead("t", 1);
  EXPECT_EQ(init("", 1000).error, TxnErrc::invalid_request);
  EXPECT_EQ(init("t", 60001).error, TxnErrc::invalid_transaction_timeout);
  EXPECT_EQ(init("t", 0).error, TxnErrc::invalid_transaction_timeout);
  auto first = init("t");
  ASSERT_EQ(first.error, TxnErrc::none);
  EXPECT_EQ(first.producer_id, 1000);
  EXPECT_EQ(first.producer_epoch, 0);
  EXPECT_EQ(state("t"), TxnState::empty);
  auto second = init("t");
  ASSERT_EQ(second.error, TxnErrc::none);
  EXPECT_EQ(second.producer_id, 1000);
  EXPECT_EQ(second.producer_epoch, 1);
  // KIP-360: naming a producer that is not the current one is fenced.
  EXPECT_EQ(init("t", 10000, 1000, 0).error, TxnErrc::producer_fenced);
  EXPECT_EQ(init("t", 10000, 999, 1).error, TxnErrc::producer_fenced);
  auto third = init("t", 10000, 1000, 1);
  EXPECT_EQ(third.error, TxnErrc::none);
  EXPECT_EQ(third.producer_epoch, 2);
}

TEST_F(TxnCoordinatorTest, AddPartitionsChecksTheProducerAndStartsTheTransaction) {
  lead("t", 1);
  EXPECT_EQ(add("t", 1000, 0), TxnErrc::invalid_producer_id_mapping);  // unknown id
  auto p = init("t");
  EXPECT_EQ(add("t", p.producer_id + 1, 0), TxnErrc::invalid_producer_id_mapping);
  EXPECT_EQ(add("t", p.producer_id, 1), TxnErrc::producer_fenced);
  EXPECT_EQ(add("t", p.producer_id, 0), TxnErrc::none);
  auto d = coordinator_->describe("t");
  EXPECT_EQ(d.state, TxnState::ongoing);
  EXPECT_EQ(d.partitions.size(), 2u);
  EXPECT_EQ(d.start_ms, now_.load());
  // Adding what is already there writes nothing; adding more extends it.
  const int64_t end_before = replica_of("t")->log_end_offset();
  EXPECT_EQ(add("t", p.producer_id, 0, {{"orders", 0}}), TxnErrc::none);
  EXPECT_EQ(replica_of("t")->log_end_offset(), end_before);
  EXPECT_EQ(add("t", p.producer_id, 0, {{"__consumer_offsets", 7}}), TxnErrc::none);
  EXPECT_EQ(coordinator_->describe("t").partitions.size(), 3u);
}

TEST_F(TxnCoordinatorTest, EndTxnInEveryStateAnswersKafkasError) {
  lead("t", 1);
  auto p = init("t");
  const int64_t pid = p.producer_id;
  EXPECT_EQ(end("t", pid, 0, true), TxnErrc::invalid_txn_state);   // Empty
  EXPECT_EQ(end("t", pid, 0, false), TxnErrc::invalid_txn_state);  // Empty
  EXPECT_EQ(end("t", pid + 1, 0, true), TxnErrc::invalid_producer_id_mapping);
  ASSERT_EQ(add("t", pid, 0), TxnErrc::none);
  EXPECT_EQ(end("t", pid, 1, true), TxnErrc::producer_fenced);

  markers_.set_auto_ack(false);
  ASSERT_EQ(end("t", pid, 0, true), TxnErrc::none);  // PrepareCommit replicated
  ASSERT_TRUE(markers_.wait_held(1));
  EXPECT_EQ(state("t"), TxnState::prepare_commit);
  // While the markers are out: completing.
  EXPECT_EQ(end("t", pid, 0, true), TxnErrc::concurrent_transactions);
  EXPECT_EQ(end("t", pid, 0, false), TxnErrc::invalid_txn_state);
  EXPECT_EQ(add("t", pid, 0), TxnErrc::concurrent_transactions);
  EXPECT_EQ(init("t").error, TxnErrc::concurrent_transactions);

  auto sent = markers_.sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].commit);
  EXPECT_EQ(sent[0].producer_id, pid);
  EXPECT_EQ(sent[0].producer_epoch, 0);
  EXPECT_EQ(sent[0].coordinator_epoch, 1);
  EXPECT_EQ(sent[0].partitions.size(), 2u);

  markers_.answer_held();
  EXPECT_TRUE(await_state("t", TxnState::complete_commit));
  EXPECT_EQ(coordinator_->describe("t").partitions.size(), 0u);
  EXPECT_EQ(end("t", pid, 0, true), TxnErrc::none);  // a retry of the commit
  EXPECT_EQ(end("t", pid, 0, false), TxnErrc::invalid_txn_state);

  // The next transaction, aborted.
  ASSERT_EQ(add("t", pid, 0), TxnErrc::none);
  ASSERT_EQ(end("t", pid, 0, false), TxnErrc::none);
  ASSERT_TRUE(markers_.wait_held(1));
  EXPECT_EQ(end("t", pid, 0, false), TxnErrc::concurrent_transactions);
  EXPECT_EQ(end("t", pid, 0, true), TxnErrc::invalid_txn_state);
  markers_.answer_held();
  EXPECT_TRUE(await_state("t", TxnState::complete_abort));
  EXPECT_EQ(end("t", pid, 0, false), TxnErrc::none);
  EXPECT_EQ(end("t", pid, 0, true), TxnErrc::invalid_txn_state);
  EXPECT_FALSE(markers_.sent().back().commit);
}

TEST_F(TxnCoordinatorTest, MarkersAreRetriedUntilEveryPartitionAcknowledged) {
  lead("t", 1);
  auto p = init("t");
  ASSERT_EQ(add("t", p.producer_id, 0), TxnErrc::none);
  markers_.set_auto_ack(false);
  ASSERT_EQ(end("t", p.producer_id, 0, true), TxnErrc::none);
  ASSERT_TRUE(markers_.wait_held(1));
  markers_.answer_held({{"orders", 1}});  // one partition did not answer
  EXPECT_EQ(state("t"), TxnState::prepare_commit);
  coordinator_->tick();
  ASSERT_TRUE(markers_.wait_held(1));
  auto sent = markers_.sent();
  ASSERT_EQ(sent.size(), 2u);
  ASSERT_EQ(sent[1].partitions.size(), 1u);  // only the one still missing
  EXPECT_EQ(sent[1].partitions[0], (TxnPartition{"orders", 1}));
  markers_.answer_held();
  EXPECT_TRUE(await_state("t", TxnState::complete_commit));
}

TEST_F(TxnCoordinatorTest, TheDecisionIsReplicatedBeforeAnyMarker) {
  lead("t", 1, {kSelf, kFollower});
  auto replica = replica_of("t");
  auto catch_up = [&] {
    ASSERT_TRUE(replica->record_follower_fetch(kFollower, replica->log_end_offset(), now_.load()).ok());
  };
  auto pa = std::make_shared<Answer<InitProducerIdResult>>();
  coordinator_->init_producer_id("t", 10000, -1, -1, pa->callback(pa));
  catch_up();
  auto p = pa->get();
  ASSERT_EQ(p.error, TxnErrc::none);
  auto added = add_async("t", p.producer_id, 0, {{"orders", 0}});
  catch_up();
  ASSERT_EQ(added->get(), TxnErrc::none);

  auto ended = end_async("t", p.producer_id, 0, true);
  EXPECT_FALSE(ended->done());          // PrepareCommit not past the high watermark
  EXPECT_TRUE(markers_.sent().empty());  // and so no marker yet
  EXPECT_EQ(add("t", p.producer_id, 0), TxnErrc::concurrent_transactions);
  catch_up();
  EXPECT_EQ(ended->get(), TxnErrc::none);
  EXPECT_EQ(markers_.sent().size(), 1u);
}

TEST_F(TxnCoordinatorTest, ASecondInstanceFencesTheFirst) {
  lead("t", 1);
  auto first = init("t");
  ASSERT_EQ(add("t", first.producer_id, first.producer_epoch), TxnErrc::none);
  // The second instance: the open transaction is aborted with the epoch
  // bumped (the client retries while it completes).
  markers_.set_auto_ack(false);
  auto second = init("t");
  EXPECT_EQ(second.error, TxnErrc::concurrent_transactions);
  ASSERT_TRUE(markers_.wait_held(1));
  auto sent = markers_.sent();
  EXPECT_FALSE(sent.back().commit);
  EXPECT_EQ(sent.back().producer_epoch, first.producer_epoch + 1);
  EXPECT_EQ(init("t").error, TxnErrc::concurrent_transactions);
  markers_.answer_held();
  EXPECT_TRUE(await_state("t", TxnState::complete_abort));
  second = init("t");
  ASSERT_EQ(second.error, TxnErrc::none);
  EXPECT_EQ(second.producer_id, first.producer_id);
  EXPECT_EQ(second.producer_epoch, first.producer_epoch + 2);
  // The first instance's later requests are fenced.
  EXPECT_EQ(add("t", first.producer_id, first.producer_epoch), TxnErrc::producer_fenced);
  EXPECT_EQ(end("t", first.producer_id, first.producer_epoch, true), TxnErrc::producer_fenced);
  EXPECT_EQ(add("t", second.producer_id, second.producer_epoch), TxnErrc::none);
}

TEST_F(TxnCoordinatorTest, ATimedOutTransactionIsAbortedWithAnEpochBump) {
  lead("t", 1);
  auto p = init("t", 5000);
  ASSERT_EQ(add("t", p.producer_id, 0), TxnErrc::none);
  now_ += 5000;
  EXPECT_EQ(coordinator_->abort_timed_out_now(), 0);  // not past the timeout yet
  now_ += 1;
  EXPECT_EQ(coordinator_->abort_timed_out_now(), 1);
  EXPECT_TRUE(await_state("t", TxnState::complete_abort));  // markers acknowledged at once
  auto sent = markers_.sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(sent[0].commit);
  EXPECT_EQ(sent[0].producer_epoch, 1);
  // The producer that let it time out is fenced...
  EXPECT_EQ(end("t", p.producer_id, 0, true), TxnErrc::producer_fenced);
  EXPECT_EQ(add("t", p.producer_id, 0), TxnErrc::producer_fenced);
  // ... but may re-initialise naming its old epoch (KIP-360).
  auto again = init("t", 5000, p.producer_id, 0);
  EXPECT_EQ(again.error, TxnErrc::none);
  EXPECT_EQ(again.producer_epoch, 2);
}

TEST_F(TxnCoordinatorTest, LoadingRestoresEveryStateAndFinishesAPreparedCommit) {
  lead("empty", 1);
  lead("ongoing", 1);
  lead("committing", 1);
  lead("aborting", 1);
  auto e = init("empty");
  auto o = init("ongoing");
  ASSERT_EQ(add("ongoing", o.producer_id, 0), TxnErrc::none);
  markers_.set_auto_ack(false);
  auto c = init("committing");
  ASSERT_EQ(add("committing", c.producer_id, 0, {{"x", 0}}), TxnErrc::none);
  ASSERT_EQ(end("committing", c.producer_id, 0, true), TxnErrc::none);
  auto a = init("aborting");
  ASSERT_EQ(add("aborting", a.producer_id, 0, {{"y", 2}}), TxnErrc::none);
  ASSERT_EQ(end("aborting", a.producer_id, 0, false), TxnErrc::none);
  ASSERT_TRUE(markers_.wait_held(2));

  // A new coordinator (a restart) leading the partitions in a later epoch;
  // the old instance's markers never get an answer.
  markers_.drop_held();
  make_coordinator();
  markers_.set_auto_ack(true);
  const size_t sent_before = markers_.sent().size();
  for (const char* id : {"empty", "ongoing", "committing", "aborting"}) lead(id, 2);
  EXPECT_EQ(state("empty"), TxnState::empty);
  EXPECT_EQ(coordinator_->describe("empty").producer_id, e.producer_id);
  auto d = coordinator_->describe("ongoing");
  EXPECT_EQ(d.state, TxnState::ongoing);
  EXPECT_EQ(d.partitions.size(), 2u);
  EXPECT_EQ(state("committing"), TxnState::prepare_commit);
  EXPECT_EQ(state("aborting"), TxnState::prepare_abort);
  coordinator_->tick();  // resumes the markers
  auto sent = markers_.sent();
  ASSERT_EQ(sent.size(), sent_before + 2);
  for (size_t i = sent_before; i < sent.size(); ++i) EXPECT_EQ(sent[i].coordinator_epoch, 2);
  EXPECT_TRUE(await_state("committing", TxnState::complete_commit));
  EXPECT_TRUE(await_state("aborting", TxnState::complete_abort));
  // And the completed state survives the next load too.
  make_coordinator();
  lead("committing", 3);
  EXPECT_TRUE(await_state("committing", TxnState::complete_commit));
  EXPECT_EQ(end("committing", c.producer_id, 0, true), TxnErrc::none);
}

TEST_F(TxnCoordinatorTest, UnloadingDropsTheStateAndAnswersNotCoordinator) {
  lead("t", 1);
  auto p = init("t");
  ASSERT_EQ(add("t", p.producer_id, 0), TxnErrc::none);
  follow("t", 2);
  EXPECT_FALSE(coordinator_->serving(coordinator_->partition_for("t")));
  EXPECT_EQ(end("t", p.producer_id, 0, true), TxnErrc::not_coordinator);
  lead("t", 3);
  EXPECT_EQ(state("t"), TxnState::ongoing);
  EXPECT_EQ(end("t", p.producer_id, 0, true), TxnErrc::none);
}

TEST_F(TxnCoordinatorTest, DescribeAndList) {
  lead("a", 1);
  lead("b", 1);
  EXPECT_EQ(coordinator_->describe("a").error, TxnErrc::transactional_id_not_found);
  auto pa = init("a");
  auto pb = init("b");
  ASSERT_EQ(add("b", pb.producer_id, 0), TxnErrc::none);
  auto all = coordinator_->list({}, {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  auto ongoing = coordinator_->list({TxnState::ongoing}, {});
  ASSERT_TRUE(ongoing.ok());
  ASSERT_EQ(ongoing->size(), 1u);
  EXPECT_EQ((*ongoing)[0].transactional_id, "b");
  auto by_pid = coordinator_->list({}, {pa.producer_id});
  ASSERT_TRUE(by_pid.ok());
  ASSERT_EQ(by_pid->size(), 1u);
  EXPECT_EQ((*by_pid)[0].transactional_id, "a");
}

TEST_F(TxnCoordinatorTest, AnIdIdlePastTheExpirationIsRemovedWithATombstone) {
  id_expiration_ms_ = 10000;
  make_coordinator();
  lead("idle", 1);
  lead("open", 1);
  auto idle = init("idle");
  auto open = init("open", 60000);
  ASSERT_EQ(add("open", open.producer_id, 0), TxnErrc::none);  // Ongoing: never expired
  now_ += 9999;
  EXPECT_EQ(coordinator_->expire_idle_ids_now(), 0);  // not idle long enough yet
  EXPECT_EQ(coordinator_->describe("idle").error, TxnErrc::none);
  now_ += 1;
  EXPECT_EQ(coordinator_->expire_idle_ids_now(), 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (coordinator_->describe("idle").error != TxnErrc::transactional_id_not_found &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(coordinator_->describe("idle").error, TxnErrc::transactional_id_not_found);
  EXPECT_EQ(coordinator_->describe("open").state, TxnState::ongoing);

  // The tombstone is in the log: a new leadership does not bring the id back.
  make_coordinator();
  lead("idle", 2);
  lead("open", 2);
  EXPECT_EQ(coordinator_->describe("idle").error, TxnErrc::transactional_id_not_found);
  EXPECT_EQ(coordinator_->describe("open").state, TxnState::ongoing);
  // The id starts afresh: a new producer id, epoch 0.
  auto again = init("idle");
  EXPECT_EQ(again.error, TxnErrc::none);
  EXPECT_NE(again.producer_id, idle.producer_id);
  EXPECT_EQ(again.producer_epoch, 0);
}

}  // namespace
}  // namespace holdfast::coordinator
