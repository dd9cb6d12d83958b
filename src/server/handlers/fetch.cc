#include <algorithm>
#include <chrono>

#include "base/log.h"
#include "record/batch.h"
#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"
#include "server/handlers/leader_epoch_check.h"
#include "server/handlers/quota_throttle.h"
#include "server/security/access.h"

namespace holdfast::server {
namespace {

using protocol::FetchRequest;
using protocol::FetchResponse;

constexpr int8_t kReadCommitted = 1;

// What one pass gathered.
struct Gathered {
  size_t bytes = 0;  // record bytes
  // A follower fetch has news even without records: the high watermark moved
  // past what it was last sent (it learns the HW only from our responses).
  bool follower_news = false;
};

// The offset after the last whole batch of `records` (stored batches back to back).
int64_t end_of_batches(const Bytes& records) {
  std::span<const uint8_t> rest = records.span();
  int64_t end = 0;
  while (rest.size() >= record::kBatchHeaderSize) {
    auto header = record::parse_batch_header(rest);
    if (!header || header->size_in_bytes() > rest.size()) break;
    end = header->last_offset() + 1;
    rest = rest.subspan(header->size_in_bytes());
  }
  return end;
}

// One pass over the requested partitions: reads what is there now, within
// the request's byte limits.
//
// A fetch with replica_id >= 0 comes from a follower broker (Kafka's
// inter-broker Fetch): it must be a replica of a partition this broker leads
// (else NOT_LEADER_OR_FOLLOWER), its fetch offset is recorded as what it
// durably has (advancing the high watermark, which completes acks=all
// produces and wakes consumers), and it reads up to the log end rather than
// the high watermark. Consumers (replica_id -1) read up to the high
// watermark, from the leader only.
Gathered read_once(Broker& broker, const FetchRequest& request, int16_t version,
                   FetchResponse& response) {
  response = FetchResponse{};
  response.error_code = code(KafkaError::none);
  response.session_id = 0;  // no fetch sessions: every client sends session 0 / epoch -1
  const bool from_follower = request.replica_id >= 0;
  // The request's limit (v3+), never above the broker's fetch.max.bytes.
  size_t max_bytes = static_cast<size_t>(std::max(broker.config().fetch_max_bytes, 0));
  if (version >= 3) max_bytes = std::min(max_bytes, static_cast<size_t>(std::max(request.max_bytes, 0)));
  Gathered gathered;
  size_t& total = gathered.bytes;
  for (const auto& topic : request.topics) {
    auto& topic_out = response.responses.emplace_back();
    topic_out.topic = topic.topic;
    for (const auto& partition : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = partition.partition;
      // Kafka sends empty (never null) records; librdkafka rejects a null
      // MessageSet ("invalid MessageSetSize -1").
      out.records = Bytes();
      out.high_watermark = -1;
      out.last_stable_offset = -1;
      out.log_start_offset = -1;
      // read_committed (consumers only): data up to the last stable offset,
      // with the aborted transactions of the fetched range.
      const bool read_committed = request.isolation_level == kReadCommitted && !from_follower;
      if (read_committed) out.aborted_transactions.emplace();
      auto replica = broker.replicas().get(topic.topic, partition.partition);
      if (!replica) {
        out.error_code = code(KafkaError::unknown_topic_or_partition);
        continue;
      }
      // Online, leading, KIP-320 current_leader_epoch (v9+; -1 = no check).
      if (KafkaError refused = check_serving_leader(*replica, partition.current_leader_epoch);
          refused != KafkaError::none) {
        out.error_code = code(refused);
        continue;
      }
      const int64_t offset = partition.fetch_offset;
      if (from_follower) {
        if (offset >= replica->log_start_offset() && offset <= replica->log_end_offset()) {
          // Decision 1: the follower durably has everything below `offset`.
          if (auto recorded = replica->record_follower_fetch(request.replica_id, offset,
                                                             broker.replicas().now_ms());
              !recorded) {
            out.error_code = code(to_kafka_error(recorded.code()));
            continue;
          }
        }
      }
      const int64_t high_watermark = replica->high_watermark();
      const int64_t log_start = replica->log_start_offset();
      out.high_watermark = high_watermark;
      // Never above the HW this response carries (the HW may move meanwhile).
      const int64_t last_stable = std::min(replica->last_stable_offset(), high_watermark);
      out.last_stable_offset = last_stable;
      out.log_start_offset = log_start;
      if (offset < log_start || offset > replica->log_end_offset()) {
        out.error_code = code(KafkaError::offset_out_of_range);
        continue;
      }
      out.error_code = code(KafkaError::none);
      if (from_follower && high_watermark > replica->high_watermark_sent(request.replica_id)) {
        gathered.follower_news = true;
      }
      // Consumers stop at the high watermark (read_committed at the last
      // stable offset), followers at the log end.
      const int64_t readable_end = from_follower    ? replica->log_end_offset()
                                   : read_committed ? last_stable
                                                    : high_watermark;
      if (offset >= readable_end || total >= max_bytes) continue;
      const size_t partition_limit =
          std::min(static_cast<size_t>(std::max(partition.partition_max_bytes, 0)),
                   max_bytes - total);
      // KIP-74: the first batch of the first non-empty partition is returned
      // whole even when it is larger than the limits, so a consumer can
      // always make progress.
      // Bounded by the partition's high watermark (read again inside: it
      // only moves forward), or for a follower by the log end.
      const bool min_one_batch = total == 0;
      auto read = from_follower    ? replica->read_for_follower(offset, partition_limit, min_one_batch)
                  : read_committed ? replica->read_committed(offset, partition_limit, min_one_batch)
                                   : replica->read(offset, partition_limit, min_one_batch);
      if (!read) {
        out.error_code = code(to_kafka_error(read.code()));
        continue;
      }
      out.high_watermark = read->high_watermark;
      out.last_stable_offset = read_committed ? read->last_stable_offset
                                              : std::min(replica->last_stable_offset(),
                                                         read->high_watermark);
      out.log_start_offset = read->log_start_offset;
      if (read_committed && !read->records.empty()) {
        for (const auto& txn : replica->aborted_txns(offset, end_of_batches(read->records))) {
          out.aborted_transactions->push_back({txn.producer_id, txn.first_offset});
        }
      }
      if (!read->records.empty()) {
        total += read->records.size();
        out.records = std::move(read->records);
      }
    }
  }
  return gathered;
}

// A follower learns the high watermark from our responses: remember what it
// was sent, so its next long-poll returns when the HW moves past it.
void note_high_watermarks_sent(Broker& broker, const FetchRequest& request,
                               const FetchResponse& response) {
  if (request.replica_id < 0) return;
  for (const auto& topic : response.responses) {
    for (const auto& partition : topic.partitions) {
      if (partition.error_code != 0 || partition.high_watermark < 0) continue;
      if (auto replica = broker.replicas().get(topic.topic, partition.partition_index)) {
        replica->note_high_watermark_sent(request.replica_id, partition.high_watermark);
      }
    }
  }
}

// Removes from `request` the topics the principal may not fetch (consumers:
// Read on the topic; followers: ClusterAction) and returns their answers
// (the row's error on every partition), so they are never read.
std::vector<FetchResponse::FetchableTopicResponse> take_refused(const RequestContext& ctx,
                                                                FetchRequest& request) {
  std::vector<FetchResponse::FetchableTopicResponse> refused;
  const KafkaError follower_denied = request.replica_id >= 0
                                         ? check_access(ctx, Access::fetch_follower)
                                         : KafkaError::none;
  std::erase_if(request.topics, [&](const FetchRequest::FetchTopic& topic) {
    const KafkaError denied = request.replica_id >= 0
                                  ? follower_denied
                                  : check_access(ctx, Access::fetch_consumer_topic, topic.topic);
    if (denied == KafkaError::none) return false;
    auto& out = refused.emplace_back();
    out.topic = topic.topic;
    for (const auto& partition : topic.partitions) {
      auto& p = out.partitions.emplace_back();
      p.partition_index = partition.partition;
      p.error_code = code(denied);
      p.records = Bytes();
      p.high_watermark = -1;
      p.last_stable_offset = -1;
      p.log_start_offset = -1;
    }
    return true;
  });
  return refused;
}

// consumer_byte_rate (consumers only; followers are not throttled): counts
// the response's record bytes; over the quota, Kafka's way, the response
// goes out empty (no records, the offsets unchanged, the bytes taken back)
// with throttle_time_ms, and the connection is muted for that time.
int32_t apply_fetch_quota(const RequestContext& ctx, const FetchRequest& request,
                          FetchResponse& response) {
  if (request.replica_id >= 0) return 0;
  size_t bytes = 0;
  for (const auto& topic : response.responses) {
    for (const auto& partition : topic.partitions) {
      if (partition.records) bytes += partition.records->size();
    }
  }
  const int32_t throttle_ms = record_quota(ctx, QuotaKind::fetch, bytes);
  if (throttle_ms == 0) return 0;
  response.throttle_time_ms = throttle_ms;
  // A response larger than the quota lets through in a whole span (one batch
  // bigger than that, returned whole by KIP-74) could never be sent empty-
  // then-whole: it goes out with its records, throttled.
  if (auto window = fetch_quota_window_bytes(ctx); window && bytes > *window) return throttle_ms;
  unrecord_quota(ctx, QuotaKind::fetch, bytes);
  for (auto& topic : response.responses) {
    for (auto& partition : topic.partitions) {
      partition.records = Bytes();
      if (partition.aborted_transactions) partition.aborted_transactions->clear();
    }
  }
  return throttle_ms;
}

}  // namespace

Awaitable<Response> handle_fetch(RequestContext& ctx) {
  auto request = decode_request<FetchRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  auto refused = take_refused(ctx, *request);
  // Under a consumer_byte_rate quota a response asks for no more than the
  // quota lets through in one span (Kafka's max value in the quota window).
  if (auto window = request->replica_id < 0 ? fetch_quota_window_bytes(ctx) : std::nullopt) {
    request->max_bytes = int32_t(std::min<size_t>(size_t(std::max(request->max_bytes, 0)),
                                                  std::min<size_t>(*window, INT32_MAX)));
  }

  // max_wait_ms is the client's, capped by fetch.max.wait.ms.cap: a waiter
  // lives at most that long.
  const int32_t max_wait_ms =
      std::clamp(request->max_wait_ms, 0, std::max(broker.config().fetch_max_wait_ms_cap, 0));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(max_wait_ms);
  const size_t min_bytes = static_cast<size_t>(std::max(request->min_bytes, 1));

  // Register for wake-ups before the first read, so data that lands between
  // the read and the wait is not missed.
  auto wakeup = std::make_shared<Wakeup>(co_await asio::this_coro::executor);
  // A client that disconnects wakes the wait, and the waiter is dropped.
  auto client_gone = ctx.client_gone;
  auto gone = [&client_gone] { return client_gone && client_gone->gone(); };
  std::vector<std::shared_ptr<replication::Partition>> watched;
  FetchResponse response;
  while (true) {
    for (const auto& replica : watched) broker.fetch_waiters().remove(replica.get(), wakeup.get());
    watched.clear();
    wakeup->reset();
    for (const auto& topic : request->topics) {
      for (const auto& partition : topic.partitions) {
        if (auto replica = broker.replicas().get(topic.topic, partition.partition)) {
          broker.fetch_waiters().add(replica.get(), wakeup);
          watched.push_back(std::move(replica));
        }
      }
    }
    const Gathered gathered = read_once(broker, *request, ctx.api_version, response);
    bool any_error = false;
    for (const auto& t : response.responses) {
      for (const auto& p : t.partitions) any_error |= p.error_code != 0;
    }
    if (gathered.bytes >= min_bytes || gathered.follower_news || any_error || broker.stopping() ||
        gone() ||
        std::chrono::steady_clock::now() >= deadline) {
      break;
    }
    if (client_gone) client_gone->watch(wakeup);
    co_await wakeup->wait_until(deadline);
    if (gone()) break;
    if (!wakeup->notified() && std::chrono::steady_clock::now() >= deadline) {
      // Timed out: one last read so the answer reflects the latest state.
      read_once(broker, *request, ctx.api_version, response);
      break;
    }
  }
  for (const auto& replica : watched) broker.fetch_waiters().remove(replica.get(), wakeup.get());
  note_high_watermarks_sent(broker, *request, response);
  for (auto& topic : refused) response.responses.push_back(std::move(topic));
  const int32_t throttle_ms = apply_fetch_quota(ctx, *request, response);
  broker.metrics().record_fetched(response);
  co_return throttled(make_response(ctx, response), throttle_ms);
}

}  // namespace holdfast::server
