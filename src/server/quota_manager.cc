#include "server/quota_manager.h"

#include <algorithm>
#include <cmath>

namespace holdfast::server {

using metadata::ClientQuotaMap;
using metadata::QuotaEntity;

const char* quota_key(QuotaKind kind) {
  return kind == QuotaKind::produce ? metadata::kProducerByteRate : metadata::kConsumerByteRate;
}

std::string quota_user(std::string_view principal) {
  const auto colon = principal.find(':');
  return std::string(colon == std::string_view::npos ? principal : principal.substr(colon + 1));
}

std::optional<ResolvedQuota> resolve_quota(const ClientQuotaMap& quotas, std::string_view user,
                                           std::string_view client_id, std::string_view key) {
  if (quotas.empty()) return std::nullopt;
  using Name = std::optional<std::string>;
  const Name u{std::string(user)}, c{std::string(client_id)}, any{};
  const std::string kUser = metadata::kQuotaEntityUser, kClient = metadata::kQuotaEntityClientId;
  const QuotaEntity order[] = {
      {{kUser, u}, {kClient, c}},  {{kUser, u}, {kClient, any}},  {{kUser, u}},
      {{kUser, any}, {kClient, c}}, {{kUser, any}, {kClient, any}}, {{kUser, any}},
      {{kClient, c}},              {{kClient, any}},
  };
  for (const auto& entity : order) {
    auto it = quotas.find(entity);
    if (it == quotas.end()) continue;
    auto value = it->second.find(std::string(key));
    if (value == it->second.end()) continue;
    return ResolvedQuota{value->second, entity};
  }
  return std::nullopt;
}

void ByteRate::purge(int64_t now_ms) {
  const int64_t horizon = now_ms - windows_.samples * windows_.window_ms;
  while (!samples_.empty() && samples_.front().start_ms <= horizon) {
    samples_.pop_front();
  }
}

void ByteRate::record(int64_t now_ms, double bytes) {
  purge(now_ms);
  if (samples_.empty() || now_ms >= samples_.back().start_ms + windows_.window_ms) {
    samples_.push_back({now_ms, 0});
    while (samples_.size() > size_t(windows_.samples)) samples_.pop_front();
  }
  samples_.back().bytes += bytes;
  last_record_ms_ = now_ms;
}

int64_t ByteRate::span_ms(int64_t now_ms) {
  purge(now_ms);
  const int64_t oldest = samples_.empty() ? now_ms : samples_.front().start_ms;
  int64_t span = std::max<int64_t>(now_ms - oldest, 0);
  const int64_t full_windows = span / windows_.window_ms;
  const int64_t min_full = windows_.samples - 1;
  if (full_windows < min_full) span += (min_full - full_windows) * windows_.window_ms;
  return std::max<int64_t>(span, 1);
}

double ByteRate::rate(int64_t now_ms) {
  const int64_t span = span_ms(now_ms);
  double total = 0;
  for (const auto& s : samples_) total += s.bytes;
  return total * 1000.0 / double(span);
}

int64_t throttle_time_ms(double rate, double quota, int64_t span_ms) {
  if (quota <= 0 || rate <= quota) return 0;
  return std::llround((rate - quota) / quota * double(span_ms));
}

QuotaManager::QuotaManager(QuotaWindows windows, NowMs now_ms)
    : windows_(windows), now_ms_(std::move(now_ms)) {}

int64_t QuotaManager::steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

QuotaManager::Key QuotaManager::key_for(QuotaKind kind, const ResolvedQuota& quota,
                                        std::string_view user, std::string_view client_id) const {
  const bool by_user = quota.entity.count(metadata::kQuotaEntityUser) != 0;
  const bool by_client = quota.entity.count(metadata::kQuotaEntityClientId) != 0;
  return {kind, by_user ? std::string(user) : std::string(),
          by_client ? std::string(client_id) : std::string()};
}

void QuotaManager::drop_idle(int64_t now_ms) {
  const int64_t idle = windows_.samples * windows_.window_ms;
  if (now_ms - last_sweep_ms_ < idle) return;
  last_sweep_ms_ = now_ms;
  std::erase_if(rates_, [&](const auto& entry) {
    return now_ms - entry.second.last_record_ms() > idle;
  });
}

int64_t QuotaManager::record(QuotaKind kind, const ClientQuotaMap& quotas, std::string_view user,
                             std::string_view client_id, double bytes) {
  auto quota = resolve_quota(quotas, user, client_id, quota_key(kind));
  if (!quota) return 0;
  const int64_t now = now_ms_();
  std::lock_guard lock(mu_);
  drop_idle(now);
  auto [it, inserted] = rates_.try_emplace(key_for(kind, *quota, user, client_id), windows_);
  ByteRate& rate = it->second;
  rate.record(now, bytes);
  return throttle_time_ms(rate.rate(now), quota->bytes_per_second, rate.span_ms(now));
}

void QuotaManager::unrecord(QuotaKind kind, const ClientQuotaMap& quotas, std::string_view user,
                            std::string_view client_id, double bytes) {
  auto quota = resolve_quota(quotas, user, client_id, quota_key(kind));
  if (!quota) return;
  const int64_t now = now_ms_();
  std::lock_guard lock(mu_);
  auto it = rates_.find(key_for(kind, *quota, user, client_id));
  if (it != rates_.end()) it->second.record(now, -bytes);
}

std::optional<size_t> QuotaManager::window_bytes(QuotaKind kind, const ClientQuotaMap& quotas,
                                                std::string_view user,
                                                std::string_view client_id) const {
  auto quota = resolve_quota(quotas, user, client_id, quota_key(kind));
  if (!quota) return std::nullopt;
  const double span_s = double(std::max(windows_.samples - 1, 1)) * double(windows_.window_ms) / 1000.0;
  return size_t(std::clamp(quota->bytes_per_second * span_s, 1.0, 1e15));
}

size_t QuotaManager::tracked() const {
  std::lock_guard lock(mu_);
  return rates_.size();
}

}  // namespace holdfast::server
