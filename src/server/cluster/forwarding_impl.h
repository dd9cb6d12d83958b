// Template part of forwarding.h.
#pragma once

#include "server/broker.h"

namespace holdfast::server::cluster {

template <typename Response, typename Request>
Awaitable<Result<Response, ForwardErrc>> forward_to_controller(Broker& broker,
                                                               const Request& request,
                                                               int16_t version) {
  bool self = false;
  std::string why;
  auto endpoint = remote_controller(broker, &self, &why);
  if (!endpoint) co_return make_error(ForwardErrc::no_controller, why);
  net::KafkaClient* client = broker.client();
  if (client == nullptr) co_return make_error(ForwardErrc::no_controller, "no inter-broker client");
  auto timeout = std::optional<std::chrono::milliseconds>(kForwardTimeout);
  auto answer = co_await client->async_call<Response>(*endpoint, request, version, timeout);
  if (!answer) {
    co_return make_error(ForwardErrc::network, "forwarding to the controller at " + endpoint->to_string() +
                                            ": " + net::errc_name(answer.code()) + " " +
                                            answer.error().message);
  }
  co_return std::move(*answer);
}

}  // namespace holdfast::server::cluster
