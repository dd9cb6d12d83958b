// A FileSystem for tests that remembers what an fsync made durable, so it can
// simulate a power loss (LevelDB's fault_injection_test idea).
//
// Model (POSIX, pessimistic):
//  - a file's bytes are durable up to the size it had when its last successful
//    sync_data()/sync() began; truncate() lowers that point;
//  - creating, renaming or removing a file, and creating or removing a
//    directory, is journalled; sync_dir(d) commits the journalled operations
//    on entries of d;
//  - simulate_power_loss() undoes every uncommitted namespace operation in
//    reverse order (a new file or directory disappears, a rename is undone and
//    the file it replaced comes back, a removed file comes back with its
//    durable bytes), then truncates every file to its durable size;
//  - fsyncgate: after a failed sync of a file, later syncs of that file still
//    "succeed" but never make anything durable again, exactly like a kernel
//    that dropped the dirty pages and cleared the error. Code that retries a
//    failed sync and then acknowledges is caught by the power-loss test.
//
// Files that already exist when first seen are taken as fully durable.
// Only append() writes data, so the model is exact: nothing overwrites bytes
// in place.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "io/file_system.h"

namespace holdfast::io {

class FaultInjectionFileSystem final : public FileSystem {
 public:
  explicit FaultInjectionFileSystem(FileSystem& base);
  ~FaultInjectionFileSystem() override;

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

  // ---- Fault controls ----

  // The machine stops: from now on every write, sync and namespace operation
  // fails with io_error (reads still work) until simulate_power_loss(). A sync
  // that was in flight reports an error. Use it to freeze the disk at a random
  // point while other threads keep calling in.
  void halt();
  // Drops everything that was not durable (see the model above), invalidates
  // every open handle (all calls on them fail from now on) and "reboots": the
  // file system works again, without halt, fail_next_sync or tear armed.
  void simulate_power_loss();
  // The next n syncs (of files or directories) fail with io_error.
  void fail_next_sync(int n);
  // Arms a torn write for the next simulate_power_loss(): everything written to
  // the file of the most recent append() before that append reaches the disk,
  // and of that append only the first keep_bytes. (No effect if the append is
  // already covered by a sync.)
  void tear_last_write(uint64_t keep_bytes);

  // ---- Introspection for tests ----
  uint64_t durable_size(const std::string& path) const;  // 0 if unknown
  int sync_count() const;
  int failed_sync_count() const;

 private:
  class InjectedFile;
  struct FileState {
    uint64_t durable_size = 0;
    bool sync_failed = false;  // fsyncgate: nothing more becomes durable
  };
  enum class OpKind { create_file, create_dir, rename, remove_file, remove_dir };
  struct Op {
    OpKind kind;
    std::string path;                           // the entry (for rename: the source)
    std::string to;                             // rename target
    std::optional<std::vector<uint8_t>> stash;  // durable bytes of a removed/replaced file
  };
  struct LastWrite {
    std::shared_ptr<FileState> state;
    std::string path;
    uint64_t offset = 0;
    uint64_t length = 0;
  };

  bool writable_locked() const { return !halted_; }
  std::shared_ptr<FileState> state_for_locked(const std::string& path);
  std::vector<uint8_t> read_durable_locked(const std::string& path);
  void write_whole_file_locked(const std::string& path, const std::vector<uint8_t>& data);
  Error<Errc> halted_error(std::string_view what, std::string_view path) const;

  FileSystem& base_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<FileState>> files_;
  std::vector<Op> journal_;
  uint64_t generation_ = 0;
  bool halted_ = false;
  int failing_syncs_ = 0;
  int sync_count_ = 0;
  int failed_sync_count_ = 0;
  std::optional<LastWrite> last_write_;
  std::optional<uint64_t> tear_keep_bytes_;
};

}  // namespace holdfast::io
