// PLAIN (RFC 4616). The password crosses the wire in clear: on a listener
// without TLS anyone on the path can read it (docs/security.md).
#include "server/security/sasl_mechanism.h"

namespace holdfast::server::security {
namespace {

class PlainMechanism : public SaslMechanism {
 public:
  explicit PlainMechanism(CredentialLookup lookup) : lookup_(std::move(lookup)) {}

  SaslStep step(std::string_view message) override {
    if (done_) return failure("PLAIN takes exactly one message");
    done_ = true;
    const size_t first = message.find('\0');
    const size_t second = first == std::string_view::npos ? first : message.find('\0', first + 1);
    if (second == std::string_view::npos) return failure("malformed PLAIN message");
    const std::string_view authzid = message.substr(0, first);
    const std::string_view authcid = message.substr(first + 1, second - first - 1);
    const std::string_view password = message.substr(second + 1);
    if (authcid.empty()) return failure("PLAIN message without a user name");
    user_ = std::string(authcid);
    if (!authzid.empty() && authzid != authcid) {
      return failure("authorization id differs from the user name");
    }
    for (ScramMechanism m : {ScramMechanism::sha512, ScramMechanism::sha256}) {
      auto credential = lookup_(user_, m);
      if (!credential) continue;
      if (password_matches(hash_of(m), *credential, password)) {
        return SaslStep{SaslStep::Outcome::success, "", ""};
      }
      return failure("wrong password");
    }
    return failure("unknown user");
  }

  const std::string& user() const override { return user_; }

 private:
  static SaslStep failure(std::string reason) {
    return SaslStep{SaslStep::Outcome::failure, "", std::move(reason)};
  }

  CredentialLookup lookup_;
  std::string user_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_plain_mechanism(CredentialLookup lookup) {
  return std::make_unique<PlainMechanism>(std::move(lookup));
}

}  // namespace holdfast::server::security
