#include "coordinator/producer_id_manager.h"

#include <charconv>
#include <limits>
#include <optional>

#include "base/log.h"

namespace holdfast::coordinator {
namespace {

// Text, like the checkpoints: "<version>\n<first unreserved id>\n".
constexpr int kBlockFileVersion = 0;

std::optional<int64_t> parse_block_file(const std::vector<uint8_t>& data) {
  std::string text(data.begin(), data.end());
  std::string expected_prefix = std::to_string(kBlockFileVersion) + "\n";
  if (text.rfind(expected_prefix, 0) != 0 || text.empty() || text.back() != '\n') return std::nullopt;
  std::string number = text.substr(expected_prefix.size(), text.size() - expected_prefix.size() - 1);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size() || number.empty() || value < 0) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

ProducerIdManager::ProducerIdManager(io::FileSystem& fs, std::string path, int64_t reserved,
                                     int64_t block_size)
    : fs_(fs), path_(std::move(path)), block_size_(block_size), next_(reserved), reserved_(reserved) {}

Result<std::unique_ptr<ProducerIdManager>, ProducerIdErrc> ProducerIdManager::open(
    io::FileSystem& fs, const std::string& data_dir, int64_t block_size) {
  std::string path = io::join_path(data_dir, kBlockFile);
  int64_t reserved = 0;
  if (fs.exists(path)) {
    auto data = io::read_file(fs, path);
    if (!data) return make_error(ProducerIdErrc::io_error, "reading " + path + ": " + data.error().message);
    auto parsed = parse_block_file(*data);
    if (!parsed) {
      return make_error(ProducerIdErrc::corrupt,
                        path + " does not parse; refusing to guess the next producer id (a guess "
                               "could hand out an id twice). Restore it or remove it only if no "
                               "producer of this broker is still running.");
    }
    reserved = *parsed;
  }
  return std::make_unique<ProducerIdManager>(fs, std::move(path), reserved, block_size);
}

Result<int64_t, ProducerIdErrc> ProducerIdManager::next_producer_id() {
  std::lock_guard lock(mu_);
  if (next_ == reserved_) {
    if (reserved_ > std::numeric_limits<int64_t>::max() - block_size_) {
      return make_error(ProducerIdErrc::exhausted, "producer ids exhausted");
    }
    int64_t new_reserved = reserved_ + block_size_;
    std::string text = std::to_string(kBlockFileVersion) + "\n" + std::to_string(new_reserved) + "\n";
    auto written = io::write_file_atomically(
        fs_, path_, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
    if (!written) {
      return make_error(ProducerIdErrc::io_error,
                        "persisting producer id block to " + path_ + ": " + written.error().message);
    }
    HF_DEBUG("reserved producer ids [{}, {})", reserved_, new_reserved);
    reserved_ = new_reserved;
  }
  if (per_node_ && next_ >= kNodeIdSpace) {
    return make_error(ProducerIdErrc::exhausted, "producer ids of this node exhausted");
  }
  return id_base_ + next_++;
}

}  // namespace holdfast::coordinator
