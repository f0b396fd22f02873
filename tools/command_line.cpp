// The `eventlite` command-line tool's command line (tools/command_line.hpp): the
// commands, each set up by its own file (tools/commands/), and the mapping of
// failures to one line on stderr and an exit status.

#include "tools/command_line.hpp"

#include <fmt/core.h>

#include <exception>
#include <iostream>

#include "eventlite/errors.hpp"
#include "tools/error.hpp"
#include "tools/options.hpp"
#include "tools/output.hpp"

namespace eventlite::cli {
namespace {

// The command's words, e.g. "dead retry", for pointing at its help.
std::string command_path(const CLI::App& app) {
  std::string path;
  for (const CLI::App* command = &app;;) {
    std::vector<CLI::App*> typed = command->get_subcommands();
    if (typed.empty()) return path;
    command = typed.front();
    path += (path.empty() ? "" : " ") + command->get_name();
  }
}

// One line for a malformed command line, pointing at the help that explains it. It
// may quote what was typed, a URL misplaced on the line among it: its password is
// hidden.
std::string usage_error(const CLI::App& app, const CLI::ParseError& error, int argc,
                        char** argv) {
  if (!app.get_subcommands().empty()) {
    return fmt::format("{} (see `eventlite {} --help`)",
                       hide_url_passwords(one_line(error.what())), command_path(app));
  }
  if (argc > 1 && argv[1][0] != '-') {
    return fmt::format("unknown command \"{}\" (see `eventlite --help`)",
                       hide_url_passwords(one_line(argv[1])));
  }
  return fmt::format("{} (see `eventlite --help`)",
                     hide_url_passwords(one_line(error.what())));
}

}  // namespace

CommandLine::CommandLine()
    : app_(
          "Inspect and append to an eventlite event store: the events of an "
          "application, kept in a SQLite file it owns. DB is that file, as in "
          "`sqlite3 DB`.",
          "eventlite") {
  app_.require_subcommand(1);
  app_.set_version_flag("--version", EVENTLITE_VERSION);
  app_.footer(
      "Exit status: 0 success, 1 error, 2 usage error, 3 version conflict.\n"
      "Run `eventlite COMMAND --help` for the options of a command.");

  // One line each: a command's options, checks and run are in its own file.
  setup_init(app_, commands_);
  setup_append(app_, commands_);
  setup_read(app_, commands_);
  setup_streams(app_, commands_);
  setup_verify(app_, commands_);
  setup_status(app_, commands_);
  setup_dead(app_, commands_);
  setup_rewind(app_, commands_);
  setup_export(app_, commands_);
  setup_import(app_, commands_);
  setup_replay(app_, commands_);
  setup_forward(app_, commands_);
  setup_bridge(app_, commands_);
}

std::optional<int> CommandLine::parse(int argc, char** argv, std::ostream& out,
                                      std::ostream& err) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version arrive as "errors" that succeed.
    if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app_.exit(error, out, err);
    }
    err << "eventlite: " << usage_error(app_, error, argc, argv) << '\n';
    return kExitUsage;
  }
  return std::nullopt;
}

std::string CommandLine::command() const {
  return command_path(app_);
}

std::string CommandLine::check() const {
  for (const Command& command : commands_)
    if (command.app->parsed()) return command.check();
  return "parsing found a command the tool has";
}

int CommandLine::run() {
  int status = kExitOk;
  try {
    for (const Command& command : commands_) {
      if (command.app->parsed()) status = command.run();
    }
  } catch (const CommandError& error) {
    status = error.exit_status();
    std::cerr << "eventlite: " << one_line(error.what()) << '\n';
  } catch (const Error& error) {
    status = exit_status(error);
    std::cerr << "eventlite: " << one_line(describe(error)) << '\n';
  } catch (const std::exception& error) {
    status = kExitError;
    std::cerr << "eventlite: " << one_line(error.what()) << '\n';
  }
  if (!std::cout.flush()) {
    std::cerr << "eventlite: cannot write to stdout\n";
    return kExitError;
  }
  return status;
}

}  // namespace eventlite::cli
