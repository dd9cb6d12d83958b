// TLS context creation (security/tls_context.h): a missing, unreadable or
// mismatched certificate or key is an error naming the setting; Kafka's
// default principal of a client certificate.
#include "server/security/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "server/broker_config.h"

namespace holdfast::server::security {
namespace {

namespace fs = std::filesystem;

// A self-signed P-256 certificate and its key, written as PEM files.
struct KeyPair {
  std::string cert, key;
};

KeyPair write_self_signed(const fs::path& dir, const std::string& name, const char* password = nullptr) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x509 = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
  X509_gmtime_adj(X509_getm_notBefore(x509), 0);
  X509_gmtime_adj(X509_getm_notAfter(x509), 3600);
  X509_set_pubkey(x509, pkey);
  X509_NAME* subject = X509_get_subject_name(x509);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x509, subject);
  X509_sign(x509, pkey, EVP_sha256());
  KeyPair pair{(dir / (name + ".pem")).string(), (dir / (name + ".key")).string()};
  FILE* f = std::fopen(pair.cert.c_str(), "w");
  PEM_write_X509(f, x509);
  std::fclose(f);
  f = std::fopen(pair.key.c_str(), "w");
  if (password) {
    PEM_write_PrivateKey(f, pkey, EVP_aes_256_cbc(), nullptr, 0, nullptr,
                         const_cast<char*>(password));
  } else {
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  }
  std::fclose(f);
  X509_free(x509);
  EVP_PKEY_free(pkey);
  return pair;
}

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hf-tls-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    server_ = write_self_signed(dir_, "server");
    other_ = write_self_signed(dir_, "other");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static TlsSettings settings(std::string cert, std::string key, std::string password = "",
                              std::string ca = "", ClientAuth auth = ClientAuth::none) {
    return TlsSettings{std::move(cert), std::move(key), std::move(password), std::move(ca), auth};
  }

  std::string error_of(const TlsSettings& settings) {
    auto made = make_tls_context(settings);
    return made ? std::string() : made.error().message;
  }

  fs::path dir_;
  KeyPair server_, other_;
};

TEST_F(TlsContextTest, GoodCertificateAndKey) {
  auto made = make_tls_context(settings(server_.cert, server_.key));
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_GE(SSL_CTX_get_min_proto_version((*made)->native_handle()), TLS1_2_VERSION);
  EXPECT_TRUE(make_tls_context(
      settings(server_.cert, server_.key, "", other_.cert, ClientAuth::required)));
}

TEST_F(TlsContextTest, ErrorsNameTheSetting) {
  auto missing = (dir_ / "missing.pem").string();
  EXPECT_NE(error_of(settings("", server_.key)).find("ssl.certificate.location"), std::string::npos);
  EXPECT_NE(error_of(settings(missing, server_.key)).find("ssl.certificate.location"), std::string::npos);
  EXPECT_NE(error_of(settings(server_.key, server_.key)).find("ssl.certificate.location"),
            std::string::npos);  // a key is not a certificate
  EXPECT_NE(error_of(settings(server_.cert, "")).find("ssl.key.location"), std::string::npos);
  EXPECT_NE(error_of(settings(server_.cert, missing)).find("ssl.key.location"), std::string::npos);
  std::string mismatched = error_of(settings(server_.cert, other_.key));
  EXPECT_NE(mismatched.find("ssl.key.location"), std::string::npos) << mismatched;
  EXPECT_NE(mismatched.find("does not match"), std::string::npos) << mismatched;
  EXPECT_NE(error_of(settings(server_.cert, server_.key, "", "", ClientAuth::required)).find("ssl.ca.location"),
            std::string::npos);
  EXPECT_NE(error_of(settings(server_.cert, server_.key, "", missing, ClientAuth::requested))
                .find("ssl.ca.location"),
            std::string::npos);
}

TEST_F(TlsContextTest, EncryptedKeyNeedsItsPassword) {
  KeyPair locked = write_self_signed(dir_, "locked", "s3cret");
  EXPECT_TRUE(make_tls_context(settings(locked.cert, locked.key, "s3cret")));
  std::string wrong = error_of(settings(locked.cert, locked.key, "nope"));
  EXPECT_NE(wrong.find("ssl.key.location"), std::string::npos) << wrong;
}

TEST_F(TlsContextTest, SettingsComeFromTheBrokerConfig) {
  BrokerConfig config;
  config.ssl_certificate_location = server_.cert;
  config.ssl_key_location = server_.key;
  config.ssl_client_auth = "requested";
  config.ssl_ca_location = other_.cert;
  TlsSettings from_config = tls_settings(config);
  EXPECT_EQ(from_config.certificate_location, server_.cert);
  EXPECT_EQ(from_config.client_auth, ClientAuth::requested);
  EXPECT_TRUE(make_tls_context(from_config));
}

// Kafka's default principal is X500Principal.getName(): RFC 2253, last RDN first.
TEST(Rfc2253Name, LastRdnFirstWithEscapes) {
  X509_NAME* name = X509_NAME_new();
  // By reference: `name` is freed and replaced below (a copy of the pointer
  // would write into freed memory; it crashed once the allocator stopped
  // handing the same address back).
  auto add = [&name](const char* field, const char* value, int set = 0) {
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value), -1, -1, set);
  };
  add("O", "Acme");
  add("OU", "eng");
  add("CN", "alice");
  EXPECT_EQ(rfc2253_name(name), "CN=alice,OU=eng,O=Acme");
  X509_NAME_free(name);

  name = X509_NAME_new();
  add("C", "US");
  add("CN", "Smith, John+Jr");
  add("UID", "js", -1);  // multi-valued with the previous RDN
  EXPECT_EQ(rfc2253_name(name), "CN=Smith\\, John\\+Jr+UID=js,C=US");
  X509_NAME_free(name);

  name = X509_NAME_new();
  add("emailAddress", "a@b.c");  // no keyword in Java: dotted OID and the DER
  add("CN", " x ");
  EXPECT_EQ(rfc2253_name(name), "CN=\\ x\\ ,1.2.840.113549.1.9.1=#16056140622e63");
  X509_NAME_free(name);
}

}  // namespace
}  // namespace holdfast::server::security
