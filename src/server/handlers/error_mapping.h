// Module errors → Kafka error codes. One mapping per module, each tested.
#pragma once

#include "record/batch.h"
#include "replication/errc.h"
#include "server/kafka_error.h"
#include "storage/log_manager.h"

namespace holdfast::server {

KafkaError to_kafka_error(record::Errc e);
KafkaError to_kafka_error(storage::Errc e);
KafkaError to_kafka_error(replication::Errc e);

}  // namespace holdfast::server
