// DescribeUserScramCredentials (50) and AlterUserScramCredentials (51),
// KIP-554. Credentials live in the metadata log (ScramCredentialUpserted /
// ScramCredentialDeleted); in a cluster an alteration goes to the active
// controller, as CreateTopics does. The broker never sees a password: an
// upsertion carries the client's SaltedPassword, from which StoredKey and
// ServerKey are derived here.
//
// Authorisation: Describe (50) or Alter (51) on the Cluster, the access
// table's rows; a refused Alter answers every user CLUSTER_AUTHORIZATION_FAILED.
// The check is made by the broker the client reached, before any forwarding.
#include <map>
#include <set>

#include "server/broker.h"
#include "server/cluster/forwarding.h"
#include "server/handlers/handlers.h"
#include "server/kafka_error.h"
#include "server/security/access.h"
#include "server/security/scram_credentials.h"

namespace holdfast::server {
namespace {

namespace security = server::security;

KafkaError metadata_error(metadata::Errc e) {
  switch (e) {
    case metadata::Errc::not_leader: return KafkaError::not_controller;
    case metadata::Errc::invalid_record: return KafkaError::unacceptable_credential;
    default: return KafkaError::unknown_server_error;
  }
}

std::string bytes_string(const Bytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Appends `record` to the metadata log. Not a coroutine: it returns the
// awaitable, so the record lives in the initiation, not in a coroutine frame
// (a lambda capturing the record inside the handler's coroutine frame was
// freed wrongly by GCC 12: every AlterUserScramCredentials upsertion aborted
// the broker with "munmap_chunk(): invalid pointer").
auto append_scram_record(metadata::MetadataLog& log, metadata::MetadataRecord record) {
  return await_callback<Result<metadata::ImagePtr, metadata::Errc>>(
      [&log, record = std::move(record)](
          std::function<void(Result<metadata::ImagePtr, metadata::Errc>)> done) mutable {
        log.append(std::move(record), std::move(done));
      });
}

}  // namespace

Awaitable<Response> handle_describe_user_scram_credentials(RequestContext& ctx) {
  using protocol::DescribeUserScramCredentialsRequest;
  using protocol::DescribeUserScramCredentialsResponse;
  auto request = decode_request<DescribeUserScramCredentialsRequest>(ctx);
  if (!request) co_return close_connection();
  if (auto denied = refuse<DescribeUserScramCredentialsResponse>(
          ctx, Access::describe_user_scram_credentials)) {
    co_return std::move(*denied);
  }
  auto image = ctx.broker.metadata_log().current();
  std::map<std::string, std::vector<std::pair<int8_t, int32_t>>> users;
  for (const auto& [key, credential] : image->scram_credentials) {
    users[key.first].emplace_back(key.second, credential.iterations);
  }
  DescribeUserScramCredentialsResponse response;
  response.error_code = code(KafkaError::none);
  auto describe = [&](const std::string& name) {
    auto& out = response.results.emplace_back();
    out.user = name;
    auto it = users.find(name);
    if (it == users.end()) {
      out.error_code = code(KafkaError::resource_not_found);
      out.error_message = "Attempt to describe a user credential that does not exist";
      return;
    }
    out.error_code = code(KafkaError::none);
    for (const auto& [mechanism, iterations] : it->second) {
      auto& info = out.credential_infos.emplace_back();
      info.mechanism = mechanism;
      info.iterations = iterations;
    }
  };
  if (!request->users) {
    for (const auto& [name, credentials] : users) describe(name);
  } else {
    for (const auto& user : *request->users) describe(user.name);
  }
  co_return make_response(ctx, response);
}

Awaitable<Response> handle_alter_user_scram_credentials(RequestContext& ctx) {
  using protocol::AlterUserScramCredentialsRequest;
  using protocol::AlterUserScramCredentialsResponse;
  auto request = decode_request<AlterUserScramCredentialsRequest>(ctx);
  if (!request) co_return close_connection();
  Broker& broker = ctx.broker;

  if (KafkaError denied = check_access(ctx, Access::alter_user_scram_credentials);
      denied != KafkaError::none) {
    AlterUserScramCredentialsResponse refused;
    std::set<std::string> seen;
    auto refuse_user = [&](const std::string& user) {
      if (!seen.insert(user).second) return;
      auto& out = refused.results.emplace_back();
      out.user = user;
      out.error_code = code(denied);
    };
    for (const auto& d : request->deletions) refuse_user(d.name);
    for (const auto& u : request->upsertions) refuse_user(u.name);
    co_return make_response(ctx, refused);
  }

  if (cluster::forward_needed(broker)) {
    auto answer = co_await cluster::forward_to_controller<AlterUserScramCredentialsResponse>(
        broker, *request, ctx.api_version);
    if (answer) co_return make_response(ctx, *answer);
    AlterUserScramCredentialsResponse failed;
    std::set<std::string> seen;
    auto fail = [&](const std::string& user) {
      if (!seen.insert(user).second) return;
      auto& out = failed.results.emplace_back();
      out.user = user;
      out.error_code = code(cluster::to_kafka_error(answer.code()));
      out.error_message = answer.error().message;
    };
    for (const auto& d : request->deletions) fail(d.name);
    for (const auto& u : request->upsertions) fail(u.name);
    co_return make_response(ctx, failed);
  }

  // One result per user: the first error of its alterations, else success.
  std::map<std::string, std::pair<KafkaError, std::string>> outcome;
  auto note = [&](const std::string& user, KafkaError error, const std::string& message) {
    auto [it, inserted] = outcome.try_emplace(user, error, message);
    if (!inserted && it->second.first == KafkaError::none) it->second = {error, message};
  };
  std::vector<metadata::MetadataRecord> records;
  std::vector<std::string> record_users;
  auto image = broker.metadata_log().current();
  for (const auto& d : request->deletions) {
    if (d.name.empty()) {
      note(d.name, KafkaError::unacceptable_credential, "empty user name");
    } else if (!security::mechanism_from_code(d.mechanism)) {
      note(d.name, KafkaError::unsupported_sasl_mechanism, "unknown SCRAM mechanism");
    } else if (!image->scram_credentials.count({d.name, d.mechanism})) {
      note(d.name, KafkaError::resource_not_found,
           "Attempt to delete a user credential that does not exist");
    } else {
      note(d.name, KafkaError::none, "");
      records.push_back(metadata::ScramCredentialDeleted{d.name, d.mechanism});
      record_users.push_back(d.name);
    }
  }
  for (const auto& u : request->upsertions) {
    auto mechanism = security::mechanism_from_code(u.mechanism);
    if (u.name.empty()) {
      note(u.name, KafkaError::unacceptable_credential, "empty user name");
    } else if (!mechanism) {
      note(u.name, KafkaError::unsupported_sasl_mechanism, "unknown SCRAM mechanism");
    } else if (u.iterations < security::kMinScramIterations ||
               u.iterations > security::kMaxScramIterations) {
      note(u.name, KafkaError::unacceptable_credential,
           "iterations must be between " + std::to_string(security::kMinScramIterations) +
               " and " + std::to_string(security::kMaxScramIterations));
    } else if (u.salt.size() == 0 || u.salted_password.size() == 0) {
      note(u.name, KafkaError::unacceptable_credential, "empty salt or salted password");
    } else {
      note(u.name, KafkaError::none, "");
      auto credential = security::credential_from_salted_password(
          security::hash_of(*mechanism), bytes_string(u.salted_password), bytes_string(u.salt),
          u.iterations);
      records.push_back(metadata::ScramCredentialUpserted{u.name, u.mechanism, credential.salt,
                                                          credential.stored_key,
                                                          credential.server_key, u.iterations});
      record_users.push_back(u.name);
    }
  }
  for (size_t i = 0; i < records.size(); ++i) {
    if (outcome[record_users[i]].first != KafkaError::none) continue;  // the user's batch failed
    auto append = append_scram_record(broker.metadata_log(), std::move(records[i]));
    auto appended = co_await std::move(append);
    if (!appended) {
      outcome[record_users[i]] = {metadata_error(appended.code()), appended.error().message};
    }
  }
  AlterUserScramCredentialsResponse response;
  for (const auto& [user, result] : outcome) {
    auto& out = response.results.emplace_back();
    out.user = user;
    out.error_code = code(result.first);
    if (result.first != KafkaError::none) out.error_message = result.second;
  }
  co_return make_response(ctx, response);
}

}  // namespace holdfast::server
