#include "server/handlers/group_errors.h"

namespace holdfast::server {

KafkaError to_kafka_error(coordinator::GroupErrc e) {
  using coordinator::GroupErrc;
  switch (e) {
    case GroupErrc::none: return KafkaError::none;
    case GroupErrc::coordinator_load_in_progress: return KafkaError::coordinator_load_in_progress;
    case GroupErrc::coordinator_not_available: return KafkaError::coordinator_not_available;
    case GroupErrc::not_coordinator: return KafkaError::not_coordinator;
    case GroupErrc::invalid_group_id: return KafkaError::invalid_group_id;
    case GroupErrc::unknown_member_id: return KafkaError::unknown_member_id;
    case GroupErrc::illegal_generation: return KafkaError::illegal_generation;
    case GroupErrc::inconsistent_group_protocol: return KafkaError::inconsistent_group_protocol;
    case GroupErrc::invalid_session_timeout: return KafkaError::invalid_session_timeout;
    case GroupErrc::rebalance_in_progress: return KafkaError::rebalance_in_progress;
    case GroupErrc::member_id_required: return KafkaError::member_id_required;
    case GroupErrc::fenced_instance_id: return KafkaError::fenced_instance_id;
    case GroupErrc::group_id_not_found: return KafkaError::group_id_not_found;
    case GroupErrc::non_empty_group: return KafkaError::non_empty_group;
    case GroupErrc::unstable_offset_commit: return KafkaError::unstable_offset_commit;
    case GroupErrc::offset_metadata_too_large: return KafkaError::offset_metadata_too_large;
    case GroupErrc::group_subscribed_to_topic: return KafkaError::group_subscribed_to_topic;
    // The record may or may not be on disk; the client must not treat the
    // commit as done. Kafka answers a failed offsets append with
    // COORDINATOR_NOT_AVAILABLE too, which every client retries after
    // looking up the coordinator again.
    case GroupErrc::storage_error: return KafkaError::coordinator_not_available;
    case GroupErrc::invalid_producer_epoch: return KafkaError::invalid_producer_epoch;
  }
  return KafkaError::unknown_server_error;
}

}  // namespace holdfast::server
