#include "io/fault_injection_file_system.h"

#include <gtest/gtest.h>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"

namespace holdfast::io {
namespace {

using testing::TempDir;

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class FaultInjectionTest : public ::testing::Test {
 protected:
  std::string contents(const std::string& path) {
    auto data = read_file(posix_, path);
    if (!data.ok()) return "<missing>";
    return std::string(data->begin(), data->end());
  }
  std::unique_ptr<File> create(const std::string& path) {
    auto file = fs_.open(path, OpenMode::create_new);
    EXPECT_TRUE(file.ok());
    return file.ok() ? std::move(*file) : nullptr;
  }

  TempDir dir_;
  PosixFileSystem posix_;
  FaultInjectionFileSystem fs_{posix_};
};

TEST_F(FaultInjectionTest, PowerLossKeepsSyncedBytesAndDropsTheRest) {
  auto file = create(dir_ / "seg");
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  ASSERT_TRUE(file->append(as_bytes("durable")).ok());
  ASSERT_TRUE(file->sync_data().ok());
  ASSERT_TRUE(file->append(as_bytes("-volatile")).ok());
  EXPECT_EQ(fs_.durable_size(dir_ / "seg"), 7u);
  EXPECT_EQ(contents(dir_ / "seg"), "durable-volatile");
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "seg"), "durable");
}

TEST_F(FaultInjectionTest, NewFileWithoutDirectorySyncIsLost) {
  auto file = create(dir_ / "new");
  ASSERT_TRUE(file->append(as_bytes("data")).ok());
  ASSERT_TRUE(file->sync().ok());  // the bytes are synced, the entry is not
  fs_.simulate_power_loss();
  EXPECT_FALSE(posix_.exists(dir_ / "new"));

  file = create(dir_ / "new2");
  ASSERT_TRUE(file->append(as_bytes("data")).ok());
  ASSERT_TRUE(file->sync().ok());
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "new2"), "data");
}

TEST_F(FaultInjectionTest, RenameWithoutDirectorySyncIsUndone) {
  ASSERT_TRUE(write_file_atomically(fs_, dir_ / "ckpt", as_bytes("v1")).ok());
  // Write v2 by hand but skip the directory sync after the rename.
  auto tmp = create(dir_ / "ckpt.tmp");
  ASSERT_TRUE(tmp->append(as_bytes("v2")).ok());
  ASSERT_TRUE(tmp->sync().ok());
  ASSERT_TRUE(fs_.rename(dir_ / "ckpt.tmp", dir_ / "ckpt").ok());
  EXPECT_EQ(contents(dir_ / "ckpt"), "v2");
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "ckpt"), "v1");
  EXPECT_FALSE(posix_.exists(dir_ / "ckpt.tmp"));  // its creation was never synced either

  ASSERT_TRUE(write_file_atomically(fs_, dir_ / "ckpt", as_bytes("v3")).ok());
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "ckpt"), "v3");
}

TEST_F(FaultInjectionTest, RemoveWithoutDirectorySyncIsUndone) {
  auto file = create(dir_ / "old");
  ASSERT_TRUE(file->append(as_bytes("keep")).ok());
  ASSERT_TRUE(file->sync().ok());
  ASSERT_TRUE(file->append(as_bytes("-lost")).ok());
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  file.reset();
  ASSERT_TRUE(fs_.remove(dir_ / "old").ok());
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "old"), "keep");

  ASSERT_TRUE(fs_.remove(dir_ / "old").ok());
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  fs_.simulate_power_loss();
  EXPECT_FALSE(posix_.exists(dir_ / "old"));
}

TEST_F(FaultInjectionTest, NewDirectoryWithoutParentSyncIsLostWithItsFiles) {
  ASSERT_TRUE(fs_.create_dir(dir_ / "topic-0").ok());
  auto file = create(dir_ / "topic-0/seg");
  ASSERT_TRUE(file->append(as_bytes("x")).ok());
  ASSERT_TRUE(file->sync().ok());
  ASSERT_TRUE(fs_.sync_dir(dir_ / "topic-0").ok());
  fs_.simulate_power_loss();
  EXPECT_FALSE(posix_.exists(dir_ / "topic-0"));

  ASSERT_TRUE(create_dirs(fs_, dir_ / "topic-1").ok());  // syncs the parent
  file = create(dir_ / "topic-1/seg");
  ASSERT_TRUE(file->append(as_bytes("x")).ok());
  ASSERT_TRUE(file->sync().ok());
  ASSERT_TRUE(fs_.sync_dir(dir_ / "topic-1").ok());
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "topic-1/seg"), "x");
}

TEST_F(FaultInjectionTest, FailedSyncIsReportedAndNothingBecomesDurableAfterIt) {
  auto file = create(dir_ / "seg");
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  ASSERT_TRUE(file->append(as_bytes("a")).ok());
  ASSERT_TRUE(file->sync_data().ok());
  ASSERT_TRUE(file->append(as_bytes("b")).ok());
  fs_.fail_next_sync(1);
  auto failed = file->sync_data();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), Errc::io_error);
  EXPECT_NE(failed.error().message.find(dir_ / "seg"), std::string::npos);
  EXPECT_EQ(fs_.failed_sync_count(), 1);
  // fsyncgate: a retry "succeeds" but the kernel already dropped the pages.
  ASSERT_TRUE(file->sync_data().ok());
  EXPECT_EQ(fs_.durable_size(dir_ / "seg"), 1u);
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "seg"), "a");
}

TEST_F(FaultInjectionTest, FailedDirectorySyncCommitsNothing) {
  auto file = create(dir_ / "seg");
  ASSERT_TRUE(file->sync().ok());
  fs_.fail_next_sync(1);
  EXPECT_FALSE(fs_.sync_dir(dir_.path()).ok());
  fs_.simulate_power_loss();
  EXPECT_FALSE(posix_.exists(dir_ / "seg"));
}

TEST_F(FaultInjectionTest, TornLastWriteKeepsAPrefix) {
  auto file = create(dir_ / "seg");
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  ASSERT_TRUE(file->append(as_bytes("synced|")).ok());
  ASSERT_TRUE(file->sync_data().ok());
  ASSERT_TRUE(file->append(as_bytes("unsynced|")).ok());
  ASSERT_TRUE(file->append(as_bytes("torn-write")).ok());
  fs_.tear_last_write(4);
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "seg"), "synced|unsynced|torn");
}

TEST_F(FaultInjectionTest, TearHasNoEffectOnASyncedWrite) {
  auto file = create(dir_ / "seg");
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  ASSERT_TRUE(file->append(as_bytes("whole")).ok());
  ASSERT_TRUE(file->sync_data().ok());
  fs_.tear_last_write(1);
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "seg"), "whole");
}

TEST_F(FaultInjectionTest, HandlesDieWithThePowerAndHaltStopsWrites) {
  auto file = create(dir_ / "seg");
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  fs_.halt();
  EXPECT_FALSE(file->append(as_bytes("x")).ok());
  EXPECT_FALSE(file->sync_data().ok());
  EXPECT_FALSE(fs_.open(dir_ / "other", OpenMode::create).ok());
  EXPECT_FALSE(fs_.rename(dir_ / "seg", dir_ / "seg2").ok());
  fs_.simulate_power_loss();
  EXPECT_FALSE(file->append(as_bytes("x")).ok());
  uint8_t b;
  EXPECT_FALSE(file->read_at(0, {&b, 1}).ok());
  // After the reboot new handles work.
  auto reopened = fs_.open(dir_ / "seg", OpenMode::open_existing);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->append(as_bytes("y")).ok());
}

TEST_F(FaultInjectionTest, PreexistingFilesAreDurable) {
  {
    auto file = posix_.open(dir_ / "pre", OpenMode::create);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->append(as_bytes("old")).ok());
  }
  auto file = fs_.open(dir_ / "pre", OpenMode::open_existing);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->append(as_bytes("new")).ok());
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "pre"), "old");
}

TEST_F(FaultInjectionTest, TruncateLowersTheDurablePoint) {
  auto file = create(dir_ / "seg");
  ASSERT_TRUE(fs_.sync_dir(dir_.path()).ok());
  ASSERT_TRUE(file->append(as_bytes("abcdef")).ok());
  ASSERT_TRUE(file->sync_data().ok());
  ASSERT_TRUE(file->truncate(3).ok());
  ASSERT_TRUE(file->append(as_bytes("XYZ")).ok());
  fs_.simulate_power_loss();
  EXPECT_EQ(contents(dir_ / "seg"), "abc");
}

}  // namespace
}  // namespace holdfast::io
