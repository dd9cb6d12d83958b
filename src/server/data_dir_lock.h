// The exclusive lock on a data directory (`<dir>/.lock`, as Kafka's), held
// for the life of the process that owns the directory, so that a second
// broker started on the same directory refuses instead of interleaving its
// writes with the first one's (which loses acknowledged messages).
#pragma once

#include <string>

#include "base/result.h"

namespace holdfast::server {

enum class DataDirLockErrc { in_use, failed };

class DataDirLock {
 public:
  static constexpr const char* kFileName = ".lock";

  DataDirLock() = default;
  ~DataDirLock() { release(); }
  DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&& other) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  // Creates `<dir>/.lock` if needed and takes flock(LOCK_EX | LOCK_NB) on it.
  // in_use: another process (or another open of it here) holds the lock; the
  // message says "another process is using <dir>". The directory must exist.
  static Result<DataDirLock, DataDirLockErrc> acquire(const std::string& dir);

  bool held() const { return fd_ >= 0; }
  void release();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace holdfast::server
