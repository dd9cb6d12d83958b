#include "server/security/scram_bootstrap.h"

#include <fstream>

#include "server/security/scram_credentials.h"

namespace holdfast::server::security {

Result<std::vector<metadata::ScramCredentialUpserted>, metadata::Errc> load_scram_bootstrap_file(
    const std::string& path) {
  std::ifstream file(path);
  if (!file) return make_error(metadata::Errc::io_error, "cannot read " + path);
  std::vector<metadata::ScramCredentialUpserted> out;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ", line " + std::to_string(number);
    auto record = metadata::decode_record(line);
    auto* credential = record ? std::get_if<metadata::ScramCredentialUpserted>(&*record) : nullptr;
    if (credential == nullptr) {
      return make_error(metadata::Errc::corrupt,
                        where + ": not a SCRAM credential (make the file with "
                                "`holdfast user create NAME --bootstrap-file FILE`)");
    }
    if (credential->user.empty() || (credential->mechanism != 1 && credential->mechanism != 2) ||
        credential->iterations < kMinScramIterations || credential->iterations > kMaxScramIterations ||
        credential->salt.empty() || credential->stored_key.empty() ||
        credential->server_key.empty()) {
      return make_error(metadata::Errc::corrupt,
                        where + ": incomplete credential (user, mechanism, keys, or iterations "
                                "outside " + std::to_string(kMinScramIterations) + "–" +
                                std::to_string(kMaxScramIterations) + ")");
    }
    credential->bootstrap = true;
    out.push_back(std::move(*credential));
  }
  return out;
}

std::vector<metadata::ScramCredentialUpserted> scram_bootstrap_due(
    const metadata::MetadataImage& image,
    const std::vector<metadata::ScramCredentialUpserted>& wanted) {
  std::vector<metadata::ScramCredentialUpserted> due;
  for (const auto& credential : wanted) {
    const std::pair<std::string, int8_t> key{credential.user, credential.mechanism};
    if (image.scram_credentials.count(key) || image.scram_bootstrapped.count(key)) continue;
    bool listed = false;  // the same key twice in the file: the first wins
    for (const auto& d : due) listed = listed || (d.user == key.first && d.mechanism == key.second);
    if (listed) continue;
    due.push_back(credential);
    due.back().bootstrap = true;
  }
  return due;
}

std::string scram_bootstrap_line(const metadata::ScramCredentialUpserted& credential) {
  auto record = credential;
  record.bootstrap = false;  // the broker marks what it appends
  return metadata::encode_record(record);
}

}  // namespace holdfast::server::security
