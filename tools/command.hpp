#pragma once

// One command of the tool, in CLI11's subcom_in_files shape: each command's file in
// tools/commands/ holds its arguments, its options and checks, its run, and a setup
// function that adds it to the tool; command_line.cpp calls each setup once.

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace eventlite::cli {

struct Command {
  CLI::App* app = nullptr;   // the command (or subcommand: `dead retry`)
  std::function<int()> run;  // runs it with what was parsed; returns the exit status
  // What the options' checks promise about the arguments once parsed: "" when it
  // holds, else the promise that broke. fuzz/cli_args asks it of each parse.
  std::function<std::string()> check;
};
using Commands = std::vector<Command>;

// The usual setup: the command's arguments, made once, bound by `add` to its options
// and shared by its run and its check.
template <typename Args>
void add_command(CLI::App& parent, Commands& commands, CLI::App* (*add)(CLI::App&, Args&),
                 int (*run)(const Args&), std::string (*check)(const Args&)) {
  auto args = std::make_shared<Args>();
  commands.push_back({add(parent, *args), [args, run] { return run(*args); },
                      [args, check] { return check(*args); }});
}

// In --help's order.
void setup_init(CLI::App& app, Commands& commands);
void setup_append(CLI::App& app, Commands& commands);
void setup_read(CLI::App& app, Commands& commands);
void setup_streams(CLI::App& app, Commands& commands);
void setup_verify(CLI::App& app, Commands& commands);
void setup_status(CLI::App& app, Commands& commands);
void setup_dead(CLI::App& app, Commands& commands);  // dead list, retry, discard
void setup_rewind(CLI::App& app, Commands& commands);
void setup_export(CLI::App& app, Commands& commands);
void setup_import(CLI::App& app, Commands& commands);
void setup_replay(CLI::App& app, Commands& commands);
void setup_forward(CLI::App& app, Commands& commands);
void setup_bridge(CLI::App& app, Commands& commands);

// For checks: "" when DB names a file (not an SQLite URI nor :memory:), else why not.
std::string file_db_problem(const std::string& db);

}  // namespace eventlite::cli
