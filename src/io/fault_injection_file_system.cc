#include "io/fault_injection_file_system.h"

#include <fmt/format.h>

#include <algorithm>

namespace holdfast::io {
namespace {

std::string normalize_dir(std::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return std::string(dir);
}

bool is_under(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

// A handle: forwards to the base file and reports appends and syncs to the
// file system's model. Dead once the file system simulated a power loss.
class FaultInjectionFileSystem::InjectedFile final : public File {
 public:
  InjectedFile(FaultInjectionFileSystem* fs, std::unique_ptr<File> base,
               std::shared_ptr<FileState> state, uint64_t generation)
      : fs_(fs), base_(std::move(base)), state_(std::move(state)), generation_(generation) {}

  const std::string& path() const override { return base_->path(); }

  IoResult<size_t> read_at(uint64_t offset, std::span<uint8_t> out) const override {
    {
      std::lock_guard lock(fs_->mu_);
      if (generation_ != fs_->generation_) return dead_error("read");
    }
    return base_->read_at(offset, out);
  }

  IoResult<void> append(std::span<const uint8_t> data) override {
    std::lock_guard lock(fs_->mu_);
    if (generation_ != fs_->generation_) return dead_error("write");
    if (!fs_->writable_locked()) return fs_->halted_error("write", path());
    uint64_t offset = base_->size();
    auto r = base_->append(data);
    fs_->last_write_ = LastWrite{state_, path(), offset, base_->size() - offset};
    return r;
  }

  IoResult<void> sync_data() override { return sync_impl(); }
  IoResult<void> sync() override { return sync_impl(); }

  IoResult<void> truncate(uint64_t size) override {
    std::lock_guard lock(fs_->mu_);
    if (generation_ != fs_->generation_) return dead_error("truncate");
    if (!fs_->writable_locked()) return fs_->halted_error("truncate", path());
    auto r = base_->truncate(size);
    state_->durable_size = std::min(state_->durable_size, size);
    if (fs_->last_write_ && fs_->last_write_->state == state_) fs_->last_write_.reset();
    return r;
  }

  uint64_t size() const override { return base_->size(); }

 private:
  IoResult<void> sync_impl() {
    uint64_t target;
    {
      std::lock_guard lock(fs_->mu_);
      if (generation_ != fs_->generation_) return dead_error("fsync");
      if (!fs_->writable_locked()) return fs_->halted_error("fsync", path());
      ++fs_->sync_count_;
      if (fs_->failing_syncs_ > 0) {
        --fs_->failing_syncs_;
        ++fs_->failed_sync_count_;
        state_->sync_failed = true;
        return make_error(Errc::io_error, fmt::format("fsync {}: injected failure", path()));
      }
      target = base_->size();
    }
    auto r = base_->sync_data();
    std::lock_guard lock(fs_->mu_);
    if (generation_ != fs_->generation_ || !fs_->writable_locked()) {
      return make_error(Errc::io_error, fmt::format("fsync {}: power lost during sync", path()));
    }
    if (!r) {
      state_->sync_failed = true;
      return r;
    }
    if (!state_->sync_failed) {
      state_->durable_size = std::max(state_->durable_size, std::min(target, base_->size()));
    }
    return {};
  }

  Error<Errc> dead_error(std::string_view what) const {
    return make_error(
        Errc::io_error,
        fmt::format("{} {}: handle invalidated by simulated power loss", what, path()));
  }

  FaultInjectionFileSystem* fs_;
  std::unique_ptr<File> base_;
  std::shared_ptr<FileState> state_;
  uint64_t generation_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem& base) : base_(base) {}
FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

Error<Errc> FaultInjectionFileSystem::halted_error(std::string_view what,
                                                   std::string_view path) const {
  return make_error(Errc::io_error, fmt::format("{} {}: machine halted (simulated)", what, path));
}

std::shared_ptr<FaultInjectionFileSystem::FileState> FaultInjectionFileSystem::state_for_locked(
    const std::string& path) {
  auto it = files_.find(path);
  if (it != files_.end()) return it->second;
  // First sight of a file that existed before: take it as durable.
  auto state = std::make_shared<FileState>();
  if (auto size = base_.file_size(path)) state->durable_size = *size;
  files_.emplace(path, state);
  return state;
}

std::vector<uint8_t> FaultInjectionFileSystem::read_durable_locked(const std::string& path) {
  auto state = state_for_locked(path);
  std::vector<uint8_t> data;
  auto file = base_.open(path, OpenMode::open_existing);
  if (!file) return data;
  data.resize(std::min<uint64_t>(state->durable_size, (*file)->size()));
  auto n = (*file)->read_at(0, data);
  data.resize(n ? *n : 0);
  return data;
}

void FaultInjectionFileSystem::write_whole_file_locked(const std::string& path,
                                                       const std::vector<uint8_t>& data) {
  auto file = base_.open(path, OpenMode::create);
  if (!file) return;
  (void)(*file)->truncate(0);
  (void)(*file)->append(data);
  auto state = std::make_shared<FileState>();
  state->durable_size = data.size();
  files_[path] = state;
}

IoResult<std::unique_ptr<File>> FaultInjectionFileSystem::open(const std::string& path,
                                                               OpenMode mode) {
  std::lock_guard lock(mu_);
  bool existed = base_.exists(path);
  if (!existed && mode != OpenMode::open_existing && !writable_locked()) {
    return halted_error("create", path);
  }
  auto file = base_.open(path, mode);
  if (!file) return file.error();
  std::shared_ptr<FileState> state;
  if (existed) {
    state = state_for_locked(path);
  } else {
    state = std::make_shared<FileState>();
    files_[path] = state;
    journal_.push_back(Op{OpKind::create_file, path, {}, std::nullopt});
  }
  return std::unique_ptr<File>(new InjectedFile(this, std::move(*file), state, generation_));
}

IoResult<void> FaultInjectionFileSystem::rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  if (!writable_locked()) return halted_error("rename", from);
  auto state = state_for_locked(from);
  std::optional<std::vector<uint8_t>> stash;
  if (base_.exists(to)) stash = read_durable_locked(to);
  if (auto r = base_.rename(from, to); !r) return r;
  files_.erase(from);
  files_[to] = state;
  journal_.push_back(Op{OpKind::rename, from, to, std::move(stash)});
  return {};
}

IoResult<void> FaultInjectionFileSystem::remove(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!writable_locked()) return halted_error("remove", path);
  if (!base_.exists(path)) return base_.remove(path);  // the base reports the error
  auto stash = read_durable_locked(path);
  if (auto r = base_.remove(path); !r) return r;
  files_.erase(path);
  journal_.push_back(Op{OpKind::remove_file, path, {}, std::move(stash)});
  return {};
}

IoResult<void> FaultInjectionFileSystem::remove_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!writable_locked()) return halted_error("remove directory", path);
  if (auto r = base_.remove_dir(path); !r) return r;
  journal_.push_back(Op{OpKind::remove_dir, normalize_dir(path), {}, std::nullopt});
  return {};
}

IoResult<std::vector<std::string>> FaultInjectionFileSystem::list_dir(const std::string& path) {
  return base_.list_dir(path);
}

IoResult<void> FaultInjectionFileSystem::create_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!writable_locked()) return halted_error("create directory", path);
  if (auto r = base_.create_dir(path); !r) return r;
  journal_.push_back(Op{OpKind::create_dir, normalize_dir(path), {}, std::nullopt});
  return {};
}

IoResult<void> FaultInjectionFileSystem::sync_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!writable_locked()) return halted_error("fsync directory", path);
  ++sync_count_;
  if (failing_syncs_ > 0) {
    --failing_syncs_;
    ++failed_sync_count_;
    return make_error(Errc::io_error, fmt::format("fsync directory {}: injected failure", path));
  }
  if (auto r = base_.sync_dir(path); !r) return r;
  std::string dir = normalize_dir(path);
  // Commit the operations on entries of `dir`; a committed directory removal
  // also settles everything that was under it.
  std::vector<std::string> removed_dirs;
  std::erase_if(journal_, [&](const Op& op) {
    const std::string& entry = op.kind == OpKind::rename ? op.to : op.path;
    if (parent_dir(entry) != dir) return false;
    if (op.kind == OpKind::remove_dir) removed_dirs.push_back(op.path);
    return true;
  });
  for (const auto& removed : removed_dirs) {
    std::erase_if(journal_, [&](const Op& op) { return is_under(op.path, removed); });
  }
  return {};
}

bool FaultInjectionFileSystem::exists(const std::string& path) {
  return base_.exists(path);
}
bool FaultInjectionFileSystem::is_directory(const std::string& path) {
  return base_.is_directory(path);
}
IoResult<uint64_t> FaultInjectionFileSystem::file_size(const std::string& path) {
  return base_.file_size(path);
}

void FaultInjectionFileSystem::halt() {
  std::lock_guard lock(mu_);
  halted_ = true;
}

void FaultInjectionFileSystem::fail_next_sync(int n) {
  std::lock_guard lock(mu_);
  failing_syncs_ = n;
}

void FaultInjectionFileSystem::tear_last_write(uint64_t keep_bytes) {
  std::lock_guard lock(mu_);
  tear_keep_bytes_ = keep_bytes;
}

void FaultInjectionFileSystem::simulate_power_loss() {
  std::lock_guard lock(mu_);
  // 1. The torn write: earlier bytes of that file and a prefix of the write
  //    reached the platter.
  if (tear_keep_bytes_ && last_write_ && !last_write_->state->sync_failed) {
    for (auto& [path, state] : files_) {
      if (state != last_write_->state) continue;
      uint64_t keep = std::min(*tear_keep_bytes_, last_write_->length);
      uint64_t end = last_write_->offset + keep;
      if (state->durable_size < end) {
        state->durable_size = end;
        if (auto file = base_.open(path, OpenMode::open_existing)) (void)(*file)->truncate(end);
      }
    }
  }
  // 2. Undo the uncommitted namespace operations, newest first.
  for (auto it = journal_.rbegin(); it != journal_.rend(); ++it) {
    const Op& op = *it;
    switch (op.kind) {
      case OpKind::create_file:
        (void)base_.remove(op.path);
        files_.erase(op.path);
        break;
      case OpKind::create_dir:
        (void)remove_all(base_, op.path);
        std::erase_if(files_, [&](const auto& entry) { return is_under(entry.first, op.path); });
        break;
      case OpKind::rename:
        if (base_.exists(op.to)) {
          (void)base_.rename(op.to, op.path);
          auto state = files_[op.to];
          files_.erase(op.to);
          files_[op.path] = state ? state : std::make_shared<FileState>();
        }
        if (op.stash) write_whole_file_locked(op.to, *op.stash);
        break;
      case OpKind::remove_file:
        write_whole_file_locked(op.path, *op.stash);
        break;
      case OpKind::remove_dir:
        (void)base_.create_dir(op.path);
        break;
    }
  }
  journal_.clear();
  // 3. Every file keeps only its durable bytes.
  for (auto& [path, state] : files_) {
    auto size = base_.file_size(path);
    if (!size || *size <= state->durable_size) continue;
    if (auto file = base_.open(path, OpenMode::open_existing)) {
      (void)(*file)->truncate(state->durable_size);
    }
  }
  ++generation_;
  halted_ = false;
  failing_syncs_ = 0;
  last_write_.reset();
  tear_keep_bytes_.reset();
}

uint64_t FaultInjectionFileSystem::durable_size(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  return it == files_.end() ? 0 : it->second->durable_size;
}

int FaultInjectionFileSystem::sync_count() const {
  std::lock_guard lock(mu_);
  return sync_count_;
}

int FaultInjectionFileSystem::failed_sync_count() const {
  std::lock_guard lock(mu_);
  return failed_sync_count_;
}

}  // namespace holdfast::io
