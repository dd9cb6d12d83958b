#include <algorithm>
#include <memory>
#include <string>

#include "base/log.h"
#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"
#include "server/handlers/produce_append.h"
#include "server/handlers/quota_throttle.h"
#include "server/security/access.h"

namespace holdfast::server {
namespace {

using protocol::ProduceRequest;
using protocol::ProduceResponse;
using PartitionResponse = ProduceResponse::PartitionProduceResponse;

// How the wait for acknowledgements ended: the batches that failed, and
// whether the request's timeout came first (`pending`: not answered by then).
struct WaitOutcome {
  std::vector<std::pair<size_t, Error<replication::Errc>>> failed;
  std::vector<bool> pending;
  bool timed_out = false;
};

}  // namespace

Awaitable<Response> handle_produce(RequestContext& ctx) {
  auto request = decode_request<ProduceRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;
  const int16_t acks = request->acks;
  const auto started = BrokerMetrics::Clock::now();

  ProduceResponse response;
  // (partition, end offset, response) for every append the high watermark
  // must pass before we answer.
  struct ToSync {
    std::shared_ptr<replication::Partition> partition;
    int64_t end_offset;
    int32_t min_insync;  // acks=all
    PartitionResponse* response;
  };
  std::vector<ToSync> to_sync;
  bool any_error = false;

  const KafkaError transaction_denied =
      request->transactional_id ? check_access(ctx, Access::produce_transactional_id, *request->transactional_id)
                                : KafkaError::none;
  // KIP-890 with the coordinator on another broker: the batches that would
  // open a transaction here wait for one question to that broker; every
  // other batch is appended at once, before this coroutine first suspends,
  // so batches of one connection reach a partition in the order they came
  // (the remote answers, on one inter-broker connection, come back in
  // order too).
  RemoteTxnVerdicts remote_verdicts;
  if (request->transactional_id && transaction_denied == KafkaError::none) {
    remote_verdicts = partitions_to_verify_remotely(broker, *request);
  }
  struct Deferred {
    const std::string* topic;
    int32_t partition;
    std::span<const uint8_t> records;
    PartitionResponse* out;
  };
  std::vector<Deferred> deferred;
  auto append = [&](const std::string& topic, int32_t partition, std::span<const uint8_t> records,
                    PartitionResponse& out) {
    auto appended = append_produced_batch(broker, topic, partition, records,
                                          ctx.api_version >= 7, ctx.client(), acks,
                                          request->transactional_id, &remote_verdicts);
    if (!appended) {
      out.error_code = code(appended.code());
      if (!appended.error().message.empty()) out.error_message = appended.error().message;
      any_error = true;
      return;
    }
    out.error_code = code(KafkaError::none);
    out.base_offset = appended->base_offset;
    out.log_append_time_ms = appended->log_append_time_ms;
    out.log_start_offset = appended->log_start_offset;
    if (acks != 0 && appended->needs_sync) {
      to_sync.push_back(
          {appended->partition, appended->last_offset + 1, appended->min_insync, &out});
    }
  };
  response.responses.reserve(request->topic_data.size());
  for (auto& topic : request->topic_data) {
    const KafkaError denied = transaction_denied != KafkaError::none
                                  ? transaction_denied
                                  : check_access(ctx, Access::produce_topic, topic.name);
    auto& topic_response = response.responses.emplace_back();
    topic_response.name = topic.name;
    topic_response.partition_responses.reserve(topic.partition_data.size());
    for (auto& partition : topic.partition_data) {
      auto& out = topic_response.partition_responses.emplace_back();
      out.index = partition.index;
      out.base_offset = -1;
      out.log_append_time_ms = -1;
      out.log_start_offset = -1;
      auto fail = [&](KafkaError error, const std::string& why) {
        out.error_code = code(error);
        if (!why.empty()) out.error_message = why;
        any_error = true;
      };
      if (denied != KafkaError::none) {
        fail(denied, "");
        continue;
      }
      if (acks != 0 && acks != 1 && acks != -1) {
        fail(KafkaError::invalid_required_acks, "acks must be -1, 0 or 1");
        continue;
      }
      const std::span<const uint8_t> records =
          partition.records ? partition.records->span() : std::span<const uint8_t>();
      if (remote_verdicts.count({topic.name, partition.index})) {
        deferred.push_back({&topic.name, partition.index, records, &out});
        continue;
      }
      append(topic.name, partition.index, records, out);
    }
  }
  if (!deferred.empty()) {
    co_await ask_remote_coordinator(broker, *request, remote_verdicts);
    for (auto& d : deferred) append(*d.topic, d.partition, d.records, *d.out);
  }

  if (acks == 0) {
    // No response at all; on error Kafka closes the connection so the
    // producer notices.
    if (any_error) {
      HF_WARN("closing connection from {}: acks=0 produce failed", ctx.client());
      co_return close_connection();
    }
    broker.metrics().record_produce_ack(acks, started);
    co_return throttled(no_response(),
                        record_quota(ctx, QuotaKind::produce, produce_record_bytes(*request)));
  }

  if (!to_sync.empty()) {
    // acks=all: until the high watermark passes each batch (group commit: one
    // fdatasync on the flusher thread covers many requests; with followers,
    // until every ISR member fetched past it). acks=1: this replica's own.
    // acks=all also ends at the request's timeout_ms (Kafka's DelayedProduce):
    // the batches still waiting are answered REQUEST_TIMED_OUT, so a leader
    // cut off from its followers tells its clients instead of leaving them to
    // their socket timeouts. The batch stays in the log; an idempotent retry
    // gets its original offsets once it is acknowledged. timeout_ms <= 0 waits
    // without a limit, and so does a partition without followers (a single
    // node: only its own fsync is awaited, and no timer is armed on that path).
    const bool has_followers = std::any_of(to_sync.begin(), to_sync.end(), [](const ToSync& s) {
      return s.partition->replicas().size() > 1;
    });
    const int32_t timeout_ms = acks == -1 && has_followers ? request->timeout_ms : 0;
    // On this coroutine's executor; cancelled (or destroyed) here after the
    // wait, so no other thread touches it.
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto outcome = co_await await_callback<std::shared_ptr<WaitOutcome>>(
        [&to_sync, acks, timeout_ms,
         &timer](std::function<void(std::shared_ptr<WaitOutcome>)> resume) {
          struct State {
            std::mutex mutex;
            size_t remaining;
            bool resumed = false;
            std::shared_ptr<WaitOutcome> outcome = std::make_shared<WaitOutcome>();
            std::function<void(std::shared_ptr<WaitOutcome>)> resume_fn;
          };
          auto state = std::make_shared<State>();
          state->remaining = to_sync.size();
          state->outcome->pending.assign(to_sync.size(), true);
          state->resume_fn = std::move(resume);
          if (timeout_ms > 0) {
            timer.expires_after(std::chrono::milliseconds(timeout_ms));
            timer.async_wait([state](const asio::error_code& ec) {
              if (ec) return;  // cancelled: every batch was answered first
              {
                std::lock_guard lock(state->mutex);
                if (state->resumed) return;
                state->resumed = true;
                state->outcome->timed_out = true;
              }
              state->resume_fn(state->outcome);
            });
          }
          for (size_t i = 0; i < to_sync.size(); ++i) {
            auto done = [state, i](Result<void, replication::Errc> acknowledged) {
              {
                std::lock_guard lock(state->mutex);
                if (state->resumed) return;  // answered REQUEST_TIMED_OUT already
                state->outcome->pending[i] = false;
                if (!acknowledged) state->outcome->failed.emplace_back(i, acknowledged.error());
                if (--state->remaining != 0) return;
                state->resumed = true;
              }
              state->resume_fn(state->outcome);
            };
            if (acks == -1) {
              to_sync[i].partition->wait_for_high_watermark(to_sync[i].end_offset, std::move(done),
                                                            to_sync[i].min_insync);
            } else {
              to_sync[i].partition->wait_for_local(to_sync[i].end_offset, std::move(done));
            }
          }
        });
    timer.cancel();
    for (const auto& [i, error] : outcome->failed) {
      // Not acknowledged: the batch is in the log but its fsync failed (the
      // log refuses further writes until restart), leadership moved, or the
      // ISR fell below min.insync.replicas. The client retries.
      to_sync[i].response->error_code = code(to_kafka_error(error.code));
      to_sync[i].response->error_message =
          error.code == replication::Errc::log_failed
              ? "the log could not be made durable (fsync failed)"
              : error.message;
      to_sync[i].response->base_offset = -1;
    }
    if (outcome->timed_out) {
      for (size_t i = 0; i < to_sync.size(); ++i) {
        if (!outcome->pending[i]) continue;
        to_sync[i].response->error_code = code(KafkaError::request_timed_out);
        to_sync[i].response->error_message = fmt::format(
            "not replicated to the in-sync replicas within the request's timeout ({} ms)",
            timeout_ms);
        to_sync[i].response->base_offset = -1;
      }
    }
  }
  broker.metrics().record_produce_ack(acks, started);
  // Client quotas (KIP-219): answered at once with the throttle time, then
  // the connection is muted for it.
  response.throttle_time_ms = record_quota(ctx, QuotaKind::produce, produce_record_bytes(*request));
  co_return throttled(make_response(ctx, response), response.throttle_time_ms);
}

}  // namespace holdfast::server
