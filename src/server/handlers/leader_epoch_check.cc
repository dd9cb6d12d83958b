#include "server/handlers/leader_epoch_check.h"

#include "replication/partition.h"
#include "server/handlers/error_mapping.h"

namespace holdfast::server {

KafkaError check_current_leader_epoch(int32_t request_epoch, int32_t partition_epoch) {
  if (request_epoch == kNoLeaderEpoch) return KafkaError::none;
  if (request_epoch < partition_epoch) return KafkaError::fenced_leader_epoch;
  if (request_epoch > partition_epoch) return KafkaError::unknown_leader_epoch;
  return KafkaError::none;
}

KafkaError check_serving_leader(const replication::Partition& replica,
                                int32_t current_leader_epoch) {
  if (auto online = replica.check_online(); !online) return to_kafka_error(online.code());
  if (auto leading = replica.check_min_isr(0); !leading) return to_kafka_error(leading.code());
  return check_current_leader_epoch(current_leader_epoch, replica.leader_epoch());
}

}  // namespace holdfast::server
