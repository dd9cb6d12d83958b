// The controller's expected failures. Each names the Kafka error the handler
// boundary answers with (mapped there, in one function per handler).
#pragma once

namespace holdfast::controller {

enum class Errc {
  // Placement (CreateTopics, CreatePartitions, auto-create).
  invalid_replication_factor,  // INVALID_REPLICATION_FACTOR (38): RF < 1 or > live brokers
  invalid_partitions,          // INVALID_PARTITIONS (37)
  topic_already_exists,        // TOPIC_ALREADY_EXISTS (36)
  unknown_topic,               // UNKNOWN_TOPIC_OR_PARTITION (3) / UNKNOWN_TOPIC_ID (100)
  // Broker registration and heartbeats (BrokerRegistration 62, BrokerHeartbeat 63).
  duplicate_broker_registration,  // DUPLICATE_BROKER_REGISTRATION (101): another live
                                  // process holds this node id
  broker_id_not_registered,       // BROKER_ID_NOT_REGISTERED (102)
  stale_broker_epoch,             // STALE_BROKER_EPOCH (77)
  // AlterPartition (56), KIP-497 / KIP-841.
  fenced_leader_epoch,     // FENCED_LEADER_EPOCH (74): the proposer's leader epoch is not current
  not_leader,              // INVALID_REQUEST (42), as KRaft answers: the proposer does not lead
  invalid_update_version,  // INVALID_UPDATE_VERSION (95): its partition epoch is stale
  ineligible_replica,      // INELIGIBLE_REPLICA (107): the new ISR names a fenced or
                           // unregistered broker
  invalid_request,         // INVALID_REQUEST (42): malformed (ISR without the leader, ...)
};

}  // namespace holdfast::controller
