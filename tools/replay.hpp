#pragma once

// `eventlite replay`: DB's events as envelope lines on the standard input of a
// command run through the shell. Its options and its run are here.

#include <string>

#include "tools/options.hpp"

namespace CLI {
class App;
}

namespace eventlite::cli {

struct ReplayArgs {
  std::string db;
  std::string exec;  // the command, for /bin/sh -c
  ReadFilters filters;
};

CLI::App* add_replay(CLI::App& app, ReplayArgs& args);
// Returns the command's exit status (128 + N when a signal N ended it).
int run_replay(const ReplayArgs& args);

}  // namespace eventlite::cli
