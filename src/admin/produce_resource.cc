// POST /v1/topics/{topic}/messages: one record appended through the same
// per-partition path as Kafka's Produce (server/handlers/produce_append.h),
// acknowledged once durable under flush.policy=always. For testing from the
// console; applications produce through the Kafka listener.
#include <chrono>
#include <future>
#include <memory>

#include "admin/admin_resources.h"
#include "base/clock.h"
#include "record/batch.h"
#include "server/handlers/produce_append.h"

namespace holdfast::admin {
namespace {

using server::KafkaError;

// How long the reply waits for the record's fsync before answering 503.
constexpr auto kDurableWait = std::chrono::seconds(30);

Reply bad_field(const std::string& field, const std::string& what) {
  return error_reply(400, "INVALID_REQUEST", "field '" + field + "': " + what, field);
}

// A string or null field; false (with `error` set) when it is another type.
bool optional_text(const Json& j, const std::string& field, std::optional<std::string>& out,
                   Reply& error) {
  if (!j.contains(field) || j[field].is_null()) return true;
  if (!j[field].is_string()) {
    error = bad_field(field, "expected a string or null");
    return false;
  }
  out = j[field].get<std::string>();
  return true;
}

}  // namespace

Reply produce_message(server::Broker& broker, const std::string& topic, const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return error_reply(400, "INVALID_REQUEST", "the request body must be a JSON object");
  }
  int32_t partition = 0;
  if (j.contains("partition") && !j["partition"].is_null()) {
    if (!j["partition"].is_number_integer() || j["partition"].get<int64_t>() < 0 ||
        j["partition"].get<int64_t>() > INT32_MAX) {
      return bad_field("partition", "expected a partition number");
    }
    partition = j["partition"].get<int32_t>();
  }
  Reply error;
  std::optional<std::string> key, value;
  if (!optional_text(j, "key", key, error) || !optional_text(j, "value", value, error))
    return error;
  std::vector<record::Header> headers;
  if (j.contains("headers")) {
    if (!j["headers"].is_array()) return bad_field("headers", "expected [{\"key\", \"value\"}]");
    for (const auto& h : j["headers"]) {
      if (!h.is_object() || !h.contains("key") || !h["key"].is_string()) {
        return bad_field("headers", "each header needs a string \"key\"");
      }
      record::Header header{h["key"].get<std::string>(), std::nullopt};
      if (h.contains("value") && !h["value"].is_null()) {
        if (!h["value"].is_string())
          return bad_field("headers", "a header value is a string or null");
        header.value = Bytes::copy_of(std::string_view(h["value"].get_ref<const std::string&>()));
      }
      headers.push_back(std::move(header));
    }
  }
  const int64_t timestamp = wall_clock_ms();
  record::BatchBuilder builder;
  builder.add(key ? std::optional<std::string_view>(*key) : std::nullopt,
              value ? std::optional<std::string_view>(*value) : std::nullopt, timestamp,
              std::move(headers));
  const Bytes batch = builder.build();

  auto appended = server::append_produced_batch(broker, topic, partition, batch.span(),
                                                /*allow_zstd=*/true, "admin API");
  if (!appended) {
    std::string message = appended.error().message;
    if (appended.code() == KafkaError::unknown_topic_or_partition) {
      message = "no partition " + std::to_string(partition) + " in topic '" + topic + "'";
    }
    return kafka_error_reply(appended.code(), message);
  }
  if (appended->needs_sync) {
    auto synced = std::make_shared<std::promise<bool>>();
    auto done = synced->get_future();
    appended->partition->wait_for_high_watermark(
        appended->last_offset + 1,
        [synced](Result<void, replication::Errc> r) { synced->set_value(bool(r)); });
    if (done.wait_for(kDurableWait) != std::future_status::ready) {
      return kafka_error_reply(KafkaError::request_timed_out,
                               "the record was appended but not yet made durable");
    }
    if (!done.get()) {
      return kafka_error_reply(KafkaError::kafka_storage_error,
                               "the log could not be made durable (fsync failed)");
    }
  }
  Reply reply;
  reply.status = 201;
  reply.body = Json{
      {"topic", topic},
      {"partition", partition},
      {"offset", appended->base_offset},
      {"timestamp", appended->log_append_time_ms >= 0 ? appended->log_append_time_ms : timestamp}};
  return reply;
}

}  // namespace holdfast::admin
