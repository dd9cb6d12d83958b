// The controller's rules, one test per rule, negative cases included. Time
// is a counter the test moves; nothing waits.
#include <gtest/gtest.h>

#include "controller/controller.h"
#include "controller/tests/controller_test_util.h"

namespace holdfast::controller {
namespace {

using namespace testing;  // NOLINT: controller_test_util.h
using metadata::BrokerFenced;
using metadata::BrokerRegistered;
using metadata::BrokerUnfenced;
using metadata::kNoLeader;
using metadata::PartitionChanged;

class ControllerTest : public ::testing::Test {
 protected:
  Controller make(bool unclean = false) {
    return Controller(ControllerConfig{9000, unclean}, [this] { return now_; });
  }
  // Topic "t" (id 7...) with one partition in `state`, on brokers 1..3.
  void with_partition(PartitionState state, metadata::ConfigMap configs = {}) {
    metadata::TopicCreated created{"t", topic_id_, 1, std::move(configs),
                                   {PartitionState{state.replicas, state.replicas[0], state.replicas, 0, 0}}};
    image_ = apply_all(image_, {created});
    if (state.leader != state.replicas[0] || state.isr != state.replicas) {
      image_ = apply_all(image_, {PartitionChanged{"t", topic_id_, 0, state.leader, state.isr,
                                                   state.leader != state.replicas[0] ? 1 : 0, 1}});
    }
  }
  const PartitionState& partition() const { return image_->topics.at("t").partitions[0]; }
  // Runs a tick and applies what it produced.
  std::vector<MetadataRecord> tick(Controller& c) {
    auto records = c.tick(*image_);
    image_ = apply_all(image_, records);
    return records;
  }
  void heartbeat(Controller& c, int32_t id) {
    auto beat = c.heartbeat(*image_, {id, image_->brokers.at(id).epoch, image_->last_record_index});
    ASSERT_TRUE(beat) << beat.error().message;
    if (beat->record) image_ = apply_all(image_, {*beat->record});
  }
  void fence(int32_t id) { image_ = apply_all(image_, {BrokerFenced{id, image_->brokers.at(id).epoch}}); }
  void unfence(int32_t id) {
    image_ = apply_all(image_, {BrokerUnfenced{id, image_->brokers.at(id).epoch}});
  }

  int64_t now_ = 1000;
  metadata::TopicId topic_id_{7};
  ImagePtr image_ = brokers(3);
};

// --- registration and heartbeats ------------------------------------------

TEST_F(ControllerTest, ANewBrokerRegistersFencedWithEpochOne) {
  Controller c = make();
  auto outcome = c.register_broker(*image_, registration(4, "r1"));
  ASSERT_TRUE(outcome) << outcome.error().message;
  EXPECT_EQ(outcome->epoch, 1);
  ASSERT_TRUE(outcome->record);
  image_ = apply_all(image_, {*outcome->record});
  EXPECT_TRUE(image_->brokers.at(4).fenced);
  EXPECT_EQ(image_->brokers.at(4).rack, "r1");
  // A retry by the same process writes nothing and returns the same epoch.
  auto retry = c.register_broker(*image_, registration(4, "r1"));
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->epoch, 1);
  EXPECT_FALSE(retry->record);
}

TEST_F(ControllerTest, ARegistrationWithoutEndpointsIsRefused) {
  Controller c = make();
  auto request = registration(4);
  request.endpoints.clear();
  EXPECT_EQ(c.register_broker(*image_, request).code(), Errc::invalid_request);
}

TEST_F(ControllerTest, ASecondProcessWithALiveNodeIdIsRefusedUntilTheSessionExpires) {
  Controller c = make();
  heartbeat(c, 2);
  auto duplicate = c.register_broker(*image_, registration(2, "", /*generation=*/2));
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.code(), Errc::duplicate_broker_registration);
  now_ += 9001;  // the old process stopped heartbeating long enough
  auto restarted = c.register_broker(*image_, registration(2, "", 2));
  ASSERT_TRUE(restarted) << restarted.error().message;
  EXPECT_EQ(restarted->epoch, 2);  // a new incarnation bumps the epoch
  image_ = apply_all(image_, {*restarted->record});
  EXPECT_TRUE(image_->brokers.at(2).fenced);
}

TEST_F(ControllerTest, AFencedBrokerMayRegisterANewIncarnationAtOnce) {
  Controller c = make();
  fence(2);
  auto restarted = c.register_broker(*image_, registration(2, "", 2));
  ASSERT_TRUE(restarted) << restarted.error().message;
  EXPECT_EQ(restarted->epoch, 2);
}

TEST_F(ControllerTest, HeartbeatsWithAnUnknownBrokerOrAStaleEpochAreRefused) {
  Controller c = make();
  EXPECT_EQ(c.heartbeat(*image_, {9, 1, 0}).code(), Errc::broker_id_not_registered);
  EXPECT_EQ(c.heartbeat(*image_, {2, 0, 0}).code(), Errc::stale_broker_epoch);
  EXPECT_EQ(c.heartbeat(*image_, {2, 2, 0}).code(), Errc::stale_broker_epoch);
}

TEST_F(ControllerTest, ARegisteredBrokerIsUnfencedOnceItHasAppliedItsRegistration) {
  Controller c = make();
  auto outcome = c.register_broker(*image_, registration(4));
  ASSERT_TRUE(outcome);
  image_ = apply_all(image_, {*outcome->record});
  const int64_t registered_at = image_->last_record_index;
  auto behind = c.heartbeat(*image_, {4, 1, registered_at - 1});
  ASSERT_TRUE(behind);
  EXPECT_TRUE(behind->fenced);
  EXPECT_FALSE(behind->record);
  auto caught_up = c.heartbeat(*image_, {4, 1, registered_at});
  ASSERT_TRUE(caught_up);
  EXPECT_FALSE(caught_up->fenced);
  ASSERT_TRUE(caught_up->record);
  image_ = apply_all(image_, {*caught_up->record});
  EXPECT_FALSE(image_->brokers.at(4).fenced);
}

TEST_F(ControllerTest, ABrokerWhoseHeartbeatsStopForTheSessionTimeoutIsFenced) {
  Controller c = make();
  EXPECT_TRUE(tick(c).empty());  // first sight: every broker gets a full session
  now_ += 5000;
  heartbeat(c, 1);
  heartbeat(c, 3);
  now_ += 4000;  // broker 2: exactly 9000 ms since first sight
  EXPECT_TRUE(tick(c).empty());
  now_ += 1;
  auto records = tick(c);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(metadata::encode_record(records[0]), metadata::encode_record(BrokerFenced{2, 1}));
  EXPECT_TRUE(image_->brokers.at(2).fenced);
  EXPECT_FALSE(image_->brokers.at(1).fenced);
  EXPECT_TRUE(tick(c).empty());
  // It comes back with the same epoch: unfenced.
  heartbeat(c, 2);
  EXPECT_FALSE(image_->brokers.at(2).fenced);
}

TEST_F(ControllerTest, ANewControllerGivesEveryBrokerAFullSession) {
  Controller old_controller = make();
  tick(old_controller);
  now_ += 20000;  // brokers talked to the old controller, not to this one
  Controller fresh = make();
  EXPECT_TRUE(tick(fresh).empty());
  now_ += 9001;
  EXPECT_EQ(tick(fresh).size(), 3u);  // three fences; no topic to elect for
}

TEST_F(ControllerTest, HeartbeatsRecordAppliedIndexWallTimeAndCatchUp) {
  int64_t wall = 1'700'000'000'000;
  Controller c(ControllerConfig{}, [this] { return now_; }, [&wall] { return wall; });
  EXPECT_TRUE(c.progress().empty());
  // A registration alone records no progress.
  ASSERT_TRUE(c.register_broker(*image_, registration(1)));
  EXPECT_TRUE(c.progress().empty());

  const int64_t head = image_->last_record_index;
  ASSERT_GT(head, 0);
  // Behind the controller's image: applied index and time, not caught up.
  ASSERT_TRUE(c.heartbeat(*image_, {2, 1, head - 1}));
  ASSERT_EQ(c.progress().count(2), 1u);
  EXPECT_EQ(c.progress().at(2).applied_index, head - 1);
  EXPECT_EQ(c.progress().at(2).last_heartbeat_wall_ms, wall);
  EXPECT_EQ(c.progress().at(2).last_caught_up_wall_ms, -1);
  // Caught up at a later heartbeat: both times move to it.
  wall += 500;
  ASSERT_TRUE(c.heartbeat(*image_, {2, 1, head}));
  EXPECT_EQ(c.progress().at(2).applied_index, head);
  EXPECT_EQ(c.progress().at(2).last_caught_up_wall_ms, wall);
  const int64_t caught_up_at = wall;
  // Behind again (the image moved on): the caught-up time stays where it was.
  image_ = apply_all(image_, {BrokerFenced{3, 1}});
  wall += 500;
  ASSERT_TRUE(c.heartbeat(*image_, {2, 1, head}));
  EXPECT_EQ(c.progress().at(2).last_heartbeat_wall_ms, wall);
  EXPECT_EQ(c.progress().at(2).last_caught_up_wall_ms, caught_up_at);
  // Refused heartbeats change nothing.
  EXPECT_FALSE(c.heartbeat(*image_, {2, 7, head + 1}));
  EXPECT_FALSE(c.heartbeat(*image_, {9, 1, head + 1}));
  EXPECT_EQ(c.progress().at(2).applied_index, head);
  EXPECT_EQ(c.progress().count(9), 0u);
  // Per broker: broker 1 is unaffected by broker 2's heartbeats.
  EXPECT_EQ(c.progress().count(1), 0u);
  // Soft state: a new controller knows nobody's progress.
  Controller fresh = make();
  EXPECT_TRUE(fresh.progress().empty());
}

// --- leader election -------------------------------------------------------

TEST_F(ControllerTest, AFencedLeaderIsReplacedFromTheIsrInReplicaOrder) {
  with_partition({{1, 2, 3}, 1, {1, 2, 3}});
  Controller c = make();
  fence(1);
  auto records = tick(c);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(partition(), (PartitionState{{1, 2, 3}, 2, {2, 3}, 1, 1}));
  EXPECT_TRUE(tick(c).empty());  // level-triggered: nothing left to fix
}

TEST_F(ControllerTest, AFencedFollowerLeavesTheIsrWithoutALeaderEpochBump) {
  with_partition({{1, 2, 3}, 1, {1, 2, 3}});
  Controller c = make();
  fence(3);
  tick(c);
  EXPECT_EQ(partition(), (PartitionState{{1, 2, 3}, 1, {1, 2}, 0, 1}));
}

TEST_F(ControllerTest, AnOutOfSyncReplicaIsNotElectedByDefault) {
  with_partition({{1, 2, 3}, 1, {1}});  // 2 and 3 fell behind
  Controller c = make();
  fence(1);
  tick(c);
  // Offline: no leader, the ISR keeps its last member (it has the data).
  EXPECT_EQ(partition().leader, kNoLeader);
  EXPECT_EQ(partition().isr, std::vector<int32_t>{1});
  EXPECT_EQ(partition().leader_epoch, 1);
  EXPECT_TRUE(tick(c).empty());
  // The last ISR member returns: elected again, epochs bump.
  unfence(1);
  tick(c);
  EXPECT_EQ(partition().leader, 1);
  EXPECT_EQ(partition().isr, std::vector<int32_t>{1});
  EXPECT_EQ(partition().leader_epoch, 2);
}

TEST_F(ControllerTest, AllIsrMembersFencedAtOnceKeepTheWholeIsr) {
  with_partition({{1, 2, 3}, 1, {1, 2}});
  Controller c = make();
  fence(1);
  fence(2);
  tick(c);
  EXPECT_EQ(partition().leader, kNoLeader);
  EXPECT_EQ(partition().isr, (std::vector<int32_t>{1, 2}));
  unfence(2);
  tick(c);
  EXPECT_EQ(partition().leader, 2);
  EXPECT_EQ(partition().isr, std::vector<int32_t>{2});
}

TEST_F(ControllerTest, UncleanElectionPicksALiveReplicaWhenTheTopicAllowsIt) {
  with_partition({{1, 2, 3}, 1, {1}}, {{"unclean.leader.election.enable", "true"}});
  Controller c = make();
  fence(1);
  tick(c);
  EXPECT_EQ(partition().leader, 2);
  EXPECT_EQ(partition().isr, std::vector<int32_t>{2});  // only the new leader is in sync now
}

TEST_F(ControllerTest, TheBrokerDefaultForUncleanElectionAppliesUnlessTheTopicSaysOtherwise) {
  with_partition({{1, 2, 3}, 1, {1}});
  Controller unclean = make(/*unclean=*/true);
  fence(1);
  tick(unclean);
  EXPECT_EQ(partition().leader, 2);

  image_ = brokers(3);
  with_partition({{1, 2, 3}, 1, {1}}, {{"unclean.leader.election.enable", "false"}});
  Controller still_clean = make(/*unclean=*/true);
  fence(1);
  tick(still_clean);
  EXPECT_EQ(partition().leader, kNoLeader);
}

TEST_F(ControllerTest, SessionExpiryFencesAndElectsInOneTick) {
  with_partition({{1, 2, 3}, 1, {1, 2, 3}});
  Controller c = make();
  tick(c);
  now_ += 9001;
  heartbeat(c, 2);
  heartbeat(c, 3);
  auto records = tick(c);
  ASSERT_EQ(records.size(), 2u);  // broker_fenced, then partition_changed
  EXPECT_TRUE(std::holds_alternative<BrokerFenced>(records[0]));
  EXPECT_TRUE(std::holds_alternative<PartitionChanged>(records[1]));
  EXPECT_EQ(partition().leader, 2);
}

// --- topics -----------------------------------------------------------------

TEST_F(ControllerTest, TopicsArePlacedAndAnExistingNameOrTooHighAFactorIsRefused) {
  Controller c = make();
  auto created = c.create_topic(*image_, "orders", topic_id_, 3, 3, {});
  ASSERT_TRUE(created) << created.error().message;
  image_ = apply_all(image_, {*created});
  EXPECT_EQ(image_->topics.at("orders").partitions.size(), 3u);
  EXPECT_EQ(c.create_topic(*image_, "orders", topic_id_, 1, 1, {}).code(), Errc::topic_already_exists);
  EXPECT_EQ(c.create_topic(*image_, "big", topic_id_, 1, 4, {}).code(),
            Errc::invalid_replication_factor);

  auto added = c.add_partitions(*image_, "orders", 5);
  ASSERT_TRUE(added) << added.error().message;
  ASSERT_EQ(added->partitions.size(), 2u);
  EXPECT_EQ(added->partitions[0].replicas.size(), 3u);  // the topic's own RF
  image_ = apply_all(image_, {*added});
  EXPECT_EQ(c.add_partitions(*image_, "orders", 5).code(), Errc::invalid_partitions);
  EXPECT_EQ(c.add_partitions(*image_, "missing", 5).code(), Errc::unknown_topic);
  fence(3);
  EXPECT_EQ(c.add_partitions(*image_, "orders", 6).code(), Errc::invalid_replication_factor);
}

// --- AlterPartition -----------------------------------------------------------

class AlterPartitionTest : public ControllerTest {
 protected:
  void SetUp() override { with_partition({{1, 2, 3}, 1, {1, 2, 3}}); }
  AlterPartitionRequest request(std::vector<int32_t> isr) const {
    const PartitionState& p = partition();
    return AlterPartitionRequest{p.leader, 1, "t", topic_id_, 0, p.leader_epoch, p.partition_epoch,
                                 std::move(isr)};
  }
};

TEST_F(AlterPartitionTest, TheLeaderShrinksAndExpandsTheIsr) {
  Controller c = make();
  auto shrunk = c.alter_partition(*image_, request({1, 2}));
  ASSERT_TRUE(shrunk) << shrunk.error().message;
  ASSERT_TRUE(shrunk->record);
  image_ = apply_all(image_, {*shrunk->record});
  EXPECT_EQ(partition(), shrunk->state);
  EXPECT_EQ(partition(), (PartitionState{{1, 2, 3}, 1, {1, 2}, 0, 1}));
  auto grown = c.alter_partition(*image_, request({1, 2, 3}));
  ASSERT_TRUE(grown);
  image_ = apply_all(image_, {*grown->record});
  EXPECT_EQ(partition(), (PartitionState{{1, 2, 3}, 1, {1, 2, 3}, 0, 2}));
  // Proposing the ISR it already has writes nothing.
  auto same = c.alter_partition(*image_, request({1, 2, 3}));
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->record);
}

TEST_F(AlterPartitionTest, AStaleProposalIsRefusedWithKafkasErrors) {
  Controller c = make();
  auto stale_partition_epoch = request({1, 2});
  auto accepted = c.alter_partition(*image_, request({1, 3}));
  ASSERT_TRUE(accepted) << accepted.error().message;
  image_ = apply_all(image_, {*accepted->record});
  EXPECT_EQ(c.alter_partition(*image_, stale_partition_epoch).code(), Errc::invalid_update_version);

  // The old leader, after an election it missed: its leader epoch is stale.
  auto old_leader = request({1, 3});
  fence(1);
  tick(c);
  unfence(1);
  EXPECT_EQ(c.alter_partition(*image_, old_leader).code(), Errc::fenced_leader_epoch);
  ASSERT_EQ(partition().leader, 3);  // elected from the ISR {1, 3}
  // Current epochs, but not the leader.
  auto not_leader = request({3, 1});
  not_leader.broker_id = 1;
  EXPECT_EQ(c.alter_partition(*image_, not_leader).code(), Errc::not_leader);
}

TEST_F(AlterPartitionTest, TheNewIsrMustBeEligibleReplicasWithTheLeader) {
  Controller c = make();
  EXPECT_EQ(c.alter_partition(*image_, request({2, 3})).code(), Errc::invalid_request);
  EXPECT_EQ(c.alter_partition(*image_, request({1, 1})).code(), Errc::invalid_request);
  image_ = apply_all(image_, {BrokerRegistered{4, 1, incarnation(4), {{"PLAINTEXT", "h", 1}}, ""},
                              BrokerUnfenced{4, 1}});
  EXPECT_EQ(c.alter_partition(*image_, request({1, 4})).code(), Errc::invalid_request);
  fence(3);
  EXPECT_EQ(c.alter_partition(*image_, request({1, 3})).code(), Errc::ineligible_replica);
}

TEST_F(AlterPartitionTest, AnUnknownTopicOrAStaleBrokerEpochIsRefused) {
  Controller c = make();
  auto r = request({1, 2});
  r.broker_epoch = 5;
  EXPECT_EQ(c.alter_partition(*image_, r).code(), Errc::stale_broker_epoch);
  r = request({1, 2});
  r.topic_id = metadata::TopicId{9};
  EXPECT_EQ(c.alter_partition(*image_, r).code(), Errc::unknown_topic);
  r = request({1, 2});
  r.partition = 1;
  EXPECT_EQ(c.alter_partition(*image_, r).code(), Errc::unknown_topic);
}

}  // namespace
}  // namespace holdfast::controller
