#include <algorithm>
#include <memory>
#include <string>

#include "base/log.h"
#include "record/batch.h"
#include "record/recompress.h"
#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"
#include "server/topic_config.h"

namespace holdfast::server {
namespace {

using protocol::ProduceRequest;
using protocol::ProduceResponse;
using PartitionResponse = ProduceResponse::PartitionProduceResponse;

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
    PartitionResponse* response;
  };
  std::vector<ToSync> to_sync;
  bool any_error = false;

  // compression.type per topic, from the metadata image of this request.
  auto image = broker.topics().image();
  auto topic_codec = [&image](const std::string& name) -> std::optional<int8_t> {
    const auto* info = image->find_topic(name);
    return info ? topic_compression(info->configs) : std::nullopt;
  };

  response.responses.reserve(request->topic_data.size());
  for (auto& topic : request->topic_data) {
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
      if (acks != 0 && acks != 1 && acks != -1) {
        fail(KafkaError::invalid_required_acks, "acks must be -1, 0 or 1");
        continue;
      }
      if (is_internal_topic(topic.name)) {
        // Only the coordinators write there (Kafka: "Cannot append to internal topic").
        fail(KafkaError::invalid_topic_exception, "cannot produce to internal topic " + topic.name);
        continue;
      }
      std::shared_ptr<replication::Partition> replica =
          broker.replicas().get(topic.name, partition.index);
      if (!replica) {
        fail(KafkaError::unknown_topic_or_partition, "");
        continue;
      }
      const storage::LogConfig config = replica->config();
      if (!partition.records || partition.records->empty()) {
        fail(KafkaError::invalid_record, "no records");
        continue;
      }
      const Bytes& records = *partition.records;
      auto header = record::validate_produced_batch(
          records.span(), {static_cast<size_t>(config.max_message_bytes), ctx.api_version >= 7});
      if (!header) {
        HF_DEBUG("produce to {}-{} from {} rejected: {}", topic.name, partition.index,
                 ctx.client(), header.error().message);
        fail(to_kafka_error(header.code()), header.error().message);
        continue;
      }
      if (header->is_transactional()) {
        fail(KafkaError::invalid_txn_state, "transactions are not supported yet");
        continue;
      }
      // compression.type other than `producer`: the batch is stored (and so
      // fetched) in the topic's codec, as Kafka's LogValidator does. Producer
      // id, epoch and sequence stay, so idempotence works unchanged.
      std::span<const uint8_t> to_append = records.span();
      record::BatchHeader append_header = *header;
      Bytes recompressed;
      const std::optional<int8_t> codec = topic_codec(topic.name);
      if (codec && int(header->compression()) != *codec) {
        const size_t bound = std::max(record::kMinDecompressedBound,
                                      size_t(config.max_message_bytes) *
                                          record::kDecompressionFactor);
        auto rewritten = record::recompress_batch(
            records.span(), record::Compression(*codec), bound);
        if (!rewritten) {
          fail(to_kafka_error(rewritten.code()), rewritten.error().message);
          continue;
        }
        if (rewritten->size() > size_t(config.max_message_bytes)) {
          fail(KafkaError::message_too_large,
               "record batch of " + std::to_string(rewritten->size()) + " bytes after " +
                   record::to_string(record::Compression(*codec)) +
                   " recompression exceeds max.message.bytes");
          continue;
        }
        auto rewritten_header = record::parse_batch_header(rewritten->span());
        if (!rewritten_header) {
          fail(to_kafka_error(rewritten_header.code()), rewritten_header.error().message);
          continue;
        }
        recompressed = std::move(*rewritten);
        append_header = *rewritten_header;
        to_append = recompressed.span();
      }
      // The idempotence check runs inside append, under the partition lock.
      // Handlers of pipelined requests start in arrival order and reach this
      // append before their first suspension, so a producer's in-flight
      // batches are checked and appended in the order it sent them.
      auto appended = replica->append(to_append, append_header);  // in the partition's leader epoch
      if (!appended) {
        const bool producer_error = appended.code() == storage::Errc::out_of_order_sequence ||
                                    appended.code() == storage::Errc::invalid_producer_epoch;
        if (producer_error) {
          HF_DEBUG("produce to {}-{} from {} rejected: {}", topic.name, partition.index,
                   ctx.client(), appended.error().message);
        } else {
          HF_ERROR("append to {}-{} failed: {}", topic.name, partition.index,
                   appended.error().message);
        }
        fail(to_kafka_error(appended.code()), appended.error().message);
        continue;
      }
      if (appended->duplicate) {
        // A retry of a batch already in the log: success with the ORIGINAL
        // offsets. It is acknowledged only once the high watermark passes the
        // original (the wait below uses the original's end offset), because
        // the first attempt may not have been fsynced yet.
        HF_DEBUG("produce to {}-{} from {}: duplicate of the batch at offset {}", topic.name,
                 partition.index, ctx.client(), appended->base_offset);
      }
      if (!appended->duplicate) {
        broker.metrics().topic(topic.name).record_in(header->records_count, records.size());
      }
      out.error_code = code(KafkaError::none);
      out.base_offset = appended->base_offset;
      out.log_append_time_ms = appended->log_append_time_ms;
      out.log_start_offset = replica->log_start_offset();
      // Acknowledged once the high watermark passes the batch: under
      // flush.policy=always when an fdatasync covers it (group commit); under
      // interval/never the high watermark is already at the log end.
      const int64_t end_offset = appended->last_offset + 1;
      if (acks != 0 && !replica->high_watermark_reached(end_offset)) {
        to_sync.push_back({replica, end_offset, &out});
      }
    }
  }

  if (acks == 0) {
    // No response at all; on error Kafka closes the connection so the
    // producer notices.
    if (any_error) {
      HF_WARN("closing connection from {}: acks=0 produce failed", ctx.client());
      co_return close_connection();
    }
    broker.metrics().record_produce_ack(acks, started);
    co_return no_response();
  }

  if (!to_sync.empty()) {
    // Group commit: one fdatasync on the flusher thread covers many requests.
    auto failed = co_await await_callback<std::shared_ptr<std::vector<size_t>>>(
        [&to_sync](std::function<void(std::shared_ptr<std::vector<size_t>>)> resume) {
          struct State {
            std::mutex mutex;
            size_t remaining;
            std::shared_ptr<std::vector<size_t>> failed = std::make_shared<std::vector<size_t>>();
            std::function<void(std::shared_ptr<std::vector<size_t>>)> resume_fn;
          };
          auto state = std::make_shared<State>();
          state->remaining = to_sync.size();
          state->resume_fn = std::move(resume);
          for (size_t i = 0; i < to_sync.size(); ++i) {
            to_sync[i].partition->wait_for_high_watermark(
                to_sync[i].end_offset,
                [state, i](Result<void, storage::Errc> synced) {
                  bool last = false;
                  {
                    std::lock_guard lock(state->mutex);
                    if (!synced) state->failed->push_back(i);
                    last = --state->remaining == 0;
                  }
                  if (last) state->resume_fn(state->failed);
                });
          }
        });
    for (size_t i : *failed) {
      // The batch was written but its fsync failed: it is not acknowledged.
      // The client retries; the log refuses further writes until restart.
      to_sync[i].response->error_code = code(KafkaError::kafka_storage_error);
      to_sync[i].response->error_message = "the log could not be made durable (fsync failed)";
      to_sync[i].response->base_offset = -1;
    }
  }
  broker.metrics().record_produce_ack(acks, started);
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
