#include "metadata/metadata_store.h"

#include <optional>
#include <random>
#include <sstream>

#include "base/bytes.h"
#include "base/crc32c.h"
#include "base/log.h"

namespace holdfast::metadata {
namespace {

constexpr size_t kEntryHeader = 8;

Error<Errc> io_failure(const Error<io::Errc>& e) { return make_error(Errc::io_error, e.message); }

struct EntryFrame {
  size_t payload_size = 0;
};

// The entry starting at `pos`, if its framing holds: a whole header, a payload
// inside the file, a JSON object (the payload is never empty: a run of zeros,
// which a crash can leave at the end of a file, is not an entry) and a CRC
// that matches.
std::optional<EntryFrame> entry_at(const std::vector<uint8_t>& data, size_t pos) {
  if (pos > data.size() || data.size() - pos < kEntryHeader) return std::nullopt;
  const uint32_t length = load_be32(&data[pos]);
  const uint32_t crc = load_be32(&data[pos + 4]);
  if (length < 2 || length > data.size() - pos - kEntryHeader) return std::nullopt;
  const uint8_t* payload = &data[pos + kEntryHeader];
  if (payload[0] != '{' || payload[length - 1] != '}') return std::nullopt;
  if (crc32c(payload, length) != crc) return std::nullopt;
  return EntryFrame{length};
}

// The first byte offset after `bad` at which a valid entry starts, if any.
// Used to tell a torn last entry (nothing valid after it) from damage in the
// middle of the log. The brace check before the CRC keeps the scan cheap.
std::optional<size_t> find_entry_after(const std::vector<uint8_t>& data, size_t bad) {
  for (size_t pos = bad + 1; pos + kEntryHeader < data.size(); ++pos) {
    if (entry_at(data, pos)) return pos;
  }
  return std::nullopt;
}

}  // namespace

TopicId random_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  TopicId id{};
  for (size_t i = 0; i < id.size(); i += 8) {
    uint64_t r = rng();
    for (size_t k = 0; k < 8; ++k) id[i + k] = uint8_t(r >> (8 * k));
  }
  return id;
}

std::string base64_url_id(const TopicId& id) {
  static const char* alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : id) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 63]);
  return out;
}

MetadataStore::MetadataStore(io::FileSystem& fs, std::string path, std::unique_ptr<io::File> file,
                             ImagePtr image)
    : fs_(fs), path_(std::move(path)), file_(std::move(file)), image_(std::move(image)) {}

Result<std::unique_ptr<MetadataStore>, Errc> MetadataStore::open(io::FileSystem& fs,
                                                                 const std::string& data_dir,
                                                                 int32_t node_id) {
  const std::string dir = io::join_path(data_dir, "__metadata");
  if (auto r = io::create_dirs(fs, dir); !r) return io_failure(r.error());
  const std::string path = io::join_path(dir, "metadata.log");
  const bool existed = fs.exists(path);
  auto file = fs.open(path, io::OpenMode::create);
  if (!file) return io_failure(file.error());
  if (!existed) {
    if (auto r = fs.sync_dir(dir); !r) return io_failure(r.error());
  }

  auto contents = io::read_file(fs, path);
  if (!contents) return io_failure(contents.error());
  const std::vector<uint8_t>& data = *contents;

  auto empty = std::make_shared<MetadataImage>();
  empty->sole_node_id = node_id;
  ImagePtr image = std::move(empty);
  size_t pos = 0;
  int64_t index = 0;
  while (pos < data.size()) {
    auto entry = entry_at(data, pos);
    if (!entry) break;
    auto record = decode_record(std::string_view(
        reinterpret_cast<const char*>(&data[pos + kEntryHeader]), entry->payload_size));
    if (!record) {
      return make_error(Errc::corrupt, path + ": entry at byte offset " + std::to_string(pos) +
                                           ": " + record.error().message);
    }
    auto next = apply_record(*image, *record, index);
    if (!next) {
      return make_error(Errc::corrupt, path + ": record " + std::to_string(index) +
                                           " at byte offset " + std::to_string(pos) + ": " +
                                           next.error().message);
    }
    image = std::move(*next);
    pos += kEntryHeader + entry->payload_size;
    ++index;
  }
  if (pos != data.size()) {
    // Only a torn last entry may be cut: a crash during the append of the
    // last record, which was never acknowledged. Bad bytes followed by a valid
    // entry are damage to acknowledged records: stop, touch nothing.
    if (auto later = find_entry_after(data, pos)) {
      return make_error(Errc::corrupt,
                        path + ": entry at byte offset " + std::to_string(pos) + " (record " +
                            std::to_string(index) + ") is corrupt, but a valid entry follows at " +
                            "byte offset " + std::to_string(*later) +
                            "; the metadata log is damaged in the middle and was left untouched");
    }
    HF_WARN("metadata log {}: cutting {} bytes of torn last entry at byte offset {} (record {})",
            path, data.size() - pos, pos, index);
    if (auto r = (*file)->truncate(pos); !r) return io_failure(r.error());
    if (auto r = (*file)->sync(); !r) return io_failure(r.error());
  }
  return std::unique_ptr<MetadataStore>(
      new MetadataStore(fs, path, std::move(*file), std::move(image)));
}

ImagePtr MetadataStore::current() const {
  std::lock_guard lock(mutex_);
  return image_;
}

Result<ImagePtr, Errc> MetadataStore::append(const MetadataRecord& record) {
  std::lock_guard lock(mutex_);
  if (!failure_.empty()) return make_error(Errc::io_error, failure_);
  auto next = apply_record(*image_, record, image_->last_record_index + 1);
  if (!next) return next.error();

  std::string payload = encode_record(record);
  std::vector<uint8_t> entry(kEntryHeader + payload.size());
  store_be32(entry.data(), static_cast<uint32_t>(payload.size()));
  store_be32(entry.data() + 4,
             crc32c(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  std::memcpy(entry.data() + kEntryHeader, payload.data(), payload.size());
  auto written = file_->append(entry);
  if (written) written = file_->sync_data();
  if (!written) {
    // The file may now end in a partial entry, and after a failed fsync the
    // kernel may have dropped pages it will never write again (fsyncgate): no
    // later append could be made durable behind it. Refuse every later change;
    // the restart's replay cuts the partial entry as a torn tail.
    failure_ = "metadata log " + path_ + " is out of service after a failed write (" +
               written.error().message +
               "); metadata changes are refused until the broker is restarted";
    HF_ERROR("{}", failure_);
    return make_error(Errc::io_error, failure_);
  }
  image_ = std::move(*next);
  notify_applied(record, image_);
  return image_;
}

bool MetadataStore::failed() const {
  std::lock_guard lock(mutex_);
  return !failure_.empty();
}

Result<NodeIdentity, Errc> load_or_create_identity(io::FileSystem& fs, const std::string& data_dir,
                                                   int32_t node_id,
                                                   const std::string& new_cluster_id) {
  const std::string path = io::join_path(data_dir, "meta.properties");
  if (fs.exists(path)) {
    auto contents = io::read_file(fs, path);
    if (!contents) return io_failure(contents.error());
    std::istringstream in(std::string(contents->begin(), contents->end()));
    std::string line;
    NodeIdentity identity{-1, ""};
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "node.id") identity.node_id = std::atoi(value.c_str());
      if (key == "cluster.id") identity.cluster_id = value;
    }
    if (identity.cluster_id.empty()) {
      return make_error(Errc::corrupt, path + ": no cluster.id");
    }
    if (identity.node_id != node_id) {
      return make_error(Errc::corrupt, path + ": data directory belongs to node.id " +
                                           std::to_string(identity.node_id) +
                                           ", but this broker is configured with node.id " +
                                           std::to_string(node_id));
    }
    return identity;
  }
  NodeIdentity identity{node_id,
                        new_cluster_id.empty() ? base64_url_id(random_id()) : new_cluster_id};
  std::string text = "# Holdfast node identity; do not edit\nversion=1\nnode.id=" +
                     std::to_string(node_id) + "\ncluster.id=" + identity.cluster_id + "\n";
  auto written = io::write_file_atomically(
      fs, path, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  if (!written) return io_failure(written.error());
  return identity;
}

}  // namespace holdfast::metadata
