#include "server/security/authorizer.h"

#include <algorithm>
#include <cctype>

namespace holdfast::server::security {
namespace {

bool is_super_user(const AuthorizerConfig& config, std::string_view principal) {
  return std::find(config.super_users.begin(), config.super_users.end(), principal) !=
         config.super_users.end();
}

bool applies_to(const AclBinding& b, std::string_view principal, std::string_view host) {
  return (b.principal == principal || b.principal == kWildcardPrincipal) &&
         (b.host == host || b.host == kWildcard);
}

// The operations whose ALLOW grants `op`.
bool allow_grants(AclOperation granted, AclOperation op) {
  if (granted == op || granted == AclOperation::all) return true;
  if (op == AclOperation::describe) {
    return granted == AclOperation::read || granted == AclOperation::write ||
           granted == AclOperation::remove || granted == AclOperation::alter;
  }
  if (op == AclOperation::describe_configs) return granted == AclOperation::alter_configs;
  return false;
}

bool deny_covers(AclOperation denied, AclOperation op) {
  return denied == op || denied == AclOperation::all;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

std::optional<std::vector<std::string>> parse_super_users(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto semi = text.find(';');
    std::string one = trim(text.substr(0, semi));
    text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
    if (one.empty()) continue;
    const auto colon = one.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == one.size()) return std::nullopt;
    out.push_back(std::move(one));
  }
  return out;
}

bool authorize(const AuthorizerConfig& config, const AclSet& acls, std::string_view principal,
               std::string_view host, AclResourceType type, std::string_view name,
               AclOperation operation) {
  if (!config.enabled || is_super_user(config, principal)) return true;
  bool any_on_resource = false;
  bool allowed = false;
  for (const auto& b : acls) {
    if (!pattern_covers(b, type, name)) continue;
    any_on_resource = true;
    if (!applies_to(b, principal, host)) continue;
    if (b.permission == AclPermission::deny && deny_covers(b.operation, operation)) return false;
    if (b.permission == AclPermission::allow && allow_grants(b.operation, operation)) allowed = true;
  }
  if (!any_on_resource) return config.allow_everyone_if_no_acl_found;
  return allowed;
}

bool authorize_any(const AuthorizerConfig& config, const AclSet& acls, std::string_view principal,
                   std::string_view host, AclResourceType type, AclOperation operation) {
  if (!config.enabled || is_super_user(config, principal)) return true;
  std::vector<const AclBinding*> denies;
  bool any_of_type = false;
  for (const auto& b : acls) {
    if (b.resource_type != type) continue;
    any_of_type = true;
    if (b.permission == AclPermission::deny && applies_to(b, principal, host) &&
        deny_covers(b.operation, operation)) {
      if (b.pattern_type == AclPatternType::literal && b.resource_name == kWildcard) return false;
      denies.push_back(&b);
    }
  }
  if (!any_of_type) return config.allow_everyone_if_no_acl_found;
  for (const auto& b : acls) {
    if (b.resource_type != type || b.permission != AclPermission::allow) continue;
    if (!applies_to(b, principal, host) || !allow_grants(b.operation, operation)) continue;
    // Denied when a DENY's pattern covers this ALLOW's whole pattern: a
    // literal of the same name (same pattern type), or a prefix of its name.
    const bool shadowed = std::any_of(denies.begin(), denies.end(), [&b](const AclBinding* d) {
      if (d->pattern_type == AclPatternType::prefixed) {
        return std::string_view(b.resource_name).substr(0, d->resource_name.size()) ==
               d->resource_name;
      }
      return d->resource_name == b.resource_name && d->pattern_type == b.pattern_type;
    });
    if (!shadowed) return true;
  }
  return false;
}

std::string peer_host(std::string_view peer) {
  if (!peer.empty() && peer.front() == '[') {
    const auto close = peer.find(']');
    if (close != std::string_view::npos) return std::string(peer.substr(1, close - 1));
  }
  const auto colon = peer.rfind(':');
  if (colon == std::string_view::npos || peer.find(':') != colon) return std::string(peer);
  return std::string(peer.substr(0, colon));
}

}  // namespace holdfast::server::security
