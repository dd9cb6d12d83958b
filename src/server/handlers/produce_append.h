// One produced record batch appended to one partition: the checks, the
// topic's compression.type and the append that Produce does per partition,
// shared by the Produce handler and the admin API's POST .../messages. The
// caller waits for durability (needs_sync) and answers.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"
#include "server/kafka_error.h"
#include "storage/partition_log.h"

namespace holdfast::server {

class Broker;

struct ProducedAppend {
  storage::PartitionLog* log = nullptr;
  int64_t base_offset = -1;
  int64_t last_offset = -1;
  int64_t log_append_time_ms = -1;
  int64_t log_start_offset = -1;
  bool duplicate = false;
  bool needs_sync = false;  // flush.policy=always: wait_durable(log, last_offset + 1) before acking
};

// `allow_zstd`: the produce request version is 7 or later (zstd batches are
// allowed); `client` names the producer in log lines.
Result<ProducedAppend, KafkaError> append_produced_batch(Broker& broker, const std::string& topic,
                                                         int32_t partition,
                                                         std::span<const uint8_t> records,
                                                         bool allow_zstd,
                                                         const std::string& client);

}  // namespace holdfast::server
