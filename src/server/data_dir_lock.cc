#include "server/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace holdfast::server {

DataDirLock& DataDirLock::operator=(DataDirLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

Result<DataDirLock, DataDirLockErrc> DataDirLock::acquire(const std::string& dir) {
  const std::string path = dir + "/" + kFileName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(DataDirLockErrc::failed,
                      "cannot open lock file " + path + ": " + std::strerror(errno));
  }
  // flock locks belong to the open file description: a second open in this
  // process conflicts too, which is what tests running two brokers need.
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return make_error(DataDirLockErrc::in_use,
                        "another process is using " + dir + " (" + path +
                            " is locked); refusing to start on it");
    }
    return make_error(DataDirLockErrc::failed, "cannot lock " + path + ": " + std::strerror(err));
  }
  return DataDirLock(fd);
}

void DataDirLock::release() {
  if (fd_ >= 0) {
    ::close(fd_);  // drops the lock
    fd_ = -1;
  }
}

}  // namespace holdfast::server
