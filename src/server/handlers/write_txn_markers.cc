// WriteTxnMarkers (key 27, v0-1; KIP-98): the transaction coordinator asks
// this broker, as the leader of each listed partition, to write a COMMIT or
// ABORT marker for a producer (storage/txn_index.h). Inter-broker (and
// `holdfast txn abort`): served, not advertised; needs ClusterAction on the
// cluster (CLUSTER_AUTHORIZATION_FAILED on every partition otherwise). A
// coordinator writes its own partitions' markers in-process
// (write_txn_markers.h), so it never needs its own listener's credentials.
//
// Per marker and partition: the marker is appended through
// replication::Partition as the leader, after Kafka's checks (a producer
// epoch older than the partition's: INVALID_PRODUCER_EPOCH; a coordinator
// epoch older than the last marker's: TRANSACTION_COORDINATOR_FENCED), with
// acks=all semantics: the partition is answered once the high watermark
// passes the marker (min.insync.replicas checked before and after, as for a
// produce), so the decision cannot be lost to a leader change after the
// coordinator moved on. Errors per partition: UNKNOWN_TOPIC_OR_PARTITION,
// NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR, NOT_ENOUGH_REPLICAS(_AFTER_APPEND).
#include <memory>
#include <mutex>
#include <vector>

#include "base/log.h"
#include "server/broker.h"
#include "server/handlers/error_mapping.h"
#include "server/handlers/handlers.h"
#include "server/handlers/produce_append.h"
#include "server/handlers/write_txn_markers.h"
#include "server/security/access.h"
#include "storage/txn_index.h"

namespace holdfast::server {
namespace {

using protocol::WriteTxnMarkersRequest;
using protocol::WriteTxnMarkersResponse;

constexpr const char* kOffsetsTopic = "__consumer_offsets";

// The one mapping of this handler's failures to Kafka error codes.
int16_t marker_error_code(storage::Errc e) {
  if (e == storage::Errc::coordinator_fenced) return code(KafkaError::transaction_coordinator_fenced);
  return code(to_kafka_error(e));
}

struct Waiting {
  std::shared_ptr<replication::Partition> partition;
  int64_t end_offset;
  int32_t min_insync;
  int16_t* error_code;  // into State::response, sized before
  int64_t producer_id;
  bool commit;
};

// One write_txn_markers call, kept alive by its waits' callbacks.
struct State {
  WriteTxnMarkersResponse response;
  std::vector<Waiting> waiting;
  std::mutex mutex;
  size_t remaining = 0;
  std::function<void(WriteTxnMarkersResponse)> done;
};

// Every wait has completed: the group coordinator learns the outcome of the
// transaction's offsets (pending TxnOffsetCommit offsets become committed or
// are dropped), then the response is handed off.
void finish(Broker& broker, const std::shared_ptr<State>& state) {
  for (const auto& w : state->waiting) {
    if (*w.error_code != 0 || w.partition->topic() != kOffsetsTopic) continue;
    broker.groups().complete_txn(w.partition->index(), w.producer_id, w.commit);
  }
  auto done = std::move(state->done);
  done(std::move(state->response));
}

}  // namespace

void write_txn_markers(Broker& broker, const WriteTxnMarkersRequest& request, KafkaError denied,
                       std::function<void(WriteTxnMarkersResponse)> done) {
  auto state = std::make_shared<State>();
  state->done = std::move(done);
  WriteTxnMarkersResponse& response = state->response;
  // Sized before any pointer into it is taken.
  response.markers.resize(request.markers.size());
  for (size_t m = 0; m < request.markers.size(); ++m) {
    const auto& marker = request.markers[m];
    auto& marker_out = response.markers[m];
    marker_out.producer_id = marker.producer_id;
    marker_out.topics.resize(marker.topics.size());
    for (size_t t = 0; t < marker.topics.size(); ++t) {
      const auto& topic = marker.topics[t];
      auto& topic_out = marker_out.topics[t];
      topic_out.name = topic.name;
      topic_out.partitions.resize(topic.partition_indexes.size());
      for (size_t p = 0; p < topic.partition_indexes.size(); ++p) {
        const int32_t index = topic.partition_indexes[p];
        auto& out = topic_out.partitions[p];
        out.partition_index = index;
        if (denied != KafkaError::none) {
          out.error_code = code(denied);
          continue;
        }
        auto replica = broker.replicas().get(topic.name, index);
        if (!replica) {
          out.error_code = code(KafkaError::unknown_topic_or_partition);
          continue;
        }
        if (auto online = replica->check_online(); !online) {
          out.error_code = marker_error_code(online.code());
          continue;
        }
        const int32_t min_insync = min_insync_replicas(broker, topic.name);
        if (auto enough = replica->check_min_isr(min_insync); !enough) {
          out.error_code = code(to_kafka_error(enough.code()));
          continue;
        }
        const storage::ControlMarker control{
            marker.transaction_result ? storage::ControlType::commit : storage::ControlType::abort,
            marker.coordinator_epoch};
        Bytes batch = storage::make_control_batch(marker.producer_id, marker.producer_epoch,
                                                  control, broker.replicas().now_ms());
        auto header = record::parse_batch_header(batch.span());
        if (!header) {
          out.error_code = code(KafkaError::unknown_server_error);
          continue;
        }
        auto appended = replica->append(batch.span(), *header);
        if (!appended) {
          HF_DEBUG("marker for producer {} on {}-{} refused: {}", marker.producer_id, topic.name,
                   index, appended.error().message);
          out.error_code = marker_error_code(appended.code());
          continue;
        }
        out.error_code = code(KafkaError::none);
        state->waiting.push_back({replica, appended->last_offset + 1, min_insync, &out.error_code,
                                  marker.producer_id, marker.transaction_result});
      }
    }
  }
  if (state->waiting.empty()) return finish(broker, state);

  // acks=all: each partition is answered once its HW passes the marker. The
  // count is set before the first wait starts: a wait may complete inline.
  state->remaining = state->waiting.size();
  const size_t count = state->waiting.size();
  for (size_t i = 0; i < count; ++i) {
    const Waiting& w = state->waiting[i];
    w.partition->wait_for_high_watermark(
        w.end_offset,
        [&broker, state, i](Result<void, replication::Errc> acknowledged) {
          {
            std::lock_guard lock(state->mutex);
            if (!acknowledged) *state->waiting[i].error_code = code(to_kafka_error(acknowledged.code()));
            if (--state->remaining != 0) return;
          }
          finish(broker, state);
        },
        w.min_insync);
  }
}

Awaitable<Response> handle_write_txn_markers(RequestContext& ctx) {
  auto request = decode_request<WriteTxnMarkersRequest>(ctx);
  if (!request) co_return close_connection();
  const KafkaError denied = check_access(ctx, Access::write_txn_markers);
  auto response = co_await await_callback<WriteTxnMarkersResponse>(
      [&ctx, &request, denied](std::function<void(WriteTxnMarkersResponse)> resume) {
        write_txn_markers(ctx.broker, *request, denied, std::move(resume));
      });
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
