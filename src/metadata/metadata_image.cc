#include "metadata/metadata_image.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "metadata/acl_codec.h"
#include "metadata/quota_codec.h"

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

bool contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The node counts as a registered broker: it is one, or it is the image's sole node.
bool known_node(const MetadataImage& image, int32_t node) {
  return image.brokers.count(node) || (image.sole_node_id >= 0 && node == image.sole_node_id);
}

// May lead or join an ISR: registered and unfenced, or the unregistered sole node.
bool eligible_node(const MetadataImage& image, int32_t node) {
  if (const BrokerInfo* b = image.find_broker(node)) return !b->fenced;
  return image.sole_node_id >= 0 && node == image.sole_node_id;
}

// The states of `count` new partitions of `topic`: the record's own, checked
// (fresh: leader set, epochs 0, leader and ISR alive), or the sole node's.
Result<std::vector<PartitionState>, Errc> new_partitions(const MetadataImage& image,
                                                         const std::string& topic, int32_t count,
                                                         const std::vector<PartitionState>& given) {
  if (given.empty()) {
    if (image.sole_node_id < 0) {
      return bad("topic " + topic + " has no replica assignment, and this log has no sole node");
    }
    return std::vector<PartitionState>(size_t(count), sole_node_partition(image.sole_node_id));
  }
  if (given.size() != size_t(count)) {
    return bad("topic " + topic + ": " + std::to_string(given.size()) +
               " partition states for " + std::to_string(count) + " new partitions");
  }
  for (const PartitionState& state : given) {
    if (auto why = check_partition_state(image, state); !why.empty()) {
      return bad("topic " + topic + ": " + why);
    }
    if (state.leader == kNoLeader || state.leader_epoch != 0 || state.partition_epoch != 0) {
      return bad("topic " + topic + ": a new partition starts with a leader and epochs 0");
    }
    for (int32_t node : state.isr) {
      if (!eligible_node(image, node)) {
        return bad("topic " + topic + ": broker " + std::to_string(node) +
                   " is fenced and cannot be in a new partition's ISR");
      }
    }
  }
  return given;
}

Result<void, Errc> apply_partition_change(MetadataImage& next, const PartitionChanged& r) {
  auto it = next.topics.find(r.name);
  if (it == next.topics.end() || it->second.id != r.id) return bad("unknown topic " + r.name);
  TopicInfo& topic = it->second;
  if (r.partition < 0 || r.partition >= topic.partition_count) {
    return bad("unknown partition " + r.name + "-" + std::to_string(r.partition));
  }
  const PartitionState& current = topic.partitions[size_t(r.partition)];
  const std::string where = r.name + "-" + std::to_string(r.partition);
  if (r.partition_epoch != current.partition_epoch + 1) {
    return bad(where + ": stale partition epoch " + std::to_string(r.partition_epoch) +
               " (current " + std::to_string(current.partition_epoch) + ")");
  }
  const bool leader_changes = r.leader != current.leader;
  if (r.leader_epoch != current.leader_epoch + (leader_changes ? 1 : 0)) {
    return bad(where + ": leader epoch " + std::to_string(r.leader_epoch) + " does not follow " +
               std::to_string(current.leader_epoch) +
               (leader_changes ? " (bumped by one on a leader change)" : " (unchanged leader)"));
  }
  PartitionState changed = current;
  changed.leader = r.leader;
  changed.isr = r.isr;
  changed.leader_epoch = r.leader_epoch;
  changed.partition_epoch = r.partition_epoch;
  if (auto why = check_partition_state(next, changed); !why.empty()) return bad(where + ": " + why);
  if (leader_changes && r.leader != kNoLeader && !eligible_node(next, r.leader)) {
    return bad(where + ": broker " + std::to_string(r.leader) + " is fenced and cannot lead");
  }
  for (int32_t node : r.isr) {
    if (!contains(current.isr, node) && !eligible_node(next, node)) {
      return bad(where + ": fenced broker " + std::to_string(node) + " cannot join the ISR");
    }
  }
  topic.partitions[size_t(r.partition)] = std::move(changed);
  return {};
}

Result<void, Errc> apply_broker_record(MetadataImage& next, const MetadataRecord& record,
                                       int64_t record_index) {
  if (auto* r = std::get_if<BrokerRegistered>(&record)) {
    if (r->node_id < 0) return bad("broker id " + std::to_string(r->node_id) + " is negative");
    if (r->endpoints.empty()) return bad("broker " + std::to_string(r->node_id) + " has no endpoint");
    std::set<std::string> listeners;
    for (const BrokerEndpoint& e : r->endpoints) {
      if (e.listener.empty() || e.host.empty() || e.port < 1 || e.port > 65535 ||
          !listeners.insert(e.listener).second) {
        return bad("broker " + std::to_string(r->node_id) + ": bad or duplicate endpoint " +
                   e.listener + "://" + e.host + ":" + std::to_string(e.port));
      }
    }
    BrokerInfo& broker = next.brokers[r->node_id];
    if (broker.registered_index >= 0) {
      if (r->epoch <= broker.epoch) {
        return bad("broker " + std::to_string(r->node_id) + ": epoch " + std::to_string(r->epoch) +
                   " is not above the registered " + std::to_string(broker.epoch));
      }
      if (r->incarnation == broker.incarnation) {
        return bad("broker " + std::to_string(r->node_id) + ": incarnation already registered");
      }
    } else if (r->epoch < 0) {
      return bad("broker " + std::to_string(r->node_id) + ": negative epoch");
    }
    broker = BrokerInfo{r->node_id, r->epoch, r->incarnation, r->endpoints, r->rack,
                        /*fenced=*/true, record_index};
    return {};
  }
  const bool fence = std::holds_alternative<BrokerFenced>(record);
  const int32_t node = fence ? std::get<BrokerFenced>(record).node_id
                             : std::get<BrokerUnfenced>(record).node_id;
  const int64_t epoch = fence ? std::get<BrokerFenced>(record).epoch
                              : std::get<BrokerUnfenced>(record).epoch;
  auto it = next.brokers.find(node);
  if (it == next.brokers.end()) return bad("unknown broker " + std::to_string(node));
  if (it->second.epoch != epoch) {
    return bad("broker " + std::to_string(node) + ": stale epoch " + std::to_string(epoch) +
               " (current " + std::to_string(it->second.epoch) + ")");
  }
  if (it->second.fenced == fence) {
    return bad("broker " + std::to_string(node) + " is already " + (fence ? "fenced" : "unfenced"));
  }
  it->second.fenced = fence;
  return {};
}

// SCRAM credential records (issue 11), kept apart from the topic and broker
// records so other record kinds merge without touching these functions.
Result<void, Errc> apply_scram_record(MetadataImage& next, const MetadataRecord& record) {
  if (auto* r = std::get_if<ScramCredentialUpserted>(&record)) {
    if (r->user.empty()) return bad("SCRAM credential without a user name");
    if (r->mechanism != 1 && r->mechanism != 2) {
      return bad("SCRAM credential of user " + r->user + ": unknown mechanism " +
                 std::to_string(r->mechanism));
    }
    if (r->iterations < 4096 || r->salt.empty() || r->stored_key.empty() || r->server_key.empty()) {
      return bad("SCRAM credential of user " + r->user + ": fewer than 4096 iterations or empty keys");
    }
    next.scram_credentials[{r->user, r->mechanism}] =
        ScramCredentialInfo{r->salt, r->stored_key, r->server_key, r->iterations};
    if (r->bootstrap) next.scram_bootstrapped.insert({r->user, r->mechanism});
    return {};
  }
  const auto& r = std::get<ScramCredentialDeleted>(record);
  if (!next.scram_credentials.erase({r.user, r.mechanism})) {
    return bad("user " + r.user + " has no SCRAM credential for mechanism " +
               std::to_string(r.mechanism));
  }
  return {};
}

std::string hex_bytes(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::optional<std::string> unhex_bytes(const std::string& s) {
  if (s.size() % 2 != 0) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    int hi = val(s[i]), lo = val(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(char(hi << 4 | lo));
  }
  return out;
}

json encode_scram_record(const MetadataRecord& record) {
  if (auto* r = std::get_if<ScramCredentialUpserted>(&record)) {
    json j = {{"type", "scram_credential_upserted"}, {"user", r->user},
              {"mechanism", r->mechanism},           {"salt", hex_bytes(r->salt)},
              {"stored_key", hex_bytes(r->stored_key)}, {"server_key", hex_bytes(r->server_key)},
              {"iterations", r->iterations}};
    if (r->bootstrap) j["bootstrap"] = true;  // absent otherwise: older records read the same
    return j;
  }
  const auto& r = std::get<ScramCredentialDeleted>(record);
  return {{"type", "scram_credential_deleted"}, {"user", r.user}, {"mechanism", r.mechanism}};
}

// nullopt: not a SCRAM record type.
std::optional<Result<MetadataRecord, Errc>> decode_scram_record(const std::string& type,
                                                                const json& j) {
  if (type == "scram_credential_upserted") {
    auto salt = unhex_bytes(j.at("salt").get<std::string>());
    auto stored = unhex_bytes(j.at("stored_key").get<std::string>());
    auto server = unhex_bytes(j.at("server_key").get<std::string>());
    if (!salt || !stored || !server) {
      return Result<MetadataRecord, Errc>(make_error(Errc::corrupt, "bad SCRAM credential bytes"));
    }
    return Result<MetadataRecord, Errc>(MetadataRecord{ScramCredentialUpserted{
        j.at("user").get<std::string>(), j.at("mechanism").get<int8_t>(), *salt, *stored, *server,
        j.at("iterations").get<int32_t>(), j.value("bootstrap", false)}});
  }
  if (type == "scram_credential_deleted") {
    return Result<MetadataRecord, Errc>(MetadataRecord{ScramCredentialDeleted{
        j.at("user").get<std::string>(), j.at("mechanism").get<int8_t>()}});
  }
  return std::nullopt;
}

json partition_to_json(const PartitionState& p) {
  return {{"replicas", p.replicas},
          {"leader", p.leader},
          {"isr", p.isr},
          {"leader_epoch", p.leader_epoch},
          {"partition_epoch", p.partition_epoch}};
}

PartitionState partition_from_json(const json& j) {
  return PartitionState{j.at("replicas").get<std::vector<int32_t>>(), j.at("leader").get<int32_t>(),
                        j.at("isr").get<std::vector<int32_t>>(), j.at("leader_epoch").get<int32_t>(),
                        j.at("partition_epoch").get<int32_t>()};
}

// Optional member: written only when there are states, so a record without
// an assignment encodes exactly as before assignments existed.
void put_partitions(json& j, const std::vector<PartitionState>& states) {
  if (states.empty()) return;
  json list = json::array();
  for (const auto& p : states) list.push_back(partition_to_json(p));
  j["partition_states"] = std::move(list);
}

std::vector<PartitionState> get_partitions(const json& j) {
  std::vector<PartitionState> out;
  if (auto it = j.find("partition_states"); it != j.end()) {
    for (const json& p : *it) out.push_back(partition_from_json(p));
  }
  return out;
}

}  // namespace

std::string topic_id_to_string(const TopicId& id) { return hex(id); }

PartitionState sole_node_partition(int32_t node) { return PartitionState{{node}, node, {node}, 0, 0}; }

std::string check_partition_state(const MetadataImage& image, const PartitionState& state) {
  if (state.replicas.empty()) return "no replicas";
  std::set<int32_t> distinct(state.replicas.begin(), state.replicas.end());
  if (distinct.size() != state.replicas.size()) return "a replica is listed twice";
  for (int32_t node : state.replicas) {
    if (!known_node(image, node)) return "replica " + std::to_string(node) + " is an unknown broker";
  }
  if (state.isr.empty()) return "empty ISR";
  std::set<int32_t> isr(state.isr.begin(), state.isr.end());
  if (isr.size() != state.isr.size()) return "an ISR member is listed twice";
  for (int32_t node : state.isr) {
    if (!distinct.count(node)) return "ISR member " + std::to_string(node) + " is not a replica";
  }
  if (state.leader != kNoLeader && !isr.count(state.leader)) {
    return "leader " + std::to_string(state.leader) + " is not in the ISR";
  }
  if (state.leader_epoch < 0 || state.partition_epoch < 0) return "negative epoch";
  return "";
}

Result<ImagePtr, Errc> apply_record(const MetadataImage& image, const MetadataRecord& record,
                                    int64_t record_index) {
  auto next = std::make_shared<MetadataImage>(image);
  next->last_record_index = record_index;
  if (auto* r = std::get_if<TopicCreated>(&record)) {
    if (next->topics.count(r->name)) return bad("topic " + r->name + " already exists");
    if (r->partition_count < 1) return bad("topic " + r->name + " needs at least one partition");
    auto states = new_partitions(*next, r->name, r->partition_count, r->partitions);
    if (!states) return states.error();
    next->topics[r->name] =
        TopicInfo{r->name, r->id, r->partition_count, r->configs, std::move(*states)};
  } else if (auto* r = std::get_if<PartitionsAdded>(&record)) {
    auto it = next->topics.find(r->name);
    if (it == next->topics.end()) return bad("unknown topic " + r->name);
    if (r->new_partition_count <= it->second.partition_count) {
      return bad("partition count of " + r->name + " can only grow");
    }
    auto states = new_partitions(*next, r->name, r->new_partition_count - it->second.partition_count,
                                 r->partitions);
    if (!states) return states.error();
    it->second.partition_count = r->new_partition_count;
    it->second.partitions.insert(it->second.partitions.end(), states->begin(), states->end());
  } else if (auto* r = std::get_if<TopicConfigsReplaced>(&record)) {
    auto it = next->topics.find(r->name);
    if (it == next->topics.end()) return bad("unknown topic " + r->name);
    it->second.configs = r->configs;
  } else if (auto* r = std::get_if<TopicDeleted>(&record)) {
    if (!next->topics.erase(r->name)) return bad("unknown topic " + r->name);
  } else if (auto* r = std::get_if<PartitionChanged>(&record)) {
    if (auto applied = apply_partition_change(*next, *r); !applied) return applied.error();
  } else if (std::holds_alternative<ScramCredentialUpserted>(record) ||
             std::holds_alternative<ScramCredentialDeleted>(record)) {
    if (auto applied = apply_scram_record(*next, record); !applied) return applied.error();
  } else if (is_acl_record(record)) {
    if (auto applied = apply_acl_record(*next, record); !applied) return applied.error();
  } else if (auto* r = std::get_if<ClientQuotasAltered>(&record)) {
    if (auto applied = apply_quota_record(*next, *r); !applied) return applied.error();
  } else {
    if (auto applied = apply_broker_record(*next, record, record_index); !applied) {
      return applied.error();
    }
  }
  return ImagePtr(std::move(next));
}

std::string encode_record(const MetadataRecord& record) {
  if (is_acl_record(record)) return encode_acl_record(record);
  if (auto* r = std::get_if<ClientQuotasAltered>(&record)) return encode_quota_record(*r);
  json j;
  if (auto* r = std::get_if<TopicCreated>(&record)) {
    j = {{"type", "topic_created"},
         {"name", r->name},
         {"id", hex(r->id)},
         {"partitions", r->partition_count},
         {"configs", r->configs}};
    put_partitions(j, r->partitions);
  } else if (auto* r = std::get_if<PartitionsAdded>(&record)) {
    j = {{"type", "partitions_added"}, {"name", r->name}, {"partitions", r->new_partition_count}};
    put_partitions(j, r->partitions);
  } else if (auto* r = std::get_if<TopicConfigsReplaced>(&record)) {
    j = {{"type", "topic_configs_replaced"}, {"name", r->name}, {"configs", r->configs}};
  } else if (auto* r = std::get_if<TopicDeleted>(&record)) {
    j = {{"type", "topic_deleted"}, {"name", r->name}};
  } else if (auto* r = std::get_if<BrokerRegistered>(&record)) {
    json endpoints = json::array();
    for (const auto& e : r->endpoints) {
      endpoints.push_back({{"listener", e.listener}, {"host", e.host}, {"port", e.port}});
    }
    j = {{"type", "broker_registered"}, {"node_id", r->node_id},     {"epoch", r->epoch},
         {"incarnation", hex(r->incarnation)}, {"endpoints", endpoints}, {"rack", r->rack}};
  } else if (auto* r = std::get_if<BrokerFenced>(&record)) {
    j = {{"type", "broker_fenced"}, {"node_id", r->node_id}, {"epoch", r->epoch}};
  } else if (auto* r = std::get_if<BrokerUnfenced>(&record)) {
    j = {{"type", "broker_unfenced"}, {"node_id", r->node_id}, {"epoch", r->epoch}};
  } else if (auto* r = std::get_if<PartitionChanged>(&record)) {
    j = {{"type", "partition_changed"},
         {"name", r->name},
         {"id", hex(r->id)},
         {"partition", r->partition},
         {"leader", r->leader},
         {"isr", r->isr},
         {"leader_epoch", r->leader_epoch},
         {"partition_epoch", r->partition_epoch}};
  } else if (std::holds_alternative<ScramCredentialUpserted>(record) ||
             std::holds_alternative<ScramCredentialDeleted>(record)) {
    j = encode_scram_record(record);
  }
  return j.dump();
}

Result<MetadataRecord, Errc> decode_record(std::string_view payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(Errc::corrupt, "not a JSON object");
  try {
    const std::string type = j.at("type").get<std::string>();
    if (is_acl_record_type(type)) return decode_acl_record(j);
    if (is_quota_record_type(type)) return decode_quota_record(j);
    auto topic_id = [&j]() -> std::optional<TopicId> { return unhex(j.at("id").get<std::string>()); };
    if (type == "topic_created") {
      auto id = topic_id();
      if (!id) return make_error(Errc::corrupt, "bad topic id");
      return MetadataRecord{TopicCreated{j.at("name").get<std::string>(), *id,
                                         j.at("partitions").get<int32_t>(),
                                         j.at("configs").get<ConfigMap>(), get_partitions(j)}};
    }
    if (type == "partitions_added") {
      return MetadataRecord{PartitionsAdded{j.at("name").get<std::string>(),
                                            j.at("partitions").get<int32_t>(), get_partitions(j)}};
    }
    if (type == "topic_configs_replaced") {
      return MetadataRecord{TopicConfigsReplaced{j.at("name").get<std::string>(),
                                                 j.at("configs").get<ConfigMap>()}};
    }
    if (type == "topic_deleted") return MetadataRecord{TopicDeleted{j.at("name").get<std::string>()}};
    if (type == "broker_registered") {
      auto incarnation = unhex(j.at("incarnation").get<std::string>());
      if (!incarnation) return make_error(Errc::corrupt, "bad broker incarnation");
      BrokerRegistered r{j.at("node_id").get<int32_t>(), j.at("epoch").get<int64_t>(), *incarnation,
                         {}, j.at("rack").get<std::string>()};
      for (const json& e : j.at("endpoints")) {
        r.endpoints.push_back(BrokerEndpoint{e.at("listener").get<std::string>(),
                                             e.at("host").get<std::string>(),
                                             e.at("port").get<int32_t>()});
      }
      return MetadataRecord{std::move(r)};
    }
    if (type == "broker_fenced") {
      return MetadataRecord{BrokerFenced{j.at("node_id").get<int32_t>(), j.at("epoch").get<int64_t>()}};
    }
    if (type == "broker_unfenced") {
      return MetadataRecord{
          BrokerUnfenced{j.at("node_id").get<int32_t>(), j.at("epoch").get<int64_t>()}};
    }
    if (type == "partition_changed") {
      auto id = topic_id();
      if (!id) return make_error(Errc::corrupt, "bad topic id");
      return MetadataRecord{PartitionChanged{
          j.at("name").get<std::string>(), *id, j.at("partition").get<int32_t>(),
          j.at("leader").get<int32_t>(), j.at("isr").get<std::vector<int32_t>>(),
          j.at("leader_epoch").get<int32_t>(), j.at("partition_epoch").get<int32_t>()}};
    }
    if (auto scram = decode_scram_record(type, j)) return std::move(*scram);
    return make_error(Errc::corrupt, "unknown record type " + type);
  } catch (const json::exception& e) {
    return make_error(Errc::corrupt, std::string("malformed record: ") + e.what());
  }
}

}  // namespace holdfast::metadata
