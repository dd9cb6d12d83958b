// net::KafkaClient over TLS against a real broker in this process with an SSL
// listener: a request succeeds when the certificate chains to the client's
// CA and names the address dialled; it fails at connect (connect_failed,
// "TLS handshake failed", OpenSSL's verification reason) when the
// certificate names another address or host, or comes from a CA the client
// does not trust; and mTLS (ssl.client.auth=required) needs the client's
// certificate.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "net/kafka_client.h"
#include "server/security/tls_context.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

namespace fs = std::filesystem;

struct KeyPair {
  std::string cert, key;
};

// A self-signed P-256 certificate (it is its own CA) with `san` as its
// subjectAltName ("IP:127.0.0.1", "DNS:other.example"), written as PEM.
KeyPair write_self_signed(const fs::path& dir, const std::string& name, const std::string& san) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x509 = X509_new();
  X509_set_version(x509, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
  X509_gmtime_adj(X509_getm_notBefore(x509), 0);
  X509_gmtime_adj(X509_getm_notAfter(x509), 3600);
  X509_set_pubkey(x509, pkey);
  X509_NAME* subject = X509_get_subject_name(x509);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x509, subject);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x509, x509, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x509, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x509, pkey, EVP_sha256());
  KeyPair pair{(dir / (name + ".pem")).string(), (dir / (name + ".key")).string()};
  FILE* f = std::fopen(pair.cert.c_str(), "w");
  PEM_write_X509(f, x509);
  std::fclose(f);
  f = std::fopen(pair.key.c_str(), "w");
  PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x509);
  EVP_PKEY_free(pkey);
  return pair;
}

class KafkaClientTlsTest : public testing::BrokerFixture {
 protected:
  void SetUp() override {
    certs_ = fs::temp_directory_path() /
             ("hf-client-tls-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(certs_);
    server_ = write_self_signed(certs_, "server", "IP:127.0.0.1,DNS:localhost");
    other_name_ = write_self_signed(certs_, "other-name", "DNS:other.example");
    stranger_ = write_self_signed(certs_, "stranger", "IP:127.0.0.1");
    client_cert_ = write_self_signed(certs_, "client", "DNS:client");
    BrokerFixture::SetUp();
  }
  void TearDown() override {
    BrokerFixture::TearDown();
    fs::remove_all(certs_);
  }
  void configure(BrokerConfig& config) override {
    config.listen_name = "SSL";
    config.ssl_certificate_location = broker_cert_.cert.empty() ? server_.cert : broker_cert_.cert;
    config.ssl_key_location = broker_cert_.key.empty() ? server_.key : broker_cert_.key;
    if (mtls_) {
      config.ssl_client_auth = "required";
      config.ssl_ca_location = client_cert_.cert;
    }
  }

  // A client trusting `ca`, presenting `identity` when given.
  std::unique_ptr<net::KafkaClient> client(const std::string& ca, const KeyPair* identity = nullptr) {
    security::TlsSettings settings;
    settings.ca_location = ca;
    if (identity) {
      settings.certificate_location = identity->cert;
      settings.key_location = identity->key;
    }
    auto context = security::make_tls_client_context(settings);
    EXPECT_TRUE(context) << context.error().message;
    net::KafkaClientOptions options;
    options.client_id = "tls-client-test";
    options.connect_timeout = std::chrono::seconds(10);
    options.tls = *context;
    return std::make_unique<net::KafkaClient>(options);
  }

  net::NetResult<protocol::ApiVersionsResponse> api_versions(net::KafkaClient& c,
                                                             const std::string& host) {
    return c.call<protocol::ApiVersionsResponse>(net::Endpoint{host, port()},
                                                 protocol::ApiVersionsRequest{}, 3);
  }

  fs::path certs_;
  KeyPair server_, other_name_, stranger_, client_cert_, broker_cert_;
  bool mtls_ = false;
};

TEST_F(KafkaClientTlsTest, ARequestSucceedsWhenTheCertificateNamesTheAddressDialled) {
  auto c = client(server_.cert);
  auto by_ip = api_versions(*c, "127.0.0.1");
  ASSERT_TRUE(by_ip) << by_ip.error().message;
  EXPECT_EQ(by_ip->error_code, 0);
  auto by_name = api_versions(*c, "localhost");
  ASSERT_TRUE(by_name) << by_name.error().message;
}

TEST_F(KafkaClientTlsTest, ACertificateForAnotherNameOrFromAnUntrustedCaFailsTheConnect) {
  // The broker presents a certificate for other.example, which the client trusts.
  broker_cert_ = other_name_;
  restart();
  auto c = client(other_name_.cert);
  auto mismatch = api_versions(*c, "127.0.0.1");
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.code(), net::Errc::connect_failed);
  EXPECT_NE(mismatch.error().message.find("TLS handshake failed"), std::string::npos)
      << mismatch.error().message;
  EXPECT_NE(mismatch.error().message.find("mismatch"), std::string::npos) << mismatch.error().message;
  auto host_mismatch = api_versions(*c, "localhost");
  ASSERT_FALSE(host_mismatch);
  EXPECT_NE(host_mismatch.error().message.find("mismatch"), std::string::npos)
      << host_mismatch.error().message;

  // The broker's certificate names 127.0.0.1, but the client trusts another CA.
  broker_cert_ = server_;
  restart();
  auto distrustful = client(stranger_.cert);
  auto untrusted = api_versions(*distrustful, "127.0.0.1");
  ASSERT_FALSE(untrusted);
  EXPECT_NE(untrusted.error().message.find("TLS handshake failed"), std::string::npos)
      << untrusted.error().message;
}

TEST_F(KafkaClientTlsTest, MutualTlsNeedsTheClientCertificate) {
  mtls_ = true;
  restart();
  auto with_identity = client(server_.cert, &client_cert_);
  auto ok = api_versions(*with_identity, "127.0.0.1");
  ASSERT_TRUE(ok) << ok.error().message;
  auto anonymous = client(server_.cert);
  auto refused = api_versions(*anonymous, "127.0.0.1");
  EXPECT_FALSE(refused);
}

}  // namespace
}  // namespace holdfast::server
