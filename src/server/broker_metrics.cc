#include "server/broker_metrics.h"

#include <mutex>

#include "replication/replica_manager.h"
#include "server/broker.h"
#include "server/connection.h"
#include "server/request.h"

namespace holdfast::server {
namespace {

double seconds_since(BrokerMetrics::Clock::time_point started) {
  return std::chrono::duration<double>(BrokerMetrics::Clock::now() - started).count();
}

}  // namespace

BrokerMetrics::BrokerMetrics()
    : messages_in_(registry_.counter("kafka_server_brokertopicmetrics_messagesin_total",
                                     "Records appended to the topic's partitions (retried "
                                     "duplicates of an idempotent producer not counted).",
                                     {"topic"})),
      bytes_in_(registry_.counter("kafka_server_brokertopicmetrics_bytesin_total",
                                  "Record batch bytes produced to the topic, as the clients sent "
                                  "them.",
                                  {"topic"})),
      bytes_out_(registry_.counter("kafka_server_brokertopicmetrics_bytesout_total",
                                   "Record batch bytes sent to fetchers from the topic.",
                                   {"topic"})),
      requests_(registry_.counter("kafka_network_requestmetrics_requests_total",
                                  "Kafka requests handled, by API.", {"request"})),
      request_latency_(registry_.histogram(
          "kafka_network_requestmetrics_totaltime_seconds",
          "Time from a request's arrival (frame read) to its response being ready, by API; "
          "includes fsync waits and long-poll waits.",
          {"request"})),
      produce_ack_latency_(registry_.histogram(
          "holdfast_produce_ack_latency_seconds",
          "Time from a Produce request's arrival to its acknowledgement, by acks (0: appended, "
          "no response; 1 and all: durable per the flush policy).",
          {"acks"})),
      fsync_latency_(registry_.histogram("holdfast_log_fsync_latency_seconds",
                                         "Duration of each fdatasync/fsync of a file or "
                                         "directory under the data directory.",
                                         {"dir"})),
      fsyncs_(registry_.counter("holdfast_log_fsyncs_total",
                                "fsyncs (files and directories) under the data directory; "
                                "rate() gives syncs per second.",
                                {"dir"})),
      unsynced_bytes_(registry_.gauge("holdfast_log_unsynced_bytes",
                                      "Bytes written under the data directory and not yet "
                                      "covered by an fsync (waiting for the flusher).",
                                      {"dir"})),
      throttle_time_(registry_.histogram(
          "holdfast_throttle_time_seconds",
          "Throttle time given to responses whose client exceeded its byte-rate quota "
          "(throttle_time_ms, and the time the connection is not read), by kind: produce "
          "(producer_byte_rate) or fetch (consumer_byte_rate).",
          {"kind"})),
      sasl_session_events_(registry_.counter(
          "holdfast_sasl_session_events_total",
          "SASL sessions under connections.max.reauth.ms (KIP-368), by event: reauthenticated "
          "(a connection authenticated again in time) or expired (a connection closed because "
          "a request came after its session ended).",
          {"event"})) {
  for (const auto& handler : api_handlers()) {
    if (handler.api_key < 0 || size_t(handler.api_key) >= kMaxApiKey) continue;
    const std::string name = protocol::api_name(handler.api_key);
    request_series_[size_t(handler.api_key)] = {&requests_.with({name}),
                                                &request_latency_.with({name})};
  }
  ack_latency_[0] = &produce_ack_latency_.with({"0"});
  ack_latency_[1] = &produce_ack_latency_.with({"1"});
  ack_latency_[2] = &produce_ack_latency_.with({"all"});
  throttle_[0] = &throttle_time_.with({"produce"});
  throttle_[1] = &throttle_time_.with({"fetch"});
  sasl_sessions_[0] = &sasl_session_events_.with({"reauthenticated"});
  sasl_sessions_[1] = &sasl_session_events_.with({"expired"});
}

TopicMetrics BrokerMetrics::topic(std::string_view name) {
  {
    std::shared_lock lock(topics_mu_);
    auto it = topics_.find(name);
    if (it != topics_.end()) return it->second;
  }
  std::unique_lock lock(topics_mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    std::string key(name);
    TopicMetrics metrics{messages_in_.shared({key}), bytes_in_.shared({key}),
                         bytes_out_.shared({key})};
    it = topics_.emplace(std::move(key), std::move(metrics)).first;
  }
  return it->second;
}

void BrokerMetrics::remove_topic(std::string_view name) {
  std::unique_lock lock(topics_mu_);
  const std::vector<std::string> labels{std::string(name)};
  messages_in_.remove(labels);
  bytes_in_.remove(labels);
  bytes_out_.remove(labels);
  if (auto it = topics_.find(name); it != topics_.end()) topics_.erase(it);
}

void BrokerMetrics::record_request(int16_t api_key, Clock::time_point started) {
  if (api_key < 0 || size_t(api_key) >= kMaxApiKey) return;
  const RequestSeries& series = request_series_[size_t(api_key)];
  if (!series.requests) return;  // not an API we serve
  series.requests->inc();
  series.latency->observe(seconds_since(started));
}

void BrokerMetrics::record_produce_ack(int16_t acks, Clock::time_point started) {
  metrics::Histogram* h = acks == 0    ? ack_latency_[0]
                          : acks == 1  ? ack_latency_[1]
                          : acks == -1 ? ack_latency_[2]
                                       : nullptr;
  if (h) h->observe(seconds_since(started));
}

void BrokerMetrics::record_throttle(bool produce, int64_t throttle_ms) {
  throttle_[produce ? 0 : 1]->observe(double(throttle_ms) / 1000.0);
}

void BrokerMetrics::record_fetched(const protocol::FetchResponse& response) {
  for (const auto& topic_response : response.responses) {
    size_t bytes = 0;
    for (const auto& p : topic_response.partitions) {
      if (p.records) bytes += p.records->size();
    }
    if (bytes > 0) topic(topic_response.topic).bytes_out->inc(bytes);
  }
}

SyncMetrics BrokerMetrics::sync_metrics(const std::string& data_dir) {
  return SyncMetrics{fsync_latency_.with({data_dir}), fsyncs_.with({data_dir}),
                     unsynced_bytes_.with({data_dir})};
}

void BrokerMetrics::add_broker_collectors(Broker& broker) {
  using metrics::MetricWriter;
  using metrics::Type;
  registry_.add_collector([&broker](MetricWriter& out) {
    auto logs = broker.replicas().all();
    out.begin("kafka_log_log_size", "Bytes of the partition's log segments.", Type::gauge);
    for (const auto& log : logs) {
      out.sample({{"topic", log->topic()}, {"partition", std::to_string(log->index())}},
                 log->size_bytes());
    }
    out.begin("kafka_log_log_logendoffset", "The partition's log end offset.", Type::gauge);
    for (const auto& log : logs) {
      out.sample({{"topic", log->topic()}, {"partition", std::to_string(log->index())}},
                 log->log_end_offset());
    }
    out.begin("kafka_log_log_logstartoffset", "The partition's log start offset.", Type::gauge);
    for (const auto& log : logs) {
      out.sample({{"topic", log->topic()}, {"partition", std::to_string(log->index())}},
                 log->log_start_offset());
    }
    out.begin("kafka_cluster_partition_highwatermark",
              "The partition's high watermark (what consumers may read).", Type::gauge);
    for (const auto& log : logs) {
      out.sample({{"topic", log->topic()}, {"partition", std::to_string(log->index())}},
                 log->high_watermark());
    }
    // Single node: every partition's ISR is this node, so none is
    // under-replicated. Exported (as 0) so that dashboards and alerts written
    // for Kafka work unchanged; it counts for real once replication exists.
    out.begin("kafka_server_replicamanager_underreplicatedpartitions",
              "Partitions led here whose ISR is smaller than their replica set (always 0 on a "
              "single node).",
              Type::gauge);
    out.sample({}, int64_t(0));
    int64_t offline = 0;
    int64_t producers = 0;
    for (const auto& log : logs) {
      offline += log->log().offline() ? 1 : 0;
      producers += int64_t(log->log().producer_count());
    }
    out.begin("kafka_controller_kafkacontroller_offlinepartitionscount",
              "Partitions offline (damage found at start-up; see holdfast log repair).",
              Type::gauge);
    out.sample({}, offline);
    out.begin("holdfast_idempotent_producers",
              "Producer ids whose idempotence state is tracked, summed over partitions.",
              Type::gauge);
    out.sample({}, producers);
  });
  registry_.add_collector([&broker](MetricWriter& out) {
    out.begin("holdfast_network_connections", "Client connections open now.", Type::gauge);
    auto* network = const_cast<NetworkServer*>(broker.network());
    out.sample({}, int64_t(network ? network->open_connections() : 0));
    out.begin("holdfast_connections_refused_total",
              "Client connections accepted and closed at once because a limit was reached "
              "(max.connections, max.connections.per.ip), by limit.",
              Type::counter);
    for (auto reason : {ConnectionLimits::Refusal::max_connections,
                        ConnectionLimits::Refusal::max_connections_per_ip}) {
      out.sample({{"reason", to_string(reason)}},
                 network ? network->connections_refused(reason) : int64_t(0));
    }
    out.begin("holdfast_connections_closed_total",
              "Client connections the broker closed under connections.max.idle.ms, by reason: "
              "idle (nothing read, handled or written), slow_request (a request frame not whole "
              "in time) or unread_responses (the client took none of its responses); and "
              "connections whose TLS handshake failed (tls_handshake).",
              Type::counter);
    const ConnectionCloseCounts* closes = network ? &network->connection_closes() : nullptr;
    out.sample({{"reason", "idle"}}, closes ? closes->idle.load() : int64_t(0));
    out.sample({{"reason", "slow_request"}}, closes ? closes->slow_request.load() : int64_t(0));
    out.sample({{"reason", "unread_responses"}},
               closes ? closes->unread_responses.load() : int64_t(0));
    out.sample({{"reason", "tls_handshake"}}, closes ? closes->tls_handshake.load() : int64_t(0));
    out.begin("holdfast_network_requests_in_flight", "Requests read and not yet answered.",
              Type::gauge);
    out.sample({}, network ? network->in_flight_requests() : int64_t(0));
    out.begin("holdfast_request_budget_in_use_bytes",
              "Request bytes being read or handled (queued.max.request.bytes budget in use).",
              Type::gauge);
    out.sample({}, broker.request_budget()->in_use());
    out.begin("holdfast_request_budget_capacity_bytes", "queued.max.request.bytes.", Type::gauge);
    out.sample({}, broker.request_budget()->capacity());
  });
  registry_.add_collector([&broker](MetricWriter& out) {
    auto counts = broker.groups().load_counts();
    out.begin("holdfast_coordinator_partitions",
              "__consumer_offsets partitions by coordinator load state (loading: groups there "
              "answer COORDINATOR_LOAD_IN_PROGRESS).",
              Type::gauge);
    out.sample({{"state", "loading"}}, int64_t(counts.loading));
    out.sample({{"state", "active"}}, int64_t(counts.active));
    out.sample({{"state", "failed"}}, int64_t(counts.failed));
    // Consumer lag, computed here at scrape time: high watermark (the log end
    // offset consumers and Kafka's tools see) minus the committed offset.
    out.begin("kafka_consumergroup_lag",
              "Messages the group has not committed yet: the partition's high watermark minus "
              "the group's committed offset (never negative).",
              Type::gauge);
    auto groups = broker.groups().list_groups({});
    if (!groups) return;  // loading: no lag samples yet
    for (const auto& listing : *groups) {
      auto committed = broker.groups().fetch_offsets(listing.group_id, std::nullopt, false);
      if (committed.error != coordinator::GroupErrc::none) continue;
      for (const auto& o : committed.offsets) {
        if (o.error != coordinator::GroupErrc::none || o.offset < 0) continue;
        auto log = broker.replicas().get(o.tp.topic, o.tp.partition);
        if (!log) continue;
        out.sample({{"group", listing.group_id},
                    {"topic", o.tp.topic},
                    {"partition", std::to_string(o.tp.partition)}},
                   std::max<int64_t>(0, log->high_watermark() - o.offset));
      }
    }
  });
}

}  // namespace holdfast::server
