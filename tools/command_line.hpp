#pragma once

// The eventlite tool's command line: its commands and options (CLI11), the arguments
// they parse into, and the run of the command given. main() parses, then runs; the
// fuzz target fuzz/cli_args only parses. Parsing therefore opens no file, reaches no
// network and prints only on the streams it is given: every command's work is in
// run().

#include <CLI/CLI.hpp>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "tools/command.hpp"

namespace eventlite::cli {

// Thread safety: one thread at a time.
class CommandLine {
 public:
  // Builds every command and its options; reads and writes nothing.
  CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // Parses argv (argv[0], the program's name, is not an argument); call it once.
  // Returns the exit status when the command line is all there is to it: --help or
  // --version, printed on `out` (0), or a usage error, one line on `err` (2).
  // nullopt: a command was given, and run() runs it.
  std::optional<int> parse(int argc, char** argv, std::ostream& out, std::ostream& err);

  // The words of the command parse() found, e.g. "dead retry"; empty if none.
  std::string command() const;
  // What the options' checks promise about the parsed command's arguments: "" when
  // it holds, else the promise that broke (Command::check).
  std::string check() const;

  // Runs the command parse() found: its results on stdout, a failure as one line on
  // stderr. Returns the exit status.
  int run();

 private:
  Commands commands_;  // their arguments are bound to app_'s options: destroyed last
  CLI::App app_;
};

}  // namespace eventlite::cli
