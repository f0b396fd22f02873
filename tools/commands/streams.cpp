// `eventlite streams`: every stream with its version and last seq.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"
#include "tools/output.hpp"

namespace eventlite::cli {
namespace {

constexpr const char* kReadOnly = " Opens DB read-only: never writes to it.";

struct StreamsArgs {
  std::string db;
  bool json = false;
};

CLI::App* add_streams(CLI::App& app, StreamsArgs& args) {
  CLI::App* command = app.add_subcommand(
      "streams",
      std::string("List the streams by name, each with its version (its number of "
                  "events) and the seq of its last event, as a table with a header.") +
          kReadOnly);
  add_db(command, args.db);
  command->add_flag("--json", args.json,
                    "print JSON lines {\"stream\",\"version\",\"last_seq\"} instead");
  return command;
}

int run_streams(const StreamsArgs& args) {
  Store store = open_for_reading(args.db);
  std::vector<StreamInfo> streams = store.streams();
  if (args.json) {
    for (const StreamInfo& info : streams) {
      print_json_line(std::cout, {{"stream", info.stream},
                                  {"version", info.version},
                                  {"last_seq", info.last_seq}});
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const StreamInfo& info : streams) {
    rows.push_back(
        {info.stream, std::to_string(info.version), std::to_string(info.last_seq)});
  }
  print_table(
      std::cout,
      {{"STREAM", Align::left}, {"VERSION", Align::right}, {"LAST_SEQ", Align::right}},
      rows);
  return kExitOk;
}

std::string check_streams(const StreamsArgs& args) {
  return file_db_problem(args.db);
}

}  // namespace

void setup_streams(CLI::App& app, Commands& commands) {
  add_command<StreamsArgs>(app, commands, add_streams, run_streams, check_streams);
}

}  // namespace eventlite::cli
