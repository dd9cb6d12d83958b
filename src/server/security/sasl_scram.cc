// SCRAM (RFC 5802; SHA-256 and SHA-512 per RFC 7677), server side, without
// channel binding (Kafka's SCRAM has none). An unknown user gets a made-up
// credential and fails at the proof like a wrong password, so the exchange
// does not tell which user names exist.
#include <vector>

#include "server/security/sasl_mechanism.h"

namespace holdfast::server::security {
namespace {

using Lookup = std::function<std::optional<metadata::ScramCredentialInfo>(const std::string&)>;

// "a=1,b=2" → [("a","1"),("b","2")]; nullopt if an attribute is not "x=...".
std::optional<std::vector<std::pair<char, std::string_view>>> attributes(std::string_view text) {
  std::vector<std::pair<char, std::string_view>> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view item = text.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    if (item.size() < 2 || item[1] != '=') return std::nullopt;
    out.emplace_back(item[0], item.substr(2));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

// saslname: "=2C" is ',', "=3D" is '='; any other '=' is malformed.
std::optional<std::string> unescape_name(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '=') {
      out.push_back(name[i]);
      continue;
    }
    std::string_view code = name.substr(i + 1, 2);
    if (code == "2C") out.push_back(',');
    else if (code == "3D") out.push_back('=');
    else return std::nullopt;
    i += 2;
  }
  return out;
}

bool printable_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

class ScramMechanismImpl : public SaslMechanism {
 public:
  ScramMechanismImpl(ScramHash hash, Lookup lookup, std::string server_nonce)
      : hash_(hash), lookup_(std::move(lookup)), server_nonce_(std::move(server_nonce)) {}

  SaslStep step(std::string_view message) override {
    switch (state_) {
      case State::client_first: return client_first(message);
      case State::client_final: return client_final(message);
      case State::done: break;
    }
    return failure("SCRAM exchange already finished");
  }

  const std::string& user() const override { return user_; }

 private:
  enum class State { client_first, client_final, done };

  SaslStep client_first(std::string_view message) {
    state_ = State::done;  // until this step succeeds
    // gs2-header: cbind-flag "," [authzid] ","
    const size_t c1 = message.find(',');
    const size_t c2 = c1 == std::string_view::npos ? c1 : message.find(',', c1 + 1);
    if (c2 == std::string_view::npos) return failure("malformed client-first message");
    const std::string_view flag = message.substr(0, c1);
    const std::string_view authzid = message.substr(c1 + 1, c2 - c1 - 1);
    if (flag != "n" && flag != "y") return failure("channel binding is not supported");
    gs2_header_ = std::string(message.substr(0, c2 + 1));
    client_first_bare_ = std::string(message.substr(c2 + 1));
    auto attrs = attributes(client_first_bare_);
    if (!attrs || attrs->size() < 2 || (*attrs)[0].first != 'n' || (*attrs)[1].first != 'r') {
      return failure("malformed client-first message");
    }
    auto name = unescape_name((*attrs)[0].second);
    if (!name || name->empty()) return failure("malformed user name");
    user_ = *name;
    if (!authzid.empty()) {
      auto authz = authzid.substr(0, 2) == "a=" ? unescape_name(authzid.substr(2)) : std::nullopt;
      if (!authz || *authz != user_) return failure("authorization id differs from the user name");
    }
    for (size_t i = 2; i < attrs->size(); ++i) {
      // Extensions (Kafka's tokenauth=true for delegation tokens): none supported.
      if ((*attrs)[i].first == 'm') return failure("unsupported SCRAM extension");
    }
    const std::string_view client_nonce = (*attrs)[1].second;
    if (!printable_nonce(client_nonce)) return failure("malformed client nonce");
    if (auto found = lookup_(user_)) {
      credential_ = *found;
      known_user_ = true;
    } else {
      // Made up, so the exchange goes on and fails at the proof.
      credential_ = metadata::ScramCredentialInfo{random_bytes(16), random_bytes(32),
                                                  random_bytes(32), kMinScramIterations};
    }
    if (server_nonce_.empty()) server_nonce_ = base64_encode(random_bytes(24));
    nonce_ = std::string(client_nonce) + server_nonce_;
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(credential_.salt) +
                    ",i=" + std::to_string(credential_.iterations);
    state_ = State::client_final;
    return SaslStep{SaslStep::Outcome::challenge, server_first_, ""};
  }

  SaslStep client_final(std::string_view message) {
    state_ = State::done;
    const size_t proof_at = message.rfind(",p=");
    if (proof_at == std::string_view::npos) return failure("client-final message without a proof");
    const std::string_view without_proof = message.substr(0, proof_at);
    auto proof = base64_decode(message.substr(proof_at + 3));
    auto attrs = attributes(without_proof);
    if (!proof || !attrs || attrs->size() < 2 || (*attrs)[0].first != 'c' ||
        (*attrs)[1].first != 'r') {
      return failure("malformed client-final message");
    }
    auto binding = base64_decode((*attrs)[0].second);
    if (!binding || *binding != gs2_header_) return failure("channel binding data does not match");
    // The final nonce must END with the one this exchange sent (client nonce +
    // server nonce), as Kafka checks it: librdkafka puts its client nonce in
    // front of the whole combined nonce again. The server's random part at
    // the end is what stops a replay, and the proof covers the message as sent.
    const std::string_view final_nonce = (*attrs)[1].second;
    if (final_nonce.size() < nonce_.size() ||
        final_nonce.substr(final_nonce.size() - nonce_.size()) != nonce_) {
      return failure("nonce does not match");
    }
    const std::string auth_message =
        client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
    const std::string client_signature = hmac(hash_, credential_.stored_key, auth_message);
    if (proof->size() != client_signature.size()) return failure("wrong proof length");
    std::string client_key(client_signature.size(), '\0');
    for (size_t i = 0; i < client_key.size(); ++i) client_key[i] = char((*proof)[i] ^ client_signature[i]);
    if (!constant_time_equal(hash(hash_, client_key), credential_.stored_key) || !known_user_) {
      return failure(known_user_ ? "wrong password" : "unknown user");
    }
    const std::string server_signature = hmac(hash_, credential_.server_key, auth_message);
    return SaslStep{SaslStep::Outcome::success, "v=" + base64_encode(server_signature), ""};
  }

  static SaslStep failure(std::string reason) {
    return SaslStep{SaslStep::Outcome::failure, "", std::move(reason)};
  }

  ScramHash hash_;
  Lookup lookup_;
  std::string server_nonce_;
  State state_ = State::client_first;
  std::string user_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;
  metadata::ScramCredentialInfo credential_;
  bool known_user_ = false;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_scram_mechanism(ScramMechanism mechanism,
                                                    CredentialLookup lookup,
                                                    std::string server_nonce) {
  return make_scram_mechanism_for_hash(
      hash_of(mechanism),
      [mechanism, lookup = std::move(lookup)](const std::string& user) {
        return lookup(user, mechanism);
      },
      std::move(server_nonce));
}

std::unique_ptr<SaslMechanism> make_scram_mechanism_for_hash(ScramHash hash, Lookup lookup,
                                                             std::string server_nonce) {
  return std::make_unique<ScramMechanismImpl>(hash, std::move(lookup), std::move(server_nonce));
}

}  // namespace holdfast::server::security
