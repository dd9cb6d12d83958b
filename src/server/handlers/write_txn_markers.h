// Writing transaction markers into the partitions this broker leads: the body
// of WriteTxnMarkers (API 27), shared by its handler and by this broker's own
// transaction coordinator (server/txn_marker_sender.h), which writes markers
// for its own partitions in-process rather than through its listener: that
// listener may require TLS or SASL, which the coordinator's client does not
// speak on a single node.
#pragma once

#include <functional>

#include "protocol/messages.h"
#include "server/kafka_error.h"

namespace holdfast::server {

class Broker;

// Appends each requested marker as the partition's leader (Kafka's checks:
// an older producer epoch is INVALID_PRODUCER_EPOCH, an older coordinator
// epoch TRANSACTION_COORDINATOR_FENCED) and calls `done` with the response
// once every appended marker is under its partition's high watermark, with
// min.insync.replicas checked as for acks=all (or has failed). With `denied`
// other than none, nothing is written and every partition carries it.
//
// `done` is called exactly once, possibly before this returns, otherwise from
// the thread that completed the last wait (a flusher or replication thread,
// possibly holding log locks): it must only hand the response off (post it),
// never append or wait itself. The broker must outlive the call: shutdown
// completes every wait (Broker::shutdown closes the logs and the replicas
// before anything is destroyed).
void write_txn_markers(Broker& broker, const protocol::WriteTxnMarkersRequest& request,
                       KafkaError denied,
                       std::function<void(protocol::WriteTxnMarkersResponse)> done);

}  // namespace holdfast::server
