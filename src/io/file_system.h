// The file-system seam (LevelDB's Env idea).
//
// Every file the broker writes goes through a FileSystem, so tests can swap in
// FaultInjectionFileSystem, which forgets whatever was not made durable by an
// fsync, fails syncs on demand and tears writes. That seam is how we prove that
// nothing acknowledged is lost without pulling a power plug.
//
// Durability model every implementation and every caller follows (POSIX):
//  - bytes written to a file are durable only after File::sync_data()/sync();
//  - a new file, a rename or a removal is durable only after sync_dir() on the
//    directory holding the entry (and a new directory only after sync_dir() on
//    its parent).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace holdfast::io {

enum class Errc { not_found, already_exists, no_space, permission_denied, io_error };

const char* to_string(Errc code);

template <typename T>
using IoResult = Result<T, Errc>;

// An open file: appended to by one writer, read at any position by anyone.
//
// Thread safety: read_at(), size(), sync_data() and sync() may run concurrently
// with each other and with one append()/truncate(); append() and truncate()
// must be serialised by the caller.
class File {
 public:
  virtual ~File() = default;
  virtual const std::string& path() const = 0;

  // Reads up to out.size() bytes at `offset`; returns the number read, which is
  // short only at the end of the file.
  virtual IoResult<size_t> read_at(uint64_t offset, std::span<uint8_t> out) const = 0;
  // Writes all of `data` at the current end of the file (size()). On error the
  // file may hold a prefix of `data`; size() then reports what is really there.
  virtual IoResult<void> append(std::span<const uint8_t> data) = 0;
  // fdatasync: the file's bytes (and its size) are durable when this returns ok.
  // After an error the written data is in an unknown state (fsyncgate): callers
  // must not retry and then believe it.
  virtual IoResult<void> sync_data() = 0;
  // fsync: as sync_data, plus all metadata.
  virtual IoResult<void> sync() = 0;
  // Cuts (or extends with zeros) the file to `size` bytes.
  virtual IoResult<void> truncate(uint64_t size) = 0;
  // The writer's view of the size: every byte appended so far.
  virtual uint64_t size() const = 0;
};

enum class OpenMode {
  open_existing,  // not_found if missing
  create,         // open, creating an empty file if missing
  create_new,     // already_exists if present
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path` for appending and random reads.
  virtual IoResult<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;
  // Atomically replaces `to` (if present) by `from`. Durable after sync_dir().
  virtual IoResult<void> rename(const std::string& from, const std::string& to) = 0;
  // Removes a file. Durable after sync_dir().
  virtual IoResult<void> remove(const std::string& path) = 0;
  // Removes an empty directory.
  virtual IoResult<void> remove_dir(const std::string& path) = 0;
  // Names of the entries in a directory (no "." or ".."), in no particular order.
  virtual IoResult<std::vector<std::string>> list_dir(const std::string& path) = 0;
  // Creates one directory level; already_exists if present.
  virtual IoResult<void> create_dir(const std::string& path) = 0;
  // fsync on the directory: makes its entries (creates, renames, removals) durable.
  virtual IoResult<void> sync_dir(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual bool is_directory(const std::string& path) = 0;
  virtual IoResult<uint64_t> file_size(const std::string& path) = 0;
};

// ---- Helpers built on the interface ----

// "a/b/c" -> "a/b"; "c" -> "."; "/c" -> "/".
std::string parent_dir(std::string_view path);
std::string join_path(std::string_view dir, std::string_view name);

// Creates `path` and any missing parents (each new level synced into its parent).
IoResult<void> create_dirs(FileSystem& fs, const std::string& path);

// Reads a whole file.
IoResult<std::vector<uint8_t>> read_file(FileSystem& fs, const std::string& path);

// Replaces `path` atomically and durably: writes `path`.tmp, fsyncs it, renames
// it over `path` and fsyncs the directory. After success the new contents
// survive a power loss; after a failure either the old or the new contents are
// there (never a mix).
IoResult<void> write_file_atomically(FileSystem& fs, const std::string& path,
                                     std::span<const uint8_t> contents);

// Removes a directory and everything under it (depth first).
IoResult<void> remove_all(FileSystem& fs, const std::string& path);

}  // namespace holdfast::io
