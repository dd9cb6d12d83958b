#include "io/posix_file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <system_error>

namespace holdfast::io {

Error<Errc> errno_error(int err, std::string_view operation, std::string_view path) {
  Errc code = Errc::io_error;
  switch (err) {
    case ENOENT:
      code = Errc::not_found;
      break;
    case EEXIST:
      code = Errc::already_exists;
      break;
    case ENOSPC:
    case EDQUOT:
      code = Errc::no_space;
      break;
    case EACCES:
    case EPERM:
    case EROFS:
      code = Errc::permission_denied;
      break;
    default:
      break;
  }
  return make_error(code, fmt::format("{} {}: {}", operation, path,
                                      std::error_code(err, std::generic_category()).message()));
}

namespace {

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixFile() override { ::close(fd_); }

  const std::string& path() const override { return path_; }

  IoResult<size_t> read_at(uint64_t offset, std::span<uint8_t> out) const override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, off_t(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error(errno, "read", path_);
      }
      if (n == 0) break;
      done += size_t(n);
    }
    return done;
  }

  IoResult<void> append(std::span<const uint8_t> data) override {
    uint64_t at = size_.load(std::memory_order_relaxed);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, off_t(at + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        size_.store(at + done, std::memory_order_release);
        return errno_error(err, "write", path_);
      }
      done += size_t(n);
    }
    size_.store(at + done, std::memory_order_release);
    return {};
  }

  IoResult<void> sync_data() override {
    if (::fdatasync(fd_) != 0) return errno_error(errno, "fdatasync", path_);
    return {};
  }

  IoResult<void> sync() override {
    if (::fsync(fd_) != 0) return errno_error(errno, "fsync", path_);
    return {};
  }

  IoResult<void> truncate(uint64_t size) override {
    if (::ftruncate(fd_, off_t(size)) != 0) return errno_error(errno, "truncate", path_);
    size_.store(size, std::memory_order_release);
    return {};
  }

  uint64_t size() const override { return size_.load(std::memory_order_acquire); }

 private:
  std::string path_;
  int fd_;
  std::atomic<uint64_t> size_;
};

}  // namespace

IoResult<std::unique_ptr<File>> PosixFileSystem::open(const std::string& path, OpenMode mode) {
  int flags = O_RDWR | O_CLOEXEC;
  if (mode == OpenMode::create) flags |= O_CREAT;
  if (mode == OpenMode::create_new) flags |= O_CREAT | O_EXCL;
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_error(errno, "open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return errno_error(err, "stat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return errno_error(EISDIR, "open", path);
  }
  return std::unique_ptr<File>(new PosixFile(path, fd, uint64_t(st.st_size)));
}

IoResult<void> PosixFileSystem::rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return errno_error(errno, "rename", from + " -> " + to);
  return {};
}

IoResult<void> PosixFileSystem::remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return errno_error(errno, "remove", path);
  return {};
}

IoResult<void> PosixFileSystem::remove_dir(const std::string& path) {
  if (::rmdir(path.c_str()) != 0) return errno_error(errno, "remove directory", path);
  return {};
}

IoResult<std::vector<std::string>> PosixFileSystem::list_dir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return errno_error(errno, "list directory", path);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string_view name(entry->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return errno_error(err, "list directory", path);
  return names;
}

IoResult<void> PosixFileSystem::create_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0) return errno_error(errno, "create directory", path);
  return {};
}

IoResult<void> PosixFileSystem::sync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, "open directory", path);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return errno_error(err, "fsync directory", path);
  return {};
}

bool PosixFileSystem::exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool PosixFileSystem::is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

IoResult<uint64_t> PosixFileSystem::file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno_error(errno, "stat", path);
  return uint64_t(st.st_size);
}

}  // namespace holdfast::io
