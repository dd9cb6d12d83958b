#include "server/handlers/txn_errors.h"

namespace holdfast::server {

KafkaError to_kafka_error(coordinator::TxnErrc e, bool producer_fenced_supported) {
  using coordinator::TxnErrc;
  switch (e) {
    case TxnErrc::none: return KafkaError::none;
    case TxnErrc::not_coordinator: return KafkaError::not_coordinator;
    case TxnErrc::coordinator_load_in_progress: return KafkaError::coordinator_load_in_progress;
    case TxnErrc::coordinator_not_available: return KafkaError::coordinator_not_available;
    case TxnErrc::invalid_request: return KafkaError::invalid_request;
    case TxnErrc::invalid_transaction_timeout: return KafkaError::invalid_transaction_timeout;
    case TxnErrc::concurrent_transactions: return KafkaError::concurrent_transactions;
    case TxnErrc::producer_fenced:
      return producer_fenced_supported ? KafkaError::producer_fenced
                                       : KafkaError::invalid_producer_epoch;
    case TxnErrc::invalid_producer_id_mapping: return KafkaError::invalid_producer_id_mapping;
    case TxnErrc::invalid_txn_state: return KafkaError::invalid_txn_state;
    case TxnErrc::transactional_id_not_found: return KafkaError::transactional_id_not_found;
    // Nothing was written; the client retries (Kafka answers a failed
    // transaction-log append with a retriable coordinator error).
    case TxnErrc::storage_error: return KafkaError::coordinator_not_available;
  }
  return KafkaError::unknown_server_error;
}

}  // namespace holdfast::server
