#include "metadata/metadata_image.h"

#include <nlohmann/json.hpp>

namespace holdfast::metadata {
namespace {

using nlohmann::json;

Error<Errc> bad(const std::string& why) { return make_error(Errc::invalid_record, why); }

std::string hex(const TopicId& id) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : id) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::optional<TopicId> unhex(const std::string& s) {
  if (s.size() != 32) return std::nullopt;
  TopicId id{};
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 16; ++i) {
    int hi = val(s[2 * i]), lo = val(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id[i] = uint8_t(hi << 4 | lo);
  }
  return id;
}

}  // namespace

std::string topic_id_to_string(const TopicId& id) { return hex(id); }

Result<ImagePtr, Errc> apply_record(const MetadataImage& image, const MetadataRecord& record,
                                    int64_t record_index) {
  auto next = std::make_shared<MetadataImage>(image);
  next->last_record_index = record_index;
  if (auto* r = std::get_if<TopicCreated>(&record)) {
    if (next->topics.count(r->name)) return bad("topic " + r->name + " already exists");
    if (r->partition_count < 1) return bad("topic " + r->name + " needs at least one partition");
    next->topics[r->name] = TopicInfo{r->name, r->id, r->partition_count, r->configs};
  } else if (auto* r = std::get_if<PartitionsAdded>(&record)) {
    auto it = next->topics.find(r->name);
    if (it == next->topics.end()) return bad("unknown topic " + r->name);
    if (r->new_partition_count <= it->second.partition_count) {
      return bad("partition count of " + r->name + " can only grow");
    }
    it->second.partition_count = r->new_partition_count;
  } else if (auto* r = std::get_if<TopicConfigsReplaced>(&record)) {
    auto it = next->topics.find(r->name);
    if (it == next->topics.end()) return bad("unknown topic " + r->name);
    it->second.configs = r->configs;
  } else if (auto* r = std::get_if<TopicDeleted>(&record)) {
    if (!next->topics.erase(r->name)) return bad("unknown topic " + r->name);
  }
  return ImagePtr(std::move(next));
}

std::string encode_record(const MetadataRecord& record) {
  json j;
  if (auto* r = std::get_if<TopicCreated>(&record)) {
    j = {{"type", "topic_created"},
         {"name", r->name},
         {"id", hex(r->id)},
         {"partitions", r->partition_count},
         {"configs", r->configs}};
  } else if (auto* r = std::get_if<PartitionsAdded>(&record)) {
    j = {{"type", "partitions_added"}, {"name", r->name}, {"partitions", r->new_partition_count}};
  } else if (auto* r = std::get_if<TopicConfigsReplaced>(&record)) {
    j = {{"type", "topic_configs_replaced"}, {"name", r->name}, {"configs", r->configs}};
  } else if (auto* r = std::get_if<TopicDeleted>(&record)) {
    j = {{"type", "topic_deleted"}, {"name", r->name}};
  }
  return j.dump();
}

Result<MetadataRecord, Errc> decode_record(std::string_view payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(Errc::corrupt, "not a JSON object");
  try {
    const std::string type = j.at("type").get<std::string>();
    const std::string name = j.at("name").get<std::string>();
    if (type == "topic_created") {
      auto id = unhex(j.at("id").get<std::string>());
      if (!id) return make_error(Errc::corrupt, "bad topic id");
      return MetadataRecord{TopicCreated{name, *id, j.at("partitions").get<int32_t>(),
                                         j.at("configs").get<ConfigMap>()}};
    }
    if (type == "partitions_added") {
      return MetadataRecord{PartitionsAdded{name, j.at("partitions").get<int32_t>()}};
    }
    if (type == "topic_configs_replaced") {
      return MetadataRecord{TopicConfigsReplaced{name, j.at("configs").get<ConfigMap>()}};
    }
    if (type == "topic_deleted") return MetadataRecord{TopicDeleted{name}};
    return make_error(Errc::corrupt, "unknown record type " + type);
  } catch (const json::exception& e) {
    return make_error(Errc::corrupt, std::string("malformed record: ") + e.what());
  }
}

}  // namespace holdfast::metadata
