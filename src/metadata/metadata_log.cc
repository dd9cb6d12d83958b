#include "metadata/metadata_log.h"

#include <nlohmann/json.hpp>

namespace holdfast::metadata {
namespace {

using nlohmann::json;

constexpr int kImageFormatVersion = 1;

}  // namespace

// Each topic is stored exactly as the topic_created record that would create
// it, so the snapshot reuses the record codec (one definition of a topic's
// JSON form) and a future field added to topics lands in both at once.
std::string encode_image(const MetadataImage& image) {
  json topics = json::array();
  for (const auto& [name, info] : image.topics) {
    topics.push_back(json::parse(encode_record(
        TopicCreated{info.name, info.id, info.partition_count, info.configs})));
  }
  json j = {{"version", kImageFormatVersion},
            {"last_record_index", image.last_record_index},
            {"topics", std::move(topics)}};
  return j.dump();
}

Result<ImagePtr, Errc> decode_image(std::string_view payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(Errc::corrupt, "metadata snapshot: not a JSON object");
  }
  try {
    const int version = j.at("version").get<int>();
    if (version != kImageFormatVersion) {
      return make_error(Errc::corrupt,
                        "metadata snapshot: unknown format version " + std::to_string(version));
    }
    auto image = std::make_shared<MetadataImage>();
    image->last_record_index = j.at("last_record_index").get<int64_t>();
    for (const json& t : j.at("topics")) {
      auto record = decode_record(t.dump());
      if (!record) return make_error(Errc::corrupt, "metadata snapshot: " + record.error().message);
      auto* created = std::get_if<TopicCreated>(&*record);
      if (!created) return make_error(Errc::corrupt, "metadata snapshot: topic entry of wrong type");
      if (image->topics.count(created->name)) {
        return make_error(Errc::corrupt, "metadata snapshot: topic " + created->name + " twice");
      }
      image->topics[created->name] =
          TopicInfo{created->name, created->id, created->partition_count, created->configs};
    }
    return ImagePtr(std::move(image));
  } catch (const json::exception& e) {
    return make_error(Errc::corrupt, std::string("metadata snapshot: malformed: ") + e.what());
  }
}

}  // namespace holdfast::metadata
