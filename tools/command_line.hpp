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

#include "tools/bridge.hpp"
#include "tools/commands.hpp"
#include "tools/forward.hpp"
#include "tools/replay.hpp"
#include "tools/transfer.hpp"

namespace eventlite::cli {

// What the command line gives each command: the one parse() found has its fields
// set, the others keep their defaults.
struct Arguments {
  InitArgs init;
  AppendArgs append;
  ReadArgs read;
  StreamsArgs streams;
  VerifyArgs verify;
  StatusArgs status;
  DeadListArgs dead_list;
  DeadChangeArgs dead_retry;
  DeadChangeArgs dead_discard;
  RewindArgs rewind;
  ExportArgs export_args;
  ImportArgs import_args;
  ReplayArgs replay;
  ForwardArgs forward;
  BridgeArgs bridge;
};

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
  // nullopt: a command was given, its arguments are in arguments(), and run() runs it.
  std::optional<int> parse(int argc, char** argv, std::ostream& out, std::ostream& err);

  // The words of the command parse() found, e.g. "dead retry"; empty if none.
  std::string command() const;
  const Arguments& arguments() const noexcept { return args_; }

  // Runs the command parse() found: its results on stdout, a failure as one line on
  // stderr. Returns the exit status.
  int run();

 private:
  struct Command {
    CLI::App* app;
    std::function<int()> run;
  };

  Arguments args_;  // bound to app_'s options: declared first, destroyed last
  CLI::App app_;
  std::vector<Command> commands_;
};

}  // namespace eventlite::cli
