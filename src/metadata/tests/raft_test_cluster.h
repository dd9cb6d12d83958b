// The in-process Raft cluster of the metadata log tests: three
// RaftMetadataLog members on 127.0.0.1 (distinct ports, one temp data dir
// each), with waits for an agreed leader, appends retried while leadership
// moves, and a check that every running member holds one image.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "io/tests/temp_dir.h"
#include "metadata/metadata_store.h"
#include "metadata/raft_metadata_log.h"
#include "metadata/tests/metadata_test_util.h"

namespace holdfast::metadata::testing {

constexpr int kMembers = 3;

class RaftClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ports = free_ports(kMembers);
    for (int i = 0; i < kMembers; ++i) {
      voters_.push_back(QuorumVoter{i + 1, "127.0.0.1:" + std::to_string(ports[i])});
    }
  }

  // A subclass adds to these (e.g. TLS contexts per member).
  virtual RaftOptions options_for(int index) const {
    RaftOptions options;
    options.node_id = index + 1;
    options.data_dir = dirs_[index].path();
    options.voters = voters_;
    options.election_timeout_ms = 300;
    options.heartbeat_timeout_ms = 50;
    // A snapshot sent while the restarted member is still connecting is
    // resent after this (the library default is 30 s).
    options.install_snapshot_timeout_ms = 1000;
    options.segment_size = 1 << 20;
    options.snapshot_threshold = snapshot_threshold_;
    options.snapshot_trailing = snapshot_trailing_;
    return options;
  }

  // (Re)starts member `index` from its data dir, with a fresh recorder
  // subscribed right after it opens.
  void start(int index) {
    auto log = RaftMetadataLog::open(options_for(index));
    ASSERT_TRUE(log) << log.error().message;
    recorders_[index] = std::make_unique<Recorder>();
    (*log)->subscribe(recorders_[index]->listener());
    members_[index] = std::move(*log);
  }
  void start_all() {
    for (int i = 0; i < kMembers; ++i) ASSERT_NO_FATAL_FAILURE(start(i));
  }
  void stop(int index) { members_[index].reset(); }

  // The index of the member that leads with every running member agreeing,
  // or -1 if none within the wait.
  int wait_for_leader(int not_this = -1) {
    int leader = -1;
    wait_until([&] {
      leader = -1;
      int agreed_id = -1;
      for (int i = 0; i < kMembers; ++i) {
        if (!members_[i]) continue;
        RaftStatus s = members_[i]->status();
        if (s.leader_id < 0 || (agreed_id >= 0 && s.leader_id != agreed_id)) return false;
        agreed_id = s.leader_id;
        if (s.role == RaftRole::leader) leader = i;
      }
      return leader >= 0 && leader != not_this && members_[leader]->node_id() == agreed_id;
    });
    return leader;
  }

  // Appends on whichever member leads, retrying while leadership moves.
  Result<ImagePtr, Errc> append_on_leader(const MetadataRecord& record) {
    return testing::append_on_leader(members_, [this] { return wait_for_leader(); }, record);
  }

  // Appends `records` on the leader; every member applies exactly them, in order.
  void append_and_expect_everywhere(const std::vector<MetadataRecord>& records) {
    for (const auto& record : records) {
      auto appended = append_on_leader(record);
      ASSERT_TRUE(appended) << appended.error().message;
    }
    std::vector<std::string> expected;
    for (const auto& r : records) expected.push_back(encode_record(r));
    for (int i = 0; i < kMembers; ++i) {
      ASSERT_TRUE(wait_until([&] { return recorders_[i]->size() == records.size(); }))
          << "member " << i + 1 << " applied " << recorders_[i]->size();
      EXPECT_EQ(recorders_[i]->records(), expected) << "member " << i + 1;
    }
  }

  // Registers broker 1, which the topics of topic() live on.
  void register_broker() {
    for (const MetadataRecord& record : live_broker(1)) {
      auto appended = append_on_leader(record);
      ASSERT_TRUE(appended) << appended.error().message;
    }
  }

  bool all_running_hold(const std::string& image) { return testing::all_running_hold(members_, image); }

  std::array<io::testing::TempDir, kMembers> dirs_;
  std::vector<QuorumVoter> voters_;
  // Recorders outlive the members whose listeners point at them.
  std::array<std::unique_ptr<Recorder>, kMembers> recorders_;
  std::array<std::unique_ptr<RaftMetadataLog>, kMembers> members_;
  unsigned snapshot_threshold_ = 1024;
  unsigned snapshot_trailing_ = 128;
};

// A cluster has no sole node: every topic carries its assignment, on broker 1
// (registered first by register_broker()).
inline MetadataRecord topic(int n) {
  const int32_t partitions = 1 + n % 3;
  return TopicCreated{"topic-" + std::to_string(n), random_id(), partitions, {}, on_node(1, partitions)};
}

}  // namespace holdfast::metadata::testing
