// The `holdfast` command line as a whole: parsing with one exit code (2) for
// every usage error, "did you mean" for mistyped subcommands, `--version`,
// `holdfast help [command...]`, and validators with readable range messages.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace holdfast::cli {

// Adds --version and the `help` subcommand to `app` (after every other
// subcommand is registered), parses, runs the chosen callback, and returns the
// process exit code: 0, the code a failed command chose, or 2 for a usage error.
int run_command_line(CLI::App& app, int argc, char** argv);

// "--x: must be at least <min>, got <v>" without CLI11's 300-digit float bounds.
CLI::Validator at_least(double min);
// "--x: must be between <min> and <max>, got <v>".
CLI::Validator between(double min, double max);

// Registers a hidden option `name` (taking a value) whose every use is a
// usage error saying `message`: an old or confusing spelling, kept as a
// pointer to the right one.
void reject_option(CLI::App* command, const std::string& name, const std::string& message);

}  // namespace holdfast::cli
