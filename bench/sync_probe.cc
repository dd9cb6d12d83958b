// sync_probe: what does an fdatasync after an append cost, depending on how
// the file's blocks were prepared? A program that prints figures (issue 13:
// would segment preallocation, Kafka's log.preallocate, let an fdatasync skip
// the metadata write for a size change?). No broker involved.
//
// For each append size, N appends (pwrite at the end of the data, then
// fdatasync) are timed in four modes:
//   grow         the file grows with each append (what a segment does today)
//   falloc       fallocate(0) to --prealloc-mib first: unwritten extents, the
//                size is already final, each write converts extents
//   falloc_keep  fallocate(FALLOC_FL_KEEP_SIZE): unwritten extents and the
//                size still grows with each append
//   zeroed       the file is first filled with zeros and synced (written
//                extents, what a recycled segment would give), then
//                overwritten from offset 0
// The modes run interleaved (grow falloc falloc_keep zeroed, grow ...) for
// --rounds rounds; each run prints one JSON line on stdout, and the end prints
// a Markdown table of the medians over the rounds on stdout.
//
// With --device NAME (e.g. vda, loop0) it also reads /sys/block/NAME/stat
// before and after each run and reports the device's write requests per
// append: one more request per append than the overwrite case is the inode
// (or journal) block. That counter is device-wide, so other writers on the
// machine add noise.
//
//   sync_probe --dir /work/tmp --sizes 100,1024,16384 --count 2000
//              --max-seconds 8 --rounds 11 --prealloc-mib 256 --device vda
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class Mode { grow, falloc, falloc_keep, zeroed };
constexpr Mode all_modes[] = {Mode::grow, Mode::falloc, Mode::falloc_keep, Mode::zeroed};

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::grow:
      return "grow";
    case Mode::falloc:
      return "falloc";
    case Mode::falloc_keep:
      return "falloc_keep";
    case Mode::zeroed:
      return "zeroed";
  }
  return "?";
}

struct Options {
  std::string dir = "/tmp";
  std::vector<size_t> sizes = {100, 1024, 16384};
  size_t count = 5000;
  double max_seconds = 8;
  int rounds = 5;
  size_t prealloc_mib = 256;
  std::string device;
  std::vector<std::string> modes;  // empty: all four
};

// Percentiles and throughput of one run, in microseconds.
struct RunResult {
  size_t appends = 0;
  double seconds = 0;
  double sync_p50 = 0, sync_p99 = 0, sync_p999 = 0, sync_max = 0;
  double total_p50 = 0, total_p99 = 0, total_p999 = 0, total_max = 0;
  double device_writes_per_append = -1;  // -1: not measured
  double per_second() const { return seconds > 0 ? appends / seconds : 0; }
};

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

double percentile(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(i, sorted.size() - 1)];
}

// Write requests completed by the block device so far (field 5 of
// /sys/block/NAME/stat), or -1 when unreadable.
long long device_writes(const std::string& device) {
  if (device.empty()) return -1;
  std::ifstream in("/sys/block/" + device + "/stat");
  long long f[5] = {};
  for (auto& v : f) {
    if (!(in >> v)) return -1;
  }
  return f[4];
}

void write_all(int fd, const char* data, size_t len, off_t off) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, data, len, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("pwrite");
    }
    data += n;
    len -= static_cast<size_t>(n);
    off += n;
  }
}

void sync_dir(const std::string& dir) {
  int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (d < 0) die("open dir");
  if (::fsync(d) != 0) die("fsync dir");
  ::close(d);
}

// Creates the file and prepares its blocks as `mode` says; everything the
// preparation did is synced before the timed appends start.
int prepare(const std::string& path, const std::string& dir, Mode mode, size_t data_bytes,
            size_t prealloc_bytes) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) die("open " + path);
  switch (mode) {
    case Mode::grow:
      break;
    case Mode::falloc:
      if (::fallocate(fd, 0, 0, static_cast<off_t>(prealloc_bytes)) != 0) die("fallocate");
      break;
    case Mode::falloc_keep:
      if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(prealloc_bytes)) != 0) {
        die("fallocate keep_size");
      }
      break;
    case Mode::zeroed: {
      // Only as much as the run will overwrite, rounded up to 1 MiB: filling
      // the full preallocation size would cost seconds per run for nothing.
      constexpr size_t chunk = 1 << 20;
      std::vector<char> zeros(chunk, 0);
      size_t total = (data_bytes + chunk - 1) / chunk * chunk;
      for (size_t off = 0; off < total; off += chunk) {
        write_all(fd, zeros.data(), chunk, static_cast<off_t>(off));
      }
      break;
    }
  }
  if (::fsync(fd) != 0) die("fsync");
  sync_dir(dir);
  return fd;
}

RunResult run_one(const Options& o, Mode mode, size_t size) {
  std::string path = o.dir + "/sync_probe." + mode_name(mode) + ".dat";
  size_t prealloc_bytes = o.prealloc_mib << 20;
  size_t data_bytes = std::min(o.count * size, prealloc_bytes);
  size_t count = data_bytes / size;
  int fd = prepare(path, o.dir, mode, data_bytes, prealloc_bytes);

  std::vector<char> payload(size);
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
  std::vector<double> sync_us, total_us;
  sync_us.reserve(count);
  total_us.reserve(count);

  long long writes_before = device_writes(o.device);
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(o.max_seconds);
  off_t off = 0;
  for (size_t i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    write_all(fd, payload.data(), size, off);
    auto t1 = Clock::now();
    if (::fdatasync(fd) != 0) die("fdatasync");
    auto t2 = Clock::now();
    off += static_cast<off_t>(size);
    sync_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
    total_us.push_back(std::chrono::duration<double, std::micro>(t2 - t0).count());
    if (t2 >= deadline) break;
  }
  auto end = Clock::now();
  long long writes_after = device_writes(o.device);
  ::close(fd);
  ::unlink(path.c_str());

  RunResult r;
  r.appends = sync_us.size();
  r.seconds = std::chrono::duration<double>(end - start).count();
  std::sort(sync_us.begin(), sync_us.end());
  std::sort(total_us.begin(), total_us.end());
  r.sync_p50 = percentile(sync_us, 0.50);
  r.sync_p99 = percentile(sync_us, 0.99);
  r.sync_p999 = percentile(sync_us, 0.999);
  r.sync_max = sync_us.empty() ? 0 : sync_us.back();
  r.total_p50 = percentile(total_us, 0.50);
  r.total_p99 = percentile(total_us, 0.99);
  r.total_p999 = percentile(total_us, 0.999);
  r.total_max = total_us.empty() ? 0 : total_us.back();
  if (writes_before >= 0 && writes_after >= 0 && r.appends > 0) {
    r.device_writes_per_append =
        static_cast<double>(writes_after - writes_before) / static_cast<double>(r.appends);
  }
  return r;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void print_json(int round, Mode mode, size_t size, const RunResult& r) {
  std::printf(
      "{\"round\":%d,\"mode\":\"%s\",\"size\":%zu,\"appends\":%zu,\"seconds\":%.3f,"
      "\"appends_per_s\":%.0f,\"sync_p50_us\":%.1f,\"sync_p99_us\":%.1f,"
      "\"sync_p999_us\":%.1f,\"sync_max_us\":%.1f,\"total_p50_us\":%.1f,"
      "\"total_p99_us\":%.1f,\"total_p999_us\":%.1f,\"total_max_us\":%.1f,"
      "\"device_writes_per_append\":%.2f}\n",
      round, mode_name(mode), size, r.appends, r.seconds, r.per_second(), r.sync_p50, r.sync_p99,
      r.sync_p999, r.sync_max, r.total_p50, r.total_p99, r.total_p999, r.total_max,
      r.device_writes_per_append);
  std::fflush(stdout);
}

void print_medians(const Options& o, const std::vector<Mode>& modes,
                   const std::map<std::pair<size_t, Mode>, std::vector<RunResult>>& runs) {
  std::printf(
      "\n| size | mode | appends/s | fdatasync p50 | p99 | p99.9 | max | write+sync p50 | p99 | "
      "p99.9 | dev writes/append | p50 ÷ grow | p99 ÷ grow |\n");
  std::printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t size : o.sizes) {
    for (Mode m : modes) {
      auto it = runs.find({size, m});
      if (it == runs.end()) continue;
      auto med = [&](auto field) {
        std::vector<double> v;
        for (const auto& r : it->second) v.push_back(field(r));
        return median(v);
      };
      // Paired with the grow run of the same round and size, so that a noisy
      // neighbour slows both sides of a ratio alike.
      auto ratio = [&](auto field) {
        auto grow = runs.find({size, Mode::grow});
        if (grow == runs.end()) return 0.0;
        std::vector<double> v;
        for (size_t i = 0; i < it->second.size() && i < grow->second.size(); ++i) {
          double base = field(grow->second[i]);
          if (base > 0) v.push_back(field(it->second[i]) / base);
        }
        return median(v);
      };
      double dev = med([](const RunResult& r) { return r.device_writes_per_append; });
      char dev_text[32] = "n/a";
      if (dev >= 0) std::snprintf(dev_text, sizeof dev_text, "%.2f", dev);
      std::printf(
          "| %zu B | %s | %.0f | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f "
          "µs | %s | %.2f | %.2f |\n",
          size, mode_name(m), med([](const RunResult& r) { return r.per_second(); }),
          med([](const RunResult& r) { return r.sync_p50; }),
          med([](const RunResult& r) { return r.sync_p99; }),
          med([](const RunResult& r) { return r.sync_p999; }),
          med([](const RunResult& r) { return r.sync_max; }),
          med([](const RunResult& r) { return r.total_p50; }),
          med([](const RunResult& r) { return r.total_p99; }),
          med([](const RunResult& r) { return r.total_p999; }), dev_text,
          ratio([](const RunResult& r) { return r.sync_p50; }),
          ratio([](const RunResult& r) { return r.sync_p99; }));
    }
  }
  std::printf("(medians over %d interleaved rounds; at most %zu appends or %.0f s per run)\n",
              o.rounds, o.count, o.max_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"sync_probe: fdatasync cost of an append, by block preparation"};
  app.add_option("--dir", o.dir, "directory on the file system to probe");
  app.add_option("--sizes", o.sizes, "append sizes in bytes")->delimiter(',');
  app.add_option("--count", o.count, "appends per run (at most)");
  app.add_option("--max-seconds", o.max_seconds, "time bound per run");
  app.add_option("--rounds", o.rounds, "interleaved rounds");
  app.add_option("--prealloc-mib", o.prealloc_mib, "fallocate size for falloc modes");
  app.add_option("--device", o.device, "block device for /sys/block/NAME/stat (vda, loop0)");
  app.add_option("--modes", o.modes, "subset of grow,falloc,falloc_keep,zeroed")->delimiter(',');
  CLI11_PARSE(app, argc, argv);

  std::vector<Mode> modes;
  for (Mode m : all_modes) {
    if (o.modes.empty() ||
        std::find(o.modes.begin(), o.modes.end(), mode_name(m)) != o.modes.end()) {
      modes.push_back(m);
    }
  }
  if (modes.empty()) {
    std::fprintf(stderr, "sync_probe: no known mode in --modes\n");
    return 2;
  }
  try {
    std::map<std::pair<size_t, Mode>, std::vector<RunResult>> runs;
    for (int round = 0; round < o.rounds; ++round) {
      for (size_t size : o.sizes) {
        for (Mode m : modes) {
          RunResult r = run_one(o, m, size);
          print_json(round, m, size, r);
          runs[{size, m}].push_back(r);
        }
      }
    }
    print_medians(o, modes, runs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sync_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
