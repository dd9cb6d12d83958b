// Partition's follower side: thin delegations to the log's replication
// methods (PartitionLog::append_replicated, truncate_to,
// truncate_fully_and_start_at), which refuse while this replica leads.
#include <fmt/format.h>

#include "replication/partition.h"

namespace holdfast::replication {

// Each holds role_mu_ shared, as leader appends do: become_leader waits for a
// follower write in progress, and none starts once this replica leads.

storage::StorageResult<storage::AppendResult> Partition::append_replicated(
    std::span<const uint8_t> batch, const record::BatchHeader& header) {
  std::shared_lock role_lock(role_mu_);
  if (role_.load() != Role::follower) {
    return make_error(storage::Errc::invalid_argument,
                      fmt::format("{}-{}: a leader does not take replicated batches", topic(), index()));
  }
  return log_.append_replicated(batch, header);
}

storage::StorageResult<void> Partition::truncate_to(int64_t offset) {
  std::shared_lock role_lock(role_mu_);
  if (role_.load() != Role::follower) {
    return make_error(storage::Errc::invalid_argument,
                      fmt::format("{}-{}: a leader does not truncate its log", topic(), index()));
  }
  auto truncated = log_.truncate_to(offset);
  if (truncated) {
    std::lock_guard lock(mu_);
    high_watermark_.store(std::min(high_watermark_.load(), log_.log_end_offset()));
  }
  return truncated;
}

storage::StorageResult<void> Partition::truncate_fully_and_start_at(int64_t offset) {
  std::shared_lock role_lock(role_mu_);
  if (role_.load() != Role::follower) {
    return make_error(storage::Errc::invalid_argument,
                      fmt::format("{}-{}: a leader does not truncate its log", topic(), index()));
  }
  auto truncated = log_.truncate_fully_and_start_at(offset);
  if (truncated) {
    std::lock_guard lock(mu_);
    high_watermark_.store(log_.log_end_offset());
  }
  return truncated;
}

}  // namespace holdfast::replication
