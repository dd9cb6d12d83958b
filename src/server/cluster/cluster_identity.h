// Which cluster a node belongs to (issue 9). Every data directory records its
// cluster id in meta.properties on first start; a node started against a
// directory of another cluster refuses to start, naming the setting, instead
// of mixing two clusters' metadata.
//
// In cluster mode the id is cluster.id when given, else derived from
// controller.quorum.voters (the same voter list gives the same id on every
// node, so a cluster needs no formatting step). A single node keeps a random
// id chosen at first start, unless cluster.id is given.
#pragma once

#include <string>

#include "base/result.h"
#include "server/broker_config.h"

namespace holdfast::server::cluster {

// The cluster id this configuration names: cluster.id, else (cluster mode)
// the id derived from controller.quorum.voters, else empty (any id: a single
// node takes the one its directory has, or a fresh random one).
std::string configured_cluster_id(const BrokerConfig& config);

// Empty when `recorded` (from the data dir) is the cluster `config` names;
// otherwise the message that stops start-up.
std::string cluster_id_mismatch(const BrokerConfig& config, const std::string& recorded);

}  // namespace holdfast::server::cluster
