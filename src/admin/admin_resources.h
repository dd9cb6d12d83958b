// The /v1 resources as JSON (docs/admin-api.md has each shape). Internal to
// the admin module; independent of the HTTP library, so each resource is a
// function from the broker and the request's parts to a Reply.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "server/broker.h"
#include "server/kafka_error.h"

namespace holdfast::admin {

using Json = nlohmann::ordered_json;
using Params = std::multimap<std::string, std::string>;

struct Reply {
  int status = 200;
  Json body;
};

// {"error": NAME, "message": ...[, "parameter": ...]} with `status`.
Reply error_reply(int status, const std::string& error, const std::string& message,
                  const std::optional<std::string>& parameter = std::nullopt);
// A Kafka error as the API reports it: its Kafka name and the HTTP status
// that fits (404 unknown, 409 conflict, 400 invalid, 503 not ready, 500).
Reply kafka_error_reply(server::KafkaError error, const std::string& message);
const char* kafka_error_name(server::KafkaError error);

struct AdminSettings {
  std::string admin_address;  // "host:port" as bound
};

Reply get_broker(server::Broker& broker, const AdminSettings& settings);
Reply get_config(server::Broker& broker);
Reply list_topics(server::Broker& broker);
Reply get_topic(server::Broker& broker, const std::string& topic);
Reply create_topic(server::Broker& broker, const std::string& body);
Reply delete_topic(server::Broker& broker, const std::string& topic);
Reply list_groups(server::Broker& broker);
Reply get_group(server::Broker& broker, const std::string& group);
Reply reset_group_offsets(server::Broker& broker, const std::string& group,
                          const std::string& body);
// POST /v1/topics/{t}/messages: {"partition", "key", "value", "headers"} (produce_resource.cc).
Reply produce_message(server::Broker& broker, const std::string& topic, const std::string& body);
Reply search_topic_messages(server::Broker& broker, const std::string& topic, const Params& params);

}  // namespace holdfast::admin
