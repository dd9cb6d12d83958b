#include "server/metered_file_system.h"

#include <atomic>
#include <chrono>

namespace holdfast::server {
namespace {

using Clock = std::chrono::steady_clock;

class MeteredFile final : public io::File {
 public:
  MeteredFile(std::unique_ptr<io::File> inner, SyncMetrics metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}
  // A file closed with unsynced bytes (removed, or abandoned after a failed
  // sync) no longer has bytes waiting for the flusher.
  ~MeteredFile() override { metrics_.unsynced_bytes.add(-unsynced_.exchange(0)); }

  const std::string& path() const override { return inner_->path(); }
  io::IoResult<size_t> read_at(uint64_t offset, std::span<uint8_t> out) const override {
    return inner_->read_at(offset, out);
  }
  io::IoResult<void> append(std::span<const uint8_t> data) override {
    auto r = inner_->append(data);
    unsynced_.fetch_add(int64_t(data.size()));
    metrics_.unsynced_bytes.add(int64_t(data.size()));
    return r;
  }
  io::IoResult<void> sync_data() override {
    return timed([this] { return inner_->sync_data(); });
  }
  io::IoResult<void> sync() override {
    return timed([this] { return inner_->sync(); });
  }
  io::IoResult<void> truncate(uint64_t size) override { return inner_->truncate(size); }
  uint64_t size() const override { return inner_->size(); }

 private:
  template <typename Fn>
  io::IoResult<void> timed(Fn&& sync) {
    // Bytes appended before the sync starts are covered by it; later ones
    // count until the next sync.
    const int64_t covered = unsynced_.exchange(0);
    const auto started = Clock::now();
    auto r = sync();
    metrics_.latency.observe(std::chrono::duration<double>(Clock::now() - started).count());
    metrics_.syncs.inc();
    if (r) {
      metrics_.unsynced_bytes.add(-covered);
    } else {
      unsynced_.fetch_add(covered);  // still not durable
    }
    return r;
  }

  std::unique_ptr<io::File> inner_;
  SyncMetrics metrics_;
  std::atomic<int64_t> unsynced_{0};
};

}  // namespace

MeteredFileSystem::MeteredFileSystem(io::FileSystem& inner, SyncMetrics metrics)
    : inner_(inner), metrics_(metrics) {}

io::IoResult<std::unique_ptr<io::File>> MeteredFileSystem::open(const std::string& path,
                                                                io::OpenMode mode) {
  auto file = inner_.open(path, mode);
  if (!file) return file.error();
  return std::unique_ptr<io::File>(std::make_unique<MeteredFile>(std::move(*file), metrics_));
}

io::IoResult<void> MeteredFileSystem::sync_dir(const std::string& path) {
  const auto started = Clock::now();
  auto r = inner_.sync_dir(path);
  metrics_.latency.observe(std::chrono::duration<double>(Clock::now() - started).count());
  metrics_.syncs.inc();
  return r;
}

}  // namespace holdfast::server
