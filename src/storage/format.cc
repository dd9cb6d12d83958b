#include "storage/format.h"

#include <fmt/format.h>

#include <charconv>
#include <random>

namespace holdfast::storage::format {

std::string segment_file_name(int64_t base_offset, std::string_view suffix) {
  return fmt::format("{:020d}{}", base_offset, suffix);
}

std::optional<int64_t> parse_segment_file_name(std::string_view name, std::string_view suffix) {
  if (name.size() != kOffsetDigits + suffix.size() || !name.ends_with(suffix)) return std::nullopt;
  int64_t value = 0;
  for (size_t i = 0; i < kOffsetDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
  }
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + kOffsetDigits, value);
  if (ec != std::errc() || ptr != name.data() + kOffsetDigits) return std::nullopt;
  return value;
}

std::string partition_dir_name(std::string_view topic, int32_t partition) {
  return fmt::format("{}-{}", topic, partition);
}

std::optional<std::pair<std::string, int32_t>> parse_partition_dir_name(std::string_view name) {
  size_t dash = name.find_last_of('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == name.size()) return std::nullopt;
  std::string_view number = name.substr(dash + 1);
  int32_t partition = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), partition);
  if (ec != std::errc() || ptr != number.data() + number.size() || partition < 0)
    return std::nullopt;
  std::string topic(name.substr(0, dash));
  if (!is_valid_topic_name(topic)) return std::nullopt;
  return std::make_pair(std::move(topic), partition);
}

bool is_valid_topic_name(std::string_view topic) {
  if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..") return false;
  for (char c : topic) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string set_aside_dir_name(std::string_view dir_name, std::string_view suffix) {
  std::random_device random;
  std::string id;
  for (int i = 0; i < 4; ++i) id += fmt::format("{:08x}", uint32_t(random()));
  return fmt::format("{}.{}{}", dir_name, id, suffix);
}

}  // namespace holdfast::storage::format
