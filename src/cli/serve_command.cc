#include <csignal>
#include <iostream>

#include "base/log.h"
#include "cli/commands.h"
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
  int node_id = -1;
  std::vector<std::string> settings;
};

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "holdfast serve: " << message << std::endl;
  throw CLI::RuntimeError(2);
}

void run_serve(const ServeOptions& options) {
  server::BrokerConfig config;
  if (!options.config_file.empty()) {
    auto loaded = server::load_properties_file(config, options.config_file);
    if (!loaded) fail(loaded.error().message);
  }
  for (const auto& setting : options.settings) {
    auto eq = setting.find('=');
    if (eq == std::string::npos) fail("--set expects key=value, got '" + setting + "'");
    auto applied = server::apply_setting(config, setting.substr(0, eq), setting.substr(eq + 1));
    if (!applied) fail(applied.error().message);
  }
  auto override_setting = [&](const std::string& key, const std::string& value) {
    auto applied = server::apply_setting(config, key, value);
    if (!applied) fail(applied.error().message);
  };
  if (!options.data_dir.empty()) override_setting("log.dirs", options.data_dir);
  if (!options.listen.empty()) override_setting("listeners", options.listen);
  if (!options.advertise.empty()) override_setting("advertised.listeners", options.advertise);
  if (options.node_id >= 0) override_setting("node.id", std::to_string(options.node_id));

  set_log_level(config.log_level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // SIGTERM and SIGINT are taken by sigwait() in run_until_signalled(); block
  // them before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  io::PosixFileSystem fs;
  server::Broker broker(config, fs);
  auto started = broker.start();
  if (!started) fail(started.error().message);
  std::cout << "holdfast: listening on " << config.listen_host << ":" << broker.bound_port()
            << " (data in " << config.data_dir << ")" << std::endl;
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
  serve->callback([options] { run_serve(*options); });
}

}  // namespace holdfast::cli
