// Placeholder; `holdfast verify` is being written.
#include "cli/commands.h"

namespace holdfast::cli {
void add_verify_command(CLI::App&) {}
}  // namespace holdfast::cli
