// One produced record batch appended to one partition: the checks, the
// topic's compression.type and the append that Produce does per partition,
// shared by the Produce handler and the admin API's POST .../messages. The
// caller waits for the high watermark (needs_sync) and answers.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"
#include "server/kafka_error.h"
#include <memory>

#include "replication/partition.h"

namespace holdfast::server {

class Broker;

struct ProducedAppend {
  std::shared_ptr<replication::Partition> partition;
  int64_t base_offset = -1;
  int64_t last_offset = -1;
  int64_t log_append_time_ms = -1;
  int64_t log_start_offset = -1;
  bool duplicate = false;
  // The high watermark has not yet passed the batch (flush.policy=always: its
  // fsync is pending): partition->wait_for_high_watermark(last_offset + 1)
  // before acknowledging.
  bool needs_sync = false;
};

// `allow_zstd`: the produce request version is 7 or later (zstd batches are
// allowed); `client` names the producer in log lines.
Result<ProducedAppend, KafkaError> append_produced_batch(Broker& broker, const std::string& topic,
                                                         int32_t partition,
                                                         std::span<const uint8_t> records,
                                                         bool allow_zstd,
                                                         const std::string& client);

}  // namespace holdfast::server
