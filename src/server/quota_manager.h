// Client byte-rate quotas, Kafka's way (KIP-13, KIP-55, KIP-219; issue 11).
//
// A quota is set on an entity (user, client id, or both; a null name is the
// type's default) in the metadata log (metadata/client_quota.h). For each
// request the manager finds the entity whose quota applies, measures the
// bytes per second of that entity's traffic over Kafka's sample windows
// (quota.window.num windows of quota.window.size.seconds) and, when the rate
// is above the quota, returns how long the client must wait for the rate to
// come back to it. The response carries that time in throttle_time_ms and is
// sent at once; the connection then reads nothing more from the client for
// that time (the "mute", Connection), so a client that ignores the hint is
// held back all the same.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "metadata/client_quota.h"

namespace holdfast::server {

enum class QuotaKind { produce, fetch };

// The key of a kind's quota (producer_byte_rate, consumer_byte_rate).
const char* quota_key(QuotaKind kind);

// The quota that applies to (user, client id) for `key`, and the entity it
// was set on. Kafka's precedence, first match wins:
//   user + client-id, user + default client-id, user,
//   default user + client-id, default user + default client-id, default user,
//   client-id, default client-id.
// `user` is the principal's name ("alice" for User:alice, "ANONYMOUS" without
// authentication).
struct ResolvedQuota {
  double bytes_per_second = 0;
  metadata::QuotaEntity entity;
};
std::optional<ResolvedQuota> resolve_quota(const metadata::ClientQuotaMap& quotas,
                                           std::string_view user, std::string_view client_id,
                                           std::string_view key);

// The user name of a principal string ("User:alice" -> "alice").
std::string quota_user(std::string_view principal);

struct QuotaWindows {
  int32_t samples = 11;         // quota.window.num
  int64_t window_ms = 1000;     // quota.window.size.seconds
};

// Bytes per second over the last `samples` windows (Kafka's SampledStat Rate).
// A sample covers window_ms from its first record; samples older than
// samples * window_ms no longer count. The measured span is from the oldest
// sample's start to now, but at least (samples - 1) windows, so that a burst
// at the start is averaged over the full span instead of looking infinite.
class ByteRate {
 public:
  explicit ByteRate(QuotaWindows windows) : windows_(windows) {}
  void record(int64_t now_ms, double bytes);
  double rate(int64_t now_ms);       // bytes per second
  int64_t span_ms(int64_t now_ms);   // the span rate() divides by
  int64_t last_record_ms() const { return last_record_ms_; }

 private:
  struct Sample {
    int64_t start_ms;
    double bytes;
  };
  void purge(int64_t now_ms);

  QuotaWindows windows_;
  std::deque<Sample> samples_;
  int64_t last_record_ms_ = 0;
};

// Kafka's throttle time: how long until the rate measured over `span_ms`
// falls back to the quota, (rate - quota) / quota * span; 0 when within.
int64_t throttle_time_ms(double rate, double quota, int64_t span_ms);

class QuotaManager {
 public:
  using NowMs = std::function<int64_t()>;
  // `now_ms`: a monotonic clock in milliseconds (tests inject their own).
  explicit QuotaManager(QuotaWindows windows, NowMs now_ms = steady_now_ms);

  // Counts `bytes` of `kind` for (user, client id) against the quota that
  // applies in `quotas`, and returns the throttle time in ms (0: no quota,
  // or within it). Thread-safe; holds a short lock.
  int64_t record(QuotaKind kind, const metadata::ClientQuotaMap& quotas, std::string_view user,
                 std::string_view client_id, double bytes);
  // Takes back bytes recorded for a response that was not sent as measured
  // (a throttled Fetch is answered empty, as Kafka does).
  void unrecord(QuotaKind kind, const metadata::ClientQuotaMap& quotas, std::string_view user,
                std::string_view client_id, double bytes);

  // The most bytes the quota that applies lets through in one measured span,
  // quota * (samples - 1) windows (Kafka's getMaxValueInQuotaWindow): a Fetch
  // asks for no more, so that one response can fit the quota. None: no quota.
  std::optional<size_t> window_bytes(QuotaKind kind, const metadata::ClientQuotaMap& quotas,
                                     std::string_view user, std::string_view client_id) const;

  // Rates being tracked (tests; idle ones are dropped).
  size_t tracked() const;

  static int64_t steady_now_ms();

 private:
  // Kafka keys a quota's measurement by the entity it matched, with the
  // client's actual names: a default client-id quota applies to each client
  // id on its own, a user quota to all of that user's clients together.
  using Key = std::tuple<QuotaKind, std::string, std::string>;
  Key key_for(QuotaKind kind, const ResolvedQuota& quota, std::string_view user,
              std::string_view client_id) const;
  void drop_idle(int64_t now_ms);

  QuotaWindows windows_;
  NowMs now_ms_;
  mutable std::mutex mu_;
  std::map<Key, ByteRate> rates_;
  int64_t last_sweep_ms_ = 0;
};

}  // namespace holdfast::server
