#include "server/handlers/error_mapping.h"

namespace holdfast::server {

KafkaError to_kafka_error(record::Errc e) {
  switch (e) {
    case record::Errc::truncated:
    case record::Errc::corrupt_message:
      return KafkaError::corrupt_message;
    case record::Errc::invalid_record:
      return KafkaError::invalid_record;
    case record::Errc::message_too_large:
      return KafkaError::message_too_large;
    case record::Errc::unsupported_compression:
      return KafkaError::unsupported_compression_type;
    case record::Errc::unsupported_magic:
      return KafkaError::unsupported_for_message_format;
    case record::Errc::invalid_timestamp:
      return KafkaError::invalid_timestamp;
  }
  return KafkaError::unknown_server_error;
}

KafkaError to_kafka_error(storage::Errc e) {
  switch (e) {
    case storage::Errc::offset_out_of_range:
      return KafkaError::offset_out_of_range;
    case storage::Errc::not_found:
      return KafkaError::unknown_topic_or_partition;
    case storage::Errc::corrupt:
      return KafkaError::corrupt_message;
    case storage::Errc::invalid_argument:
      return KafkaError::invalid_request;
    case storage::Errc::out_of_order_sequence:
      return KafkaError::out_of_order_sequence_number;
    case storage::Errc::invalid_producer_epoch:
      return KafkaError::invalid_producer_epoch;
    case storage::Errc::io_error:
      // A failed write or fsync: the partition is out of service until the
      // broker restarts and recovers it. Retriable for clients (librdkafka
      // refreshes metadata and retries), unlike UNKNOWN_SERVER_ERROR.
      return KafkaError::kafka_storage_error;
    case storage::Errc::closed:
      // The log was closed under the request (topic deleted, shutdown): the
      // client refreshes metadata and retries elsewhere or learns it is gone.
      return KafkaError::not_leader_or_follower;
    case storage::Errc::already_exists:
      return KafkaError::unknown_server_error;
    case storage::Errc::truncated:
      // A follower truncated the offsets this request waited for (it lost
      // leadership): the client re-routes to the new leader and retries.
      return KafkaError::not_leader_or_follower;
    case storage::Errc::coordinator_fenced:
      // Only WriteTxnMarkers meets it, and answers TRANSACTION_COORDINATOR_FENCED itself.
      return KafkaError::invalid_producer_epoch;
  }
  return KafkaError::unknown_server_error;
}

// Produce (acks) and Fetch from followers.
KafkaError to_kafka_error(replication::Errc e) {
  switch (e) {
    case replication::Errc::not_leader:
    case replication::Errc::not_replica:  // Kafka: a fetch from a broker that is not a replica
      return KafkaError::not_leader_or_follower;
    case replication::Errc::not_enough_replicas:
      return KafkaError::not_enough_replicas;
    case replication::Errc::not_enough_replicas_after_append:
      return KafkaError::not_enough_replicas_after_append;
    case replication::Errc::log_failed:
    case replication::Errc::log_closed:
      // Appended but not made durable (fsync failed), or the log closed under
      // the request: never acknowledged; the client retries.
      return KafkaError::kafka_storage_error;
    case replication::Errc::storage_error:
    case replication::Errc::shut_down:
      return KafkaError::unknown_server_error;
  }
  return KafkaError::unknown_server_error;
}

}  // namespace holdfast::server
