// The records of `__transaction_state` in Kafka's layout (TransactionLogKey /
// TransactionLogValue, version 0), so that Kafka's tools read them and a
// Holdfast data directory holds what a Kafka broker would:
//
//   key    version int16 (0), transactional_id string
//   value  version int16 (0), producer_id int64, producer_epoch int16,
//          transaction_timeout_ms int32, transaction_status int8,
//          transaction_partitions nullable [topic string, [partition int32]],
//          last_update_timestamp_ms int64, start_timestamp_ms int64
//   a null value (tombstone) removes the transactional id.
//
// The status byte is Kafka's TransactionState id (TxnState below).
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "coordinator/group_records.h"

namespace holdfast::coordinator {

inline constexpr const char* kTransactionStateTopic = "__transaction_state";

enum class TxnState : int8_t {
  empty = 0,
  ongoing = 1,
  prepare_commit = 2,
  prepare_abort = 3,
  complete_commit = 4,
  complete_abort = 5,
  dead = 6,
  prepare_epoch_fence = 7,
};
// Kafka's names (DescribeTransactions / ListTransactions answer these).
const char* to_string(TxnState s);
std::optional<TxnState> txn_state_from_string(std::string_view name);

struct TxnPartition {
  std::string topic;
  int32_t partition = 0;
  friend auto operator<=>(const TxnPartition&, const TxnPartition&) = default;
};

struct TxnValue {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t timeout_ms = 0;
  TxnState state = TxnState::empty;
  std::set<TxnPartition> partitions;
  int64_t last_update_ms = -1;
  int64_t start_ms = -1;
  friend bool operator==(const TxnValue&, const TxnValue&) = default;
};

std::string encode_txn_key(const std::string& transactional_id);
Result<std::string, RecordErrc> decode_txn_key(std::span<const uint8_t> data);
std::string encode_txn_value(const TxnValue& value);
Result<TxnValue, RecordErrc> decode_txn_value(std::span<const uint8_t> data);

// The __transaction_state partition of a transactional id: Kafka's
// Utils.abs(transactionalId.hashCode) % partitions (the same function as a
// group's partition).
inline int32_t partition_for_transactional_id(std::string_view id, int32_t partitions) {
  return partition_for_group(id, partitions);
}

// The key of a control record (commit/abort marker): version int16 (0),
// type int16 (0 abort, 1 commit). nullopt if `key` is not one.
std::optional<bool> decode_control_commit(std::span<const uint8_t> key);

}  // namespace holdfast::coordinator
