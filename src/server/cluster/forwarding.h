// Forwarding metadata changes to the active controller (issue 9). In a
// cluster only the active controller appends topic records; a broker that
// receives CreateTopics, CreatePartitions, DeleteTopics, AlterConfigs,
// IncrementalAlterConfigs or an auto-creation sends the request on to the controller's client listener (net::KafkaClient),
// relays its answer, and answers only once the change is in its own image and
// its local replicas follow it (clients produce right after a create).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "net/kafka_client.h"
#include "server/async.h"
#include "server/topic_manager.h"

namespace holdfast::server {
class Broker;
}

namespace holdfast::server::cluster {

// How long a forwarded request (and the wait for its record to reach this
// node's image) may take.
inline constexpr std::chrono::milliseconds kForwardTimeout{30000};

// The client endpoint of the active controller when it is another node;
// none when this node is the active controller, none is known, or it is
// not registered yet (`why` says which).
std::optional<net::Endpoint> remote_controller(Broker& broker, bool* this_node_is_controller,
                                               std::string* why);

enum class ForwardErrc {
  no_controller,  // none known, not registered yet, or this node (not ready): NOT_CONTROLLER
  network,        // the request or its answer was lost: REQUEST_TIMED_OUT
};
KafkaError to_kafka_error(ForwardErrc e);

// Cluster mode: whether a metadata change goes to another node, the active
// controller. False on the controller itself (or a single node): the
// handler does the work.
bool forward_needed(Broker& broker);

// Sends `request` to the active controller at `version` and returns its
// response.
template <typename Response, typename Request>
Awaitable<Result<Response, ForwardErrc>> forward_to_controller(Broker& broker,
                                                               const Request& request,
                                                               int16_t version);

// (Coroutines here take their arguments by value or reference; callers pass
// named variables, not temporaries: GCC 12 mishandles temporaries in a
// co_await full-expression.)
//
// Waits (without blocking the thread) until `done(image)` holds for this
// node's metadata image, then until the local replicas follow it. False on
// timeout.
Awaitable<bool> wait_for_local_image(Broker& broker,
                                     std::function<bool(const metadata::MetadataImage&)> done,
                                     std::chrono::milliseconds timeout);

// Creates a topic through the active controller (directly when this node is
// it): `replication` -1 = the default. Answers once the topic is in the
// local image.
Awaitable<TopicOutcome> create_topic_via_controller(Broker& broker, std::string name,
                                                    int32_t partitions, int16_t replication,
                                                    metadata::ConfigMap configs);

}  // namespace holdfast::server::cluster

#include "server/cluster/forwarding_impl.h"
