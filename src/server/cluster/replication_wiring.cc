#include "server/cluster/replication_wiring.h"

#include "base/log.h"
#include "protocol/messages.h"
#include "replication/partition_follower_replica.h"

namespace holdfast::server::cluster {
namespace {

replication::ReplicaFetcherOptions fetcher_options(const ReplicationWiringOptions& options) {
  replication::ReplicaFetcherOptions out;
  out.node_id = options.node_id;
  out.rack_id = options.rack;
  out.client = options.fetch_client;
  out.client.client_id = "holdfast-replica-" + std::to_string(options.node_id);
  out.client.thread_name = "hf-fetch-client";
  return out;
}

}  // namespace

ReplicationWiring::ReplicationWiring(replication::ReplicaManager& replicas,
                                     net::KafkaClient& client, ReplicationWiringOptions options)
    : replicas_(replicas),
      client_(client),
      options_(std::move(options)),
      fetchers_(fetcher_options(options_)) {}

ReplicationWiring::~ReplicationWiring() { stop(); }

void ReplicationWiring::install() {
  replicas_.set_role_change_listener(
      [this](std::shared_ptr<replication::Partition> partition, replication::Role role) {
        on_role_change(partition, role);
      });
  replicas_.set_replica_removed_listener(
      [this](const std::string& topic, int32_t partition) { fetchers_.remove(topic, partition); });
  replicas_.set_isr_change_sink([this](replication::IsrProposal p) { propose(std::move(p)); });
}

void ReplicationWiring::start() { replicas_.start_isr_checks(options_.replica_lag_time_max_ms); }

void ReplicationWiring::stop() {
  if (stopped_->exchange(true)) return;
  replicas_.stop_isr_checks();
  replicas_.set_role_change_listener({});
  replicas_.set_replica_removed_listener({});
  replicas_.set_isr_change_sink({});
  fetchers_.shutdown();
}

void ReplicationWiring::on_role_change(const std::shared_ptr<replication::Partition>& partition,
                                       replication::Role role) {
  if (stopped_->load()) return;
  if (role == replication::Role::leader) {
    fetchers_.remove(partition->topic(), partition->index());
    return;
  }
  const int32_t leader = partition->leader_id();
  auto endpoint = leader >= 0 && options_.endpoint_of ? options_.endpoint_of(leader) : std::nullopt;
  if (!endpoint) {
    // Offline (no leader) or a leader whose endpoint this broker does not
    // know: nothing to fetch from; the next leadership record re-adds it.
    fetchers_.remove(partition->topic(), partition->index());
    HF_WARN("{}-{}: follower with no reachable leader (leader {}); not fetching until the "
            "metadata names one",
            partition->topic(), partition->index(), leader);
    return;
  }
  fetchers_.add(leader, *endpoint,
                std::make_shared<replication::PartitionFollowerReplica>(partition));
}

void ReplicationWiring::propose(replication::IsrProposal proposal) {
  auto controller = options_.controller ? options_.controller() : std::nullopt;
  auto partition = replicas_.get(proposal.topic, proposal.partition);
  if (!controller || stopped_->load()) {
    if (partition) partition->isr_proposal_failed();
    return;
  }
  protocol::AlterPartitionRequest request;
  request.broker_id = options_.node_id;
  request.broker_epoch = options_.broker_epoch ? options_.broker_epoch() : -1;
  auto& topic = request.topics.emplace_back();
  topic.topic_name = proposal.topic;
  auto& p = topic.partitions.emplace_back();
  p.partition_index = proposal.partition;
  p.leader_epoch = proposal.leader_epoch;
  p.partition_epoch = proposal.partition_epoch;
  p.new_isr = proposal.new_isr;
  HF_INFO("{}-{}: proposing ISR {} (leader epoch {}, partition epoch {})", proposal.topic,
          proposal.partition, fmt::join(proposal.new_isr, ","), proposal.leader_epoch,
          proposal.partition_epoch);
  std::weak_ptr<replication::Partition> weak = partition;
  client_.send<protocol::AlterPartitionResponse>(
      *controller, request, 0,
      [weak, proposal, stopped = stopped_](net::NetResult<protocol::AlterPartitionResponse> r) {
        auto partition = weak.lock();
        if (!partition || stopped->load()) return;
        int16_t error = 0;
        std::string why;
        if (!r) {
          why = r.error().message;
          error = -1;
        } else if (r->error_code != 0) {
          error = r->error_code;
        } else if (!r->topics.empty() && !r->topics[0].partitions.empty()) {
          error = r->topics[0].partitions[0].error_code;
        }
        if (error != 0) {
          const int64_t backoff = partition->isr_proposal_failed();
          HF_WARN("{}-{}: ISR proposal {} not accepted (error {}{}); may propose again in {} ms",
                  proposal.topic, proposal.partition, fmt::join(proposal.new_isr, ","), error,
                  why.empty() ? "" : ": " + why, backoff);
        }
        // Accepted: the partition_changed record applies the ISR here.
      });
}

}  // namespace holdfast::server::cluster
