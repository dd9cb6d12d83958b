#include "cli/client/usage.h"

#include <iostream>
#include <string_view>
#include <vector>

#include "cli/client/client.h"

#ifndef HOLDFAST_VERSION
#define HOLDFAST_VERSION "unknown"
#endif

namespace holdfast::cli {
namespace {

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

std::vector<std::string> subcommand_names(CLI::App* app) {
  std::vector<std::string> names;
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
    if (!sub->get_name().empty()) names.push_back(sub->get_name());
  }
  return names;
}

// Walks argv down the subcommand tree; at the first word that is not a
// subcommand where one is expected, returns "unknown command ...; did you
// mean ...?" (or "" when nothing looks like a mistyped subcommand).
std::string unknown_subcommand(CLI::App& app, int argc, char** argv, std::string& path) {
  CLI::App* current = &app;
  path = "holdfast";
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word.empty() || word.front() == '-') return "";  // options: leave them to CLI11
    auto names = subcommand_names(current);
    if (names.empty()) return "";
    CLI::App* next = nullptr;
    try {
      next = current->get_subcommand(std::string(word));
    } catch (const CLI::OptionNotFound&) {
    }
    if (next == nullptr) {
      std::string line = "unknown command '" + path + " " + std::string(word) + "'";
      std::string hint = did_you_mean(std::string(word), names);
      if (!hint.empty()) return line + "; " + hint;
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      return line + " (commands: " + all + ")";
    }
    current = next;
    path += " " + next->get_name();
  }
  return "";
}

// The deepest subcommand that was parsed, for "see 'holdfast x --help'".
std::string parsed_path(CLI::App& app) {
  std::string path = "holdfast";
  CLI::App* current = &app;
  for (;;) {
    auto parsed = current->get_subcommands();
    if (parsed.empty()) return path;
    current = parsed.front();
    path += " " + current->get_name();
  }
}

}  // namespace

CLI::Validator at_least(double min) {
  return CLI::Validator(
      [min](std::string& input) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(input, value)) return "'" + input + "' is not a number";
        if (value < min) return "must be at least " + number_text(min) + ", got " + input;
        return "";
      },
      ">=" + number_text(min), "at_least");
}

CLI::Validator between(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& input) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(input, value)) return "'" + input + "' is not a number";
        if (value < min || value > max) {
          return "must be between " + number_text(min) + " and " + number_text(max) + ", got " +
                 input;
        }
        return "";
      },
      "[" + number_text(min) + ".." + number_text(max) + "]", "between");
}

void reject_option(CLI::App* command, const std::string& name, const std::string& message) {
  command->add_option(name)->group("")->check(
      CLI::Validator([message](std::string&) { return message; }, ""));
}

int run_command_line(CLI::App& app, int argc, char** argv) {
  app.set_version_flag("--version", "holdfast " HOLDFAST_VERSION);
  std::vector<std::string> help_topic;
  auto* help = app.add_subcommand("help", "Show help for holdfast or one of its commands");
  help->add_option("command", help_topic, "e.g. topic create");
  help->callback([&app, &help_topic] {
    CLI::App* target = &app;
    for (const auto& word : help_topic) {
      CLI::App* next = nullptr;
      try {
        next = target->get_subcommand(word);
      } catch (const CLI::OptionNotFound&) {
      }
      if (next == nullptr) {
        std::string hint = did_you_mean(word, subcommand_names(target));
        fail("help: no command '" + word + "'" + (hint.empty() ? "" : "; " + hint), kExitUsage);
      }
      target = next;
    }
    // App::help() would show the selected subcommand (`help` itself).
    std::cout << target->get_formatter()->make_help(target, target->get_name(),
                                                    CLI::AppFormatMode::Normal);
  });
  // `holdfast` alone: the overview instead of "A subcommand is required".
  if (argc <= 1) {
    std::cout << app.help();
    return 0;
  }
  try {
    app.parse(argc, argv);
    return 0;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // the command printed its own one-line reason
  } catch (const CLI::ParseError& e) {
    std::string path;
    std::string unknown = unknown_subcommand(app, argc, argv, path);
    if (!unknown.empty()) {
      std::cerr << "holdfast: " << unknown << std::endl;
    } else {
      std::string where = parsed_path(app);
      std::cerr << "holdfast: " << (where == "holdfast" ? "" : where.substr(9) + ": ") << e.what()
                << " (see '" << where << " --help')" << std::endl;
    }
    return kExitUsage;
  }
}

}  // namespace holdfast::cli
