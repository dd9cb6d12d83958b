// Placeholder; `holdfast group` is being written.
#include "cli/commands.h"

namespace holdfast::cli {
void add_group_command(CLI::App&) {}
}  // namespace holdfast::cli
