// The FollowerReplica a follower fetcher drives (follower_replica.h), over a
// local replication::Partition: every call goes to the partition, whose
// follower-side methods refuse while it leads, so a fetcher that has not yet
// been removed after a leadership change cannot write into a leader's log.
#pragma once

#include <memory>

#include "replication/follower_replica.h"
#include "replication/partition.h"

namespace holdfast::replication {

class PartitionFollowerReplica final : public FollowerReplica {
 public:
  explicit PartitionFollowerReplica(std::shared_ptr<Partition> partition)
      : partition_(std::move(partition)) {}

  const std::string& topic() const override { return partition_->topic(); }
  int32_t index() const override { return partition_->index(); }
  int64_t log_end_offset() const override { return partition_->log_end_offset(); }
  int64_t log_start_offset() const override { return partition_->log_start_offset(); }

  int32_t latest_epoch() const override {
    auto entries = partition_->log().leader_epoch_entries();
    return entries.empty() ? -1 : entries.back().epoch;
  }

  std::optional<std::pair<int32_t, int64_t>> end_offset_for_epoch(int32_t epoch) const override {
    auto end = partition_->log().end_offset_for_epoch(epoch);
    if (!end || end->undefined()) return std::nullopt;
    return std::make_pair(end->epoch, end->end_offset);
  }

  int32_t current_leader_epoch() const override { return partition_->leader_epoch(); }

  Result<void, storage::Errc> append_replicated(std::span<const uint8_t> batch,
                                                const record::BatchHeader& header) override {
    auto appended = partition_->append_replicated(batch, header);
    if (!appended) return appended.error();
    return {};
  }

  void wait_durable(int64_t end_offset,
                    std::function<void(Result<void, storage::Errc>)> done) override {
    partition_->wait_durable(end_offset, std::move(done));
  }

  Result<void, storage::Errc> truncate_to(int64_t offset) override {
    return partition_->truncate_to(offset);
  }

  Result<void, storage::Errc> truncate_fully_and_start_at(int64_t offset) override {
    return partition_->truncate_fully_and_start_at(offset);
  }

  void set_high_watermark(int64_t high_watermark) override {
    partition_->set_follower_high_watermark(high_watermark);
  }

 private:
  std::shared_ptr<Partition> partition_;
};

}  // namespace holdfast::replication
