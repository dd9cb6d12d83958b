// `holdfast log check|repair <partition dir>`: offline tools for a partition
// that came up offline with a corrupt segment (docs/operations.md, "Corrupt
// segments"). Both work on the files directly, through storage/log_check.h.
//
//   check   reports every damaged stretch (file, byte position, reason);
//           exit 0 when clean, 1 when damaged, 2 when it cannot read.
//   repair  cuts the log at the first damage. Without --yes it only prints
//           what it would remove (exit 1); it refuses while a broker holds
//           the data directory's lock (exit 2).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "io/posix_file_system.h"
#include "storage/checkpoint.h"
#include "storage/format.h"
#include "storage/log_check.h"

namespace holdfast::cli {
namespace {

struct LogOptions {
  std::string dir;
  bool yes = false;
};

[[noreturn]] void fail(const std::string& command, const std::string& message, int code) {
  std::cerr << "holdfast log " << command << ": " << message << std::endl;
  throw CLI::RuntimeError(code);
}

std::string without_trailing_slash(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

storage::PartitionCheck checked(const std::string& command, io::FileSystem& fs,
                                const std::string& dir) {
  auto check = storage::check_partition(fs, dir);
  if (!check) fail(command, check.error().message, 2);
  const auto& c = *check;
  std::cout << dir << ": " << c.segments.size() << " segments, " << c.batches
            << " good batches, " << c.damage.size() << " damaged stretch"
            << (c.damage.size() == 1 ? "" : "es") << std::endl;
  for (const auto& d : c.damage) std::cout << "DAMAGED " << d.describe() << std::endl;
  return std::move(*check);
}

void run_check(const LogOptions& options) {
  io::PosixFileSystem fs;
  std::string dir = without_trailing_slash(options.dir);
  auto check = checked("check", fs, dir);
  if (check.clean()) {
    std::cout << "no damage found" << std::endl;
    return;
  }
  std::cout << "`holdfast log repair " << dir
            << "` (with the broker stopped) would cut the log at the first damage" << std::endl;
  throw CLI::RuntimeError(1);
}

// Holds <data dir>/.lock (the broker's lock, taken at start-up) for the
// repair, so no broker runs on the directory meanwhile.
class DataDirLock {
 public:
  explicit DataDirLock(const std::string& data_dir) {
    std::string path = io::join_path(data_dir, ".lock");
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno != ENOENT) fail("repair", "cannot open " + path + ": " + std::strerror(errno), 2);
      std::cerr << "holdfast log repair: note: no " << path
                << "; make sure no broker is running on " << data_dir << std::endl;
      return;
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      int error = errno;
      ::close(fd_);
      fd_ = -1;
      if (error == EWOULDBLOCK) {
        fail("repair", "another process is using " + data_dir + " (it holds " + path +
                           "); stop the broker first",
             2);
      }
      fail("repair", "cannot lock " + path + ": " + std::strerror(error), 2);
    }
  }
  ~DataDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  int fd_ = -1;
};

// The partition leaves the recovery-point checkpoint: its next start walks
// the whole repaired log with CRC checks, and data appended below the old
// recovery point is not taken for flushed.
void forget_recovery_point(io::FileSystem& fs, const std::string& data_dir,
                           const std::string& dir) {
  // npos + 1 == 0: a bare name is its own last component.
  auto tp = storage::format::parse_partition_dir_name(dir.substr(dir.find_last_of('/') + 1));
  if (!tp) return;
  std::string path = io::join_path(data_dir, storage::format::kRecoveryPointCheckpointFile);
  auto entries = storage::read_checkpoint(fs, path);
  if (!entries || entries->erase(*tp) == 0) return;
  if (auto r = storage::write_checkpoint(fs, path, *entries); !r) {
    fail("repair", "repaired, but could not update " + path + ": " + r.error().message, 2);
  }
}

void run_repair(const LogOptions& options) {
  io::PosixFileSystem fs;
  std::string dir = without_trailing_slash(options.dir);
  std::string data_dir = io::parent_dir(dir);
  DataDirLock lock(data_dir);
  auto check = checked("repair", fs, dir);
  if (check.clean()) {
    std::cout << "nothing to repair" << std::endl;
    return;
  }
  const size_t k = *check.cut_segment;
  std::cout << "repair will:" << std::endl;
  if (check.cut_position == 0 && k > 0) {
    std::cout << "  remove " << check.segments[k].path << " (" << check.segments[k].size
              << " bytes)" << std::endl;
  } else {
    std::cout << "  cut " << check.segments[k].path << " at byte " << check.cut_position
              << " (removing " << check.segments[k].size - check.cut_position << " bytes)"
              << std::endl;
  }
  for (size_t i = k + 1; i < check.segments.size(); ++i) {
    std::cout << "  remove " << check.segments[i].path << " (" << check.segments[i].size
              << " bytes)" << std::endl;
  }
  std::cout << "  in all " << check.bytes_removed() << " bytes, with " << check.good_batches_removed
            << " good batches after the damage; the log will end at offset "
            << check.end_after_repair << std::endl;
  if (!options.yes) {
    std::cout << "nothing changed: run again with --yes to do it (copy " << dir
              << " first to keep the removed bytes)" << std::endl;
    throw CLI::RuntimeError(1);
  }
  if (auto r = storage::repair_partition(fs, dir, check); !r) fail("repair", r.error().message, 2);
  forget_recovery_point(fs, data_dir, dir);
  std::cout << "repaired: the log ends at offset " << check.end_after_repair << std::endl;
}

}  // namespace

void add_log_command(CLI::App& app) {
  auto* log = app.add_subcommand("log", "Check or repair a partition's segment files offline");
  log->require_subcommand(1);

  auto check_options = std::make_shared<LogOptions>();
  auto* check = log->add_subcommand(
      "check", "Report every damaged batch (file, position, reason); exit 1 if any");
  check->add_option("dir", check_options->dir, "Partition directory (<data dir>/<topic>-<n>)")
      ->required();
  check->callback([check_options] { run_check(*check_options); });

  auto repair_options = std::make_shared<LogOptions>();
  auto* repair = log->add_subcommand(
      "repair", "Cut the log at its first damaged batch (broker stopped; asks for --yes)");
  repair->add_option("dir", repair_options->dir, "Partition directory (<data dir>/<topic>-<n>)")
      ->required();
  repair->add_flag("--yes", repair_options->yes, "Really remove the bytes listed");
  repair->callback([repair_options] { run_repair(*repair_options); });
}

}  // namespace holdfast::cli
