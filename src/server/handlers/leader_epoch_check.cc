#include "server/handlers/leader_epoch_check.h"

namespace holdfast::server {

KafkaError check_current_leader_epoch(int32_t request_epoch, int32_t partition_epoch) {
  if (request_epoch == kNoLeaderEpoch) return KafkaError::none;
  if (request_epoch < partition_epoch) return KafkaError::fenced_leader_epoch;
  if (request_epoch > partition_epoch) return KafkaError::unknown_leader_epoch;
  return KafkaError::none;
}

}  // namespace holdfast::server
