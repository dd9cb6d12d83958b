// The broker's metrics (docs/metrics.md lists every one): the registry, the
// series that request paths update (created once here, so a hook is one
// atomic add), and the scrape-time collectors that read the broker's state.
//
// Hooks (one line each, kept easy to re-apply when handlers move):
//  - Connection::handle: record_request(api key, start time);
//  - Produce: topic(name).record_in(...) per appended batch, and
//    record_produce_ack(acks, start time) before answering;
//  - Fetch: record_fetched(response) on the response that is sent;
//  - fsyncs: MeteredFileSystem (metered_file_system.h) under the logs.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "base/metrics.h"
#include "protocol/messages.h"

namespace holdfast::server {

class Broker;

// A topic's series. Handed out by value: the shared pointers keep the
// counters alive for a request that is updating them while the topic is
// deleted (its updates then go nowhere, see BrokerMetrics::remove_topic).
struct TopicMetrics {
  std::shared_ptr<metrics::Counter> messages_in;
  std::shared_ptr<metrics::Counter> bytes_in;
  std::shared_ptr<metrics::Counter> bytes_out;

  void record_in(int64_t messages, size_t bytes) const {
    messages_in->inc(uint64_t(messages));
    bytes_in->inc(bytes);
  }
};

// fsyncs of one data directory.
struct SyncMetrics {
  metrics::Histogram& latency;
  metrics::Counter& syncs;
  metrics::Gauge& unsynced_bytes;
};

class BrokerMetrics {
 public:
  using Clock = std::chrono::steady_clock;

  BrokerMetrics();
  BrokerMetrics(const BrokerMetrics&) = delete;
  BrokerMetrics& operator=(const BrokerMetrics&) = delete;

  metrics::Registry& registry() { return registry_; }
  // GET /metrics.
  std::string expose() const { return registry_.expose(); }

  // The topic's series, created on first use; later calls find it under a
  // shared lock without building a string (one lookup per partition of a
  // request, not per message).
  TopicMetrics topic(std::string_view name);
  // Drops the topic's per-topic series (messagesin, bytesin, bytesout) from
  // the exposition, so that a topic created again under the same name starts
  // from zero instead of inheriting the deleted topic's counts. Called by the
  // broker's topic-deleted listener, after the topic's logs are gone.
  void remove_topic(std::string_view name);

  // One request of `api_key` answered (or dropped) `started` ago.
  void record_request(int16_t api_key, Clock::time_point started);
  // A produce with `acks` answered, `started` ago (after its fsync for acks != 0).
  void record_produce_ack(int16_t acks, Clock::time_point started);
  // Bytes out per topic: the record bytes of a Fetch response that is sent.
  void record_fetched(const protocol::FetchResponse& response);
  // A response throttled by a client quota (produce: producer_byte_rate,
  // else fetch: consumer_byte_rate) for `throttle_ms`.
  void record_throttle(bool produce, int64_t throttle_ms);
  // SASL sessions (KIP-368, connections.max.reauth.ms): a connection that
  // re-authenticated in time, and one closed because its session expired.
  void record_reauthentication() { sasl_sessions_[0]->inc(); }
  void record_session_expired() { sasl_sessions_[1]->inc(); }

  SyncMetrics sync_metrics(const std::string& data_dir);

  // Registers the scrape-time collectors that read `broker` (log sizes and
  // offsets, consumer lag, connections, request budget, idempotent
  // producers, coordinator load state, under-replicated partitions). Call
  // once the broker is started; `broker` must outlive every later scrape.
  void add_broker_collectors(Broker& broker);

 private:
  struct RequestSeries {
    metrics::Counter* requests = nullptr;
    metrics::Histogram* latency = nullptr;
  };

  metrics::Registry registry_;
  metrics::Family<metrics::Counter>& messages_in_;
  metrics::Family<metrics::Counter>& bytes_in_;
  metrics::Family<metrics::Counter>& bytes_out_;
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& request_latency_;
  metrics::Family<metrics::Histogram>& produce_ack_latency_;
  metrics::Family<metrics::Histogram>& fsync_latency_;
  metrics::Family<metrics::Counter>& fsyncs_;
  metrics::Family<metrics::Gauge>& unsynced_bytes_;
  metrics::Histogram* ack_latency_[3] = {};  // acks 0, 1, all
  metrics::Family<metrics::Histogram>& throttle_time_;
  metrics::Histogram* throttle_[2] = {};  // produce, fetch
  metrics::Family<metrics::Counter>& sasl_session_events_;
  metrics::Counter* sasl_sessions_[2] = {};  // reauthenticated, expired

  static constexpr size_t kMaxApiKey = 128;
  std::array<RequestSeries, kMaxApiKey> request_series_{};

  std::shared_mutex topics_mu_;
  std::map<std::string, TopicMetrics, std::less<>> topics_;
};

}  // namespace holdfast::server
