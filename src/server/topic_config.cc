#include "server/topic_config.h"

#include <cstdlib>

#include <algorithm>
#include <charconv>
#include <functional>

namespace holdfast::server {
namespace {

struct Definition {
  // Default value, derived from the broker's configuration.
  std::function<std::string(const BrokerConfig&)> default_value;
  // Empty string when valid, otherwise why not.
  std::function<std::string(const std::string&)> check;
};

std::function<std::string(const std::string&)> long_at_least(int64_t min) {
  return [min](const std::string& v) -> std::string {
    int64_t parsed = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size()) return "expected an integer";
    if (parsed < min) return "must be at least " + std::to_string(min);
    return "";
  };
}

std::function<std::string(const std::string&)> int_at_least(int64_t min) {
  return [min](const std::string& v) -> std::string {
    int32_t parsed = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
      return "expected a 32-bit integer";
    }
    if (parsed < min) return "must be at least " + std::to_string(min);
    return "";
  };
}

std::function<std::string(const std::string&)> one_of(std::vector<std::string> allowed) {
  return [allowed](const std::string& v) -> std::string {
    for (const auto& a : allowed) {
      if (v == a) return "";
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return "expected one of " + list;
  };
}

std::function<std::string(const std::string&)> any_value() {
  return [](const std::string&) { return std::string(); };
}

std::function<std::string(const BrokerConfig&)> fixed(std::string v) {
  return [v](const BrokerConfig&) { return v; };
}

const std::map<std::string, Definition>& definitions() {
  static const std::map<std::string, Definition> table = {
      {"cleanup.policy",
       {fixed("delete"), one_of({"delete", "compact", "compact,delete", "delete,compact"})}},
      // Not `producer`: produced batches are recompressed with this codec on
      // append (topic_compression, handlers/produce.cc).
      {"compression.type",
       {fixed("producer"), one_of({"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"})}},
      {"delete.retention.ms", {fixed("86400000"), long_at_least(0)}},
      {"file.delete.delay.ms", {fixed("60000"), long_at_least(0)}},
      {"flush.messages",
       {[](const BrokerConfig& b) { return std::to_string(b.log_flush_interval_messages); },
        long_at_least(1)}},
      {"flush.ms",
       {[](const BrokerConfig& b) {
          return std::to_string(b.log_flush_interval_ms < 0 ? INT64_MAX : b.log_flush_interval_ms);
        },
        long_at_least(0)}},
      {"index.interval.bytes",
       {[](const BrokerConfig& b) { return std::to_string(b.log_index_interval_bytes); },
        int_at_least(0)}},
      {"max.compaction.lag.ms", {fixed(std::to_string(INT64_MAX)), long_at_least(1)}},
      {"max.message.bytes",
       {[](const BrokerConfig& b) { return std::to_string(b.message_max_bytes); },
        int_at_least(0)}},
      {"message.downconversion.enable", {fixed("true"), one_of({"true", "false"})}},
      {"message.format.version", {fixed("3.0-IV1"), any_value()}},
      {"message.timestamp.difference.max.ms", {fixed(std::to_string(INT64_MAX)), long_at_least(0)}},
      {"message.timestamp.type",
       {[](const BrokerConfig& b) { return b.log_message_timestamp_type; },
        one_of({"CreateTime", "LogAppendTime"})}},
      {"min.cleanable.dirty.ratio", {fixed("0.5"), any_value()}},
      {"min.compaction.lag.ms", {fixed("0"), long_at_least(0)}},
      // The broker's defaults, which are what produce and elections use for a
      // topic without its own value (2 and false in a cluster unless set).
      {"min.insync.replicas",
       {[](const BrokerConfig& b) { return std::to_string(b.effective_min_insync_replicas()); },
        int_at_least(1)}},
      {"preallocate", {fixed("false"), one_of({"true", "false"})}},
      {"retention.bytes",
       {[](const BrokerConfig& b) { return std::to_string(b.log_retention_bytes); },
        long_at_least(-1)}},
      {"retention.ms",
       {[](const BrokerConfig& b) { return std::to_string(b.log_retention_ms); },
        long_at_least(-1)}},
      {"segment.bytes",
       {[](const BrokerConfig& b) { return std::to_string(b.log_segment_bytes); },
        int_at_least(1024)}},
      {"segment.index.bytes", {fixed("10485760"), int_at_least(4)}},
      {"segment.jitter.ms", {fixed("0"), long_at_least(0)}},
      {"segment.ms",
       {[](const BrokerConfig& b) { return std::to_string(b.log_roll_ms); }, long_at_least(1)}},
      {"unclean.leader.election.enable",
       {[](const BrokerConfig& b) { return std::string(b.unclean_leader_election_enable ? "true" : "false"); },
        one_of({"true", "false"})}},
  };
  return table;
}

int64_t to_long(const std::string& v) {
  int64_t parsed = 0;
  std::from_chars(v.data(), v.data() + v.size(), parsed);
  return parsed;
}

}  // namespace

Result<void, TopicConfigErrc> validate_topic_configs(const metadata::ConfigMap& configs) {
  const auto& defs = definitions();
  for (const auto& [key, value] : configs) {
    auto it = defs.find(key);
    if (it == defs.end()) {
      return make_error(TopicConfigErrc::unknown_key, "unknown topic config '" + key + "'");
    }
    std::string why = it->second.check(value);
    if (!why.empty()) {
      return make_error(TopicConfigErrc::invalid_value,
                        "invalid value '" + value + "' for topic config '" + key + "': " + why);
    }
  }
  return {};
}

bool is_list_config(const std::string& name) { return name == "cleanup.policy"; }

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    size_t b = start, e = comma;
    while (b < e && text[b] == ' ') ++b;
    while (e > b && text[e - 1] == ' ') --e;
    if (e > b) items.push_back(text.substr(b, e - b));
    start = comma + 1;
  }
  return items;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace

Result<metadata::ConfigMap, TopicConfigErrc> apply_config_ops(const BrokerConfig& broker,
                                                              const metadata::ConfigMap& current,
                                                              const std::vector<ConfigOp>& ops) {
  for (size_t i = 0; i < ops.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (ops[i].name == ops[j].name) {
        return make_error(TopicConfigErrc::invalid_operation,
                          "config '" + ops[i].name + "' appears more than once");
      }
    }
  }
  metadata::ConfigMap out = current;
  for (const auto& op : ops) {
    const auto type = static_cast<ConfigOpType>(op.op);
    if (op.op < 0 || op.op > 3) {
      return make_error(TopicConfigErrc::invalid_operation,
                        "unknown config operation " + std::to_string(op.op) + " for '" + op.name +
                            "' (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)");
    }
    if (type == ConfigOpType::remove) {
      out.erase(op.name);
      continue;
    }
    if (!op.value) {
      return make_error(TopicConfigErrc::invalid_operation,
                        "a null value is not allowed for '" + op.name + "'");
    }
    if (type == ConfigOpType::set) {
      out[op.name] = *op.value;
      continue;
    }
    if (!is_list_config(op.name)) {
      return make_error(TopicConfigErrc::invalid_value,
                        std::string(type == ConfigOpType::append ? "APPEND" : "SUBTRACT") +
                            " applies only to list-valued configs; '" + op.name + "' is not one");
    }
    auto it = out.find(op.name);
    const auto& defs = definitions();
    std::string base = it != out.end() ? it->second : defs.at(op.name).default_value(broker);
    std::vector<std::string> items = split_list(base);
    for (const auto& item : split_list(*op.value)) {
      auto pos = std::find(items.begin(), items.end(), item);
      if (type == ConfigOpType::append && pos == items.end()) items.push_back(item);
      if (type == ConfigOpType::subtract && pos != items.end()) items.erase(pos);
    }
    out[op.name] = join_list(items);
  }
  return out;
}

std::vector<TopicConfigEntry> describe_topic_configs(const BrokerConfig& broker,
                                                     const metadata::ConfigMap& overrides) {
  std::vector<TopicConfigEntry> out;
  for (const auto& [name, def] : definitions()) {
    TopicConfigEntry e;
    e.name = name;
    auto it = overrides.find(name);
    if (it != overrides.end()) {
      e.value = it->second;
      e.is_default = false;
    } else {
      e.value = def.default_value(broker);
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<int8_t> topic_compression(const metadata::ConfigMap& overrides) {
  auto it = overrides.find("compression.type");
  if (it == overrides.end()) return std::nullopt;  // the default is `producer`
  // Codec ids are the batch attribute's (record::Compression).
  static const std::map<std::string, int8_t> codecs = {
      {"uncompressed", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}};
  auto codec = codecs.find(it->second);
  if (codec == codecs.end()) return std::nullopt;
  return codec->second;
}

storage::LogConfig log_config_for(const BrokerConfig& broker,
                                  const metadata::ConfigMap& overrides) {
  auto get = [&](const std::string& key) -> std::string {
    auto it = overrides.find(key);
    if (it != overrides.end()) return it->second;
    return definitions().at(key).default_value(broker);
  };
  storage::LogConfig c;
  c.segment_bytes = to_long(get("segment.bytes"));
  c.segment_ms = to_long(get("segment.ms"));
  c.retention_ms = to_long(get("retention.ms"));
  c.retention_bytes = to_long(get("retention.bytes"));
  // cleanup.policy: "compact" runs the log cleaner (storage/log_cleaner.h);
  // retention deletes segments only if the policy also has "delete".
  const std::string cleanup = get("cleanup.policy");
  c.compact = cleanup.find("compact") != std::string::npos;
  if (cleanup.find("delete") == std::string::npos) {
    c.retention_ms = -1;
    c.retention_bytes = -1;
  }
  c.delete_retention_ms = to_long(get("delete.retention.ms"));
  c.min_compaction_lag_ms = to_long(get("min.compaction.lag.ms"));
  {
    // any_value() in the table: fall back to Kafka's default on nonsense.
    const std::string ratio = get("min.cleanable.dirty.ratio");
    char* end = nullptr;
    double v = std::strtod(ratio.c_str(), &end);
    c.min_cleanable_dirty_ratio =
        (end != ratio.c_str() && *end == '\0' && v >= 0 && v <= 1) ? v : 0.5;
  }
  c.index_interval_bytes = static_cast<int32_t>(to_long(get("index.interval.bytes")));
  c.max_message_bytes = static_cast<int32_t>(to_long(get("max.message.bytes")));
  c.log_append_time = get("message.timestamp.type") == "LogAppendTime";

  FlushPolicy policy = broker.effective_flush_policy();
  // Kafka's per-topic names select a policy for that topic.
  if (overrides.count("flush.messages") && to_long(overrides.at("flush.messages")) == 1) {
    policy = FlushPolicy{FlushPolicyKind::always, 0};
  } else if (overrides.count("flush.ms")) {
    int64_t ms = to_long(overrides.at("flush.ms"));
    policy = ms == 0 ? FlushPolicy{FlushPolicyKind::always, 0}
                     : FlushPolicy{FlushPolicyKind::interval, ms};
  }
  switch (policy.kind) {
    case FlushPolicyKind::always:
      c.flush_mode = storage::FlushMode::always;
      break;
    case FlushPolicyKind::interval:
      c.flush_mode = storage::FlushMode::interval;
      c.flush_interval_ms = policy.interval_ms;
      break;
    case FlushPolicyKind::never:
      c.flush_mode = storage::FlushMode::never;
      break;
  }
  return c;
}

bool is_valid_topic_name(const std::string& name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace holdfast::server
