#include <unistd.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <optional>

#include "admin/admin_server.h"
#include "base/log.h"
#include "cli/commands.h"
#include "io/fault_injection_file_system.h"
#include "io/posix_file_system.h"
#include "server/broker.h"
#include "server/broker_config.h"

namespace holdfast::cli {
namespace {

struct ServeOptions {
  std::string config_file;
  std::string data_dir;
  std::string listen;
  std::string advertise;
  std::optional<int64_t> node_id;  // --node-id; validated like --set node.id
  std::vector<std::string> settings;
  bool fault_injection = false;  // test-only: see tests/faults/README.md
};

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "holdfast serve: " << message << std::endl;
  throw CLI::RuntimeError(2);
}

std::string trim(const std::string& text) {
  auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

void run_serve(const ServeOptions& options) {
  server::BrokerConfig config;
  // Kafka settings that do not apply here: one warning, once the log is set up.
  std::vector<std::string> skipped;
  if (!options.config_file.empty()) {
    auto loaded = server::load_properties_file(config, options.config_file, skipped);
    if (!loaded) fail(loaded.error().message);
  }
  for (const auto& setting : options.settings) {
    auto eq = setting.find('=');
    if (eq == std::string::npos) fail("--set expects key=value, got '" + setting + "'");
    // "key = value" as in a properties file.
    std::string key = trim(setting.substr(0, eq));
    auto applied = server::apply_setting(config, key, trim(setting.substr(eq + 1)));
    if (!applied && applied.code() == server::ConfigErrc::unknown_key &&
        server::is_inapplicable_kafka_key(key)) {
      skipped.push_back(key);
      continue;
    }
    if (!applied) fail(applied.error().message);
  }
  auto override_setting = [&](const std::string& key, const std::string& value) {
    auto applied = server::apply_setting(config, key, value);
    if (!applied) fail(applied.error().message);
  };
  if (!options.data_dir.empty()) override_setting("log.dirs", options.data_dir);
  if (!options.listen.empty()) override_setting("listeners", options.listen);
  if (!options.advertise.empty()) override_setting("advertised.listeners", options.advertise);
  if (options.node_id) override_setting("node.id", std::to_string(*options.node_id));

  // Cluster settings on a single node (e.g. Kafka's stock single-node KRaft
  // file) are checked but have no effect: say so with the others.
  for (const auto& key : server::settings_without_effect(config)) skipped.push_back(key);
  set_log_level(config.log_level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (!skipped.empty()) {
    std::string list;
    for (const auto& key : skipped) list += (list.empty() ? "" : ", ") + key;
    HF_WARN("ignoring {} Kafka setting{} that do{} not apply to Holdfast: {}", skipped.size(),
            skipped.size() == 1 ? "" : "s", skipped.size() == 1 ? "es" : "", list);
  }

  // SIGTERM and SIGINT are taken by sigwait() in run_until_signalled(); block
  // them before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // --fault-injection: SIGUSR1 is "power loss", also taken by sigwait().
  if (options.fault_injection) sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  io::PosixFileSystem posix_fs;
  // Test-only: the broker runs on a file system that knows what was fsynced;
  // SIGUSR1 freezes it, drops everything not durable and exits at once, as if
  // the power went out. The next (normal) start recovers from what remains.
  std::unique_ptr<io::FaultInjectionFileSystem> injected;
  if (options.fault_injection) injected = std::make_unique<io::FaultInjectionFileSystem>(posix_fs);
  io::FileSystem& fs = injected ? static_cast<io::FileSystem&>(*injected) : posix_fs;
  // Declared before the broker so that it outlives it: the broker's
  // shutdown (also from its destructor) stops the admin listener first.
  std::unique_ptr<admin::AdminServer> admin_server;
  server::Broker broker(config, fs);
  if (injected) {
    broker.set_power_loss_handler([fs = injected.get()] {
      fs->halt();
      fs->simulate_power_loss();
      std::cerr << "holdfast serve: power loss simulated (unsynced data dropped)" << std::endl;
      ::_exit(137);
    });
  }
  // The admin listener binds before the broker starts (a port in use fails
  // before the data directory is touched) and stops first at shutdown.
  if (!config.admin_listener.empty()) {
    auto address = server::parse_host_port(config.admin_listener);
    admin_server = std::make_unique<admin::AdminServer>(
        broker, admin::AdminOptions{address->first, address->second});
    if (auto bound = admin_server->bind(); !bound) fail(bound.error().message);
    broker.set_before_shutdown([server = admin_server.get()] { server->stop(); });
  }
  auto started = broker.start();
  if (!started) fail(started.error().message);
  std::cout << "holdfast: listening on " << config.listen_host << ":" << broker.bound_port()
            << " (data in " << config.data_dir << ")" << std::endl;
  if (admin_server) {
    admin_server->start();
    std::cout << "holdfast: web console, admin API and metrics on http://" << admin_server->host()
              << ":" << admin_server->port() << "/" << std::endl;
  }
  broker.run_until_signalled();
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto options = std::make_shared<ServeOptions>();
  auto* serve = app.add_subcommand("serve", "Run a broker");
  serve->add_option("--config", options->config_file, "Kafka-style .properties file");
  serve->add_option("--data-dir", options->data_dir, "Data directory (log.dirs)");
  serve->add_option("--listen", options->listen, "host:port to listen on (listeners)");
  serve->add_option("--advertise", options->advertise,
                    "host:port clients should connect to (advertised.listeners)");
  serve->add_option("--node-id", options->node_id, "This broker's node id (node.id)");
  serve->add_option("--set", options->settings, "Override a setting: key=value (repeatable)");
  // Hidden and test-only (tests/faults/README.md): run on the fault-injecting
  // file system; SIGUSR1 simulates a power loss.
  serve->add_flag("--fault-injection", options->fault_injection)->group("");
  serve->callback([options] { run_serve(*options); });
}

}  // namespace holdfast::cli
