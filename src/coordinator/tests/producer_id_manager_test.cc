#include "coordinator/producer_id_manager.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "io/fault_injection_file_system.h"
#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"

namespace holdfast::coordinator {
namespace {

TEST(ProducerIdManager, IdsAreUniqueAcrossRestartsAndBlocks) {
  io::testing::TempDir dir;
  io::PosixFileSystem fs;
  std::set<int64_t> seen;
  for (int run = 0; run < 4; ++run) {
    auto manager = ProducerIdManager::open(fs, dir.path(), 10);
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    for (int i = 0; i < 25; ++i) {
      auto id = (*manager)->next_producer_id();
      ASSERT_TRUE(id.ok()) << id.error().message;
      EXPECT_TRUE(seen.insert(*id).second) << "id " << *id << " handed out twice";
    }
  }
}

// Cluster mode: two nodes with fresh data directories never hand out the
// same id (before, both started at 0, and a new producer on one broker was
// taken for a retry of another's batches: "acknowledged" at old offsets).
TEST(ProducerIdManager, NodesOfAClusterHandOutDisjointIds) {
  io::testing::TempDir dir1, dir2;
  io::PosixFileSystem fs;
  auto a = ProducerIdManager::open(fs, dir1.path(), 10);
  auto b = ProducerIdManager::open(fs, dir2.path(), 10);
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->set_node_id_base(1);
  (*b)->set_node_id_base(2);
  std::set<int64_t> seen;
  for (int i = 0; i < 25; ++i) {
    for (auto* m : {a->get(), b->get()}) {
      auto id = m->next_producer_id();
      ASSERT_TRUE(id.ok());
      EXPECT_GE(*id, 0);
      EXPECT_TRUE(seen.insert(*id).second) << "id " << *id << " handed out by two nodes";
    }
  }
}

TEST(ProducerIdManager, ConcurrentCallersGetDistinctIds) {
  io::testing::TempDir dir;
  io::PosixFileSystem fs;
  auto manager = ProducerIdManager::open(fs, dir.path(), 7);
  ASSERT_TRUE(manager.ok());
  std::vector<std::vector<int64_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) got[t].push_back(*(*manager)->next_producer_id());
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> all;
  for (auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 400u);
}

TEST(ProducerIdManager, PowerLossNeverReusesAnIdThatWasHandedOut) {
  io::testing::TempDir dir;
  io::PosixFileSystem posix;
  io::FaultInjectionFileSystem fs(posix);
  std::set<int64_t> seen;
  for (int crash = 0; crash < 5; ++crash) {
    auto manager = ProducerIdManager::open(fs, dir.path(), 4);
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    for (int i = 0; i < 6 + crash; ++i) {
      auto id = (*manager)->next_producer_id();
      ASSERT_TRUE(id.ok());
      EXPECT_TRUE(seen.insert(*id).second) << "id " << *id << " reused after a power loss";
    }
    fs.simulate_power_loss();  // everything not synced is gone
  }
}

TEST(ProducerIdManager, FailedPersistHandsOutNothing) {
  io::testing::TempDir dir;
  io::PosixFileSystem posix;
  io::FaultInjectionFileSystem fs(posix);
  auto manager = ProducerIdManager::open(fs, dir.path(), 3);
  ASSERT_TRUE(manager.ok());
  fs.fail_next_sync(1);
  auto failed = (*manager)->next_producer_id();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), ProducerIdErrc::io_error);
  fs.simulate_power_loss();
  auto again = ProducerIdManager::open(fs, dir.path(), 3);
  ASSERT_TRUE(again.ok());
  auto id = (*again)->next_producer_id();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 0);  // nothing was handed out before, so 0 is still new
}

TEST(ProducerIdManager, CorruptBlockFileIsAStartupError) {
  io::testing::TempDir dir;
  io::PosixFileSystem fs;
  std::string garbage = "0\nnot-a-number\n";
  ASSERT_TRUE(io::write_file_atomically(fs, dir / std::string(ProducerIdManager::kBlockFile),
                                        {reinterpret_cast<const uint8_t*>(garbage.data()),
                                         garbage.size()})
                  .ok());
  auto manager = ProducerIdManager::open(fs, dir.path());
  ASSERT_FALSE(manager.ok());
  EXPECT_EQ(manager.code(), ProducerIdErrc::corrupt);
}

}  // namespace
}  // namespace holdfast::coordinator
