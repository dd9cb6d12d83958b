// The Kafka error for each controller-service failure: the one mapping used
// by the BrokerRegistration, BrokerHeartbeat and AlterPartition handlers.
#pragma once

#include "server/cluster/controller_service.h"
#include "server/kafka_error.h"

namespace holdfast::server::cluster {

inline KafkaError to_kafka_error(const ControllerError& e) {
  switch (e.kind) {
    case ServiceErrc::not_controller: return KafkaError::not_controller;
    case ServiceErrc::timed_out: return KafkaError::request_timed_out;
    case ServiceErrc::rejected: break;
  }
  switch (e.reason) {
    case controller::Errc::invalid_replication_factor: return KafkaError::invalid_replication_factor;
    case controller::Errc::invalid_partitions: return KafkaError::invalid_partitions;
    case controller::Errc::topic_already_exists: return KafkaError::topic_already_exists;
    case controller::Errc::unknown_topic: return KafkaError::unknown_topic_or_partition;
    case controller::Errc::duplicate_broker_registration:
      return KafkaError::duplicate_broker_registration;
    case controller::Errc::broker_id_not_registered: return KafkaError::broker_id_not_registered;
    case controller::Errc::stale_broker_epoch: return KafkaError::stale_broker_epoch;
    case controller::Errc::fenced_leader_epoch: return KafkaError::fenced_leader_epoch;
    case controller::Errc::not_leader: return KafkaError::invalid_request;  // as KRaft answers
    case controller::Errc::invalid_update_version: return KafkaError::invalid_update_version;
    case controller::Errc::ineligible_replica: return KafkaError::ineligible_replica;
    case controller::Errc::invalid_request: return KafkaError::invalid_request;
  }
  return KafkaError::unknown_server_error;
}

}  // namespace holdfast::server::cluster
