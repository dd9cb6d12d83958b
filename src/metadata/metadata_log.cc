#include "metadata/metadata_log.h"

#include <nlohmann/json.hpp>

#include "metadata/acl_codec.h"
#include "metadata/quota_codec.h"

namespace holdfast::metadata {
namespace {

using nlohmann::json;

// 1: topics only (no assignment: every partition on the sole node).
// 2: brokers, and every topic with its partition states.
constexpr int kImageFormatVersion = 2;

Error<Errc> corrupt(const std::string& why) {
  return make_error(Errc::corrupt, "metadata snapshot: " + why);
}

}  // namespace

// Each topic is stored exactly as the topic_created record that would create
// it, with the partitions' current states (epochs included); each broker as
// its broker_registered record plus "fenced" and "registered_index". The
// snapshot reuses the record codec (one definition of each JSON form), so a
// field added to a record lands in both at once.
namespace {

// SCRAM credentials in a snapshot (issue 11): an optional "scram_credentials"
// member, each entry its scram_credential_upserted record; absent when there
// are none, so snapshots without credentials encode as before.
void encode_scram_credentials(const MetadataImage& image, json& j) {
  if (!image.scram_bootstrapped.empty()) {
    json keys = json::array();
    for (const auto& [user, mechanism] : image.scram_bootstrapped) keys.push_back({user, mechanism});
    j["scram_bootstrapped"] = std::move(keys);
  }
  if (image.scram_credentials.empty()) return;
  json list = json::array();
  for (const auto& [key, c] : image.scram_credentials) {
    list.push_back(json::parse(encode_record(ScramCredentialUpserted{
        key.first, key.second, c.salt, c.stored_key, c.server_key, c.iterations})));
  }
  j["scram_credentials"] = std::move(list);
}

Result<void, Errc> decode_scram_credentials(const json& j, MetadataImage& image) {
  if (auto keys = j.find("scram_bootstrapped"); keys != j.end()) {
    for (const json& key : *keys) {
      image.scram_bootstrapped.insert({key.at(0).get<std::string>(), key.at(1).get<int8_t>()});
    }
  }
  auto it = j.find("scram_credentials");
  if (it == j.end()) return {};
  for (const json& entry : *it) {
    auto record = decode_record(entry.dump());
    if (!record) return make_error(Errc::corrupt, record.error().message);
    auto* r = std::get_if<ScramCredentialUpserted>(&*record);
    if (!r) return make_error(Errc::corrupt, "SCRAM credential entry of wrong type");
    image.scram_credentials[{r->user, r->mechanism}] =
        ScramCredentialInfo{r->salt, r->stored_key, r->server_key, r->iterations};
  }
  return {};
}

}  // namespace

std::string encode_image(const MetadataImage& image) {
  json brokers = json::array();
  for (const auto& [id, b] : image.brokers) {
    json entry = json::parse(
        encode_record(BrokerRegistered{b.node_id, b.epoch, b.incarnation, b.endpoints, b.rack}));
    entry["fenced"] = b.fenced;
    entry["registered_index"] = b.registered_index;
    brokers.push_back(std::move(entry));
  }
  json topics = json::array();
  for (const auto& [name, info] : image.topics) {
    topics.push_back(json::parse(encode_record(
        TopicCreated{info.name, info.id, info.partition_count, info.configs, info.partitions})));
  }
  json j = {{"version", kImageFormatVersion},
            {"last_record_index", image.last_record_index},
            {"brokers", std::move(brokers)},
            {"topics", std::move(topics)}};
  encode_scram_credentials(image, j);
  put_image_acls(j, image.acls);
  put_image_quotas(j, image.client_quotas);
  return j.dump();
}

Result<ImagePtr, Errc> decode_image(std::string_view payload, int32_t sole_node_id) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return corrupt("not a JSON object");
  try {
    const int version = j.at("version").get<int>();
    if (version != 1 && version != 2) {
      return corrupt("unknown format version " + std::to_string(version));
    }
    auto image = std::make_shared<MetadataImage>();
    image->sole_node_id = sole_node_id;
    image->last_record_index = j.at("last_record_index").get<int64_t>();
    if (version >= 2) {
      for (const json& b : j.at("brokers")) {
        auto record = decode_record(b.dump());
        if (!record) return corrupt(record.error().message);
        auto* r = std::get_if<BrokerRegistered>(&*record);
        if (!r) return corrupt("broker entry of wrong type");
        if (image->brokers.count(r->node_id)) {
          return corrupt("broker " + std::to_string(r->node_id) + " twice");
        }
        image->brokers[r->node_id] =
            BrokerInfo{r->node_id, r->epoch, r->incarnation, r->endpoints, r->rack,
                       b.at("fenced").get<bool>(), b.at("registered_index").get<int64_t>()};
      }
    }
    for (const json& t : j.at("topics")) {
      auto record = decode_record(t.dump());
      if (!record) return corrupt(record.error().message);
      auto* created = std::get_if<TopicCreated>(&*record);
      if (!created) return corrupt("topic entry of wrong type");
      if (image->topics.count(created->name)) return corrupt("topic " + created->name + " twice");
      if (created->partition_count < 1) return corrupt("topic " + created->name + ": no partitions");
      std::vector<PartitionState> states = created->partitions;
      if (states.empty()) {
        // A version-1 snapshot (or a topic written without an assignment):
        // its partitions live on the sole node.
        if (sole_node_id < 0) {
          return corrupt("topic " + created->name + " has no replica assignment and there is no sole node");
        }
        states.assign(size_t(created->partition_count), sole_node_partition(sole_node_id));
      }
      if (states.size() != size_t(created->partition_count)) {
        return corrupt("topic " + created->name + ": partition states do not match its count");
      }
      for (const PartitionState& state : states) {
        if (auto why = check_partition_state(*image, state); !why.empty()) {
          return corrupt("topic " + created->name + ": " + why);
        }
      }
      image->topics[created->name] = TopicInfo{created->name, created->id, created->partition_count,
                                               created->configs, std::move(states)};
    }
    if (auto scram = decode_scram_credentials(j, *image); !scram) {
      return corrupt(scram.error().message);
    }
    if (auto acls = get_image_acls(j); !acls) {
      return corrupt(acls.error().message);
    } else {
      image->acls = std::move(*acls);
    }
    if (auto quotas = get_image_quotas(j); !quotas) {
      return corrupt(quotas.error().message);
    } else {
      image->client_quotas = std::move(*quotas);
    }
    return ImagePtr(std::move(image));
  } catch (const json::exception& e) {
    return corrupt(std::string("malformed: ") + e.what());
  }
}

}  // namespace holdfast::metadata
