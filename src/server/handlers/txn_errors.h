// Transaction coordinator errors → Kafka error codes (the one mapping for
// every transaction handler).
#pragma once

#include "coordinator/txn_coordinator.h"
#include "server/kafka_error.h"

namespace holdfast::server {

// `producer_fenced_supported`: whether the request version knows
// PRODUCER_FENCED (KIP-588: InitProducerId v4+, AddPartitionsToTxn v2+,
// AddOffsetsToTxn v2+, EndTxn v2+, TxnOffsetCommit v3+); older versions get
// INVALID_PRODUCER_EPOCH, as Kafka answers them.
KafkaError to_kafka_error(coordinator::TxnErrc e, bool producer_fenced_supported);

inline int16_t txn_error_code(coordinator::TxnErrc e, bool producer_fenced_supported) {
  return code(to_kafka_error(e, producer_fenced_supported));
}

}  // namespace holdfast::server
