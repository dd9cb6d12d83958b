#include "server/security/sasl_client.h"

#include <optional>
#include <vector>

namespace holdfast::server::security {
namespace {

net::SaslClientStep send(std::string message) {
  return {net::SaslClientStep::Outcome::send, std::move(message), ""};
}
net::SaslClientStep done() { return {net::SaslClientStep::Outcome::done, "", ""}; }
net::SaslClientStep failure(std::string reason) {
  return {net::SaslClientStep::Outcome::failure, "", std::move(reason)};
}

class PlainClient : public net::SaslClient {
 public:
  PlainClient(std::string user, std::string password)
      : user_(std::move(user)), password_(std::move(password)) {}
  const std::string& mechanism() const override { return mechanism_; }
  const std::string& user() const override { return user_; }
  net::SaslClientStep step(std::string_view) override {
    if (sent_) return done();  // the broker's success (its message is empty)
    sent_ = true;
    return send(std::string(1, '\0') + user_ + std::string(1, '\0') + password_);
  }

 private:
  const std::string mechanism_ = "PLAIN";
  std::string user_;
  std::string password_;
  bool sent_ = false;
};

// saslname: ',' and '=' escaped (RFC 5802 §5.1).
std::string escape_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') out += "=2C";
    else if (c == '=') out += "=3D";
    else out.push_back(c);
  }
  return out;
}

// The value of attribute `key` in "a=1,b=2", if present.
std::optional<std::string_view> attribute(std::string_view text, char key) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view item = text.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    if (item.size() >= 2 && item[0] == key && item[1] == '=') return item.substr(2);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return std::nullopt;
}

class ScramClient : public net::SaslClient {
 public:
  ScramClient(ScramHash hash, std::string mechanism, std::string user, std::string password,
              std::string client_nonce)
      : hash_(hash),
        mechanism_(std::move(mechanism)),
        user_(std::move(user)),
        password_(std::move(password)),
        client_nonce_(std::move(client_nonce)) {}

  const std::string& mechanism() const override { return mechanism_; }
  const std::string& user() const override { return user_; }

  net::SaslClientStep step(std::string_view server_message) override {
    switch (state_) {
      case State::start: return client_first();
      case State::server_first: return client_final(server_message);
      case State::server_final: return check_server_final(server_message);
      case State::finished: break;
    }
    return failure("SCRAM exchange already finished");
  }

 private:
  enum class State { start, server_first, server_final, finished };

  net::SaslClientStep client_first() {
    if (client_nonce_.empty()) client_nonce_ = base64_encode(random_bytes(24));
    client_first_bare_ = "n=" + escape_name(user_) + ",r=" + client_nonce_;
    state_ = State::server_first;
    return send("n,," + client_first_bare_);
  }

  net::SaslClientStep client_final(std::string_view server_first) {
    state_ = State::finished;  // until this step succeeds
    if (server_first.substr(0, 2) == "e=") {
      return failure("the broker refused: " + std::string(server_first.substr(2)));
    }
    if (attribute(server_first, 'm')) return failure("the broker asks for an unsupported extension");
    auto nonce = attribute(server_first, 'r');
    auto salt_text = attribute(server_first, 's');
    auto iterations_text = attribute(server_first, 'i');
    if (!nonce || !salt_text || !iterations_text || server_first.substr(0, 2) != "r=") {
      return failure("malformed server-first message");
    }
    // The server's nonce extends ours: otherwise this is not our exchange.
    if (nonce->size() <= client_nonce_.size() ||
        nonce->substr(0, client_nonce_.size()) != client_nonce_) {
      return failure("the broker's nonce does not extend the client nonce");
    }
    auto salt = base64_decode(*salt_text);
    if (!salt || salt->empty()) return failure("malformed salt");
    int64_t iterations = 0;
    for (char c : *iterations_text) {
      if (c < '0' || c > '9' || iterations > kMaxScramIterations) {
        return failure("iteration count out of bounds");
      }
      iterations = iterations * 10 + (c - '0');
    }
    if (iterations < kMinScramIterations || iterations > kMaxScramIterations) {
      return failure("iteration count " + std::to_string(iterations) + " outside " +
                     std::to_string(kMinScramIterations) + ".." +
                     std::to_string(kMaxScramIterations));
    }
    const std::string salted =
        salted_password(hash_, password_, *salt, static_cast<int32_t>(iterations));
    const std::string client_key = hmac(hash_, salted, "Client Key");
    const std::string stored_key = hash(hash_, client_key);
    const std::string without_proof = "c=" + base64_encode("n,,") + ",r=" + std::string(*nonce);
    const std::string auth_message =
        client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
    const std::string client_signature = hmac(hash_, stored_key, auth_message);
    std::string proof(client_key.size(), '\0');
    for (size_t i = 0; i < proof.size(); ++i) proof[i] = char(client_key[i] ^ client_signature[i]);
    expected_server_signature_ = hmac(hash_, hmac(hash_, salted, "Server Key"), auth_message);
    state_ = State::server_final;
    return send(without_proof + ",p=" + base64_encode(proof));
  }

  net::SaslClientStep check_server_final(std::string_view server_final) {
    state_ = State::finished;
    if (server_final.substr(0, 2) == "e=") {
      return failure("the broker refused: " + std::string(server_final.substr(2)));
    }
    auto verifier = attribute(server_final, 'v');
    auto signature = verifier ? base64_decode(*verifier) : std::nullopt;
    if (!signature) return failure("malformed server-final message");
    if (!constant_time_equal(*signature, expected_server_signature_)) {
      return failure("the broker's server signature does not verify (it does not hold this "
                     "user's credential)");
    }
    return done();
  }

  ScramHash hash_;
  std::string mechanism_;
  std::string user_;
  std::string password_;
  std::string client_nonce_;
  State state_ = State::start;
  std::string client_first_bare_;
  std::string expected_server_signature_;
};

}  // namespace

std::unique_ptr<net::SaslClient> make_plain_client(std::string user, std::string password) {
  return std::make_unique<PlainClient>(std::move(user), std::move(password));
}

std::unique_ptr<net::SaslClient> make_scram_client(ScramHash hash, std::string mechanism,
                                                   std::string user, std::string password,
                                                   std::string client_nonce) {
  return std::make_unique<ScramClient>(hash, std::move(mechanism), std::move(user),
                                       std::move(password), std::move(client_nonce));
}

std::unique_ptr<net::SaslClient> make_sasl_client(const std::string& mechanism, std::string user,
                                                  std::string password) {
  if (mechanism == "PLAIN") return make_plain_client(std::move(user), std::move(password));
  auto scram = mechanism_from_name(mechanism);
  if (!scram) return nullptr;
  return make_scram_client(hash_of(*scram), mechanism, std::move(user), std::move(password));
}

}  // namespace holdfast::server::security
