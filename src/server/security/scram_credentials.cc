#include "server/security/scram_credentials.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace holdfast::server::security {
namespace {

const EVP_MD* digest(ScramHash h) {
  switch (h) {
    case ScramHash::sha1: return EVP_sha1();
    case ScramHash::sha256: return EVP_sha256();
    case ScramHash::sha512: return EVP_sha512();
  }
  return EVP_sha512();
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::string_view mechanism_name(ScramMechanism mechanism) {
  return mechanism == ScramMechanism::sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-512";
}

std::optional<ScramMechanism> mechanism_from_name(std::string_view name) {
  if (name == "SCRAM-SHA-256") return ScramMechanism::sha256;
  if (name == "SCRAM-SHA-512") return ScramMechanism::sha512;
  return std::nullopt;
}

std::optional<ScramMechanism> mechanism_from_code(int8_t code) {
  if (code == 1) return ScramMechanism::sha256;
  if (code == 2) return ScramMechanism::sha512;
  return std::nullopt;
}

ScramHash hash_of(ScramMechanism mechanism) {
  return mechanism == ScramMechanism::sha256 ? ScramHash::sha256 : ScramHash::sha512;
}

std::string hash(ScramHash h, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, digest(h), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hmac(ScramHash h, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(digest(h), key.data(), int(key.size()), bytes(data), data.size(), out, &len) == nullptr) {
    throw std::runtime_error("HMAC failed");
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string salted_password(ScramHash h, std::string_view password, std::string_view salt,
                            int32_t iterations) {
  std::string out(size_t(EVP_MD_get_size(digest(h))), '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), int(password.size()), bytes(salt), int(salt.size()),
                        iterations, digest(h), int(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
  }
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), int(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kBase64[(v >> shift) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out.push_back(kBase64[(v >> 18) & 63]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int pad = 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = in[i + k];
      if (c == '=' && last && k >= 2 && (k == 3 || in[i + 3] == '=')) {
        ++pad;
        v <<= 6;
        continue;
      }
      int d = value(c);
      if (d < 0 || pad > 0) return std::nullopt;
      v = v << 6 | uint32_t(d);
    }
    out.push_back(char(v >> 16));
    if (pad < 2) out.push_back(char(v >> 8));
    if (pad < 1) out.push_back(char(v));
  }
  return out;
}

metadata::ScramCredentialInfo make_credential(ScramHash h, std::string_view password,
                                              std::string_view salt, int32_t iterations) {
  return credential_from_salted_password(h, salted_password(h, password, salt, iterations), salt,
                                         iterations);
}

metadata::ScramCredentialInfo credential_from_salted_password(ScramHash h, std::string_view salted,
                                                              std::string_view salt,
                                                              int32_t iterations) {
  const std::string client_key = hmac(h, salted, "Client Key");
  return metadata::ScramCredentialInfo{std::string(salt), hash(h, client_key),
                                       hmac(h, salted, "Server Key"), iterations};
}

bool password_matches(ScramHash h, const metadata::ScramCredentialInfo& credential,
                      std::string_view password) {
  auto derived = make_credential(h, password, credential.salt, credential.iterations);
  return constant_time_equal(derived.stored_key, credential.stored_key);
}

}  // namespace holdfast::server::security
