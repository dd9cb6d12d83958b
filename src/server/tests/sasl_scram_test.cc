// SASL mechanisms (issue 11): SCRAM against the RFC 7677 (SHA-256) and
// RFC 5802 (SHA-1, the shared logic) test vectors, PLAIN against a SCRAM
// credential, and the exchanges that must fail (wrong proof, wrong nonce,
// unknown user, malformed messages).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/security/sasl_authenticator.h"
#include "server/security/sasl_mechanism.h"
#include "server/security/scram_credentials.h"

namespace holdfast::server::security {
namespace {

using Outcome = SaslStep::Outcome;

// RFC 7677 §3: user "user", password "pencil".
constexpr const char* kClientFirst256 = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerNonce256 = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kServerFirst256 =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kClientFinal256 =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kServerFinal256 = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

metadata::ScramCredentialInfo pencil(ScramHash h, const char* salt_b64) {
  return make_credential(h, "pencil", *base64_decode(salt_b64), 4096);
}

CredentialLookup only_user(metadata::ScramCredentialInfo credential, ScramMechanism m) {
  return [credential, m](const std::string& user, ScramMechanism asked)
             -> std::optional<metadata::ScramCredentialInfo> {
    if (user == "user" && asked == m) return credential;
    return std::nullopt;
  };
}

TEST(Base64, RoundTripsAndRejectsGarbage) {
  const std::vector<std::string> samples{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)};
  for (const std::string& s : samples) {
    EXPECT_EQ(*base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("n,,"), "biws");
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("a=bc"));
  EXPECT_FALSE(base64_decode("ab!c"));
}

TEST(Scram, Rfc7677Sha256Vector) {
  auto scram = make_scram_mechanism(
      ScramMechanism::sha256,
      only_user(pencil(ScramHash::sha256, "W22ZaJ0SNY7soEsUEjb6gQ=="), ScramMechanism::sha256),
      kServerNonce256);
  SaslStep first = scram->step(kClientFirst256);
  ASSERT_EQ(first.outcome, Outcome::challenge) << first.reason;
  EXPECT_EQ(first.response, kServerFirst256);
  SaslStep final_step = scram->step(kClientFinal256);
  ASSERT_EQ(final_step.outcome, Outcome::success) << final_step.reason;
  EXPECT_EQ(final_step.response, kServerFinal256);
  EXPECT_EQ(scram->user(), "user");
}

TEST(Scram, Rfc5802Sha1Vector) {
  auto credential = pencil(ScramHash::sha1, "QSXCR+Q6sek8bf92");
  auto scram = make_scram_mechanism_for_hash(
      ScramHash::sha1,
      [credential](const std::string& user) -> std::optional<metadata::ScramCredentialInfo> {
        if (user == "user") return credential;
        return std::nullopt;
      },
      "3rfcNHYJY1ZVvWVs7j");
  SaslStep first = scram->step("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
  ASSERT_EQ(first.outcome, Outcome::challenge);
  EXPECT_EQ(first.response, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
  SaslStep final_step = scram->step(
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
  ASSERT_EQ(final_step.outcome, Outcome::success) << final_step.reason;
  EXPECT_EQ(final_step.response, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

std::unique_ptr<SaslMechanism> rfc7677_server() {
  return make_scram_mechanism(
      ScramMechanism::sha256,
      only_user(pencil(ScramHash::sha256, "W22ZaJ0SNY7soEsUEjb6gQ=="), ScramMechanism::sha256),
      kServerNonce256);
}

TEST(Scram, WrongProofFails) {
  auto scram = rfc7677_server();
  ASSERT_EQ(scram->step(kClientFirst256).outcome, Outcome::challenge);
  std::string tampered = kClientFinal256;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  SaslStep result = scram->step(tampered);
  EXPECT_EQ(result.outcome, Outcome::failure);
  EXPECT_EQ(result.reason, "wrong password");
  EXPECT_TRUE(result.response.empty());
}

TEST(Scram, WrongPasswordFails) {
  // The RFC's proof is for "pencil"; the stored credential is for another password.
  auto other = make_credential(ScramHash::sha256, "crayon", *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  auto scram = make_scram_mechanism(ScramMechanism::sha256, only_user(other, ScramMechanism::sha256),
                                    kServerNonce256);
  ASSERT_EQ(scram->step(kClientFirst256).outcome, Outcome::challenge);
  EXPECT_EQ(scram->step(kClientFinal256).outcome, Outcome::failure);
}

TEST(Scram, WrongNonceFails) {
  auto scram = rfc7677_server();
  ASSERT_EQ(scram->step(kClientFirst256).outcome, Outcome::challenge);
  SaslStep result = scram->step(
      "c=biws,r=rOprNGfwEbeRWgbNEkqOXXXX,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_EQ(result.outcome, Outcome::failure);
  EXPECT_EQ(result.reason, "nonce does not match");
}

// librdkafka (up to at least 2.0) sends its client nonce again in front of
// the combined nonce in client-final; Kafka accepts a final nonce that ends
// with the server-first one, and so must we. The proof is computed here, as a
// client would, over the message as sent.
TEST(Scram, FinalNonceWithTheClientNonceRepeatedIsAccepted) {
  auto scram = rfc7677_server();
  ASSERT_EQ(scram->step(kClientFirst256).outcome, Outcome::challenge);
  const std::string without_proof =
      std::string("c=biws,r=rOprNGfwEbeRWgbNEkqO") + "rOprNGfwEbeRWgbNEkqO" + kServerNonce256;
  const std::string salted =
      salted_password(ScramHash::sha256, "pencil", *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  const std::string client_key = hmac(ScramHash::sha256, salted, "Client Key");
  const std::string auth_message = std::string(kClientFirst256).substr(3) + "," +
                                   kServerFirst256 + "," + without_proof;
  const std::string signature =
      hmac(ScramHash::sha256, hash(ScramHash::sha256, client_key), auth_message);
  std::string proof(client_key.size(), '\0');
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = char(client_key[i] ^ signature[i]);
  SaslStep result = scram->step(without_proof + ",p=" + base64_encode(proof));
  EXPECT_EQ(result.outcome, Outcome::success) << result.reason;

  // A nonce that ends otherwise (the server's part changed) still fails.
  auto other = rfc7677_server();
  ASSERT_EQ(other->step(kClientFirst256).outcome, Outcome::challenge);
  std::string tampered = without_proof;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(other->step(tampered + ",p=" + base64_encode(proof)).reason, "nonce does not match");
}

TEST(Scram, UnknownUserGetsAChallengeAndThenFails) {
  auto scram = rfc7677_server();
  SaslStep first = scram->step("n,,n=mallory,r=rOprNGfwEbeRWgbNEkqO");
  ASSERT_EQ(first.outcome, Outcome::challenge);  // no hint that the user does not exist
  std::string final_msg = std::string("c=biws,r=rOprNGfwEbeRWgbNEkqO") + kServerNonce256 +
                          ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  SaslStep result = scram->step(final_msg);
  EXPECT_EQ(result.outcome, Outcome::failure);
  EXPECT_EQ(result.reason, "unknown user");
}

TEST(Scram, MalformedMessagesFail) {
  for (const char* bad : {"", "n", "n,,", "n,,r=abc,n=user", "p=tls-unique,,n=user,r=abc",
                          "n,,n=us=er,r=abc", "n,,n=user", "n,,n=user,r=", "n,a=other,n=user,r=abc",
                          "n,,n=user,r=abc,m=ext"}) {
    auto scram = rfc7677_server();
    EXPECT_EQ(scram->step(bad).outcome, Outcome::failure) << bad;
  }
  for (const char* bad : {"", "c=biws", "c=biws,r=x", "p=abc", "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                          "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!!"}) {
    auto scram = rfc7677_server();
    ASSERT_EQ(scram->step(kClientFirst256).outcome, Outcome::challenge);
    EXPECT_EQ(scram->step(bad).outcome, Outcome::failure) << bad;
  }
  // A third message after success is refused.
  auto scram = rfc7677_server();
  scram->step(kClientFirst256);
  ASSERT_EQ(scram->step(kClientFinal256).outcome, Outcome::success);
  EXPECT_EQ(scram->step(kClientFinal256).outcome, Outcome::failure);
}

TEST(Plain, ChecksThePasswordAgainstTheScramCredential) {
  auto credential = make_credential(ScramHash::sha512, "s3cret", random_bytes(16), 4096);
  auto lookup = only_user(credential, ScramMechanism::sha512);
  auto ok = make_plain_mechanism(lookup);
  EXPECT_EQ(ok->step(std::string("\0user\0s3cret", 12)).outcome, Outcome::success);
  auto authz = make_plain_mechanism(lookup);
  EXPECT_EQ(authz->step(std::string("user\0user\0s3cret", 16)).outcome, Outcome::success);

  auto wrong = make_plain_mechanism(lookup);
  SaslStep result = wrong->step(std::string("\0user\0guess", 11));
  EXPECT_EQ(result.outcome, Outcome::failure);
  EXPECT_EQ(result.reason.find("guess"), std::string::npos);
  EXPECT_EQ(make_plain_mechanism(lookup)->step(std::string("\0nobody\0s3cret", 14)).outcome,
            Outcome::failure);
  EXPECT_EQ(make_plain_mechanism(lookup)->step(std::string("other\0user\0s3cret", 17)).outcome,
            Outcome::failure);
  EXPECT_EQ(make_plain_mechanism(lookup)->step("no separators").outcome, Outcome::failure);
}

TEST(Authenticator, HandshakeSelectsEnabledMechanismsOnly) {
  auto none = [](const std::string&, ScramMechanism) -> std::optional<metadata::ScramCredentialInfo> {
    return std::nullopt;
  };
  SaslAuthenticator a({"SCRAM-SHA-512"}, none);
  EXPECT_EQ(a.handshake("PLAIN", 1), SaslAuthenticator::HandshakeOutcome::unsupported_mechanism);
  SaslAuthenticator b({"SCRAM-SHA-512"}, none);
  EXPECT_EQ(b.handshake("SCRAM-SHA-512", 1), SaslAuthenticator::HandshakeOutcome::ok);
  EXPECT_EQ(b.state(), SaslAuthenticator::State::authenticate);
  EXPECT_EQ(b.handshake("SCRAM-SHA-512", 1), SaslAuthenticator::HandshakeOutcome::illegal_state);
  SaslAuthenticator c({"PLAIN"}, none);
  EXPECT_EQ(c.handshake("PLAIN", 0), SaslAuthenticator::HandshakeOutcome::ok);
  EXPECT_EQ(c.state(), SaslAuthenticator::State::raw_tokens);
  SaslAuthenticator d({"PLAIN"}, none);
  EXPECT_EQ(d.step("x").outcome, Outcome::failure);  // no handshake yet
}

}  // namespace
}  // namespace holdfast::server::security
