#include "coordinator/txn_records.h"

#include "coordinator/record_codec.h"

namespace holdfast::coordinator {

const char* to_string(TxnState s) {
  switch (s) {
    case TxnState::empty: return "Empty";
    case TxnState::ongoing: return "Ongoing";
    case TxnState::prepare_commit: return "PrepareCommit";
    case TxnState::prepare_abort: return "PrepareAbort";
    case TxnState::complete_commit: return "CompleteCommit";
    case TxnState::complete_abort: return "CompleteAbort";
    case TxnState::dead: return "Dead";
    case TxnState::prepare_epoch_fence: return "PrepareEpochFence";
  }
  return "Unknown";
}

std::optional<TxnState> txn_state_from_string(std::string_view name) {
  for (int8_t i = 0; i <= 7; ++i) {
    if (name == to_string(TxnState(i))) return TxnState(i);
  }
  return std::nullopt;
}

std::string encode_txn_key(const std::string& transactional_id) {
  codec::Out out;
  out.i16(0);
  out.str(transactional_id);
  return out.take();
}

Result<std::string, RecordErrc> decode_txn_key(std::span<const uint8_t> data) {
  codec::In in(data);
  int16_t version = in.i16();
  if (!in.ok()) return make_error(RecordErrc::malformed, "short transaction key");
  if (version != 0) {
    return make_error(RecordErrc::unknown_version,
                      "transaction key version " + std::to_string(version));
  }
  std::string id = in.str();
  if (!in.ok()) return make_error(RecordErrc::malformed, "malformed transaction key");
  return id;
}

std::string encode_txn_value(const TxnValue& v) {
  codec::Out out;
  out.i16(0);
  out.i64(v.producer_id);
  out.i16(v.producer_epoch);
  out.i32(v.timeout_ms);
  out.i8(static_cast<int8_t>(v.state));
  // Grouped by topic, in order.
  std::vector<std::pair<std::string, std::vector<int32_t>>> topics;
  for (const auto& tp : v.partitions) {
    if (topics.empty() || topics.back().first != tp.topic) topics.push_back({tp.topic, {}});
    topics.back().second.push_back(tp.partition);
  }
  out.i32(static_cast<int32_t>(topics.size()));
  for (const auto& [topic, partitions] : topics) {
    out.str(topic);
    out.i32(static_cast<int32_t>(partitions.size()));
    for (int32_t p : partitions) out.i32(p);
  }
  out.i64(v.last_update_ms);
  out.i64(v.start_ms);
  return out.take();
}

Result<TxnValue, RecordErrc> decode_txn_value(std::span<const uint8_t> data) {
  codec::In in(data);
  int16_t version = in.i16();
  if (!in.ok()) return make_error(RecordErrc::malformed, "short transaction value");
  // Version 1 (flexible, Kafka 3.x tagged fields) is not written by Holdfast.
  if (version != 0) {
    return make_error(RecordErrc::unknown_version,
                      "transaction value version " + std::to_string(version));
  }
  TxnValue v;
  v.producer_id = in.i64();
  v.producer_epoch = in.i16();
  v.timeout_ms = in.i32();
  int8_t status = in.i8();
  if (status < 0 || status > 7) return make_error(RecordErrc::malformed, "transaction status");
  v.state = TxnState(status);
  int32_t topics = in.i32();
  for (int32_t t = 0; t < topics && in.ok(); ++t) {
    std::string topic = in.str();
    int32_t n = in.i32();
    if (n < 0 || size_t(n) > data.size()) return make_error(RecordErrc::malformed, "partitions");
    for (int32_t i = 0; i < n && in.ok(); ++i) v.partitions.insert({topic, in.i32()});
  }
  v.last_update_ms = in.i64();
  v.start_ms = in.i64();
  if (!in.ok()) return make_error(RecordErrc::malformed, "malformed transaction value");
  return v;
}

std::optional<bool> decode_control_commit(std::span<const uint8_t> key) {
  codec::In in(key);
  int16_t version = in.i16();
  int16_t type = in.i16();
  if (!in.ok() || version != 0 || (type != 0 && type != 1)) return std::nullopt;
  return type == 1;
}

}  // namespace holdfast::coordinator
