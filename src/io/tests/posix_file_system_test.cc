#include "io/posix_file_system.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "io/tests/temp_dir.h"

namespace holdfast::io {
namespace {

using testing::TempDir;

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string read_all(FileSystem& fs, const std::string& path) {
  auto data = read_file(fs, path);
  EXPECT_TRUE(data.ok()) << (data.ok() ? "" : data.error().message);
  return data.ok() ? std::string(data->begin(), data->end()) : std::string();
}

TEST(PosixFileSystem, AppendReadSizeTruncate) {
  TempDir dir;
  PosixFileSystem fs;
  auto file = fs.open(dir / "a.log", OpenMode::create_new);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->append(as_bytes("hello ")).ok());
  ASSERT_TRUE((*file)->append(as_bytes("world")).ok());
  EXPECT_EQ((*file)->size(), 11u);
  ASSERT_TRUE((*file)->sync_data().ok());
  ASSERT_TRUE((*file)->sync().ok());

  uint8_t buf[5];
  auto n = (*file)->read_at(6, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buf), 5), "world");
  // Short read at the end of the file.
  n = (*file)->read_at(9, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);

  ASSERT_TRUE((*file)->truncate(5).ok());
  EXPECT_EQ((*file)->size(), 5u);
  ASSERT_TRUE((*file)->append(as_bytes("!")).ok());
  EXPECT_EQ(read_all(fs, dir / "a.log"), "hello!");
  EXPECT_EQ(*fs.file_size(dir / "a.log"), 6u);
}

TEST(PosixFileSystem, ReopenSeesSizeAndAppendsAtEnd) {
  TempDir dir;
  PosixFileSystem fs;
  {
    auto file = fs.open(dir / "f", OpenMode::create);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->append(as_bytes("abc")).ok());
  }
  auto file = fs.open(dir / "f", OpenMode::open_existing);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->size(), 3u);
  ASSERT_TRUE((*file)->append(as_bytes("def")).ok());
  EXPECT_EQ(read_all(fs, dir / "f"), "abcdef");
}

TEST(PosixFileSystem, ErrorsNameThePathAndTheCause) {
  TempDir dir;
  PosixFileSystem fs;
  auto missing = fs.open(dir / "nope", OpenMode::open_existing);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), Errc::not_found);
  EXPECT_NE(missing.error().message.find(dir / "nope"), std::string::npos);
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);

  ASSERT_TRUE(fs.open(dir / "x", OpenMode::create_new).ok());
  auto again = fs.open(dir / "x", OpenMode::create_new);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), Errc::already_exists);

  EXPECT_EQ(fs.remove(dir / "nope").code(), Errc::not_found);
  EXPECT_EQ(fs.create_dir(dir.path()).code(), Errc::already_exists);
}

TEST(PosixFileSystem, DirectoriesRenameRemoveList) {
  TempDir dir;
  PosixFileSystem fs;
  ASSERT_TRUE(fs.create_dir(dir / "sub").ok());
  EXPECT_TRUE(fs.is_directory(dir / "sub"));
  ASSERT_TRUE(fs.open(dir / "sub/a", OpenMode::create).ok());
  ASSERT_TRUE(fs.open(dir / "sub/b", OpenMode::create).ok());
  ASSERT_TRUE(fs.rename(dir / "sub/a", dir / "sub/c").ok());
  ASSERT_TRUE(fs.sync_dir(dir / "sub").ok());
  auto names = fs.list_dir(dir / "sub");
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(fs.exists(dir / "sub/a"));
  ASSERT_TRUE(fs.remove(dir / "sub/b").ok());
  EXPECT_FALSE(fs.exists(dir / "sub/b"));
  EXPECT_FALSE(fs.remove_dir(dir / "sub").ok());  // not empty
  ASSERT_TRUE(remove_all(fs, dir / "sub").ok());
  EXPECT_FALSE(fs.exists(dir / "sub"));
}

TEST(PosixFileSystem, CreateDirsAndAtomicWrite) {
  TempDir dir;
  PosixFileSystem fs;
  ASSERT_TRUE(create_dirs(fs, dir / "a/b/c").ok());
  EXPECT_TRUE(fs.is_directory(dir / "a/b/c"));
  ASSERT_TRUE(create_dirs(fs, dir / "a/b/c").ok());  // idempotent
  ASSERT_TRUE(write_file_atomically(fs, dir / "a/ckpt", as_bytes("one")).ok());
  ASSERT_TRUE(write_file_atomically(fs, dir / "a/ckpt", as_bytes("two!")).ok());
  EXPECT_EQ(read_all(fs, dir / "a/ckpt"), "two!");
  EXPECT_FALSE(fs.exists(dir / "a/ckpt.tmp"));
}

TEST(PathHelpers, ParentAndJoin) {
  EXPECT_EQ(parent_dir("a/b/c"), "a/b");
  EXPECT_EQ(parent_dir("c"), ".");
  EXPECT_EQ(parent_dir("/c"), "/");
  EXPECT_EQ(join_path("a", "b"), "a/b");
  EXPECT_EQ(join_path("a/", "b"), "a/b");
}

}  // namespace
}  // namespace holdfast::io
