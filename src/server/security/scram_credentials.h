// SCRAM credentials (RFC 5802, RFC 7677) and the primitives they are made of,
// over OpenSSL's libcrypto. The broker keeps only salt, StoredKey, ServerKey
// and the iteration count (metadata::ScramCredentialInfo), never a password.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "metadata/metadata_image.h"

namespace holdfast::server::security {

// Kafka's ScramMechanism codes (DescribeUserScramCredentials).
enum class ScramMechanism : int8_t { sha256 = 1, sha512 = 2 };

constexpr int32_t kMinScramIterations = 4096;  // RFC 7677's floor; Kafka's too
constexpr int32_t kMaxScramIterations = 16384;  // Kafka's ceiling (a cost bound)

// "SCRAM-SHA-256" / "SCRAM-SHA-512".
std::string_view mechanism_name(ScramMechanism mechanism);
std::optional<ScramMechanism> mechanism_from_name(std::string_view name);
std::optional<ScramMechanism> mechanism_from_code(int8_t code);

// Digest primitives for the mechanism (SHA-1 is here only to check the
// shared logic against RFC 5802's test vector).
enum class ScramHash { sha1, sha256, sha512 };
ScramHash hash_of(ScramMechanism mechanism);
std::string hash(ScramHash h, std::string_view data);
std::string hmac(ScramHash h, std::string_view key, std::string_view data);
// Hi() of RFC 5802: PBKDF2 with HMAC of the hash.
std::string salted_password(ScramHash h, std::string_view password, std::string_view salt,
                            int32_t iterations);
// `n` random bytes from the CSPRNG (RAND_bytes); throws if it fails.
std::string random_bytes(size_t n);
// Equal length and equal bytes, in time independent of where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// The credential for `password`: salted, keyed, no password kept.
metadata::ScramCredentialInfo make_credential(ScramHash h, std::string_view password,
                                              std::string_view salt, int32_t iterations);
// The credential from a salted password (AlterUserScramCredentials carries
// SaltedPassword, computed by the client, not the password).
metadata::ScramCredentialInfo credential_from_salted_password(ScramHash h, std::string_view salted,
                                                              std::string_view salt,
                                                              int32_t iterations);
// True if `password` is the one the credential was made from.
bool password_matches(ScramHash h, const metadata::ScramCredentialInfo& credential,
                      std::string_view password);

}  // namespace holdfast::server::security
