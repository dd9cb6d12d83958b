// The client side of SCRAM and PLAIN (security/sasl_client.h), which a broker
// uses to authenticate to the other brokers: RFC 7677's SCRAM-SHA-256
// example exchange, full exchanges against this repository's server-side
// mechanisms (SHA-256, SHA-512, PLAIN), and the ones that must fail: a wrong
// password, a server that does not hold the credential (bad server
// signature), a nonce that does not extend the client's, iteration counts
// out of bounds.
#include <gtest/gtest.h>

#include <string>

#include "server/security/sasl_client.h"
#include "server/security/sasl_mechanism.h"
#include "server/security/scram_credentials.h"

namespace holdfast::server::security {
namespace {

using Outcome = net::SaslClientStep::Outcome;

// RFC 7677 §3: user "user", password "pencil".
constexpr const char* kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr const char* kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

std::unique_ptr<net::SaslClient> rfc_client(const std::string& password = "pencil") {
  return make_scram_client(ScramHash::sha256, "SCRAM-SHA-256", "user", password, kClientNonce);
}

TEST(ScramClient, Rfc7677Sha256Exchange) {
  auto client = rfc_client();
  auto first = client->step("");
  ASSERT_EQ(first.outcome, Outcome::send);
  EXPECT_EQ(first.message, kClientFirst);
  auto final_message = client->step(kServerFirst);
  ASSERT_EQ(final_message.outcome, Outcome::send) << final_message.reason;
  EXPECT_EQ(final_message.message, kClientFinal);
  auto done = client->step(kServerFinal);
  EXPECT_EQ(done.outcome, Outcome::done) << done.reason;
}

TEST(ScramClient, AServerSignatureThatDoesNotVerifyFails) {
  auto client = rfc_client();
  client->step("");
  client->step(kServerFirst);
  // A changed first byte (not a padding bit): a server without the credential.
  auto step = client->step("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  EXPECT_EQ(step.outcome, Outcome::failure);
  EXPECT_NE(step.reason.find("signature"), std::string::npos) << step.reason;
  auto other = rfc_client();
  other->step("");
  other->step(kServerFirst);
  EXPECT_EQ(other->step("e=invalid-proof").outcome, Outcome::failure);
  auto garbage = rfc_client();
  garbage->step("");
  garbage->step(kServerFirst);
  EXPECT_EQ(garbage->step("v=%%%").outcome, Outcome::failure);
}

TEST(ScramClient, AServerNonceThatDoesNotExtendTheClientNonceFails) {
  for (const char* server_first :
       {"r=someoneElsesNonce123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  // not extended at all
        "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "garbage"}) {
    auto client = rfc_client();
    client->step("");
    auto step = client->step(server_first);
    EXPECT_EQ(step.outcome, Outcome::failure) << server_first;
  }
}

TEST(ScramClient, IterationCountsOutsideKafkasBoundsFail) {
  for (const char* iterations : {"4095", "1", "16385", "99999999999999999999", "-1", "x"}) {
    auto client = rfc_client();
    client->step("");
    auto step = client->step(std::string("r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=") +
                             iterations);
    EXPECT_EQ(step.outcome, Outcome::failure) << iterations;
  }
}

TEST(ScramClient, RandomNoncesDifferAndNamesAreEscaped) {
  auto a = make_scram_client(ScramHash::sha512, "SCRAM-SHA-512", "a,b=c", "pw");
  auto b = make_scram_client(ScramHash::sha512, "SCRAM-SHA-512", "a,b=c", "pw");
  auto first_a = a->step("").message;
  auto first_b = b->step("").message;
  EXPECT_EQ(first_a.rfind("n,,n=a=2Cb=3Dc,r=", 0), 0u) << first_a;
  EXPECT_NE(first_a, first_b);
  EXPECT_GE(first_a.size(), std::string("n,,n=a=2Cb=3Dc,r=").size() + 32);
}

// A whole exchange between the client and this repository's server side.
Outcome run_exchange(net::SaslClient& client, SaslMechanism& server, std::string* reason) {
  auto step = client.step("");
  for (int round = 0; round < 5; ++round) {
    if (step.outcome != Outcome::send) break;
    SaslStep answer = server.step(step.message);
    if (answer.outcome == SaslStep::Outcome::failure) {
      *reason = "server: " + answer.reason;
      return Outcome::failure;
    }
    step = client.step(answer.response);
  }
  *reason = step.reason;
  return step.outcome;
}

CredentialLookup broker_user(ScramMechanism mechanism, const std::string& password) {
  auto credential = make_credential(hash_of(mechanism), password, random_bytes(16), 8192);
  return [credential, mechanism](const std::string& user, ScramMechanism asked)
             -> std::optional<metadata::ScramCredentialInfo> {
    if (user == "broker" && asked == mechanism) return credential;
    return std::nullopt;
  };
}

TEST(ScramClient, AuthenticatesAgainstTheServerSideAndFailsWithAWrongPassword) {
  for (auto mechanism : {ScramMechanism::sha256, ScramMechanism::sha512}) {
    const std::string name(mechanism_name(mechanism));
    std::string reason;
    auto good = make_sasl_client(name, "broker", "s3cret");
    auto server = make_scram_mechanism(mechanism, broker_user(mechanism, "s3cret"));
    EXPECT_EQ(run_exchange(*good, *server, &reason), Outcome::done) << name << ": " << reason;

    auto wrong = make_sasl_client(name, "broker", "guess");
    auto server2 = make_scram_mechanism(mechanism, broker_user(mechanism, "s3cret"));
    EXPECT_EQ(run_exchange(*wrong, *server2, &reason), Outcome::failure) << name;
    EXPECT_EQ(reason.find("guess"), std::string::npos) << "the password leaked: " << reason;
  }
}

// A server holding another credential for the user (an impostor that cannot
// check the proof, so "accepts" it) is caught by the server signature.
TEST(ScramClient, AnImpostorServerIsCaughtByTheServerSignature) {
  auto impostor_credential = make_credential(ScramHash::sha512, "other", random_bytes(16), 4096);
  auto client = make_sasl_client("SCRAM-SHA-512", "broker", "s3cret");
  auto first = client->step("");
  auto nonce = first.message.substr(first.message.find(",r=") + 3);
  auto final_message = client->step("r=" + nonce + "xyz,s=" + base64_encode(impostor_credential.salt) +
                                    ",i=4096");
  ASSERT_EQ(final_message.outcome, Outcome::send);
  const std::string made_up =
      "v=" + base64_encode(hmac(ScramHash::sha512, impostor_credential.server_key, "anything"));
  EXPECT_EQ(client->step(made_up).outcome, Outcome::failure);
}

TEST(PlainClient, AuthenticatesAgainstTheServerSide) {
  auto lookup = broker_user(ScramMechanism::sha512, "s3cret");
  std::string reason;
  auto good = make_sasl_client("PLAIN", "broker", "s3cret");
  auto server = make_plain_mechanism(lookup);
  EXPECT_EQ(run_exchange(*good, *server, &reason), Outcome::done) << reason;
  auto wrong = make_sasl_client("PLAIN", "broker", "guess");
  auto server2 = make_plain_mechanism(lookup);
  EXPECT_EQ(run_exchange(*wrong, *server2, &reason), Outcome::failure);
  EXPECT_EQ(make_sasl_client("GSSAPI", "a", "b"), nullptr);
}

}  // namespace
}  // namespace holdfast::server::security
