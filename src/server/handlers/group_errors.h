// Group coordinator errors → Kafka error codes (the one mapping for every
// group and offset handler; tested in group_error_mapping_test.cc).
#pragma once

#include "coordinator/group_coordinator.h"
#include "server/kafka_error.h"

namespace holdfast::server {

KafkaError to_kafka_error(coordinator::GroupErrc e);

inline int16_t group_error_code(coordinator::GroupErrc e) { return code(to_kafka_error(e)); }

}  // namespace holdfast::server
