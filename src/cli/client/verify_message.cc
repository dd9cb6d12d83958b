#include "cli/client/verify_message.h"

#include <charconv>
#include <cstdio>

#include "base/crc32c.h"

namespace holdfast::cli::verify {
namespace {

constexpr std::string_view kMagic = "hfv1 ";

uint32_t checksum(std::string_view prefix, std::string_view body) {
  uint32_t crc = crc32c(reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size());
  return crc32c_extend(crc, reinterpret_cast<const uint8_t*>(body.data()), body.size());
}

// Reads an unsigned integer in `base` up to the next space; advances `text`
// past the space. False if there is no such field.
template <typename T>
bool take_field(std::string_view& text, int base, T& out) {
  auto space = text.find(' ');
  if (space == std::string_view::npos || space == 0) return false;
  auto field = text.substr(0, space);
  auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), out, base);
  if (ec != std::errc() || ptr != field.data() + field.size()) return false;
  text.remove_prefix(space + 1);
  return true;
}

}  // namespace

std::string encode_message(uint64_t run_id, MessageId id, size_t size) {
  char header[96];
  int n = std::snprintf(header, sizeof header, "hfv1 %016llx %u %llu ",
                        static_cast<unsigned long long>(run_id), id.producer,
                        static_cast<unsigned long long>(id.seq));
  std::string prefix(header, static_cast<size_t>(n));
  // Filler: a cheap generator seeded by the id, printable characters only.
  size_t fixed = prefix.size() + 9;  // + "xxxxxxxx "
  size_t body_size = size > fixed ? size - fixed : 0;
  std::string body(body_size, ' ');
  uint64_t state = (run_id ^ (uint64_t{id.producer} << 48) ^ id.seq) * 6364136223846793005ULL + 1;
  for (auto& c : body) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    c = static_cast<char>('a' + (state >> 59) % 26);
  }
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x ", checksum(prefix, body));
  return prefix + crc + body;
}

DecodedMessage decode_message(uint64_t run_id, std::string_view value) {
  DecodedMessage out;
  if (value.substr(0, kMagic.size()) != kMagic) return out;
  std::string_view rest = value.substr(kMagic.size());
  uint64_t run = 0;
  uint32_t producer = 0;
  uint64_t seq = 0;
  uint32_t crc = 0;
  if (!take_field(rest, 16, run) || !take_field(rest, 10, producer) || !take_field(rest, 10, seq)) {
    return out;
  }
  out.id = MessageId{producer, seq};
  out.id_parsed = true;
  std::string_view prefix = value.substr(0, value.size() - rest.size());
  if (rest.size() < 9 || rest[8] != ' ' || !take_field(rest, 16, crc)) return out;
  if (checksum(prefix, rest) != crc) return out;
  out.status = run == run_id ? DecodedMessage::Status::kOk : DecodedMessage::Status::kForeign;
  return out;
}

}  // namespace holdfast::cli::verify
