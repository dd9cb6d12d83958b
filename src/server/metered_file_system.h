// A FileSystem decorator that measures every fsync under the data directory
// (latency histogram, count) and the bytes written and not yet synced, for
// /metrics. Everything else passes straight through to the wrapped file
// system (the fault-injecting one in fault tests), so durability behaviour is
// unchanged.
#pragma once

#include <memory>
#include <string>

#include "io/file_system.h"
#include "server/broker_metrics.h"

namespace holdfast::server {

class MeteredFileSystem final : public io::FileSystem {
 public:
  // `inner` must outlive this.
  MeteredFileSystem(io::FileSystem& inner, SyncMetrics metrics);

  io::IoResult<std::unique_ptr<io::File>> open(const std::string& path, io::OpenMode mode) override;
  io::IoResult<void> rename(const std::string& from, const std::string& to) override {
    return inner_.rename(from, to);
  }
  io::IoResult<void> remove(const std::string& path) override { return inner_.remove(path); }
  io::IoResult<void> remove_dir(const std::string& path) override {
    return inner_.remove_dir(path);
  }
  io::IoResult<std::vector<std::string>> list_dir(const std::string& path) override {
    return inner_.list_dir(path);
  }
  io::IoResult<void> create_dir(const std::string& path) override {
    return inner_.create_dir(path);
  }
  io::IoResult<void> sync_dir(const std::string& path) override;
  bool exists(const std::string& path) override { return inner_.exists(path); }
  bool is_directory(const std::string& path) override { return inner_.is_directory(path); }
  io::IoResult<uint64_t> file_size(const std::string& path) override {
    return inner_.file_size(path);
  }

 private:
  io::FileSystem& inner_;
  SyncMetrics metrics_;
};

}  // namespace holdfast::server
