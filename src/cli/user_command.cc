// `holdfast user create|delete|list`: SCRAM users (docs/security.md).
//
// Offline, on a stopped single node's data directory (--data-dir): the way
// to create the first user, before any client can authenticate. The record
// is appended to the node's local metadata log, exactly as the broker would
// append it; the broker must be stopped (the data directory's lock says so).
//
// Or into a bootstrap file (--bootstrap-file): salted credentials, one per
// line, that a broker or cluster started with sasl.scram.bootstrap.file
// creates once (server/security/scram_bootstrap.h). The way to give a
// cluster its first users, since a cluster node's metadata is its Raft log.
//
// The password comes from --password-file, else from standard input (a
// prompt without echo on a terminal). --password exists for scripts and is
// visible to every local user in `ps`: prefer the other two.
#include <termios.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "io/posix_file_system.h"
#include "metadata/metadata_store.h"
#include "server/data_dir_lock.h"
#include "server/security/scram_bootstrap.h"
#include "server/security/scram_credentials.h"

namespace holdfast::cli {
namespace {

namespace security = server::security;

struct UserOptions {
  std::string name;
  std::string data_dir;
  std::string bootstrap_file;
  std::vector<std::string> mechanisms;
  int32_t iterations = 8192;
  std::string password_file;
  std::optional<std::string> password;
};

[[noreturn]] void fail(const std::string& command, const std::string& message, int code = 1) {
  std::cerr << "holdfast user " << command << ": " << message << std::endl;
  throw CLI::RuntimeError(code);
}

std::string read_password(const std::string& command, const UserOptions& options) {
  if (options.password) return *options.password;
  std::string password;
  if (!options.password_file.empty()) {
    std::ifstream file(options.password_file);
    if (!file) fail(command, "cannot read --password-file " + options.password_file);
    std::getline(file, password);
  } else {
    const bool tty = isatty(STDIN_FILENO);
    termios saved{};
    if (tty) {
      std::cerr << "Password for " << options.name << ": " << std::flush;
      tcgetattr(STDIN_FILENO, &saved);
      termios quiet = saved;
      quiet.c_lflag &= ~tcflag_t(ECHO);
      tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::getline(std::cin, password);
    if (tty) {
      tcsetattr(STDIN_FILENO, TCSANOW, &saved);
      std::cerr << std::endl;
    }
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) fail(command, "empty password (there is no default password)");
  return password;
}

std::vector<security::ScramMechanism> mechanisms(const std::string& command,
                                                 const UserOptions& options, bool default_all) {
  std::vector<security::ScramMechanism> out;
  for (const auto& name : options.mechanisms) {
    auto m = security::mechanism_from_name(name);
    if (!m) fail(command, "unknown --mechanism " + name + " (SCRAM-SHA-256 or SCRAM-SHA-512)");
    out.push_back(*m);
  }
  if (out.empty()) {
    if (default_all) return {security::ScramMechanism::sha256, security::ScramMechanism::sha512};
    return {security::ScramMechanism::sha512};
  }
  return out;
}

// The data directory's local metadata log, with the broker known to be stopped.
struct OfflineStore {
  server::DataDirLock lock;
  std::unique_ptr<metadata::MetadataStore> store;
};

OfflineStore open_offline(const std::string& command, io::FileSystem& fs, const std::string& dir) {
  // A directory that does not exist yet is fine: the first user can be made
  // before the broker's first start.
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(command, "cannot create " + dir + ": " + ec.message(), 2);
  if (std::filesystem::exists(dir + "/__metadata/raft")) {
    fail(command, dir + " belongs to a cluster node; create users through a running broker");
  }
  auto lock = server::DataDirLock::acquire(dir);
  if (!lock) fail(command, lock.error().message + " (stop the broker first)", 2);
  auto store = metadata::MetadataStore::open(fs, dir);
  if (!store) fail(command, store.error().message, 2);
  return OfflineStore{std::move(*lock), std::move(*store)};
}

// Appends the credentials to --bootstrap-file, created readable by its owner
// only (it holds no password, but its keys allow an offline guessing attack).
void write_bootstrap_lines(const UserOptions& options,
                           const std::vector<metadata::ScramCredentialUpserted>& credentials) {
  const bool existed = std::filesystem::exists(options.bootstrap_file);
  std::ofstream file(options.bootstrap_file, std::ios::app);
  if (!file) fail("create", "cannot write --bootstrap-file " + options.bootstrap_file, 2);
  if (!existed) {
    std::filesystem::permissions(options.bootstrap_file,
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace);
  }
  for (const auto& c : credentials) file << security::scram_bootstrap_line(c) << "\n";
  file.flush();
  if (!file) fail("create", "cannot write --bootstrap-file " + options.bootstrap_file, 2);
}

void run_create(const UserOptions& options) {
  if (options.data_dir.empty() == options.bootstrap_file.empty()) {
    fail("create", "give exactly one of --data-dir (a stopped single node) and --bootstrap-file "
                   "(for sasl.scram.bootstrap.file); to create users through a running broker "
                   "see docs/security.md");
  }
  if (options.iterations < security::kMinScramIterations ||
      options.iterations > security::kMaxScramIterations) {
    fail("create", "--iterations must be between " + std::to_string(security::kMinScramIterations) +
                       " and " + std::to_string(security::kMaxScramIterations));
  }
  auto selected = mechanisms("create", options, /*default_all=*/false);
  const std::string password = read_password("create", options);
  std::vector<metadata::ScramCredentialUpserted> credentials;
  for (auto m : selected) {
    auto credential = security::make_credential(security::hash_of(m), password,
                                                security::random_bytes(32), options.iterations);
    credentials.push_back(metadata::ScramCredentialUpserted{
        options.name, static_cast<int8_t>(m), credential.salt, credential.stored_key,
        credential.server_key, credential.iterations});
  }
  const auto name_of = [](const metadata::ScramCredentialUpserted& c) {
    return security::mechanism_name(static_cast<security::ScramMechanism>(c.mechanism));
  };
  if (!options.bootstrap_file.empty()) {
    write_bootstrap_lines(options, credentials);
    for (const auto& c : credentials) {
      std::cout << "user " << options.name << ": " << name_of(c) << " credential written to "
                << options.bootstrap_file << " (" << options.iterations << " iterations)"
                << std::endl;
    }
    return;
  }
  io::PosixFileSystem fs;
  auto offline = open_offline("create", fs, options.data_dir);
  for (const auto& c : credentials) {
    auto appended = offline.store->append(c);
    if (!appended) fail("create", appended.error().message, 2);
    std::cout << "user " << options.name << ": " << name_of(c) << " credential set ("
              << options.iterations << " iterations)" << std::endl;
  }
}

void run_delete(const UserOptions& options) {
  if (options.data_dir.empty()) fail("delete", "--data-dir is required");
  io::PosixFileSystem fs;
  auto offline = open_offline("delete", fs, options.data_dir);
  auto image = offline.store->current();
  bool any = false;
  for (auto m : mechanisms("delete", options, /*default_all=*/true)) {
    if (!image->scram_credentials.count({options.name, static_cast<int8_t>(m)})) continue;
    auto appended = offline.store->append(
        metadata::ScramCredentialDeleted{options.name, static_cast<int8_t>(m)});
    if (!appended) fail("delete", appended.error().message, 2);
    std::cout << "user " << options.name << ": " << security::mechanism_name(m)
              << " credential deleted" << std::endl;
    any = true;
  }
  if (!any) fail("delete", "user " + options.name + " has no such credential");
}

void run_list(const UserOptions& options) {
  if (options.data_dir.empty()) fail("list", "--data-dir is required");
  io::PosixFileSystem fs;
  auto offline = open_offline("list", fs, options.data_dir);
  for (const auto& [key, credential] : offline.store->current()->scram_credentials) {
    auto m = security::mechanism_from_code(key.second);
    std::cout << key.first << "\t" << (m ? security::mechanism_name(*m) : "?") << "\t"
              << credential.iterations << std::endl;
  }
}

}  // namespace

void add_user_command(CLI::App& app) {
  auto* user = app.add_subcommand("user", "Manage SASL/SCRAM users (docs/security.md)");
  user->require_subcommand(1);
  auto options = std::make_shared<UserOptions>();
  auto common = [&](CLI::App* sub, bool named) {
    if (named) sub->add_option("name", options->name, "User name")->required();
    sub->add_option("--data-dir", options->data_dir,
                    "Offline: the data directory of a stopped single node");
  };
  auto* create = user->add_subcommand("create", "Create a user or set its password");
  common(create, true);
  create->add_option("--bootstrap-file", options->bootstrap_file,
                     "Append the salted credential to this file, for sasl.scram.bootstrap.file "
                     "(a cluster's first users)");
  create->add_option("--mechanism", options->mechanisms,
                     "SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default SCRAM-SHA-512)");
  create->add_option("--iterations", options->iterations, "PBKDF2 iterations (4096-16384)");
  create->add_option("--password-file", options->password_file,
                     "Read the password from this file's first line");
  create->add_option("--password", options->password,
                     "The password itself: VISIBLE to every local user in ps; prefer "
                     "--password-file or standard input");
  create->callback([options] { run_create(*options); });
  auto* remove = user->add_subcommand("delete", "Delete a user's credentials");
  common(remove, true);
  remove->add_option("--mechanism", options->mechanisms, "Only this mechanism (default: all)");
  remove->callback([options] { run_delete(*options); });
  auto* list = user->add_subcommand("list", "List users and their mechanisms");
  common(list, false);
  list->callback([options] { run_list(*options); });
}

}  // namespace holdfast::cli
