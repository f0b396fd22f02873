// The `eventlite` command-line tool: parses the command line (tools/command_line.hpp),
// then runs the command it names.

#include <iostream>

#include "tools/command_line.hpp"

int main(int argc, char** argv) {
  eventlite::cli::CommandLine command_line;
  if (auto status = command_line.parse(argc, argv, std::cout, std::cerr)) return *status;
  return command_line.run();
}
