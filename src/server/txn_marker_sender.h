// The transaction coordinator's marker writer: WriteTxnMarkers (API 27) to
// each other partition leader through net::KafkaClient (with the
// inter-broker TLS/SASL settings); markers for partitions this broker leads
// are written in-process by the same code the handler runs
// (handlers/write_txn_markers.h), never through this broker's own listener,
// which may want credentials a single node's client does not have.
#pragma once

#include "coordinator/txn_coordinator.h"
#include "net/kafka_client.h"

namespace holdfast::server {

class Broker;

class KafkaTxnMarkerSender : public coordinator::TxnMarkerSender {
 public:
  // `client` must outlive every send's completion (its shutdown completes
  // them); its thread also runs the in-process writes and their answers.
  KafkaTxnMarkerSender(Broker& broker, net::KafkaClient& client)
      : broker_(broker), client_(client) {}
  // Partitions of a topic that no longer exists count as acknowledged (no
  // leader will ever answer for them); partitions without a known leader, or
  // whose leader answered an error or nothing, are not.
  void send(coordinator::TxnMarkers markers,
            std::function<void(std::vector<coordinator::TxnPartition>)> done) override;

 private:
  Broker& broker_;
  net::KafkaClient& client_;
};

}  // namespace holdfast::server
