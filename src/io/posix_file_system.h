// FileSystem over POSIX calls (pread/pwrite, fdatasync, rename, ...).
#pragma once

#include "io/file_system.h"

namespace holdfast::io {

class PosixFileSystem final : public FileSystem {
 public:
  IoResult<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
  IoResult<void> rename(const std::string& from, const std::string& to) override;
  IoResult<void> remove(const std::string& path) override;
  IoResult<void> remove_dir(const std::string& path) override;
  IoResult<std::vector<std::string>> list_dir(const std::string& path) override;
  IoResult<void> create_dir(const std::string& path) override;
  IoResult<void> sync_dir(const std::string& path) override;
  bool exists(const std::string& path) override;
  bool is_directory(const std::string& path) override;
  IoResult<uint64_t> file_size(const std::string& path) override;
};

// Maps an errno value to an io::Errc and a message "<operation> <path>: <errno text>".
Error<Errc> errno_error(int err, std::string_view operation, std::string_view path);

}  // namespace holdfast::io
