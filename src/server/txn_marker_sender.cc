#include "server/txn_marker_sender.h"

#include <map>
#include <mutex>

#include "base/log.h"
#include "server/broker.h"
#include "server/cluster/cluster_view.h"
#include "server/handlers/write_txn_markers.h"

namespace holdfast::server {

void KafkaTxnMarkerSender::send(coordinator::TxnMarkers markers,
                                std::function<void(std::vector<coordinator::TxnPartition>)> done) {
  using coordinator::TxnPartition;
  auto image = broker_.metadata_log().current();
  std::vector<TxnPartition> acknowledged;
  std::map<int32_t, std::vector<TxnPartition>> by_leader;
  for (const auto& tp : markers.partitions) {
    const auto* info = image->find_topic(tp.topic);
    if (info == nullptr || tp.partition < 0 || tp.partition >= info->partition_count) {
      HF_INFO("transaction markers: {}-{} no longer exists; producer {} needs no marker there",
              tp.topic, tp.partition, markers.producer_id);
      acknowledged.push_back(tp);
      continue;
    }
    int32_t leader = info->partitions[tp.partition].leader;
    if (leader < 0) continue;  // offline: retried
    by_leader[leader].push_back(tp);
  }
  struct Pending {
    std::mutex mu;
    int outstanding = 0;
    std::vector<TxnPartition> acknowledged;
    std::function<void(std::vector<TxnPartition>)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->acknowledged = std::move(acknowledged);
  pending->done = std::move(done);
  auto make_request = [&markers](const std::vector<TxnPartition>& partitions) {
    protocol::WriteTxnMarkersRequest request;
    auto& marker = request.markers.emplace_back();
    marker.producer_id = markers.producer_id;
    marker.producer_epoch = markers.producer_epoch;
    marker.transaction_result = markers.commit;
    marker.coordinator_epoch = markers.coordinator_epoch;
    for (const auto& tp : partitions) {
      if (marker.topics.empty() || marker.topics.back().name != tp.topic) {
        marker.topics.emplace_back().name = tp.topic;
      }
      marker.topics.back().partition_indexes.push_back(tp.partition);
    }
    return request;
  };
  std::vector<std::pair<net::Endpoint, protocol::WriteTxnMarkersRequest>> requests;
  std::optional<protocol::WriteTxnMarkersRequest> local;
  for (auto& [leader, partitions] : by_leader) {
    if (leader == broker_.node_id()) {
      // This broker's own partitions: written in-process (its listener may
      // want credentials this client does not have).
      local = make_request(partitions);
    } else if (auto address = cluster::broker_address(broker_, *image, leader)) {
      requests.emplace_back(net::Endpoint{address->host, static_cast<uint16_t>(address->port)},
                            make_request(partitions));
    }
  }
  pending->outstanding = static_cast<int>(requests.size()) + (local ? 1 : 0);
  if (pending->outstanding == 0) {
    auto finish = std::move(pending->done);
    return finish(std::move(pending->acknowledged));
  }
  // One answer (from a leader, or from this broker's own writes): the
  // partitions it acknowledged are recorded; the last answer completes.
  auto answered = [pending, producer_id = markers.producer_id](
                      const std::string& from,
                      net::NetResult<protocol::WriteTxnMarkersResponse> response) {
    std::function<void(std::vector<TxnPartition>)> finish;
    std::vector<TxnPartition> acked;
    {
      std::lock_guard lock(pending->mu);
      if (!response) {
        HF_DEBUG("transaction markers for producer {} to {}: {}", producer_id, from,
                 response.error().message);
      } else {
        for (const auto& m : response->markers) {
          for (const auto& t : m.topics) {
            for (const auto& p : t.partitions) {
              if (p.error_code == 0) {
                pending->acknowledged.push_back({t.name, p.partition_index});
              } else {
                HF_DEBUG("transaction marker for producer {} on {}-{} ({}): error {}", producer_id,
                         t.name, p.partition_index, from, p.error_code);
              }
            }
          }
        }
      }
      if (--pending->outstanding > 0) return;
      finish = std::move(pending->done);
      acked = std::move(pending->acknowledged);
    }
    finish(std::move(acked));
  };
  if (local) {
    // On the client's thread, as the remote answers are: the write's own
    // completion may come from a flusher thread holding log locks, and the
    // coordinator appends its Complete record from `done`. After the
    // client's shutdown nothing runs (the coordinator has stopped; whoever
    // loads the Prepare record next resends).
    Broker& broker = broker_;
    net::KafkaClient& client = client_;
    client_.post([&broker, &client, answered, request = std::move(*local)] {
      write_txn_markers(broker, request, KafkaError::none,
                        [&client, answered](protocol::WriteTxnMarkersResponse response) {
                          client.post([answered, response = std::move(response)]() mutable {
                            answered("this broker", std::move(response));
                          });
                        });
    });
  }
  for (auto& [to, request] : requests) {
    client_.send<protocol::WriteTxnMarkersResponse>(
        to, request, 1,
        [answered, to](net::NetResult<protocol::WriteTxnMarkersResponse> response) {
          answered(to.to_string(), std::move(response));
        });
  }
}

}  // namespace holdfast::server
