#include <CLI/CLI.hpp>

#include "cli/client/usage.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Holdfast: a Kafka-compatible broker that does not lose acknowledged messages"};
  app.require_subcommand(1);
  holdfast::cli::add_serve_command(app);
  holdfast::cli::add_topic_command(app);
  holdfast::cli::add_produce_command(app);
  holdfast::cli::add_consume_command(app);
  holdfast::cli::add_group_command(app);
  holdfast::cli::add_verify_command(app);
  holdfast::cli::add_log_command(app);
  holdfast::cli::add_cluster_command(app);
  holdfast::cli::add_user_command(app);
  holdfast::cli::add_txn_command(app);
  holdfast::cli::add_acl_command(app);
  holdfast::cli::add_quota_command(app);
  return holdfast::cli::run_command_line(app, argc, argv);
}
