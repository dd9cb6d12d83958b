// Partition's follower side: thin delegations to the log's replication
// methods (PartitionLog::append_replicated, truncate_to,
// truncate_fully_and_start_at), which refuse while this replica leads.
//
// MERGE NOTE: those PartitionLog methods are written on the cl-storage
// branch at the same time as this file. Until that branch is merged the calls
// below compile to an invalid_argument "not built" answer (the `requires`
// checks); once PartitionLog has them they are called directly and the
// fallbacks can be deleted.
#include <fmt/format.h>

#include "replication/partition.h"

namespace holdfast::replication {
namespace {

template <typename Log>
storage::StorageResult<storage::AppendResult> log_append_replicated(
    Log& log, std::span<const uint8_t> batch, const record::BatchHeader& header) {
  if constexpr (requires { log.append_replicated(batch, header); }) {
    return log.append_replicated(batch, header);
  } else {
    return make_error(storage::Errc::invalid_argument,
                      "PartitionLog::append_replicated is not in this build");
  }
}

template <typename Log>
storage::StorageResult<void> log_truncate_to(Log& log, int64_t offset) {
  if constexpr (requires { log.truncate_to(offset); }) {
    return log.truncate_to(offset);
  } else {
    return make_error(storage::Errc::invalid_argument, "PartitionLog::truncate_to is not in this build");
  }
}

template <typename Log>
storage::StorageResult<void> log_truncate_fully_and_start_at(Log& log, int64_t offset) {
  if constexpr (requires { log.truncate_fully_and_start_at(offset); }) {
    return log.truncate_fully_and_start_at(offset);
  } else {
    return make_error(storage::Errc::invalid_argument,
                      "PartitionLog::truncate_fully_and_start_at is not in this build");
  }
}

}  // namespace

// Each holds role_mu_ shared, as leader appends do: become_leader waits for a
// follower write in progress, and none starts once this replica leads.

storage::StorageResult<storage::AppendResult> Partition::append_replicated(
    std::span<const uint8_t> batch, const record::BatchHeader& header) {
  std::shared_lock role_lock(role_mu_);
  if (role_.load() != Role::follower) {
    return make_error(storage::Errc::invalid_argument,
                      fmt::format("{}-{}: a leader does not take replicated batches", topic(), index()));
  }
  return log_append_replicated(log_, batch, header);
}

storage::StorageResult<void> Partition::truncate_to(int64_t offset) {
  std::shared_lock role_lock(role_mu_);
  if (role_.load() != Role::follower) {
    return make_error(storage::Errc::invalid_argument,
                      fmt::format("{}-{}: a leader does not truncate its log", topic(), index()));
  }
  auto truncated = log_truncate_to(log_, offset);
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
  auto truncated = log_truncate_fully_and_start_at(log_, offset);
  if (truncated) {
    std::lock_guard lock(mu_);
    high_watermark_.store(log_.log_end_offset());
  }
  return truncated;
}

}  // namespace holdfast::replication
