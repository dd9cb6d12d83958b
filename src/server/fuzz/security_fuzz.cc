// libFuzzer target for what a client sends before it is authenticated: the
// SASL exchanges behind SaslHandshake / SaslAuthenticate (and raw v0 tokens),
// the TLS handshake's client flight, and the subject of a client certificate.
// (The SaslHandshake and SaslAuthenticate frames themselves are decoded by
// the request decoder and fuzzed by request_decoder_fuzz.) Byte 0 picks:
//
//   0  SASL, every client message from the input (through the authenticator,
//      or straight to SCRAM with a fixed server nonce so that the proof check
//      is reachable): authentication must never succeed, since the input
//      cannot know the password or compute a proof.
//   1  SASL SCRAM driven by a correct client (client nonce and user from the
//      input): the exchange must succeed and the server-final must carry the
//      right ServerSignature; then the same exchange with one byte of the
//      client-final changed (position and value from the input) must not crash.
//   2  TLS: the input, in records of input-chosen sizes, is the client's side
//      of a handshake with a server context made by make_tls_context
//      (ssl.client.auth=required): the handshake must never complete.
//   3  A DER X.509 name, and a DER certificate, printed as a principal.
//
// Beyond these checks: no crash and no AddressSanitizer report.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/security/sasl_authenticator.h"
#include "server/security/scram_credentials.h"
#include "server/security/tls_context.h"

using namespace holdfast::server::security;
using holdfast::metadata::ScramCredentialInfo;

namespace {

// A password the input cannot know (PLAIN compares derived keys, never this
// text, so comparison tracing cannot lead the fuzzer to it).
constexpr std::string_view kPassword = "q7#Lr0-fuzz-9vPz!aTe2";
constexpr std::string_view kUser = "alice";
// Few iterations keep PLAIN's key derivation from dominating the run; the
// iteration count is the credential's, so every code path is the same.
constexpr int32_t kIterations = 2;

struct Input {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  bool empty() const { return pos >= size; }
  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  std::string_view take(size_t n) {
    n = std::min(n, size - pos);
    std::string_view out(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    return out;
  }
  std::string_view rest() { return take(size - pos); }
};

ScramCredentialInfo credential(ScramMechanism m) {
  return make_credential(hash_of(m), kPassword, "fuzz-salt-" + std::string(mechanism_name(m)),
                         kIterations);
}

CredentialLookup lookup() {
  return [](const std::string& user, ScramMechanism m) -> std::optional<ScramCredentialInfo> {
    if (user != kUser) return std::nullopt;
    static const ScramCredentialInfo sha256 = credential(ScramMechanism::sha256);
    static const ScramCredentialInfo sha512 = credential(ScramMechanism::sha512);
    return m == ScramMechanism::sha256 ? sha256 : sha512;
  };
}

const char* const kMechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI"};

SaslAuthenticator authenticator() {
  return SaslAuthenticator({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, lookup());
}

// SCRAM with a fixed server nonce, so that the input can echo it and reach
// the proof check (with a random one, every client-final fails at the nonce).
void scram_fixed_nonce_from_input(Input& in, ScramMechanism m) {
  auto scram = make_scram_mechanism(m, lookup(), "fuzz-server-nonce");
  for (int message = 0; message < 3 && !in.empty(); ++message) {
    const size_t length = in.byte();
    SaslStep step = scram->step(in.take(length));
    if (step.outcome == SaslStep::Outcome::success) std::abort();  // authenticated without the secret
    if (step.outcome == SaslStep::Outcome::failure) return;
  }
}

void sasl_from_input(Input& in) {
  const uint8_t choice = in.byte();
  if (choice & 0x20) {
    scram_fixed_nonce_from_input(in, choice & 1 ? ScramMechanism::sha512 : ScramMechanism::sha256);
    return;
  }
  SaslAuthenticator sasl = authenticator();
  const int16_t version = int16_t(choice >> 7);
  if (sasl.handshake(kMechanisms[choice % 4], version) != SaslAuthenticator::HandshakeOutcome::ok)
    return;
  // A second handshake mid-exchange is refused and ends the exchange.
  if (choice & 0x40) {
    if (sasl.handshake("PLAIN", 1) != SaslAuthenticator::HandshakeOutcome::illegal_state ||
        sasl.state() != SaslAuthenticator::State::failed)
      std::abort();
  }
  for (int message = 0; message < 4 && !in.empty(); ++message) {
    const size_t length = in.byte();
    SaslStep step = sasl.step(in.take(length));
    if (step.outcome == SaslStep::Outcome::success) std::abort();  // authenticated without the secret
    if (step.outcome == SaslStep::Outcome::failure) {
      if (sasl.state() != SaslAuthenticator::State::failed) std::abort();
      return;
    }
  }
}

// The attribute `key` of a SCRAM message ("r=...,s=...,i=...").
std::string attribute(std::string_view message, char key) {
  size_t pos = 0;
  while (pos < message.size()) {
    size_t comma = message.find(',', pos);
    std::string_view item = message.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (item.size() >= 2 && item[0] == key && item[1] == '=') return std::string(item.substr(2));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return "";
}

struct ScramRun {
  bool succeeded = false;
  std::string server_final;
  std::string expected_server_final;
};

// A SCRAM exchange by a correct client (RFC 5802 §3), with `mutate` applied
// to its client-final before it is sent.
ScramRun scram_exchange(ScramMechanism m, const std::string& user, const std::string& client_nonce,
                        size_t mutate_at, uint8_t mutate_xor) {
  ScramRun run;
  SaslAuthenticator sasl = authenticator();
  if (sasl.handshake(std::string(mechanism_name(m)), 1) != SaslAuthenticator::HandshakeOutcome::ok)
    std::abort();
  const std::string first_bare = "n=" + user + ",r=" + client_nonce;
  SaslStep first = sasl.step("n,," + first_bare);
  if (first.outcome != SaslStep::Outcome::challenge) return run;
  const std::string& server_first = first.response;
  const std::string nonce = attribute(server_first, 'r');
  auto salt = base64_decode(attribute(server_first, 's'));
  const int iterations = std::atoi(attribute(server_first, 'i').c_str());
  if (nonce.rfind(client_nonce, 0) != 0 || !salt || iterations <= 0) std::abort();

  const ScramHash h = hash_of(m);
  // An unknown user's made-up credential has a real iteration count (4096+):
  // its proof fails whatever the key, so skip the costly derivation.
  const std::string salted = iterations == kIterations
                                 ? salted_password(h, kPassword, *salt, iterations)
                                 : std::string(16, 'k');
  const std::string client_key = hmac(h, salted, "Client Key");
  const std::string without_proof = "c=biws,r=" + nonce;
  const std::string auth_message = first_bare + "," + server_first + "," + without_proof;
  std::string proof = client_key;
  const std::string signature = hmac(h, hash(h, client_key), auth_message);
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = char(proof[i] ^ signature[i]);
  std::string client_final = without_proof + ",p=" + base64_encode(proof);
  if (mutate_xor != 0) client_final[mutate_at % client_final.size()] ^= char(mutate_xor);

  SaslStep last = sasl.step(client_final);
  run.succeeded = last.outcome == SaslStep::Outcome::success;
  run.server_final = last.response;
  run.expected_server_final =
      "v=" + base64_encode(hmac(h, hmac(h, salted, "Server Key"), auth_message));
  return run;
}

void sasl_scram_guided(Input& in) {
  const uint8_t choice = in.byte();
  const ScramMechanism m = choice & 1 ? ScramMechanism::sha512 : ScramMechanism::sha256;
  const bool known_user = !(choice & 2);
  std::string nonce;
  for (char c : in.take(1 + in.byte() % 48)) {
    if (c >= 0x21 && c <= 0x7e && c != ',') nonce.push_back(c);
  }
  if (nonce.empty()) nonce = "n";
  const std::string user = known_user ? std::string(kUser) : "mallory";
  ScramRun good = scram_exchange(m, user, nonce, 0, 0);
  if (known_user != good.succeeded) std::abort();
  if (good.succeeded && good.server_final != good.expected_server_final) std::abort();
  const size_t at = in.byte() | (in.byte() << 8);
  scram_exchange(m, user, nonce, at, in.byte());
}

// ---- TLS ----

std::string g_dir;

void write_pem(const std::string& path, auto write) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f || write(f) != 1) std::abort();
  std::fclose(f);
}

// A self-signed EC certificate and its key, in PEM files under a temporary directory.
void make_certificate() {
  char dir[] = "/tmp/hf-security-fuzz-XXXXXX";
  if (!mkdtemp(dir)) std::abort();
  g_dir = dir;
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("fuzz"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  if (!key || X509_sign(cert, key, EVP_sha256()) == 0) std::abort();
  write_pem(g_dir + "/cert.pem", [&](FILE* f) { return PEM_write_X509(f, cert); });
  write_pem(g_dir + "/key.pem", [&](FILE* f) {
    return PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
  X509_free(cert);
  EVP_PKEY_free(key);
}

SSL_CTX* server_context() {
  static std::shared_ptr<asio::ssl::context> context = [] {
    make_certificate();
    TlsSettings settings;
    settings.certificate_location = g_dir + "/cert.pem";
    settings.key_location = g_dir + "/key.pem";
    settings.ca_location = g_dir + "/cert.pem";
    settings.client_auth = ClientAuth::required;
    auto made = make_tls_context(settings);
    unlink(settings.certificate_location.c_str());
    unlink(settings.key_location.c_str());
    rmdir(g_dir.c_str());
    if (!made) std::abort();
    return *made;
  }();
  return context->native_handle();
}

void tls_handshake(Input& in) {
  SSL* ssl = SSL_new(server_context());
  BIO* from_client = BIO_new(BIO_s_mem());
  BIO* to_client = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, from_client, to_client);
  SSL_set_accept_state(ssl);
  for (int flight = 0; flight < 8 && !in.empty(); ++flight) {
    std::string_view chunk = in.take(1 + (in.byte() | (in.byte() << 8)));
    BIO_write(from_client, chunk.data(), int(chunk.size()));
    if (SSL_do_handshake(ssl) == 1) std::abort();  // no client can complete one from this input
    const int error = SSL_get_error(ssl, 0);
    (void)BIO_reset(to_client);
    if (error != SSL_ERROR_WANT_READ) break;
  }
  SSL_free(ssl);
  ERR_clear_error();
}

void certificate_principal(Input& in) {
  std::string_view der = in.rest();
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  if (X509_NAME* name = d2i_X509_NAME(nullptr, &p, long(der.size()))) {
    (void)rfc2253_name(name);
    X509_NAME_free(name);
  }
  p = reinterpret_cast<const unsigned char*>(der.data());
  if (X509* cert = d2i_X509(nullptr, &p, long(der.size()))) {
    (void)rfc2253_name(X509_get_subject_name(cert));
    X509_free(cert);
  }
  ERR_clear_error();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  switch (in.byte() % 4) {
    case 0: sasl_from_input(in); break;
    case 1: sasl_scram_guided(in); break;
    case 2: tls_handshake(in); break;
    case 3: certificate_principal(in); break;
  }
  return 0;
}
