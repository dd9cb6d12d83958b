// The `holdfast` command's subcommands. Each add_* function registers one
// subcommand (with its options and callback) on the top-level app. A callback
// that fails prints one clear line to stderr and throws CLI::RuntimeError with
// a non-zero exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace holdfast::cli {

void add_serve_command(CLI::App& app);    // serve_command.cc
void add_topic_command(CLI::App& app);    // topic_command.cc
void add_produce_command(CLI::App& app);  // produce_command.cc
void add_consume_command(CLI::App& app);  // consume_command.cc
void add_group_command(CLI::App& app);    // group_command.cc
void add_verify_command(CLI::App& app);   // verify_command.cc
void add_log_command(CLI::App& app);      // log_command.cc
void add_cluster_command(CLI::App& app);  // client/cluster_command.cc
void add_user_command(CLI::App& app);     // user_command.cc
void add_txn_command(CLI::App& app);      // txn_command.cc
void add_acl_command(CLI::App& app);      // client/acl_command.cc
void add_quota_command(CLI::App& app);    // quota_command.cc

}  // namespace holdfast::cli
