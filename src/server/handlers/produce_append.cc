#include "server/handlers/produce_append.h"

#include <algorithm>
#include <charconv>

#include "base/log.h"
#include "record/batch.h"
#include "record/recompress.h"
#include "replication/replica_manager.h"
#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/topic_config.h"

namespace holdfast::server {

int32_t min_insync_replicas(Broker& broker, const std::string& topic) {
  int32_t min_insync = broker.config().effective_min_insync_replicas();
  auto image = broker.topics().image();
  if (const auto* info = image->find_topic(topic)) {
    auto it = info->configs.find("min.insync.replicas");
    int32_t parsed = 0;
    if (it != info->configs.end()) {
      auto [end, ec] =
          std::from_chars(it->second.data(), it->second.data() + it->second.size(), parsed);
      if (ec == std::errc() && parsed >= 1) min_insync = parsed;  // validated when set
    }
  }
  return min_insync;
}

namespace {

// KIP-890 part 1, see produce_append.h. Empty: the batch may be appended.
std::optional<std::pair<KafkaError, std::string>> verify_transactional_batch(
    Broker& broker, const replication::Partition& replica, const std::string& topic,
    int32_t partition, const record::BatchHeader& header,
    const std::optional<std::string>& transactional_id, const RemoteTxnVerdicts* remote) {
  using coordinator::TxnErrc;
  if (!header.is_transactional()) return std::nullopt;
  if (!transactional_id || transactional_id->empty()) {
    return std::pair{KafkaError::invalid_request,
                     std::string("a transactional batch needs the request's transactional_id")};
  }
  // Already in a transaction here: the partition was verified when its
  // first batch came (a marker ends it, and the next one is verified again).
  if (auto state = replica.producer_state(header.producer_id);
      state && state->current_txn_first_offset >= 0 && state->epoch == header.producer_epoch) {
    return std::nullopt;
  }
  const TxnErrc verified = broker.transactions().verify_partition(
      *transactional_id, header.producer_id, header.producer_epoch, {topic, partition});
  if (verified == TxnErrc::not_coordinator) {
    // Another broker's id: its answer was fetched before the append.
    const RemoteTxnVerdict* verdict = nullptr;
    if (remote) {
      auto it = remote->find({topic, partition});
      if (it != remote->end()) verdict = &it->second;
    }
    if (verdict == nullptr) {
      return std::pair{KafkaError::not_enough_replicas,
                       std::string("the transaction coordinator was not asked to verify the "
                                   "partition; retry")};
    }
    if (verdict->error != KafkaError::none) return std::pair{verdict->error, verdict->why};
    // The guard: a marker (or anything else) that changed the producer's
    // entry here while the coordinator was asked makes its answer stale.
    if (replica.producer_state(header.producer_id) != verdict->asked_with) {
      return std::pair{KafkaError::not_enough_replicas,
                       std::string("the producer's state in the partition changed while the "
                                   "transaction coordinator was asked; retry")};
    }
    return std::nullopt;
  }
  switch (verified) {
    case TxnErrc::none:
      return std::nullopt;
    case TxnErrc::coordinator_load_in_progress:
    case TxnErrc::coordinator_not_available:
      // Retriable for every client version (Kafka maps these the same way).
      return std::pair{KafkaError::not_enough_replicas,
                       std::string("the transaction coordinator is not available to verify the "
                                   "partition; retry")};
    case TxnErrc::producer_fenced:
      return std::pair{KafkaError::invalid_producer_epoch,
                       std::string("the producer epoch is not the transaction's")};
    default:
      return std::pair{KafkaError::invalid_txn_state,
                       std::string("the partition is not part of the producer's ongoing "
                                   "transaction (AddPartitionsToTxn first)")};
  }
}

}  // namespace

Result<ProducedAppend, KafkaError> append_produced_batch(
    Broker& broker, const std::string& topic, int32_t partition, std::span<const uint8_t> records,
    bool allow_zstd, const std::string& client, int16_t acks,
    const std::optional<std::string>& transactional_id, const RemoteTxnVerdicts* remote) {
  if (is_internal_topic(topic)) {
    // Only the coordinators write there (Kafka: "Cannot append to internal topic").
    return make_error(KafkaError::invalid_topic_exception,
                      "cannot produce to internal topic " + topic);
  }
  std::shared_ptr<replication::Partition> replica = broker.replicas().get(topic, partition);
  if (!replica) return make_error(KafkaError::unknown_topic_or_partition, std::string());
  // A follower (or a replica that lost leadership) takes no produce.
  if (auto leading = replica->check_min_isr(0); !leading) {
    return make_error(to_kafka_error(leading.code()), leading.error().message);
  }
  const storage::LogConfig config = replica->config();
  if (records.empty()) return make_error(KafkaError::invalid_record, "no records");
  auto header = record::validate_produced_batch(
      records, {static_cast<size_t>(config.max_message_bytes), allow_zstd});
  if (!header) {
    HF_DEBUG("produce to {}-{} from {} rejected: {}", topic, partition, client,
             header.error().message);
    return make_error(to_kafka_error(header.code()), header.error().message);
  }
  // A transactional batch starts or extends its producer's ongoing
  // transaction in this partition (storage/producer_state.h); a control
  // batch was refused above (INVALID_RECORD: only WriteTxnMarkers writes
  // markers). One that would start it is verified first (KIP-890).
  if (auto refused = verify_transactional_batch(broker, *replica, topic, partition, *header,
                                                transactional_id, remote)) {
    HF_DEBUG("produce to {}-{} from {} refused: {}", topic, partition, client, refused->second);
    return make_error(refused->first, refused->second);
  }
  // compression.type other than `producer`: the batch is stored (and so
  // fetched) in the topic's codec, as Kafka's LogValidator does. Producer
  // id, epoch and sequence stay, so idempotence works unchanged.
  std::span<const uint8_t> to_append = records;
  record::BatchHeader append_header = *header;
  Bytes recompressed;
  std::optional<int8_t> codec;
  {
    auto image = broker.topics().image();
    const auto* info = image->find_topic(topic);
    if (info) codec = topic_compression(info->configs);
  }
  if (codec && int(header->compression()) != *codec) {
    const size_t bound = std::max(record::kMinDecompressedBound,
                                  size_t(config.max_message_bytes) * record::kDecompressionFactor);
    auto rewritten = record::recompress_batch(records, record::Compression(*codec), bound);
    if (!rewritten) return make_error(to_kafka_error(rewritten.code()), rewritten.error().message);
    if (rewritten->size() > size_t(config.max_message_bytes)) {
      return make_error(KafkaError::message_too_large,
                        "record batch of " + std::to_string(rewritten->size()) + " bytes after " +
                            record::to_string(record::Compression(*codec)) +
                            " recompression exceeds max.message.bytes");
    }
    auto rewritten_header = record::parse_batch_header(rewritten->span());
    if (!rewritten_header) {
      return make_error(to_kafka_error(rewritten_header.code()), rewritten_header.error().message);
    }
    recompressed = std::move(*rewritten);
    append_header = *rewritten_header;
    to_append = recompressed.span();
  }
  // acks=all with fewer in-sync replicas than the topic requires: refused
  // before anything is written (decision 5). Checked again when the high
  // watermark passes the batch (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
  const int32_t min_insync = acks == -1 ? min_insync_replicas(broker, topic) : 0;
  if (min_insync > 0) {
    if (auto enough = replica->check_min_isr(min_insync); !enough) {
      HF_DEBUG("produce to {}-{} from {} refused: {}", topic, partition, client,
               enough.error().message);
      return make_error(to_kafka_error(enough.code()), enough.error().message);
    }
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
      HF_DEBUG("produce to {}-{} from {} rejected: {}", topic, partition, client,
               appended.error().message);
    } else {
      HF_ERROR("append to {}-{} failed: {}", topic, partition, appended.error().message);
    }
    return make_error(to_kafka_error(appended.code()), appended.error().message);
  }
  if (appended->duplicate) {
    // A retry of a batch already in the log: success with the ORIGINAL
    // offsets. It is acknowledged only once the high watermark passes the
    // original (the caller waits on the original's end offset), because the
    // first attempt may not have been fsynced yet.
    HF_DEBUG("produce to {}-{} from {}: duplicate of the batch at offset {}", topic, partition,
             client, appended->base_offset);
  } else {
    broker.metrics().topic(topic).record_in(header->records_count, records.size());
  }
  ProducedAppend out;
  out.partition = replica;
  out.base_offset = appended->base_offset;
  out.last_offset = appended->last_offset;
  out.log_append_time_ms = appended->log_append_time_ms;
  out.log_start_offset = replica->log_start_offset();
  out.duplicate = appended->duplicate;
  out.min_insync = min_insync;
  // acks=all is acknowledged once the high watermark passes the batch: alone,
  // under flush.policy=always when an fdatasync covers it (group commit),
  // under interval/never at once; with followers when every ISR member
  // fetched past it. acks=1 needs only this replica's own part.
  const int64_t end = appended->last_offset + 1;
  out.needs_sync = acks == -1 ? !replica->high_watermark_reached(end)
                              : !replica->locally_acknowledgeable(end);
  return out;
}

}  // namespace holdfast::server
