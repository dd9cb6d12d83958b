// controller.quorum.voters (Kafka's KRaft setting): the Raft voters of the
// metadata quorum. Parsed here, apart from raft_metadata_log.h, so broker
// configuration can check it without the Raft and libuv headers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "metadata/metadata_image.h"

namespace holdfast::metadata {

// One entry of controller.quorum.voters: `<id>@<host>:<port>`.
struct QuorumVoter {
  int32_t id = 0;
  std::string address;  // host:port, as the Raft transport dials and binds it
};

// Parses Kafka's controller.quorum.voters form, "1@host:port,2@host:port,...".
// Ids are positive and distinct, addresses distinct, ports 1..65535; an error
// (invalid_config) names the setting and the entry.
Result<std::vector<QuorumVoter>, Errc> parse_quorum_voters(std::string_view text);

}  // namespace holdfast::metadata
